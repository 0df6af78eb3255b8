//! The local support check: does a sentence's cited passage actually say it?
//!
//! Features of a claim against its cited passages ([`Features`]): embedding similarity,
//! term overlap, and the rules a paraphrase cannot break — a number, negation or modality
//! the evidence does not share, a designator it never names. [`Thresholds::label`] applies
//! the rules first, then the score, with separate thresholds for a claim in another
//! language than its sources. [`calibrate`] fits them on the calibration half of
//! `corpus/eval/support_pairs*.jsonl`; `tests/integration/support.rs` measures the other
//! half (README, "Citation support").

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use doctrina_embed::{Embedder, cosine};
use serde::{Deserialize, Serialize};
use tantivy::tokenizer::{
    Language, LowerCaser, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

/// The support label of one sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Support {
    Supported,
    Weak,
    Unsupported,
    /// The sentence cites no (valid) source.
    Uncited,
}

impl Support {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Supported => "supported",
            Self::Weak => "weak",
            Self::Unsupported => "unsupported",
            Self::Uncited => "uncited",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "supported" => Some(Self::Supported),
            // Evaluators' sets often say `partial` (ALCE) or `partly`.
            "weak" | "partial" | "partly" => Some(Self::Weak),
            "unsupported" => Some(Self::Unsupported),
            "uncited" => Some(Self::Uncited),
            _ => None,
        }
    }
}

/// Weights and thresholds of the combined score, one set for a claim in its passages'
/// language and one for a claim in the other language (a Korean sentence citing English
/// doctrine), where term overlap means little.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Weight of embedding similarity; `1 - w` goes to term overlap.
    pub similarity_weight: f32,
    pub supported: f32,
    pub weak: f32,
    #[serde(default = "cross_defaults_weight")]
    pub cross_similarity_weight: f32,
    #[serde(default = "cross_defaults_supported")]
    pub cross_supported: f32,
    #[serde(default = "cross_defaults_weak")]
    pub cross_weak: f32,
}

fn cross_defaults_weight() -> f32 {
    Thresholds::default().cross_similarity_weight
}
fn cross_defaults_supported() -> f32 {
    Thresholds::default().cross_supported
}
fn cross_defaults_weak() -> f32 {
    Thresholds::default().cross_weak
}

impl Default for Thresholds {
    /// Calibrated by [`calibrate`] on the `calibration` half of
    /// `corpus/eval/support_pairs.jsonl` and `support_pairs_ko.jsonl` (300 of 591 labelled
    /// pairs, 211 of them Korean); measured on the other half in
    /// `tests/integration/support.rs` and by `doctrina eval support` (README).
    fn default() -> Self {
        Self {
            similarity_weight: 1.0,
            supported: 0.94,
            weak: 0.92,
            cross_similarity_weight: 0.7,
            cross_supported: 0.62,
            cross_weak: 0.60,
        }
    }
}

impl Thresholds {
    /// The label of a claim with these features. The rules come first, the score after:
    /// * a number the cited text does not contain (`0600` where it says `0500`, three where
    ///   it says four), a negation or a `must`/`may` the evidence does not share: the claim
    ///   says something else than its source, `unsupported` whatever the similarity;
    /// * a whole sentence of the source quoted word for word: `supported`;
    /// * an acronym or designator the source never names (`FSC` for a source about the
    ///   `BSB`), or a rewrite in the source's terms that swaps them or drops a
    ///   qualifier ([`Features::altered`]): at most `weak`;
    /// * otherwise the score against the thresholds for the claim's language pairing.
    pub fn label(&self, features: Features) -> Support {
        if features.novel_number || features.negation_mismatch || features.modality_mismatch {
            return Support::Unsupported;
        }
        if features.quoted {
            return Support::Supported;
        }
        let score = self.score(features);
        let (supported, weak) = if features.cross_lingual {
            (self.cross_supported, self.cross_weak)
        } else {
            (self.supported, self.weak)
        };
        if score >= supported && features.missing_names == 0 && !features.altered() {
            Support::Supported
        } else if score >= weak {
            Support::Weak
        } else {
            Support::Unsupported
        }
    }

    pub fn score(&self, f: Features) -> f32 {
        let w = if f.cross_lingual {
            self.cross_similarity_weight
        } else {
            self.similarity_weight
        };
        w * f.similarity + (1.0 - w) * f.overlap
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Features {
    pub similarity: f32,
    pub overlap: f32,
    /// The claim states a number (a time, quantity, distance, designation) that no cited
    /// passage contains, or gives a number a unit of measure the passages give it only
    /// other units of (`500 yards` where they say `500 meters`).
    #[serde(default)]
    pub novel_number: bool,
    /// The best evidence sentence states numbers of its own: a novel number in the claim
    /// then contradicts one (a changed number) rather than adding a detail.
    #[serde(default)]
    pub evidence_has_number: bool,
    /// The claim and its best evidence disagree on negation (`does not`, `never`, `않`,
    /// `못`, `없`).
    #[serde(default)]
    pub negation_mismatch: bool,
    /// The claim and its best evidence disagree on modality (`must` against `may`,
    /// `해야` against `할 수 있`).
    #[serde(default)]
    pub modality_mismatch: bool,
    /// Acronyms and designators in the claim (`BSB`, `S-4`, `LOGPAC`) that no cited passage
    /// names.
    #[serde(default)]
    pub missing_names: u32,
    /// The claim is in another language than its passages (a Korean sentence citing
    /// English doctrine): term overlap says little, similarity carries the check.
    #[serde(default)]
    pub cross_lingual: bool,
    /// The claim is a whole sentence of a cited passage, word for word (case and
    /// punctuation aside; at least 90% of the sentence, so a dropped qualifier such as "For
    /// offensive operations in rough terrain," does not count): a quote says what its
    /// source says.
    #[serde(default)]
    pub quoted: bool,
    /// The claim, in English, rewrites its best evidence sentence in the sentence's own
    /// terms (at most one of its own, at least 60% of the shared ones in the sentence's
    /// order) and moves some of them: two terms trade places (`the SPO ... while the S-4`
    /// where the source says `the S-4 ... while the SPO`), or, in a close rewrite (80% of
    /// all its terms in order), a term is moved onto another subject. The count of terms
    /// moved; 0 for any other claim.
    #[serde(default)]
    pub reordered: u32,
    /// The claim rewrites its sentence (as for [`Features::reordered`], in either language)
    /// and leaves out a qualifier of the sentence (`often`, `usually`, `about 5`, `대개`,
    /// `일부`), or, in a close rewrite, a condition inside the span it copies (`during
    /// high-tempo operations`): an overgeneralisation.
    #[serde(default)]
    pub dropped_qualifier: bool,
}

impl Features {
    /// Whether the claim reuses its source's words but changes what they say: terms
    /// reordered or a qualifier dropped. Neither the embedding model nor a small judge sees
    /// these (the words are the source's own), so they cap the label at `weak`.
    pub fn altered(&self) -> bool {
        self.reordered > 0 || self.dropped_qualifier
    }
}

/// The passage span that best matches a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Index into the cited passages given to [`SupportChecker::check`].
    pub passage: usize,
    /// Character offsets of the span within that passage's text.
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub support: Support,
    pub features: Features,
    pub score: f32,
    pub evidence: Option<Evidence>,
    /// The best-matching span of each cited passage, in citation order.
    #[serde(default)]
    pub spans: Vec<Evidence>,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SupportError(#[from] doctrina_embed::EmbedError);

/// The support check fails only when the embedder does: the same failure as anywhere else.
impl doctrina_types::Faulted for SupportError {
    fn fault(&self) -> doctrina_types::Fault {
        self.0.fault()
    }

    fn code(&self) -> &'static str {
        self.0.code()
    }

    fn public_message(&self) -> String {
        self.0.public_message()
    }
}

pub struct SupportChecker {
    embedder: Arc<dyn Embedder>,
    analyzer: Mutex<TextAnalyzer>,
    /// [`CONDITION_WORDS`] as the analyzer stems them, once.
    conditions: HashSet<String>,
    pub thresholds: Thresholds,
}

impl std::fmt::Debug for SupportChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupportChecker")
            .field("thresholds", &self.thresholds)
            .finish_non_exhaustive()
    }
}

/// The numbers of a text as digit runs (`0700`, `72` of `72-hour`, `15` of `15퍼센트`,
/// `2.5`), thousands separators removed, so the same number written in English or Korean
/// compares equal.
fn numbers(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_ascii_digit() || (!current.is_empty() && c == '.' && next_digit) {
            current.push(c);
        } else if !current.is_empty() && c == ',' && next_digit {
            // 1,000
        } else if !current.is_empty() {
            out.insert(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.insert(current);
    }
    // Numbers written as words, in either language, as the digits they stand for.
    let lower = text.to_lowercase();
    for (words, value) in NUMBER_WORDS {
        if words.iter().any(|w| contains_word(&lower, w)) {
            out.insert((*value).to_string());
        }
    }
    out
}

/// Number words and the numbers they stand for (fractions as `1/3`).
const NUMBER_WORDS: &[(&[&str], &str)] = &[
    (&["one-third", "one third", "3분의 1"], "1/3"),
    (&["two-thirds", "two thirds", "3분의 2"], "2/3"),
    (
        &["one-quarter", "one quarter", "a quarter", "4분의 1"],
        "1/4",
    ),
    (&["three-quarters", "three quarters", "4분의 3"], "3/4"),
    (&["half", "절반", "2분의 1"], "1/2"),
    (&["twice", "double", "두 배"], "2x"),
    (&["two"], "2"),
    (&["three"], "3"),
    (&["four"], "4"),
    (&["five"], "5"),
    (&["six"], "6"),
    (&["seven"], "7"),
    (&["eight"], "8"),
    (&["nine"], "9"),
    (&["ten"], "10"),
    (&["twelve"], "12"),
    (&["twenty"], "20"),
    (&["hundred"], "100"),
];

/// Whether `word` occurs in `text` on word boundaries (any non-alphanumeric around it;
/// Hangul words may be followed by a particle).
fn contains_word(text: &str, word: &str) -> bool {
    let hangul = doctrina_korean::has_hangul(word);
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let edge = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        edge(before) && (hangul || edge(after))
    })
}

static NEGATION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\b(not|no|never|none|cannot|without|nor|neither|nothing|prohibited|forbidden)\b|n't|않|못|없|아니|금지|불가|지 ?(?:말(?:고|아야|것)|마(?:라|십시오|세요))",
    )
    .expect("valid regex")
});

/// Obligation. Korean states it with the ending `-아야/-어야 한다` on any verb
/// (`보고해야 한다`, `시켜야 한다`, `받아야 하며`, `되어야 한다`), besides `반드시` / `필수`.
static STRONG_MODAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\b(must|shall|required|requires|always|mandatory)\b|\p{Hangul}야 ?(?:한다|합니|하며|하고|하는|하므로|함|할(?:\s|$)|된다|됩니|되며|되고|되는|됨|될(?:\s|$))|반드시|필수",
    )
    .expect("valid regex")
});

static WEAK_MODAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(may|can|could|might|optional|optionally|sometimes|where possible)\b|수 있|경우에 따라|필요하면")
        .expect("valid regex")
});

/// Contrasts that say what is not done without a negation word: `civilians, rather than
/// the enemy` says what `civilians, not the enemy` says.
static CONTRAST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(instead of|rather than)\b").expect("valid regex")
});

/// Whether the two texts disagree on negation: one negates and the other neither negates
/// nor states the same contrast with `instead of` / `rather than`.
fn negation_mismatch(claim: &str, evidence: &str) -> bool {
    let (claim_negates, evidence_negates) = (NEGATION.is_match(claim), NEGATION.is_match(evidence));
    if claim_negates == evidence_negates {
        return false;
    }
    let plain = if claim_negates { evidence } else { claim };
    !CONTRAST.is_match(plain)
}

/// Whether one says `must` where the other says `may` (either way).
fn modality_mismatch(claim: &str, evidence: &str) -> bool {
    let strong = |t: &str| STRONG_MODAL.is_match(t);
    let weak = |t: &str| WEAK_MODAL.is_match(t) && !STRONG_MODAL.is_match(t);
    (strong(claim) && weak(evidence)) || (weak(claim) && strong(evidence))
}

/// Words that narrow a statement (how often, how many, how exactly): a claim that copies
/// its source but leaves one out says more than the source.
static QUALIFIER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\b(often|frequently|usually|generally|typically|normally|tends?|sometimes|roughly|approximately|about \d|most|many|some|largely|mainly|primarily|likely|where possible|when time allows|at least|at most|more than|less than|fewer than|up to|only)\b|대개|대체로|일반적으로|보통|주로|흔히|종종|때때로|대부분|일부|약 ?\d|이상|이하|미만|초과|에 한하여|에 한해",
    )
    .expect("valid regex")
});

/// Condition words (analysed as the claim's terms are): one inside the copied span but
/// missing from the claim marks a dropped condition (`during ...`, `when ...`).
const CONDITION_WORDS: &str = "during when unless where while until";

/// The qualifiers of `text`, lowercased.
fn qualifiers(text: &str) -> HashSet<String> {
    QUALIFIER
        .find_iter(text)
        .map(|m| m.as_str().to_lowercase().replace(' ', ""))
        .collect()
}

/// How a claim that rewrites its evidence sentence in the sentence's own terms departs
/// from it, from the two texts' terms in order: the claim terms set out of the sentence's
/// order (`reordered`: terms that trade places; in a close rewrite, any term moved), and,
/// in a close rewrite, whether a condition term inside the copied span went missing.
/// `None` when the claim is no rewrite (more than one term of its own, or under 60% of the
/// shared terms in order), which leaves paraphrases to the score and the judge. A close
/// rewrite has at least 80% of all its terms in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rewrite {
    reordered: u32,
    dropped_condition: bool,
}

fn rewrite(claim: &[String], evidence: &[String], conditions: &HashSet<String>) -> Option<Rewrite> {
    if claim.is_empty() || evidence.is_empty() {
        return None;
    }
    let in_evidence: HashSet<&str> = evidence.iter().map(String::as_str).collect();
    let in_claim: HashSet<&str> = claim.iter().map(String::as_str).collect();
    let novel = claim
        .iter()
        .filter(|t| !in_evidence.contains(t.as_str()))
        .count();
    let aligned = longest_common_subsequence(claim, evidence);
    // Roles traded across a `while` (`the SPO ... while the S-4 ...`) keep the frame
    // between them but take a third of the terms off the common order, so a trade is looked
    // for down to 60% of the shared terms in order; moved terms and dropped conditions only
    // in a close rewrite (80% of all terms).
    let shared = claim.len() - novel;
    if novel > 1 || aligned.len() * 5 < shared * 3 {
        return None;
    }
    let on_claim: HashSet<usize> = aligned.iter().map(|(i, _)| *i).collect();
    let on_evidence: HashSet<usize> = aligned.iter().map(|(_, j)| *j).collect();
    let traded = traded_places(claim, evidence, &aligned, &on_claim, &on_evidence);
    if aligned.len() * 5 < claim.len() * 4 {
        return Some(Rewrite {
            reordered: traded.len() as u32,
            dropped_condition: false,
        });
    }
    // A claim term off the common order is moved when the sentence has an occurrence of
    // it off the order too (a repeated term the sentence states once is not a move).
    let mut unplaced: HashMap<&str, usize> = HashMap::new();
    for (j, term) in evidence.iter().enumerate() {
        if !on_evidence.contains(&j) {
            *unplaced.entry(term.as_str()).or_default() += 1;
        }
    }
    let mut moved = traded;
    for (i, term) in claim.iter().enumerate() {
        if on_claim.contains(&i) {
            continue;
        }
        if let Some(left) = unplaced.get_mut(term.as_str()).filter(|n| **n > 0) {
            *left -= 1;
            moved.insert(i);
        }
    }
    let dropped_condition = match (aligned.first(), aligned.last()) {
        (Some(&(_, first)), Some(&(_, last))) => (first..=last).any(|j| {
            !on_evidence.contains(&j)
                && !in_claim.contains(evidence[j].as_str())
                && conditions.contains(&evidence[j])
        }),
        _ => false,
    };
    Some(Rewrite {
        reordered: moved.len() as u32,
        dropped_condition,
    })
}

/// Claim terms (by index) that trade places with another term of the sentence: the claim
/// puts a term where the sentence has another one, and puts that other one elsewhere
/// (`Facts are suppositions ... in the absence of assumptions` over `Assumptions are
/// suppositions ... in the absence of facts`). Places are the gaps of the common order
/// `aligned` (whose claim and sentence indices are `on_claim` and `on_evidence`): gap `k`
/// lies between its `k`-th and `k+1`-th pair. Faithful rewrites move a phrase to the front
/// or the end; they do not exchange two of the sentence's terms.
fn traded_places(
    claim: &[String],
    evidence: &[String],
    aligned: &[(usize, usize)],
    on_claim: &HashSet<usize>,
    on_evidence: &HashSet<usize>,
) -> HashSet<usize> {
    // The gaps each off-order term occupies, in the claim and in the sentence.
    let mut in_claim: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (i, term) in claim
        .iter()
        .enumerate()
        .filter(|(i, _)| !on_claim.contains(i))
    {
        let gap = aligned.partition_point(|&(a, _)| a < i);
        in_claim.entry(term.as_str()).or_default().push((i, gap));
    }
    let mut in_sentence: HashMap<&str, HashSet<usize>> = HashMap::new();
    for (j, term) in evidence
        .iter()
        .enumerate()
        .filter(|(j, _)| !on_evidence.contains(j))
    {
        let gap = aligned.partition_point(|&(_, b)| b < j);
        in_sentence.entry(term.as_str()).or_default().insert(gap);
    }
    let mut traded = HashSet::new();
    for (a, a_places) in &in_claim {
        let Some(a_home) = in_sentence.get(a) else {
            continue;
        };
        for &(i, gap) in a_places.iter().filter(|(_, gap)| !a_home.contains(gap)) {
            // Another sentence term whose place this is, set elsewhere by the claim.
            for (b, b_places) in in_claim.iter().filter(|(b, _)| *b != a) {
                let Some(b_home) = in_sentence.get(b) else {
                    continue;
                };
                let elsewhere = b_places
                    .iter()
                    .find(|(_, g)| *g != gap && !b_home.contains(g));
                if let (true, Some(&(k, _))) = (b_home.contains(&gap), elsewhere) {
                    traded.insert(i);
                    traded.insert(k);
                }
            }
        }
    }
    traded
}

/// Index pairs `(i, j)` of one longest common subsequence of `a` and `b`, in order.
fn longest_common_subsequence(a: &[String], b: &[String]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut table = vec![vec![0u16; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if a[i] == b[j] {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Acronyms and designators: `BSB`, `S-4`, `LOGPAC`, `CCIR`, `FM 5-0` (letters part).
fn names(text: &str) -> HashSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '/'))
        .map(|t| t.trim_matches(['-', '/']))
        .filter(|t| {
            t.chars().filter(char::is_ascii_uppercase).count() >= 2
                && t.chars().all(|c| !c.is_ascii_lowercase())
        })
        .map(str::to_string)
        .collect()
}

fn missing_names(claim: &str, passages: &[&str]) -> u32 {
    names(claim)
        .iter()
        .filter(|n| !passages.iter().any(|p| p.contains(n.as_str())))
        .count() as u32
}

/// The words of a text, lowercased, without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `claim` is, word for word, at least 90% of one sentence of a passage.
fn quoted(claim: &str, passages: &[&str]) -> bool {
    let claim = words(claim);
    if claim.len() < 4 {
        return false;
    }
    passages.iter().any(|p| {
        sentences(p).iter().any(|(_, _, sentence)| {
            let sentence = words(sentence);
            claim.len() * 10 >= sentence.len() * 9
                && sentence.windows(claim.len()).any(|w| w == claim.as_slice())
        })
    })
}

fn novel_number(claim: &str, passages: &[&str]) -> bool {
    let mut known = HashSet::new();
    for p in passages {
        known.extend(numbers(p));
    }
    numbers(claim).iter().any(|n| !known.contains(n)) || changed_unit(claim, passages)
}

/// Units of measure, in either language, by the one they are (`500야드` is `500 yards`).
const UNITS: &[(&[&str], &str)] = &[
    (
        &[
            "kilometers",
            "kilometres",
            "kilometer",
            "kilometre",
            "km",
            "킬로미터",
            "킬로",
        ],
        "km",
    ),
    (&["meters", "metres", "meter", "metre", "m", "미터"], "m"),
    (&["yards", "yard", "yd", "야드"], "yd"),
    (&["miles", "mile", "마일"], "mi"),
    (&["feet", "foot", "ft", "피트"], "ft"),
    (&["liters", "litres", "liter", "litre", "l", "리터"], "l"),
    (&["gallons", "gallon", "gal", "갤런"], "gal"),
    (&["tons", "tonnes", "ton", "tonne", "톤"], "t"),
    (&["kilograms", "kilogram", "kg", "킬로그램"], "kg"),
    (&["pounds", "pound", "lb", "lbs", "파운드"], "lb"),
];

static QUANTITY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    let mut words: Vec<&str> = UNITS.iter().flat_map(|(w, _)| w.iter().copied()).collect();
    // The longest first, so `kilometers` is not read as `k` + `m`.
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    regex::Regex::new(&format!(
        r"(?i)(\d+(?:[.,]\d+)*)\s?({})(?:\b|[가-힣]|$)",
        words.join("|")
    ))
    .expect("valid regex")
});

/// The quantities of a text: (number, unit) pairs, the unit as [`UNITS`] names it.
fn quantities(text: &str) -> Vec<(String, &'static str)> {
    QUANTITY
        .captures_iter(text)
        .filter_map(|c| {
            let word = c[2].to_lowercase();
            let unit = UNITS.iter().find(|(w, _)| w.contains(&word.as_str()))?.1;
            Some((c[1].replace(',', ""), unit))
        })
        .collect()
}

/// Whether the claim gives a number a unit of measure where the passages give the same
/// number only other units (`500야드` or `500 yards` where the source says `500 meters`).
fn changed_unit(claim: &str, passages: &[&str]) -> bool {
    let known: Vec<(String, &str)> = passages.iter().flat_map(|p| quantities(p)).collect();
    quantities(claim).iter().any(|(number, unit)| {
        let units: Vec<&str> = known
            .iter()
            .filter(|(n, _)| n == number)
            .map(|(_, u)| *u)
            .collect();
        !units.is_empty() && !units.contains(unit)
    })
}

/// Sentences of `text` with their character offsets (runs of fewer than three letters or
/// digits are not sentences).
pub fn sentences(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut chars_before = 0;
    let mut last_byte = 0;
    for (byte, end) in doctrina_korean::sentences(text) {
        let s = &text[byte..end];
        chars_before += text[last_byte..byte].chars().count();
        last_byte = byte;
        let trimmed = s.trim();
        if trimmed.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
            continue;
        }
        let lead = s.len() - s.trim_start().len();
        let start = chars_before + s[..lead].chars().count();
        out.push((start, start + trimmed.chars().count(), trimmed));
    }
    out
}

impl SupportChecker {
    pub fn new(embedder: Arc<dyn Embedder>, thresholds: Thresholds) -> Self {
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(StopWordFilter::new(Language::English).expect("english stop words ship"))
            .filter(Stemmer::new(Language::English))
            .build();
        let mut checker = Self {
            embedder,
            analyzer: Mutex::new(analyzer),
            conditions: HashSet::new(),
            thresholds,
        };
        checker.conditions = checker.terms(CONDITION_WORDS);
        checker
    }

    fn terms(&self, text: &str) -> HashSet<String> {
        self.term_sequence(text).into_iter().collect()
    }

    /// The content terms of `text` in order: Korean morphemes (MeCab) and Latin words
    /// stemmed as English, as the keyword index analyses them.
    fn term_sequence(&self, text: &str) -> Vec<String> {
        if doctrina_korean::has_hangul(text) {
            return doctrina_index::analysis::DoctrinaAnalyzer::default()
                .tokens(text)
                .into_iter()
                .map(|t| t.text)
                .collect();
        }
        let mut analyzer = self.analyzer.lock().unwrap_or_else(|p| p.into_inner());
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        out
    }

    /// [`Features::reordered`] and [`Features::dropped_qualifier`] of a claim against its
    /// best evidence sentence in the same language.
    fn rewrite_features(&self, claim: &str, evidence: &str) -> (u32, bool) {
        let claim_terms = self.term_sequence(claim);
        let evidence_terms = self.term_sequence(evidence);
        match rewrite(&claim_terms, &evidence_terms, &self.conditions) {
            Some(r) => {
                let dropped = !qualifiers(evidence).is_subset(&qualifiers(claim));
                // Korean scrambles word order freely, so order says little there.
                let reordered = if doctrina_korean::has_hangul(claim) {
                    0
                } else {
                    r.reordered
                };
                (reordered, dropped || r.dropped_condition)
            }
            None => (0, false),
        }
    }

    /// Share of the claim's content terms found in the passages (1.0 for a claim with none).
    pub fn overlap(&self, claim: &str, passages: &[&str]) -> f32 {
        let claim_terms = self.terms(claim);
        if claim_terms.is_empty() {
            return 0.0;
        }
        let mut passage_terms = HashSet::new();
        for p in passages {
            passage_terms.extend(self.terms(p));
        }
        let found = claim_terms
            .iter()
            .filter(|t| passage_terms.contains(*t))
            .count();
        found as f32 / claim_terms.len() as f32
    }

    /// Features of a claim against passages, and the best-matching span.
    pub fn features(
        &self,
        claim: &str,
        passages: &[&str],
    ) -> Result<(Features, Option<Evidence>), SupportError> {
        let (features, best, _) = self.features_per_passage(claim, passages)?;
        Ok((features, best))
    }

    /// Like [`Self::features`], plus the best-matching span of every passage (in order), so
    /// each citation of a sentence can show its own span.
    pub fn features_per_passage(
        &self,
        claim: &str,
        passages: &[&str],
    ) -> Result<(Features, Option<Evidence>, Vec<Evidence>), SupportError> {
        if passages.is_empty() {
            return Ok((Features::default(), None, Vec::new()));
        }
        // (passage, char start, char end, text); each passage's whole span comes first,
        // then its sentences.
        let mut spans: Vec<(usize, usize, usize, &str)> = Vec::new();
        let mut whole_spans: HashSet<usize> = HashSet::new();
        for (i, p) in passages.iter().enumerate() {
            whole_spans.insert(spans.len());
            spans.push((i, 0, p.chars().count(), p));
            for (s, e, text) in sentences(p) {
                spans.push((i, s, e, text));
            }
        }
        let mut texts: Vec<&str> = vec![claim];
        texts.extend(spans.iter().map(|s| s.3));
        let vectors = self.embedder.embed_queries(&texts)?;
        let (claim_vector, span_vectors) = vectors.split_first().expect("claim embedded");
        let sims: Vec<f32> = span_vectors
            .iter()
            .map(|v| cosine(claim_vector, v))
            .collect();
        // (Not `start == 0`: a passage's first sentence starts there too.)
        let whole = |j: usize| whole_spans.contains(&j);
        // The similarity is the best over whole passages and their sentences.
        let (similarity, best_passage) = sims
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map_or((0.0, 0), |(k, sim)| (*sim, spans[k].0));
        // The evidence shown for a passage is its best single sentence (the whole passage
        // when it has no sentence boundaries).
        let per_passage: Vec<Evidence> = (0..passages.len())
            .map(|i| {
                let spans = &spans;
                let candidates: Vec<usize> =
                    (0..spans.len()).filter(|&j| spans[j].0 == i).collect();
                let best = candidates
                    .iter()
                    .copied()
                    .filter(|&j| !whole(j))
                    .max_by(|&a, &b| sims[a].total_cmp(&sims[b]).then(b.cmp(&a)))
                    .or_else(|| candidates.first().copied())
                    .expect("every passage has its whole span");
                let (passage, char_start, char_end, text) = spans[best];
                Evidence {
                    passage,
                    char_start,
                    char_end,
                    text: text.to_string(),
                }
            })
            .collect();
        let evidence_text = per_passage
            .get(best_passage)
            .map_or("", |e| e.text.as_str());
        let claim_korean = doctrina_korean::has_hangul(claim);
        let cross_lingual = passages
            .iter()
            .any(|p| doctrina_korean::has_hangul(p) != claim_korean);
        let (reordered, dropped_qualifier) = if cross_lingual {
            (0, false)
        } else {
            self.rewrite_features(claim, evidence_text)
        };
        let features = Features {
            similarity,
            overlap: self.overlap(claim, passages),
            novel_number: novel_number(claim, passages),
            evidence_has_number: !numbers(evidence_text).is_empty(),
            negation_mismatch: negation_mismatch(claim, evidence_text),
            modality_mismatch: modality_mismatch(claim, evidence_text),
            missing_names: missing_names(claim, passages),
            cross_lingual,
            quoted: quoted(claim, passages),
            reordered,
            dropped_qualifier,
        };
        let best = per_passage.get(best_passage).cloned();
        Ok((features, best, per_passage))
    }

    /// Cosine similarity of `query` to each of `texts` (the model's query embedding for
    /// both, as the check compares claims and sentences).
    pub fn similarities(&self, query: &str, texts: &[&str]) -> Result<Vec<f32>, SupportError> {
        let mut all = vec![query];
        all.extend_from_slice(texts);
        let vectors = self.embedder.embed_queries(&all)?;
        let (query, rest) = vectors.split_first().expect("the query is embedded");
        Ok(rest.iter().map(|v| cosine(query, v)).collect())
    }

    /// Labels a claim against the passages it cites (`uncited` when there are none).
    pub fn check(&self, claim: &str, cited: &[&str]) -> Result<Verdict, SupportError> {
        if cited.is_empty() {
            return Ok(Verdict {
                support: Support::Uncited,
                features: Features::default(),
                score: 0.0,
                evidence: None,
                spans: Vec::new(),
            });
        }
        let (features, evidence, spans) = self.features_per_passage(claim, cited)?;
        Ok(Verdict {
            support: self.thresholds.label(features),
            features,
            score: self.thresholds.score(features),
            evidence,
            spans,
        })
    }
}

/// Precision and recall of one label.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PrecisionRecall {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// How a set of thresholds does on labelled samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub thresholds: Thresholds,
    pub accuracy: f64,
    pub supported: PrecisionRecall,
    pub weak: PrecisionRecall,
    pub unsupported: PrecisionRecall,
    /// `confusion[gold][predicted]` over supported, weak, unsupported.
    pub confusion: [[usize; 3]; 3],
}

/// The slot of a label in a `confusion[gold][predicted]` matrix over supported, weak,
/// unsupported (`uncited` counts as unsupported).
pub fn label_slot(label: Support) -> usize {
    match label {
        Support::Supported => 0,
        Support::Weak => 1,
        Support::Unsupported | Support::Uncited => 2,
    }
}

/// Precision, recall and F1 of slot `c` of a `confusion[gold][predicted]` matrix (1.0 for
/// a label never predicted or never present).
pub fn precision_recall(confusion: &[[usize; 3]; 3], c: usize) -> PrecisionRecall {
    let tp = confusion[c][c] as f64;
    let predicted: usize = (0..3).map(|g| confusion[g][c]).sum();
    let actual: usize = confusion[c].iter().sum();
    let precision = if predicted == 0 {
        1.0
    } else {
        tp / predicted as f64
    };
    let recall = if actual == 0 { 1.0 } else { tp / actual as f64 };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    PrecisionRecall {
        precision,
        recall,
        f1,
    }
}

/// The share of a confusion matrix on its diagonal.
pub fn accuracy(confusion: &[[usize; 3]; 3]) -> f64 {
    let correct: usize = (0..3).map(|c| confusion[c][c]).sum();
    let total: usize = confusion.iter().flatten().sum();
    correct as f64 / total.max(1) as f64
}

pub fn evaluate(samples: &[(Features, Support)], thresholds: Thresholds) -> Evaluation {
    let mut confusion = [[0usize; 3]; 3];
    for (f, gold) in samples {
        confusion[label_slot(*gold)][label_slot(thresholds.label(*f))] += 1;
    }
    Evaluation {
        thresholds,
        accuracy: accuracy(&confusion),
        supported: precision_recall(&confusion, 0),
        weak: precision_recall(&confusion, 1),
        unsupported: precision_recall(&confusion, 2),
        confusion,
    }
}

/// Grid search for the weights and thresholds, fitted separately on same-language and
/// cross-language pairs. Showing an unsupported claim as supported is the costly error, so
/// the objective is accuracy plus half the F0.5 of `supported` (precision weighted).
pub fn calibrate(samples: &[(Features, Support)]) -> Evaluation {
    let fit = |cross: bool| -> (f32, f32, f32) {
        let subset: Vec<(Features, Support)> = samples
            .iter()
            .filter(|(f, _)| f.cross_lingual == cross)
            .copied()
            .collect();
        let mut best: Option<(f64, (f32, f32, f32))> = None;
        for w in [0.0f32, 0.3, 0.5, 0.7, 1.0] {
            for s in (40..=94).step_by(2) {
                for k in (20..s).step_by(4) {
                    let (supported, weak) = (s as f32 / 100.0, k as f32 / 100.0);
                    let thresholds = Thresholds {
                        similarity_weight: w,
                        supported,
                        weak,
                        cross_similarity_weight: w,
                        cross_supported: supported,
                        cross_weak: weak,
                    };
                    let e = evaluate(&subset, thresholds);
                    let (p, r) = (e.supported.precision, e.supported.recall);
                    let f05 = if p + r == 0.0 {
                        0.0
                    } else {
                        1.25 * p * r / (0.25 * p + r)
                    };
                    let objective = e.accuracy + 0.5 * f05;
                    if best.as_ref().is_none_or(|(b, _)| objective > *b) {
                        best = Some((objective, (w, supported, weak)));
                    }
                }
            }
        }
        best.map_or((1.0, 0.94, 0.92), |(_, t)| t)
    };
    let (similarity_weight, supported, weak) = fit(false);
    let (cross_similarity_weight, cross_supported, cross_weak) = fit(true);
    evaluate(
        samples,
        Thresholds {
            similarity_weight,
            supported,
            weak,
            cross_similarity_weight,
            cross_supported,
            cross_weak,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_rules_then_the_score() {
        let t = Thresholds {
            similarity_weight: 0.5,
            supported: 0.6,
            weak: 0.4,
            cross_similarity_weight: 1.0,
            cross_supported: 0.85,
            cross_weak: 0.8,
        };
        let f = |s, o| Features {
            similarity: s,
            overlap: o,
            ..Features::default()
        };
        assert_eq!(t.label(f(0.8, 0.8)), Support::Supported);
        for changed in [
            Features {
                novel_number: true,
                ..f(0.99, 0.99)
            },
            Features {
                negation_mismatch: true,
                ..f(0.99, 0.99)
            },
            Features {
                modality_mismatch: true,
                ..f(0.99, 0.99)
            },
        ] {
            assert_eq!(t.label(changed), Support::Unsupported, "{changed:?}");
        }
        let unnamed = Features {
            missing_names: 1,
            ..f(0.9, 0.9)
        };
        assert_eq!(
            t.label(unnamed),
            Support::Weak,
            "an unnamed unit caps at weak"
        );
        assert_eq!(t.label(f(0.6, 0.3)), Support::Weak);
        assert_eq!(t.label(f(0.3, 0.2)), Support::Unsupported);
        // Across languages overlap is ignored here (weight 1) and the bar is its own.
        let korean = Features {
            cross_lingual: true,
            ..f(0.9, 0.0)
        };
        assert_eq!(t.label(korean), Support::Supported);
    }

    fn terms(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn a_close_rewrite_that_swaps_roles_or_drops_a_condition_is_seen() {
        let conditions: HashSet<String> = ["during".to_string()].into_iter().collect();
        let rewrite = |c: &str, e: &str| rewrite(&terms(c), &terms(e), &conditions);
        let source = "s4 integrates sustainment brigade plan while spo writes detailed support plan executes";
        // Roles swapped: the same words, two of them moved.
        let swapped = rewrite(
            "spo integrates sustainment brigade plan while s4 writes detailed support plan executes",
            source,
        )
        .expect("a close rewrite");
        assert_eq!(swapped.reordered, 2);
        // The source's own order, part of it left out: nothing moved.
        let part = rewrite("s4 integrates sustainment plan", source).expect("close");
        assert_eq!(
            part,
            Rewrite {
                reordered: 0,
                dropped_condition: false
            }
        );
        // A term the claim repeats but the source states once is not a move.
        let repeated = rewrite(
            "role care provided aid stations includes trauma care",
            "role provided aid stations includes trauma care",
        )
        .expect("close");
        assert_eq!(repeated.reordered, 0);
        // Two terms trade places across a frame that stays: too far from the sentence's
        // order for a close rewrite, still a trade.
        let frame = "s4 responsible integrating sustainment brigade plan while brigade spo responsible detailed support plan";
        let traded = rewrite(
            "brigade spo responsible integrating sustainment brigade plan while s4 responsible detailed support plan",
            frame,
        )
        .expect("a rewrite in the sentence's terms");
        assert_eq!(traded.reordered, 3, "s4 and brigade spo trade places");
        // A phrase carried to the front trades nothing.
        let fronted = rewrite(
            "during comparison residual risk each course action evaluation criterion",
            "residual risk each course action evaluation criterion during comparison",
        )
        .expect("a rewrite in the sentence's terms");
        assert_eq!(fronted.reordered, 0);
        // A condition inside the copied span, left out.
        let dropped = rewrite(
            "brigade prefers unit distribution because keeps vehicles forward",
            "brigade prefers unit distribution during offensive operations because keeps vehicles forward",
        )
        .expect("close");
        assert!(dropped.dropped_condition);
        // A paraphrase in words of its own is not a close rewrite: the score and the
        // judge decide it.
        assert_eq!(
            rewrite("logistics officer forecasts fuel needs daily", source),
            None
        );
        assert!(qualifiers("Units often move at night, about 5 km").contains("often"));
        assert!(qualifiers("Units often move at night, about 5 km").contains("about5"));
        assert!(!qualifiers("a report about the enemy").contains("about"));
        assert!(qualifiers("부대는 대개 야간에 이동한다").contains("대개"));
        // Bounds narrow a statement as much as frequencies do.
        assert!(qualifiers("at least 2 companies, only the XO").contains("atleast"));
        assert!(qualifiers("at least 2 companies, only the XO").contains("only"));
        assert!(qualifiers("소령 이상의 계급으로 진급하려는 장교").contains("이상"));
        let t = Thresholds::default();
        let altered = Features {
            similarity: 0.99,
            overlap: 1.0,
            reordered: 2,
            ..Features::default()
        };
        assert_eq!(t.label(altered), Support::Weak, "a swap caps at weak");
        let narrowed = Features {
            dropped_qualifier: true,
            ..altered
        };
        assert!(narrowed.altered());
    }

    #[test]
    fn numbers_negation_modality_and_names_are_read_in_both_languages() {
        assert!(numbers("three methods").contains("3"));
        assert!(
            numbers("유류 15퍼센트, 1,000리터")
                .is_superset(&["15".to_string(), "1000".to_string()].into_iter().collect())
        );
        assert!(numbers("가용시간의 절반").contains("1/2"));
        assert!(!numbers("the tone of the order").contains("1"));
        assert!(novel_number(
            "The brigade uses three methods.",
            &["It uses four methods."]
        ));
        assert!(!novel_number(
            "재보급은 24시간마다",
            &["Resupply every 24 hours."]
        ));
        // A number with another unit of measure is a changed quantity, in either language.
        assert!(novel_number(
            "기계화 중대의 기동회랑 폭은 약 500야드이다.",
            &["A corridor for a mechanized company is about 500 meters wide."]
        ));
        assert!(novel_number(
            "The corridor is about 1.5 miles wide.",
            &["The corridor is about 1.5 kilometers wide."]
        ));
        assert!(!novel_number(
            "기동회랑 폭은 약 500미터이다.",
            &["A corridor is about 500 meters wide."]
        ));
        assert!(!novel_number(
            "The corridor is 500 m wide.",
            &["The corridor is about 500 meters wide and 2 km long."]
        ));
        // A number the source gives without a unit, and words that only start like one.
        assert!(!novel_number("Move 500 meters.", &["Move 500 forward."]));
        assert!(!novel_number(
            "Issue 3 lbs and 20 litres.",
            &["Issue 3 pounds and 20 liters."]
        ));
        assert!(quantities("3 months, 2 large trucks").is_empty());
        assert!(negation_mismatch(
            "The convoy does not halt.",
            "The convoy halts at the RP."
        ));
        assert!(negation_mismatch(
            "호송대는 정지하지 않는다.",
            "The convoy halts at the RP."
        ));
        assert!(!negation_mismatch(
            "The convoy never halts.",
            "Convoys never halt."
        ));
        // `instead of` / `rather than` state the contrast a negation states, and are no
        // negation on their own.
        assert!(!negation_mismatch(
            "Battalions build on brigade analysis instead of repeating it.",
            "Battalions do not repeat brigade analysis; they build on it."
        ));
        assert!(!negation_mismatch(
            "Civilians, rather than the enemy, decide how its routes are used.",
            "Civilians, not the enemy, determine the use of its routes."
        ));
        assert!(!negation_mismatch(
            "Updates follow the battle rhythm.",
            "Updates follow the battle rhythm rather than the meeting."
        ));
        assert!(negation_mismatch(
            "Battalions repeat brigade analysis.",
            "Battalions do not repeat brigade analysis."
        ));
        // Korean prohibitive `-지 말다` negates as `-지 않다` does.
        assert!(!negation_mismatch(
            "정기 보고를 기다리지 말고 곧바로 보고해야 한다.",
            "정기 보고를 기다리지 않고 즉시 보고한다."
        ));
        assert!(negation_mismatch(
            "정기 보고를 기다리지 말고 곧바로 보고해야 한다.",
            "정기 보고를 기다려 보고한다."
        ));
        assert!(modality_mismatch("Units must refuel.", "Units may refuel."));
        assert!(modality_mismatch(
            "부대는 재급유할 수 있다.",
            "Units must refuel."
        ));
        // The obligation ending on any verb, not only `해야`.
        assert!(modality_mismatch(
            "공을 세운 사람은 한 계급 특별진급시켜야 한다.",
            "공을 세운 사람은 한 계급 특별진급시킬 수 있다."
        ));
        assert!(STRONG_MODAL.is_match("보급 요청은 24시간 전에 제출되어야 하며"));
        assert!(STRONG_MODAL.is_match("지휘관은 이를 승인해야 할 것이다"));
        // `야` ending a noun before a verb of its own is no obligation.
        assert!(!STRONG_MODAL.is_match("각 분야 한 명씩 야간에 할당한다"));
        assert_eq!(missing_names("The FSC refuels.", &["The BSB refuels."]), 1);
        assert_eq!(missing_names("BSB는 재급유한다.", &["The BSB refuels."]), 0);
        let passage = "Maintenance planning uses a daily rate. For offensive operations in rough \
                       terrain, planners can assume that 5 to 8 percent of vehicles require \
                       field maintenance each day.";
        assert!(quoted(
            "Maintenance planning uses a daily rate.",
            &[passage]
        ));
        assert!(
            !quoted(
                "Planners can assume that 5 to 8 percent of vehicles require field maintenance each day.",
                &[passage]
            ),
            "the qualifier was dropped"
        );
        assert!(
            !quoted("Maintenance planning uses", &[passage]),
            "too short"
        );
        assert!(quoted(
            "이 법은 2024년 7월 1일부터 시행한다",
            &["이 법은 2024년 7월 1일부터 시행한다."]
        ));
    }

    #[test]
    fn calibration_separates_separable_data() {
        let f = |s, o| Features {
            similarity: s,
            overlap: o,
            ..Features::default()
        };
        let samples = vec![
            (f(0.9, 0.9), Support::Supported),
            (f(0.85, 0.8), Support::Supported),
            (f(0.6, 0.5), Support::Weak),
            (f(0.55, 0.55), Support::Weak),
            (f(0.2, 0.1), Support::Unsupported),
            (f(0.3, 0.2), Support::Unsupported),
        ];
        let e = calibrate(&samples);
        assert_eq!(e.accuracy, 1.0, "{e:?}");
    }

    #[test]
    fn sentence_offsets_are_in_characters() {
        let text = "Fuel — first. Water second.";
        let s = sentences(text);
        assert_eq!(s.len(), 2);
        let (start, end, t) = s[1];
        assert_eq!(t, "Water second.");
        assert_eq!(
            text.chars()
                .skip(start)
                .take(end - start)
                .collect::<String>(),
            t
        );
    }
}

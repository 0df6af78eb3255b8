//! Korean text for doctrina.
//!
//! * [`Mecab`]: the MeCab C library with the mecab-ko-dic dictionary, loaded at run time
//!   (setup installs both under the cache). One per process: [`configure`] loads it from a
//!   directory, [`analyzer`] returns it (loading it from the default place on first use).
//! * [`keyword_terms`]: the terms the keyword index stores for Korean text: nouns, verb and
//!   adjective stems, roots, foreign words and numbers; compounds as a whole and as parts;
//!   particles, endings and punctuation dropped.
//! * [`Language`] and [`detect`]: is a text Korean, English or a mix (the share of Hangul
//!   among its letters).
//! * [`Glossary`]: the custodians' bilingual glossary (`지속지원 = sustainment`), which
//!   expands keyword queries across the two languages.
//! * [`sentences`]: sentence boundaries that know Korean endings (`다.`, `요.`, `함.`, `음.`)
//!   as well as English ones.

pub mod glossary;
pub mod mecab;
mod sentences;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use glossary::{Expansion, Glossary, GlossaryError};
pub use mecab::{Mecab, Morpheme};
pub use sentences::sentences;

#[derive(Debug, thiserror::Error)]
pub enum KoreanError {
    #[error("cannot load {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{what} is missing at {path} (run `make setup`)")]
    Missing { what: &'static str, path: PathBuf },
    #[error("Korean analysis failed: {0}")]
    Analysis(String),
}

pub type Result<T, E = KoreanError> = std::result::Result<T, E>;

/// Hangul syllables and jamo (modern and compatibility).
pub fn is_hangul(c: char) -> bool {
    matches!(c,
        '\u{AC00}'..='\u{D7A3}'
        | '\u{1100}'..='\u{11FF}'
        | '\u{3130}'..='\u{318F}'
        | '\u{A960}'..='\u{A97F}'
        | '\u{D7B0}'..='\u{D7FF}')
}

pub fn has_hangul(text: &str) -> bool {
    text.chars().any(is_hangul)
}

/// The language of a text, as far as retrieval cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    English,
    Korean,
    /// Both scripts in substantial amounts.
    Mixed,
    /// No letters at all (numbers, identifiers, punctuation).
    Unknown,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Korean => "ko",
            Language::Mixed => "mixed",
            Language::Unknown => "unknown",
        }
    }
}

/// Hangul letters as a share of all letters (0.0 with no letters).
pub fn hangul_share(text: &str) -> f32 {
    let (mut hangul, mut letters) = (0usize, 0usize);
    for c in text.chars() {
        if is_hangul(c) {
            hangul += 1;
            letters += 1;
        } else if c.is_alphabetic() {
            letters += 1;
        }
    }
    if letters == 0 {
        0.0
    } else {
        hangul as f32 / letters as f32
    }
}

/// Korean when most letters are Hangul, English when almost none are, else mixed. A Hangul
/// syllable carries about as much as three Latin letters, so the thresholds are low: a
/// Korean question quoting one English term (`ATP 4-0.6에서 말하는 72-hour look`) is Korean.
pub fn detect(text: &str) -> Language {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters == 0 {
        return Language::Unknown;
    }
    match hangul_share(text) {
        s if s >= 0.35 => Language::Korean,
        s if s < 0.05 => Language::English,
        _ => Language::Mixed,
    }
}

static ANALYZER: OnceLock<Option<Mecab>> = OnceLock::new();

/// The default MeCab directory: `$DOCTRINA_CACHE/mecab`, else `~/.cache/doctrina/mecab`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCTRINA_CACHE") {
        return PathBuf::from(dir).join("mecab");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/doctrina/mecab")
}

/// Loads MeCab from `dir` (`lib/libmecab*.so*` and `dic/`, as setup lays them out).
pub fn load(dir: &Path) -> Result<Mecab> {
    let lib_dir = dir.join("lib");
    let lib = std::fs::read_dir(&lib_dir)
        .ok()
        .and_then(|entries| {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libmecab") && n.contains(".so"))
                })
                .collect();
            found.sort();
            found.into_iter().next()
        })
        .ok_or_else(|| KoreanError::Missing {
            what: "the MeCab library",
            path: lib_dir.clone(),
        })?;
    Mecab::load(&lib, &dir.join("dic"))
}

/// Loads MeCab from `dir` for the whole process. The first call wins: once an analyzer is
/// in place (or known to be missing), later calls return what is there.
pub fn configure(dir: &Path) -> Option<&'static Mecab> {
    ANALYZER
        .get_or_init(|| match load(dir) {
            Ok(m) => {
                tracing::debug!(dir = %dir.display(), "MeCab loaded for Korean keyword search");
                Some(m)
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    "Korean keyword search falls back to Hangul bigrams (MeCab not loaded)"
                );
                None
            }
        })
        .as_ref()
}

/// The process's Korean analyzer, loaded from [`default_dir`] on first use unless
/// [`configure`] ran first. `None` when MeCab is not installed.
pub fn analyzer() -> Option<&'static Mecab> {
    configure(&default_dir())
}

/// Names the analysis Korean text gets in this process; the keyword index records it and
/// rebuilds itself when it changes (terms from one cannot be searched with the other).
pub fn analysis_name() -> &'static str {
    if analyzer().is_some() {
        "mecab-ko-dic-2.1.1"
    } else {
        "hangul-bigrams"
    }
}

/// Kinds of keyword term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    /// A Korean noun, stem or root (or a part of a compound).
    Korean,
    /// A run of Latin letters (to be analysed as English by the caller).
    Latin,
    /// Digits.
    Number,
    /// Another script (Hanja, symbols MeCab did not know).
    Other,
}

/// One keyword term: its text, its byte range in the analysed text and its kind. Parts of
/// a compound share the compound's range and come after it with `part: true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub kind: TermKind,
    pub part: bool,
}

/// Parts of speech kept as keyword terms (mecab-ko-dic tags): common and proper nouns,
/// counting units, numerals, verb and adjective stems, roots, foreign words, numbers,
/// Hanja, unknown words. Particles (J*), endings (E*), affixes, adverbs, determiners,
/// pronouns, dependent nouns, copulas and punctuation are dropped (Nori's default stop
/// tags plus `NNB NP VX VCP VCN`).
const KEEP: &[&str] = &[
    "NNG", "NNP", "NNBC", "NR", "VV", "VA", "XR", "SL", "SN", "SH", "UNKNOWN",
];

fn kind_of(tag: &str) -> TermKind {
    match tag {
        "SL" => TermKind::Latin,
        "SN" => TermKind::Number,
        "SH" | "UNKNOWN" => TermKind::Other,
        _ => TermKind::Korean,
    }
}

/// The keyword terms of `text` by MeCab (see [`KEEP`]):
/// * an inflected verb or adjective (`따랐다`) gives its stem (`따르`);
/// * a compound (`지속지원`) gives itself and then its parts (`지속`, `지원`);
/// * Latin runs and numbers come back as they are, for the caller to analyse.
pub fn keyword_terms(mecab: &Mecab, text: &str) -> Result<Vec<Term>> {
    let mut out = Vec::new();
    // A run of simple nouns written together (`지속` `지원` in `지속지원`): MeCab splits
    // what the dictionary does not list as a compound, but staff terms are written as one
    // word, so the run is also kept whole, at its first noun's position.
    let mut run = NounRun::default();
    for m in mecab.analyze(text)? {
        let tag = m.tag();
        let simple_noun = matches!(tag, "NNG" | "NNP") && m.kind() == "*";
        if !simple_noun || m.start != run.end {
            run.flush(text, &mut out);
        }
        if !KEEP.contains(&tag) {
            continue;
        }
        let surface = &text[m.start..m.end];
        let kind = kind_of(tag);
        let parts = m.parts();
        match m.kind() {
            "Inflect" => {
                // `따르/VV/*+았/EP/*`: the first part is the stem.
                if let Some((stem, stem_tag)) = parts.first()
                    && KEEP.contains(stem_tag)
                {
                    out.push(term(stem, &m, kind, false));
                }
            }
            "Compound" | "Preanalysis" => {
                out.push(term(surface, &m, kind, false));
                for (form, part_tag) in &parts {
                    if KEEP.contains(part_tag) && *form != surface {
                        out.push(term(form, &m, kind_of(part_tag), true));
                    }
                }
            }
            _ => {
                if simple_noun {
                    run.push(out.len(), &m);
                }
                out.push(term(surface, &m, kind, false));
            }
        }
    }
    run.flush(text, &mut out);
    Ok(out)
}

/// Adjacent simple nouns (see [`keyword_terms`]).
#[derive(Default)]
struct NounRun {
    /// Index in the output of the run's first noun.
    first: usize,
    start: usize,
    end: usize,
    nouns: usize,
}

impl NounRun {
    fn push(&mut self, index: usize, m: &Morpheme) {
        if self.nouns == 0 {
            self.first = index;
            self.start = m.start;
        }
        self.end = m.end;
        self.nouns += 1;
    }

    fn flush(&mut self, text: &str, out: &mut Vec<Term>) {
        if self.nouns >= 2 {
            out.insert(
                self.first + 1,
                Term {
                    text: text[self.start..self.end].to_string(),
                    start: self.start,
                    end: self.end,
                    kind: TermKind::Korean,
                    part: true,
                },
            );
        }
        *self = Self {
            end: usize::MAX,
            ..Self::default()
        };
    }
}

fn term(text: &str, m: &Morpheme, kind: TermKind, part: bool) -> Term {
    Term {
        text: text.to_string(),
        start: m.start,
        end: m.end,
        kind,
        part,
    }
}

/// Terms of Hangul text without MeCab: each run of Hangul as overlapping two-syllable
/// pieces (a one-syllable run as itself), the usual fallback for CJK text in Lucene
/// (CJKBigramFilter). Non-Hangul characters are skipped (the caller analyses them).
pub fn bigram_terms(text: &str) -> Vec<Term> {
    let mut out = Vec::new();
    let mut run: Vec<(usize, char)> = Vec::new();
    let flush = |run: &mut Vec<(usize, char)>, out: &mut Vec<Term>, end: usize| {
        match run.len() {
            0 => {}
            1 => out.push(Term {
                text: run[0].1.to_string(),
                start: run[0].0,
                end,
                kind: TermKind::Korean,
                part: false,
            }),
            _ => {
                for pair in run.windows(2) {
                    let stop = pair[1].0 + pair[1].1.len_utf8();
                    out.push(Term {
                        text: [pair[0].1, pair[1].1].iter().collect(),
                        start: pair[0].0,
                        end: stop,
                        kind: TermKind::Korean,
                        part: false,
                    });
                }
            }
        }
        run.clear();
    };
    for (i, c) in text.char_indices() {
        if is_hangul(c) {
            run.push((i, c));
        } else {
            flush(&mut run, &mut out, i);
        }
    }
    flush(&mut run, &mut out, text.len());
    out
}

/// Korean article numbers in `text`, exactly as printed: `제24조`, `제47조의2`. (With
/// `부칙` in front they stay separate: the caller knows which section it is in.)
pub fn article_ids(text: &str) -> Vec<(usize, usize, String)> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"제\s?(\d+)\s?조(?:\s?의\s?(\d+))?").expect("article pattern")
    });
    re.captures_iter(text)
        .map(|c| {
            let whole = c.get(0).expect("match");
            (whole.start(), whole.end(), article_id(&c))
        })
        .collect()
}

/// The article number `text` opens with, as printed without spaces (`제 47 조의 2` gives
/// `제47조의2`), and the byte offset where the number ends. Statute articles run to four
/// digits and branch numbers to three, so longer numbers are not articles.
pub fn leading_article(text: &str) -> Option<(String, usize)> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"^제\s?(\d{1,4})\s?조(?:\s?의\s?(\d{1,3}))?").expect("article pattern")
    });
    let caps = re.captures(text)?;
    Some((article_id(&caps), caps.get(0).expect("match").end()))
}

/// `제24조` or `제24조의2` from a match of the article pattern.
fn article_id(caps: &regex::Captures) -> String {
    match caps.get(2) {
        Some(sub) => format!("제{}조의{}", &caps[1], sub.as_str()),
        None => format!("제{}조", &caps[1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_detection() {
        assert_eq!(detect("What is the 72-hour look?"), Language::English);
        assert_eq!(
            detect("ATP 4-0.6에서 말하는 \"72시간 전망(72-hour look)\"이 무엇인가?"),
            Language::Korean
        );
        assert_eq!(detect("2-15"), Language::Unknown);
        assert_eq!(
            detect("sustainment 지속지원 planning for the brigade operation"),
            Language::Mixed
        );
    }

    #[test]
    fn hangul_bigrams() {
        let terms: Vec<String> = bigram_terms("지속지원 계획 a 군")
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(terms, vec!["지속", "속지", "지원", "계획", "군"]);
    }

    #[test]
    fn article_numbers_as_printed() {
        let ids: Vec<String> = article_ids("법 제24조제3항 및 제47조의2, 제 5 조")
            .into_iter()
            .map(|t| t.2)
            .collect();
        assert_eq!(ids, vec!["제24조", "제47조의2", "제5조"]);
    }
}

/// These need MeCab as setup installs it (`make test` runs setup first).
#[cfg(test)]
mod mecab_tests {
    use super::*;

    fn mecab() -> &'static Mecab {
        analyzer().expect("MeCab and mecab-ko-dic are installed by `make setup`")
    }

    fn texts(text: &str) -> Vec<String> {
        keyword_terms(mecab(), text)
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn nouns_stems_and_compound_parts() {
        let terms = texts("여단은 지속지원 계획을 따랐다.");
        for want in ["여단", "지속", "지원", "계획", "따르"] {
            assert!(
                terms.iter().any(|t| t == want),
                "{want} missing from {terms:?}"
            );
        }
        for particle in ["은", "을", "다", "."] {
            assert!(
                !terms.iter().any(|t| t == particle),
                "{particle} kept: {terms:?}"
            );
        }
    }

    #[test]
    fn mixed_text_keeps_latin_and_numbers() {
        let terms = keyword_terms(mecab(), "BSB의 SPO는 72시간 전망을 작성한다").unwrap();
        let latin: Vec<&str> = terms
            .iter()
            .filter(|t| t.kind == TermKind::Latin)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(latin, vec!["BSB", "SPO"]);
        assert!(
            terms
                .iter()
                .any(|t| t.kind == TermKind::Number && t.text == "72")
        );
        let text = "BSB의 SPO는 72시간 전망을 작성한다";
        for t in &terms {
            assert!(text.is_char_boundary(t.start) && t.end <= text.len());
        }
    }

    #[test]
    fn hostile_input_is_bounded() {
        // A long run of one character class (quadratic in MeCab without the piece limit),
        // NUL bytes and lone combining marks: analysed, not hung or crashed.
        let long = "가".repeat(20_000) + &"a".repeat(20_000) + "\0\u{0301}";
        let terms = keyword_terms(mecab(), &long).unwrap();
        assert!(!terms.is_empty());
        assert!(keyword_terms(mecab(), "").unwrap().is_empty());
    }

    #[test]
    fn threads_share_one_model() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..50)
                        .map(|_| texts("작전명령의 실행 단락을 작성한다").len())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let counts: Vec<Vec<usize>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let first = counts[0][0];
        assert!(counts.iter().flatten().all(|&n| n == first));
    }
}

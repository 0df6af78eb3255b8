//! Splitting model output into sentences and resolving their citations: `[n]` names source
//! `n`, `[n.m]` sentence `m` of source `n` (the sources are given to the model as numbered
//! sentences, see [`crate::context`]).
//!
//! A citation is valid only if `n` names one of the sources the model was given (`1..=n`)
//! and `m`, when given, one of that source's sentences; invalid ones are removed from the
//! rendered text and reported, never shown as valid.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

static CITATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[\s*(\d{1,4}(?:\.\d{1,3})?(?:\s*[,;]\s*\d{1,4}(?:\.\d{1,3})?)*)\s*\]")
        .expect("valid regex")
});

/// A citation mark, a full stop and white space: the end of a sentence.
static CITED_STOP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[\s*\d{1,4}(?:\.\d{1,3})?(?:\s*[,;]\s*\d{1,4}(?:\.\d{1,3})?)*\s*\]\.\s+")
        .expect("valid regex")
});

/// Citation marks at the start of a sentence (and a full stop after them).
static LEADING_CITATIONS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\[\s*\d{1,4}(?:\.\d{1,3})?(?:\s*[,;]\s*\d{1,4}(?:\.\d{1,3})?)*\s*\]\s*)+\.?")
        .expect("valid regex")
});

/// One citation: source `n`, and sentence `m` of it when the citation names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ref {
    pub n: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
}

impl std::fmt::Display for Ref {
    /// `2` or `2.3`, as written inside the brackets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.m {
            Some(m) => write!(f, "{}.{m}", self.n),
            None => write!(f, "{}", self.n),
        }
    }
}

impl std::str::FromStr for Ref {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s.split_once('.') {
            Some((n, m)) => Self {
                n: n.parse()?,
                m: Some(m.parse()?),
            },
            None => Self {
                n: s.parse()?,
                m: None,
            },
        })
    }
}

/// What a draft may cite: `sentences[i]` lists the sentence numbers of source `i + 1`
/// that were given to the model (empty when the source was given whole, unnumbered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Citable {
    pub sentences: Vec<Vec<usize>>,
}

impl Citable {
    /// `count` sources given whole: only `[n]` is citable.
    pub fn whole(count: usize) -> Self {
        Self {
            sentences: vec![Vec::new(); count],
        }
    }

    pub fn source_count(&self) -> usize {
        self.sentences.len()
    }

    pub fn allows(&self, r: Ref) -> bool {
        match (r.n.checked_sub(1).and_then(|i| self.sentences.get(i)), r.m) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(given), Some(m)) => given.contains(&m),
        }
    }
}

/// Characters (or numbers) an English sentence may run to before the grammar makes it
/// cite: about 95 tokens of the 1.5B model's tokenizer (4.2 characters a token).
pub const MAX_SENTENCE_UNITS: usize = 400;

/// The same bound for a sentence written in Korean, where a token is about 1.2 characters:
/// 400 Korean characters would be some 330 tokens, most of a draft's `max_tokens`, and a
/// Korean draft once spent all 400 on one uncited sentence. The longest Korean sentence of
/// the labelled passages is 99 characters.
pub const MAX_SENTENCE_UNITS_KO: usize = 150;

/// How long a sentence of a section in `language` may run before it must cite.
pub fn max_sentence_units(language: &str) -> usize {
    match language {
        "ko" => MAX_SENTENCE_UNITS_KO,
        _ => MAX_SENTENCE_UNITS,
    }
}

/// A GBNF grammar for a draft over the `citable` sources, for servers that constrain
/// decoding (llama-server): the text opens with the template's first sub-heading, then
/// sub-headings, each on its own line, and paragraphs of sentences that each end with one or more citations, then a full stop,
/// naming a given sentence of a given source (`... [2.3].`, `... [1.1][3.2].`; `[n]` for a source given
/// whole), or that say no source covers something (`No source covers ...`,
/// `어떤 출처도 ...`). A sentence runs to at most `max_units` characters or numbers
/// ([`max_sentence_units`]). An invented citation cannot be generated.
pub fn grammar(citable: &Citable, title: &str, subheadings: &[String], max_units: usize) -> String {
    let quote = |text: &str| {
        let mut out = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let mut refs: Vec<String> = citable
        .sentences
        .iter()
        .enumerate()
        .map(|(i, given)| {
            let n = i + 1;
            if given.is_empty() {
                quote(&n.to_string())
            } else {
                let ms: Vec<String> = given.iter().map(|m| quote(&m.to_string())).collect();
                format!("{} ({})", quote(&format!("{n}.")), ms.join(" | "))
            }
        })
        .collect();
    if refs.is_empty() {
        refs.push(quote("1"));
    }
    // The draft opens with the first sub-heading: small models otherwise open by echoing
    // the request's header (`항목: 4. 전투근무지원 과업: ...`) as a cited "sentence".
    let root = match subheadings.first() {
        Some(first) => format!(
            "root ::= (\"#\" \"#\"? \"#\"? \" \")? {} \"\\n\" block*",
            quote(first)
        ),
        None => "root ::= block+".to_string(),
    };
    let mut rules = vec![root, "block ::= heading | para | \"\\n\"".to_string()];
    // The sub-headings, and the section's title as the prompt gives it (small models echo
    // it), optionally as Markdown headings.
    let mut names: Vec<String> = subheadings.iter().map(|h| quote(h)).collect();
    for label in ["", "Section: ", "항목: "] {
        names.push(quote(&format!("{label}{title}")));
    }
    rules.push(format!(
        "heading ::= (\"#\" \"#\"? \"#\"? \" \")? ({}) \"\\n\"",
        names.join(" | ")
    ));
    rules.extend([
        "para ::= sentence (\" \" sentence)* \"\\n\"".to_string(),
        // The citations sit before the sentence's full stop (`... the BSA [2.3].`), so
        // none can be read as opening the next sentence; inside the text a period only
        // joins digits (`4-0.6`), so a sentence cannot run on uncited.
        // At most three citations: an unbounded run lets a small model loop on `[6.9][6.9]`.
        "sentence ::= body \" \"? cite{1,3} \".\" | uncovered".to_string(),
        // At most 400 characters or numbers before the citation (the longest sentence of
        // the labelled pairs' passages is 370 characters): the 1.5B model once ran a list
        // of paragraph numbers (`2-4, 2-5.1, 2.1, ...`) to `max_tokens` inside one
        // uncited sentence.
        // A sentence does not end on a colon, semicolon, comma or opening bracket before
        // its citation: the 1.5B model wrote `The scheme of fires is as follows: [4.7].`,
        // a cited sentence that states nothing.
        format!(
            "body ::= (\"- \")? first ((char | number){{0,{}}} (last | number))?",
            max_units.saturating_sub(1)
        ),
        "last ::= [^\\n\\[\\].0-9:;,( ]".to_string(),
        // A sentence (or list item) opens with a letter or a quotation mark: not with a
        // number, which a small model given `2.3 The FSC ...` would echo from the sentence
        // labels, nor with punctuation, which let the 1.5B model write `(` and three
        // citations as a "sentence" of its own. A quotation mark may come first, but a
        // letter follows it: the 1.5B model quoted its sources with their labels,
        // `"1.4 분배 계획은 ..."`, and the label read as a number the source lacks.
        "first ::= [\"“‘]? [A-Za-z\u{C0}-\u{24F}\u{3131}-\u{318E}\u{AC00}-\u{D7A3}]".to_string(),
        "char ::= [^\\n\\[\\].0-9]".to_string(),
        "number ::= [0-9]{1,6} (\".\" [0-9]{1,4}){0,2}".to_string(),
        "cite ::= \"[\" source \"]\"".to_string(),
        format!("source ::= {}", refs.join(" | ")),
        format!(
            "uncovered ::= (\"No source covers \" | \"어떤 출처도 \") (char | number){{1,{max_units}}} \".\""
        ),
    ]);
    rules.join("\n") + "\n"
}

/// One sentence of a draft with the citations it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitedSentence {
    /// The sentence as rendered: invalid citations removed, whitespace tidied.
    pub text: String,
    /// The sentence without any citation marks (what the support check reads).
    pub claim: String,
    /// Valid source numbers, in order of appearance, without duplicates.
    pub citations: Vec<usize>,
    /// The valid citations as written (`[2.3]` is source 2, sentence 3), in order, without
    /// duplicates.
    pub refs: Vec<Ref>,
    /// Numbers the model cited that name no given source.
    pub invalid: Vec<usize>,
    /// Citations of a given source naming a sentence it was not given with (`[2.9]`).
    pub invalid_refs: Vec<Ref>,
}

/// Rewrites every citation mark (`[3]`, `[2.4]`, `[1, 2]`, `[4;5.1]`) in `text`: `each`
/// receives the citations of one mark, in order, and returns what replaces it.
pub fn replace_marks(text: &str, mut each: impl FnMut(&[Ref]) -> String) -> String {
    CITATION
        .replace_all(text, |caps: &regex::Captures<'_>| {
            let refs: Vec<Ref> = caps[1]
                .split([',', ';'])
                .filter_map(|r| r.parse::<Ref>().ok())
                .collect();
            each(&refs)
        })
        .into_owned()
}

/// `text` without its citation marks, tidied (what a sentence says, for display).
pub fn strip_marks(text: &str) -> String {
    tidy(&replace_marks(text, |_| String::new()))
}

/// The output as shown: invalid citations removed, layout kept.
pub fn render(output: &str, citable: &Citable) -> String {
    replace_marks(output, |refs| {
        refs.iter()
            .filter(|r| citable.allows(**r))
            .map(|r| format!("[{r}]"))
            .collect()
    })
}

/// Markdown markers at the start of a line (`#`, `-`, `*`, `>`) and emphasis.
fn strip_markup(line: &str) -> &str {
    line.trim_start_matches(['#', '-', '*', '>', ' ', '\t'])
        .trim()
}

/// A line that is a sub-heading rather than a claim: short, no citation, no full stop.
fn is_heading(line: &str) -> bool {
    !CITATION.is_match(line)
        && !line
            .trim_end_matches(['*', '_', ' '])
            .ends_with(['.', '!', '?'])
        && line.split_whitespace().count() <= 8
}

/// Splits `output` into sentences and checks each citation against what was `citable`.
/// Sub-heading lines are not sentences.
/// Citations placed after a sentence's full stop (`... end. [2]`, or `... end. [2] Next
/// sentence.` on one line, as the citation grammar allows) belong to that sentence.
pub fn parse(output: &str, citable: &Citable) -> Vec<CitedSentence> {
    let mut raw: Vec<String> = Vec::new();
    for line in output.lines() {
        let markdown_heading = line.trim_start().starts_with('#');
        let line = strip_markup(line);
        if line.is_empty() || markdown_heading || is_heading(line) {
            continue;
        }
        let line_start = raw.len();
        // A citation before a full stop (`... 담당한다 [2.6]. - 각 ...`) ends a sentence even
        // where the sentence rules see none (a Korean ending is not next to its full stop,
        // a list dash continues).
        let mut pieces = Vec::new();
        let mut from = 0;
        for m in CITED_STOP.find_iter(line) {
            pieces.push(&line[from..m.end()]);
            from = m.end();
        }
        pieces.push(&line[from..]);
        let bounds = pieces.into_iter().flat_map(|piece| {
            doctrina_korean::sentences(piece)
                .into_iter()
                .map(move |(start, end)| &piece[start..end])
        });
        for s in bounds {
            let mut s = s.trim();
            if s.is_empty() {
                continue;
            }
            // Citations opening a sentence close the previous sentence of the line.
            let leading = LEADING_CITATIONS.find(s).map_or(0, |m| m.end());
            if leading > 0
                && raw.len() > line_start
                && let Some(prev) = raw.last_mut()
            {
                prev.push(' ');
                prev.push_str(s[..leading].trim());
                s = s[leading..].trim();
                if s.is_empty() {
                    continue;
                }
            }
            // A sentence that is only citations attaches to the previous one.
            if CITATION.replace_all(s, "").trim().is_empty()
                && let Some(prev) = raw.last_mut()
            {
                prev.push(' ');
                prev.push_str(s);
                continue;
            }
            raw.push(s.to_string());
        }
    }
    raw.into_iter()
        .map(|s| resolve(&s, citable))
        .filter(|c| !c.claim.is_empty())
        .collect()
}

fn resolve(sentence: &str, citable: &Citable) -> CitedSentence {
    let mut citations = Vec::new();
    let mut refs = Vec::new();
    let mut invalid = Vec::new();
    let mut invalid_refs = Vec::new();
    let text = replace_marks(sentence, |marks| {
        let mut kept = Vec::new();
        for &r in marks {
            if citable.allows(r) {
                if !citations.contains(&r.n) {
                    citations.push(r.n);
                }
                if !refs.contains(&r) {
                    refs.push(r);
                }
                // `[2.3][2.3]` is one citation.
                if !kept.contains(&r) {
                    kept.push(r);
                }
            } else if (1..=citable.source_count()).contains(&r.n) {
                if !invalid_refs.contains(&r) {
                    invalid_refs.push(r);
                }
            } else if !invalid.contains(&r.n) {
                invalid.push(r.n);
            }
        }
        kept.iter().map(|r| format!("[{r}]")).collect::<String>()
    });
    let claim = CITATION.replace_all(&text, "");
    CitedSentence {
        text: tidy(&text),
        claim: tidy(&claim),
        citations,
        refs,
        invalid,
        invalid_refs,
    }
}

fn tidy(s: &str) -> String {
    let s = s.replace("**", "");
    let squashed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    squashed
        .replace(" .", ".")
        .replace(" ,", ",")
        .replace(" ;", ";")
        .replace(" :", ":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_resolve_and_invalid_ones_are_removed() {
        let out = "The BSB runs the BSA [1]. Fuel is forecast 72 hours out [2][7].\nResupply is nightly [3, 9]. [1]\nNo source covers signal.";
        let s = parse(out, &Citable::whole(3));
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].citations, vec![1]);
        assert_eq!(s[1].citations, vec![2]);
        assert_eq!(s[1].invalid, vec![7]);
        assert_eq!(s[1].text, "Fuel is forecast 72 hours out [2].");
        assert_eq!(s[1].claim, "Fuel is forecast 72 hours out.");
        assert_eq!(
            s[2].citations,
            vec![3, 1],
            "a trailing citation joins its sentence"
        );
        assert_eq!(s[2].invalid, vec![9]);
        assert!(s[3].citations.is_empty());
        assert_eq!(parse("", &Citable::whole(3)), vec![]);
        let with_headings = "## a. Concept of operations\n- **The BSB** moves at night [2].";
        let s = parse(with_headings, &Citable::whole(2));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "The BSB moves at night [2].");
        assert_eq!(
            render("Fuel [1][4], water [2, 5].", &Citable::whole(2)),
            "Fuel [1], water [2]."
        );
        assert_eq!(
            parse("Zero is never valid [0].", &Citable::whole(3))[0].invalid,
            vec![0]
        );
        // The grammar's `body. [n]` form with the next sentence on the same line: the
        // citation closes the sentence before it, not the one after.
        let s = parse(
            "1. Fuel is forecast daily. [1] Water follows. [2][3] Ammunition last. [3]\n[2] Rations.",
            &Citable::whole(3),
        );
        let cited: Vec<(&str, Vec<usize>)> = s
            .iter()
            .map(|c| (c.claim.as_str(), c.citations.clone()))
            .collect();
        let korean = parse(
            "- 전방지원중대가 탄약 수송을 담당한다 [2.6]. - 각 기동대대에는 중대가 배정된다 [1.1].",
            &Citable {
                sentences: vec![vec![1], vec![6]],
            },
        );
        assert_eq!(korean.len(), 2, "{korean:#?}");
        assert_eq!(korean[0].claim, "전방지원중대가 탄약 수송을 담당한다.");
        assert_eq!(korean[1].refs, vec![Ref { n: 1, m: Some(1) }]);
        assert_eq!(
            cited,
            vec![
                ("1. Fuel is forecast daily.", vec![1]),
                ("Water follows.", vec![2, 3]),
                ("Ammunition last.", vec![3]),
                ("Rations.", vec![2]),
            ]
        );
    }

    #[test]
    fn sentence_citations_name_a_given_sentence_of_a_given_source() {
        // Source 1 was given with its sentences 1, 2 and 4; source 2 with 3; source 3 whole.
        let citable = Citable {
            sentences: vec![vec![1, 2, 4], vec![3], vec![]],
        };
        let out = "Fuel moves at night [1.2][2.3]. Water follows [1.3][1.4]. \
                   Ammunition is pushed [3]. Rations come later [2.1; 5.1].";
        let s = parse(out, &citable);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].citations, vec![1, 2]);
        assert_eq!(
            s[0].refs,
            vec![Ref { n: 1, m: Some(2) }, Ref { n: 2, m: Some(3) }]
        );
        assert_eq!(s[0].text, "Fuel moves at night [1.2][2.3].");
        // Sentence 3 of source 1 was not given: removed and reported, the rest stands.
        assert_eq!(s[1].invalid_refs, vec![Ref { n: 1, m: Some(3) }]);
        assert_eq!(s[1].refs, vec![Ref { n: 1, m: Some(4) }]);
        assert_eq!(s[1].text, "Water follows [1.4].");
        assert_eq!(s[2].refs, vec![Ref { n: 3, m: None }]);
        assert!(s[3].citations.is_empty());
        assert_eq!(s[3].invalid, vec![5]);
        assert_eq!(s[3].invalid_refs, vec![Ref { n: 2, m: Some(1) }]);
        assert_eq!(
            render("A [1.2][1.3], b [2.3; 9].", &citable),
            "A [1.2], b [2.3]."
        );
        assert_eq!("2.3".parse::<Ref>(), Ok(Ref { n: 2, m: Some(3) }));
        assert_eq!(Ref { n: 2, m: None }.to_string(), "2");
    }
}

#[cfg(test)]
mod grammar_tests {
    use super::*;

    #[test]
    fn the_grammar_names_only_given_sources_and_the_sub_headings() {
        let g = grammar(
            &Citable::whole(3),
            "4. Sustainment",
            &["a. Logistics".to_string(), "b. \"Q\"".to_string()],
            max_sentence_units("en"),
        );
        eprintln!("{g}");
        assert!(g.contains(r#"source ::= "1" | "2" | "3""#), "{g}");
        assert!(!g.contains(r#""4""#));
        let numbered = grammar(
            &Citable {
                sentences: vec![vec![1, 3], vec![2]],
            },
            "4. Sustainment",
            &[],
            max_sentence_units("ko"),
        );
        assert!(
            numbered.contains(r#"source ::= "1." ("1" | "3") | "2." ("2")"#),
            "{numbered}"
        );
        assert!(
            g.contains(r#"("a. Logistics" | "b. \"Q\"" | "4. Sustainment" | "Section: 4. Sustainment" | "항목: 4. Sustainment") "\n""#),
            "{g}"
        );
        assert!(
            g.contains(r#"number ::= [0-9]{1,6} ("." [0-9]{1,4}){0,2}"#),
            "{g}"
        );
        assert!(
            g.contains(r##"root ::= ("#" "#"? "#"? " ")? "a. Logistics" "\n" block*"##),
            "the draft opens with the first sub-heading: {g}"
        );
        assert!(numbered.contains("root ::= block+"), "{numbered}");
        assert!(
            g.contains(r#"last ::= [^\n\[\].0-9:;,( ]"#),
            "a sentence does not end on a colon: {g}"
        );
        // A Korean sentence must cite sooner: its characters cost about 3.5 times the
        // tokens.
        assert!(g.contains("(char | number){0,399} (last | number)"), "{g}");
        assert!(
            numbered.contains("(char | number){0,149} (last | number)"),
            "{numbered}"
        );
    }
}

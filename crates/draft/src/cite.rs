//! Splitting model output into sentences and resolving their `[n]` citations.
//!
//! A citation is valid only if `n` names one of the sources the model was given (`1..=n`);
//! invalid ones are removed from the rendered text and reported, never shown as valid.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

static CITATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[\s*(\d{1,4}(?:\s*[,;]\s*\d{1,4})*)\s*\]").expect("valid regex")
});

/// A GBNF grammar for a draft over `source_count` numbered sources, for servers that
/// constrain decoding (llama-server): the text is the template's sub-headings, each on its
/// own line, and paragraphs of sentences that each end with one or more citations naming
/// a given source (`... [2].`, `... [1][3].`), or that say no source covers something
/// (`No source covers ...`, `어떤 출처도 ...`). An invented citation cannot be generated.
pub fn grammar(source_count: usize, title: &str, subheadings: &[String]) -> String {
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
    let numbers: Vec<String> = (1..=source_count.max(1))
        .map(|n| quote(&n.to_string()))
        .collect();
    let mut rules = vec![
        "root ::= block+".to_string(),
        "block ::= heading | para | \"\\n\"".to_string(),
    ];
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
        // A period may close the text before its citations or after them; inside the
        // text a period only joins digits (`4-0.6`), so a sentence cannot run on uncited.
        "sentence ::= body \".\"? \" \"? cite+ \".\"? | uncovered".to_string(),
        "body ::= first (char | number)*".to_string(),
        "first ::= [^\\n\\[\\]. #0-9] | number".to_string(),
        "char ::= [^\\n\\[\\].0-9]".to_string(),
        "number ::= [0-9]{1,6} (\".\" [0-9]{1,4}){0,2}".to_string(),
        "cite ::= \"[\" source \"]\"".to_string(),
        format!("source ::= {}", numbers.join(" | ")),
        "uncovered ::= (\"No source covers \" | \"어떤 출처도 \") (char | number)+ \".\""
            .to_string(),
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
    /// Numbers the model cited that name no given source.
    pub invalid: Vec<usize>,
}

/// Rewrites every citation mark (`[3]`, `[1, 2]`, `[4;5]`) in `text`: `each` receives the
/// numbers of one mark, in order, and returns what replaces it.
pub fn replace_marks(text: &str, mut each: impl FnMut(&[usize]) -> String) -> String {
    CITATION
        .replace_all(text, |caps: &regex::Captures<'_>| {
            let numbers: Vec<usize> = caps[1]
                .split([',', ';'])
                .filter_map(|n| n.trim().parse::<usize>().ok())
                .collect();
            each(&numbers)
        })
        .into_owned()
}

/// `text` without its citation marks, tidied (what a sentence says, for display).
pub fn strip_marks(text: &str) -> String {
    tidy(&replace_marks(text, |_| String::new()))
}

/// The output as shown: invalid citation numbers removed, layout kept.
pub fn render(output: &str, source_count: usize) -> String {
    replace_marks(output, |numbers| {
        numbers
            .iter()
            .filter(|n| (1..=source_count).contains(*n))
            .map(|n| format!("[{n}]"))
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

/// Splits `output` into sentences and checks each citation against `source_count`.
/// Sub-heading lines are not sentences.
/// Citations placed after a sentence's full stop (`... end. [2]`) belong to that sentence.
pub fn parse(output: &str, source_count: usize) -> Vec<CitedSentence> {
    let mut raw: Vec<String> = Vec::new();
    for line in output.lines() {
        let markdown_heading = line.trim_start().starts_with('#');
        let line = strip_markup(line);
        if line.is_empty() || markdown_heading || is_heading(line) {
            continue;
        }
        for (start, end) in doctrina_korean::sentences(line) {
            let s = line[start..end].trim();
            if s.is_empty() {
                continue;
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
        .map(|s| resolve(&s, source_count))
        .filter(|c| !c.claim.is_empty())
        .collect()
}

fn resolve(sentence: &str, source_count: usize) -> CitedSentence {
    let mut citations = Vec::new();
    let mut invalid = Vec::new();
    let text = replace_marks(sentence, |numbers| {
        let mut kept = Vec::new();
        for &n in numbers {
            if (1..=source_count).contains(&n) {
                if !citations.contains(&n) {
                    citations.push(n);
                }
                kept.push(n);
            } else if !invalid.contains(&n) {
                invalid.push(n);
            }
        }
        kept.iter().map(|n| format!("[{n}]")).collect::<String>()
    });
    let claim = CITATION.replace_all(&text, "");
    CitedSentence {
        text: tidy(&text),
        claim: tidy(&claim),
        citations,
        invalid,
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
        let s = parse(out, 3);
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
        assert_eq!(parse("", 3), vec![]);
        let with_headings = "## a. Concept of operations\n- **The BSB** moves at night [2].";
        let s = parse(with_headings, 2);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].text, "The BSB moves at night [2].");
        assert_eq!(
            render("Fuel [1][4], water [2, 5].", 2),
            "Fuel [1], water [2]."
        );
        assert_eq!(parse("Zero is never valid [0].", 3)[0].invalid, vec![0]);
    }
}

#[cfg(test)]
mod grammar_tests {
    use super::*;

    #[test]
    fn the_grammar_names_only_given_sources_and_the_sub_headings() {
        let g = grammar(
            3,
            "4. Sustainment",
            &["a. Logistics".to_string(), "b. \"Q\"".to_string()],
        );
        eprintln!("{g}");
        assert!(g.contains(r#"source ::= "1" | "2" | "3""#), "{g}");
        assert!(!g.contains(r#""4""#));
        assert!(
            g.contains(r#"("a. Logistics" | "b. \"Q\"" | "4. Sustainment" | "Section: 4. Sustainment" | "항목: 4. Sustainment") "\n""#),
            "{g}"
        );
        assert!(
            g.contains(r#"number ::= [0-9]{1,6} ("." [0-9]{1,4}){0,2}"#),
            "{g}"
        );
        assert!(g.contains("root ::= block+"));
    }
}

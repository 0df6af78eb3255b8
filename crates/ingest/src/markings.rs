//! Classification markings stated in a document's own text: banner lines
//! (`SECRET//NOFORN` alone on a line, often at the top and bottom of each page) and portion
//! marks opening a paragraph (`(S//NF)`, `1-5. (CUI) ...`). They are evidence: a document
//! is never indexed below the highest marking its text carries.
//!
//! Only uppercase forms count, as markings are written; a lettered list (`(A)`, `(B)`,
//! `(C)` ...) is told apart from portion marks by its neighbouring letters.

use std::collections::HashSet;
use std::sync::LazyLock;

use doctrina_types::{Marking, MarkingScheme};
use regex::Regex;

/// Where a marking was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceKind {
    Banner,
    Portion,
}

/// One distinct marking found in the text, with how often and where first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceItem {
    pub kind: EvidenceKind,
    pub marking: Marking,
    /// The mark as written, e.g. `(S//NF)`.
    pub written: String,
    /// 1-based line of the first occurrence.
    pub line: usize,
    pub count: usize,
}

impl EvidenceItem {
    /// `banner line 1: SECRET//NOFORN`, `portion marks (S//NF) ×3 from line 12: SECRET//NOFORN`.
    pub fn describe(&self) -> String {
        let times = if self.count > 1 {
            format!(" ×{}", self.count)
        } else {
            String::new()
        };
        match self.kind {
            EvidenceKind::Banner => format!(
                "banner line {}{times}: {}",
                self.line,
                self.marking.banner()
            ),
            EvidenceKind::Portion => format!(
                "portion mark {}{times} from line {}: {}",
                self.written,
                self.line,
                self.marking.banner()
            ),
        }
    }
}

/// Every distinct marking found in a text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub items: Vec<EvidenceItem>,
}

impl Evidence {
    fn add(&mut self, kind: EvidenceKind, marking: Marking, written: &str, line: usize) {
        let banner = marking.banner();
        match self
            .items
            .iter_mut()
            .find(|i| i.kind == kind && i.marking.banner() == banner && i.written == written)
        {
            Some(item) => item.count += 1,
            None => self.items.push(EvidenceItem {
                kind,
                marking,
                written: written.to_string(),
                line,
                count: 1,
            }),
        }
    }

    pub fn extend(&mut self, other: Evidence) {
        for item in other.items {
            for _ in 0..item.count {
                self.add(item.kind, item.marking.clone(), &item.written, item.line);
            }
        }
    }
}

/// Markdown and list decoration a banner line may carry: `# SECRET`, `**SECRET**`, `> SECRET`.
const DECORATION: &[char] = &['#', '*', '_', '>', '=', '|', ' ', '\t', '-', '—', '–'];

static CAVEATS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z0-9 ,/\-]*$").expect("valid regex"));

/// A portion mark at the start of a paragraph, after an optional paragraph number
/// (`2-15.`, `3.`, `a.`, `(1)`, `(a)`): `(S)`, `(S//NF)`, `(CUI)`, `(U//FOUO)`.
static PORTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[\s>#*_\-]*(?:(?:[A-Z]|\d{1,2})-\d{1,3}\.|\d{1,3}\.|[a-z]\.|\(\d{1,3}\)|\([a-z]\))?\s*\(([A-Z]{1,4})((?://[A-Z0-9 ,/\-]+)?)\)(?:\s|$)",
    )
    .expect("valid regex")
});

/// A lettered list item marker at the start of a line: `(A)`, `(B)`, ...
static LETTER_ITEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^[\s>*\-]*\(([A-Z])\)\s").expect("valid regex"));

/// The level a portion-mark abbreviation stands for, if the scheme has it.
fn portion_level<'a>(abbrev: &str, scheme: &'a MarkingScheme) -> Option<&'a str> {
    let full = match abbrev {
        "U" => "UNCLASSIFIED",
        "C" => "CONFIDENTIAL",
        "S" => "SECRET",
        "TS" => "TOP SECRET",
        "CUI" | "FOUO" => "CUI",
        other => other,
    };
    scheme.canonical(full)
}

/// A caveat as written in a portion mark, in its full form. A bare `REL` names no
/// country, so it cannot be turned into a release marking; the level still counts.
fn portion_caveat(abbrev: &str) -> Option<String> {
    let t = abbrev.trim();
    match t {
        "" | "REL" | "FOUO" => None,
        "NF" => Some("NOFORN".into()),
        "OC" => Some("ORCON".into()),
        "PR" => Some("PROPIN".into()),
        other => Some(other.to_string()),
    }
}

/// A banner line's marking: the line (without decoration) is a level of the scheme in
/// uppercase, optionally followed by `//caveats`, or `CLASSIFICATION: <that>`.
fn banner(line: &str, scheme: &MarkingScheme) -> Option<Marking> {
    let t = line.trim_matches(DECORATION);
    let t = t
        .strip_prefix("CLASSIFICATION:")
        .or_else(|| t.strip_prefix("CLASSIFICATION "))
        .map(str::trim)
        .unwrap_or(t);
    if t.is_empty() || t.len() > 200 || t.chars().any(|c| c.is_lowercase()) {
        return None;
    }
    let (level_text, rest) = match t.split_once("//") {
        Some((l, r)) => (l.trim(), Some(r)),
        None => (t, None),
    };
    let level = scheme
        .levels
        .iter()
        .find(|l| l.to_uppercase() == level_text)?;
    let mut caveats = Vec::new();
    if let Some(rest) = rest {
        if !CAVEATS.is_match(rest) {
            return None;
        }
        caveats = rest
            .split("//")
            .flat_map(|p| {
                // `REL TO USA, GBR` stays whole; `NOFORN/ORCON` splits.
                if p.trim_start().starts_with("REL TO") {
                    vec![p.trim().to_string()]
                } else {
                    p.split('/').map(|c| c.trim().to_string()).collect()
                }
            })
            .filter(|c| !c.is_empty())
            .collect();
    }
    Some(Marking {
        level: level.clone(),
        caveats,
    })
}

/// The markings a text states about itself.
pub fn scan(text: &str, scheme: &MarkingScheme) -> Evidence {
    let letters: HashSet<char> = LETTER_ITEM
        .captures_iter(text)
        .filter_map(|c| c.get(1)?.as_str().chars().next())
        .collect();
    // `(C)` between `(B)` and `(D)` is the third item of a list, not CONFIDENTIAL.
    let in_lettered_list = |abbrev: &str| {
        let mut chars = abbrev.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return false;
        };
        let before = char::from_u32(c as u32 - 1).filter(|_| c != 'A');
        let after = char::from_u32(c as u32 + 1).filter(|_| c != 'Z');
        before.is_some_and(|b| letters.contains(&b)) || after.is_some_and(|a| letters.contains(&a))
    };
    let mut evidence = Evidence::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.len() > 10_000 {
            continue; // not a banner, and a portion mark opens a short prefix we check below
        }
        if let Some(marking) = banner(line, scheme) {
            let written = line.trim_matches(DECORATION).to_string();
            evidence.add(EvidenceKind::Banner, marking, &written, line_no);
            continue;
        }
        let Some(caps) = PORTION.captures(line) else {
            continue;
        };
        let abbrev = caps.get(1).map_or("", |m| m.as_str());
        if in_lettered_list(abbrev) {
            continue;
        }
        let Some(level) = portion_level(abbrev, scheme) else {
            continue;
        };
        let caveat_text = caps.get(2).map_or("", |m| m.as_str());
        let mut level = level.to_string();
        let mut caveats = Vec::new();
        for part in caveat_text.split("//").filter(|p| !p.is_empty()) {
            // `U//FOUO` is controlled unclassified information.
            if part.trim() == "FOUO"
                && let Some(cui) = scheme.canonical("CUI")
                && scheme.rank(cui) > scheme.rank(&level)
            {
                level = cui.to_string();
            }
            let items: Vec<&str> = if part.trim_start().starts_with("REL TO") {
                vec![part]
            } else {
                part.split('/').collect()
            };
            caveats.extend(items.into_iter().filter_map(portion_caveat));
        }
        let written = format!("({abbrev}{caveat_text})");
        evidence.add(
            EvidenceKind::Portion,
            Marking { level, caveats },
            &written,
            line_no,
        );
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banners(text: &str) -> Vec<String> {
        scan(text, &MarkingScheme::default())
            .items
            .iter()
            .map(|i| i.marking.banner())
            .collect()
    }

    #[test]
    fn banner_lines_are_found_with_caveats() {
        assert_eq!(
            banners("SECRET//NOFORN\n\nText here.\n\nSECRET//NOFORN\n"),
            vec!["SECRET//NOFORN"]
        );
        let e = scan(
            "SECRET//NOFORN\nx\nSECRET//NOFORN",
            &MarkingScheme::default(),
        );
        assert_eq!(e.items[0].count, 2);
        assert_eq!(e.items[0].line, 1);
        assert_eq!(
            banners("**TOP SECRET//REL TO USA, GBR**\n"),
            vec!["TOP SECRET//REL TO USA, GBR"]
        );
        assert_eq!(
            banners("CLASSIFICATION: CONFIDENTIAL\n"),
            vec!["CONFIDENTIAL"]
        );
        assert_eq!(banners("# UNCLASSIFIED\n"), vec!["UNCLASSIFIED"]);
    }

    #[test]
    fn prose_is_not_a_banner() {
        assert!(banners("The secret plan is SECRET in part.\nSecret\n").is_empty());
        assert!(banners("SECRET SERVICE\n").is_empty());
    }

    #[test]
    fn portion_marks_after_paragraph_numbers() {
        let text = "1-5. (CUI) Fire support.\n\n(S//NF) Enemy at Dolsk.\n\na. (U) Weather.\n\n(1) (S//REL TO USA, GBR) Route.\n\n(U//FOUO) Note.\n";
        let found = banners(text);
        assert_eq!(
            found,
            vec![
                "CUI",
                "SECRET//NOFORN",
                "UNCLASSIFIED",
                "SECRET//REL TO USA, GBR",
                "CUI"
            ]
        );
        // A bare REL names no country: the level counts, the release marking cannot.
        assert_eq!(banners("(S//REL) Route.\n"), vec!["SECRET"]);
    }

    #[test]
    fn lettered_lists_are_not_portion_marks() {
        let list = "(A) First.\n(B) Second.\n(C) Third.\n(D) Fourth.\n";
        assert!(banners(list).is_empty());
        assert_eq!(banners("(C) Alone in the text.\n"), vec!["CONFIDENTIAL"]);
    }
}

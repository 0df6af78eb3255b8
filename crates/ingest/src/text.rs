//! Plain text and PDF text layers: the messy case.
//!
//! PDF-to-text output interleaves the document with page furniture (running headers and
//! footers such as `17 January 2024 ATP 4-0.6 1-3`, bare page numbers, classification
//! banners), wraps lines mid-word, and breaks paragraphs across pages. This module:
//! 1. recognises furniture by shape (date / publication / page label combinations) and by
//!    repetition at the top or bottom of pages, drops it, and uses page labels to count
//!    pages when the input has no form feeds;
//! 2. rebuilds paragraphs from wrapped lines (joining hyphenated wraps, continuing a paragraph
//!    across a page break when it had not ended);
//! 3. classifies blocks: chapter/appendix/section headings, short title lines, numbered and
//!    OPORD-style paragraphs, bullets, notes, captions, aligned-column tables.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::blocks::{Block, BlockKind, classify_paragraph, squash_whitespace};

static DATE: &str = r"\d{1,2}\s+(?:January|February|March|April|May|June|July|August|September|October|November|December)\s+\d{4}";
static PUB_ID: &str = r"(?:ATP|ATTP|ADP|ADRP|FM|FMI|TC|TM|JP|AR|DA\s+PAM|GTA|SOP|MCWP|MCDP|AJP|AAP|STANAG)\s+\d[\w.\-]*";
static PAGE_LABEL: &str = r"(?:[A-Z]?\d{1,3}-\d{1,3}|\d{1,4}|[ivxlc]{1,6}|[A-Z]-\d{1,3})";

static FURNITURE: LazyLock<Regex> = LazyLock::new(|| {
    // Any combination of date, publication id and page label, in any order, alone on a line.
    let part = format!(r"(?:{DATE}|{PUB_ID}|{PAGE_LABEL}|(?:Page|PAGE)\s+\d+(?:\s+of\s+\d+)?)");
    Regex::new(&format!(r"^\s*{part}(?:\s+{part}){{0,3}}\s*$")).expect("valid regex")
});
static BANNER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:UNCLASSIFIED|CUI|CONFIDENTIAL|SECRET|TOP SECRET)(?://[A-Z ,/]+)?\s*$")
        .expect("valid regex")
});
static NUMBERED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:[A-Z]|\d{1,2})-\d{1,3}\.\s").expect("valid regex"));
static OPORD_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\d{1,2}\.|[a-z]\.|\(\d{1,2}\)|\([a-z]\))\s+\S").expect("valid regex")
});
static BULLET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[•●▪◦‣∙·\-\*–—■□]\s+").expect("valid regex"));
static CHAPTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:CHAPTER|Chapter|APPENDIX|Appendix)\s+(?:\d{1,2}|[IVXLC]{1,5}|[A-Z])\b")
        .expect("valid regex")
});
static SECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:SECTION|Section)\s+(?:[IVXLC]{1,5}|\d{1,2})\b").expect("valid regex")
});
/// Korean statute divisions: `제1편`, `제2장 총칙`, `제3절`, `제1관`, and `부칙` (with its
/// promulgation note, `부칙 <제12345호, 2024.1.9.>`).
static KOREAN_DIVISION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:제\s?\d{1,3}\s?(편|장|절|관)(?:\s|$)|(부\s?칙)(?:\s*[<(（].*)?\s*$)")
        .expect("valid regex")
});
static TABLE_GAP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\t+|\s{2,}").expect("valid regex"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    Content,
    Furniture,
}

#[derive(Debug)]
struct Line<'a> {
    text: &'a str,
    kind: LineKind,
    page: u32,
}

/// Where the text came from, which decides how much its whitespace can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Plain text: blank lines separate paragraphs, runs of spaces align table columns.
    Plain,
    /// A PDF text layer: justified lines carry runs of spaces between words and line
    /// spacing shows up as blank lines inside paragraphs, so neither is structure.
    Pdf,
}

/// Plain text: form feeds separate pages when present; otherwise pages are counted from
/// the running headers/footers found between paragraphs.
pub fn extract_plain(body: &str, publication: Option<&str>) -> Vec<Block> {
    let pages: Vec<&str> = body.split('\u{c}').collect();
    let explicit = pages.len() > 1;
    extract_pages(&pages, explicit, publication, Layout::Plain)
}

/// Text split into physical pages (e.g. one string per PDF page). With `explicit_pages` the
/// page numbers are the pages' positions; otherwise they are counted from furniture.
pub fn extract_pages(
    pages: &[&str],
    explicit_pages: bool,
    publication: Option<&str>,
    layout: Layout,
) -> Vec<Block> {
    let lines = classify_lines(pages, explicit_pages, publication);
    build_blocks(&lines, layout)
}

fn normalise_key(line: &str) -> String {
    squash_whitespace(line)
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

fn is_pattern_furniture(line: &str, publication: Option<&str>) -> bool {
    let t = line.trim();
    if t.is_empty() {
        return false;
    }
    if BANNER.is_match(t) || FURNITURE.is_match(t) {
        return true;
    }
    // The document's own publication id, alone or with a page label.
    if let Some(publication) = publication
        && let Some(rest) = t
            .strip_prefix(publication)
            .or_else(|| t.strip_suffix(publication))
    {
        let rest = rest.trim();
        return rest.is_empty() || FURNITURE.is_match(rest);
    }
    false
}

fn classify_lines<'a>(
    pages: &[&'a str],
    explicit_pages: bool,
    publication: Option<&str>,
) -> Vec<Line<'a>> {
    let page_lines: Vec<Vec<&'a str>> = pages
        .iter()
        .map(|p| {
            p.lines()
                .map(|l| l.trim_end_matches(['\r', ' ', '\t']))
                .collect()
        })
        .collect();

    // Lines repeated at the top or bottom of many pages are running headers/footers.
    let mut repeated: HashMap<String, usize> = HashMap::new();
    if page_lines.len() >= 3 {
        for lines in &page_lines {
            let non_empty: Vec<&&str> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
            let n = non_empty.len();
            let mut seen = std::collections::HashSet::new();
            for (i, l) in non_empty.iter().enumerate() {
                if (i < 2 || i + 2 >= n) && l.trim().len() <= 100 {
                    let key = normalise_key(l);
                    if seen.insert(key.clone()) {
                        *repeated.entry(key).or_default() += 1;
                    }
                }
            }
        }
    }
    let threshold = (page_lines.len() / 2).max(3);

    let mut out = Vec::new();
    let mut page = 1u32;
    let mut content_since_boundary = false;
    for (index, lines) in page_lines.iter().enumerate() {
        if explicit_pages {
            page = index as u32 + 1;
        }
        let non_empty: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, _)| i)
            .collect();
        for (i, text) in lines.iter().enumerate() {
            if text.trim().is_empty() {
                out.push(Line {
                    text,
                    kind: LineKind::Blank,
                    page,
                });
                continue;
            }
            let pos = non_empty.iter().position(|&j| j == i).unwrap_or(0);
            let at_edge = pos < 2 || pos + 2 >= non_empty.len();
            let is_repeated = at_edge
                && repeated
                    .get(&normalise_key(text))
                    .is_some_and(|&c| c >= threshold);
            if is_repeated || is_pattern_furniture(text, publication) {
                // Furniture after content marks a page boundary (a footer, or the next
                // page's header); a header right after a footer is the same boundary.
                if !explicit_pages && content_since_boundary {
                    page += 1;
                    content_since_boundary = false;
                }
                out.push(Line {
                    text,
                    kind: LineKind::Furniture,
                    page,
                });
            } else {
                content_since_boundary = true;
                out.push(Line {
                    text,
                    kind: LineKind::Content,
                    page,
                });
            }
        }
    }
    out
}

fn ends_sentence(text: &str) -> bool {
    text.trim_end()
        .ends_with(['.', '!', '?', ':', ';', '"', '\u{201d}', ')'])
}

fn is_table_row(line: &str) -> bool {
    let t = line.trim();
    if t.len() < 5 {
        return false;
    }
    let cells = TABLE_GAP.split(t).filter(|c| !c.is_empty()).count();
    cells >= 3 || (line.contains('\t') && cells >= 2)
}

/// The heading level of a Korean statute division line (편 1, 장 2, 절 3, 관 4, 부칙 2).
fn korean_division(line: &str) -> Option<u8> {
    let caps = KOREAN_DIVISION.captures(line.trim())?;
    Some(match caps.get(1).map(|m| m.as_str()) {
        Some("편") => 1,
        Some("장") => 2,
        Some("절") => 3,
        Some(_) => 4,
        None => 2,
    })
}

fn block_start_kind(line: &str) -> Option<BlockKind> {
    let t = line.trim_start();
    if CHAPTER.is_match(t) || SECTION.is_match(t) || korean_division(t).is_some() {
        Some(BlockKind::Heading)
    } else if BULLET.is_match(t) {
        Some(BlockKind::ListItem)
    } else if NUMBERED.is_match(t)
        || OPORD_ITEM.is_match(t)
        || crate::chunk::article(t, false).is_some()
    {
        Some(BlockKind::Paragraph)
    } else {
        match classify_paragraph(t) {
            BlockKind::Paragraph => None,
            other => Some(other),
        }
    }
}

struct Open {
    kind: BlockKind,
    level: u8,
    text: String,
    first_page: u32,
    last_page: u32,
}

impl Open {
    fn new(kind: BlockKind, level: u8, text: &str, page: u32) -> Self {
        Self {
            kind,
            level,
            text: text.trim().to_string(),
            first_page: page,
            last_page: page,
        }
    }

    fn append(&mut self, line: &str, page: u32) {
        let line = line.trim();
        if self.kind == BlockKind::Table {
            self.text.push('\n');
            self.text.push_str(line);
        } else if self.text.ends_with('-')
            && self
                .text
                .chars()
                .rev()
                .nth(1)
                .is_some_and(|c| c.is_lowercase())
            && line.starts_with(|c: char| c.is_lowercase())
        {
            // "sustain-" + "ment": a word hyphenated at the line end.
            self.text.pop();
            self.text.push_str(line);
        } else {
            self.text.push(' ');
            self.text.push_str(line);
        }
        self.last_page = page;
    }

    fn finish(self) -> Option<Block> {
        let text = if self.kind == BlockKind::Table {
            self.text
                .lines()
                .map(|row| {
                    TABLE_GAP
                        .split(row.trim())
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            let t = squash_whitespace(&self.text);

            BULLET.replace(&t, "").into_owned()
        };
        if text.is_empty() {
            return None;
        }
        let kind = if self.kind == BlockKind::Paragraph {
            classify_paragraph(&text)
        } else {
            self.kind
        };
        Some(Block {
            kind,
            level: self.level,
            text,
            pages: Some((self.first_page, self.last_page)),
        })
    }
}

fn is_title_like(line: &str) -> bool {
    let t = line.trim();
    let words = t.split_whitespace().count();
    t.len() <= 80
        && (1..=12).contains(&words)
        && t.starts_with(|c: char| c.is_uppercase())
        && !ends_sentence(t)
        && !t.ends_with(',')
        && !t.ends_with(|c: char| c.is_ascii_digit())
        && t.chars().filter(|c| c.is_alphabetic()).count() >= 3
        && block_start_kind(t).is_none()
        && !is_table_row(line)
}

fn build_blocks(lines: &[Line<'_>], layout: Layout) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut open: Option<Open> = None;
    let mut blank_since = true;
    let mut break_since = false;

    let next_content = |from: usize| -> Option<(usize, bool)> {
        // The next content line and whether a blank separates it from `from`.
        let mut blank = false;
        for (j, l) in lines.iter().enumerate().skip(from + 1) {
            match l.kind {
                LineKind::Blank => blank = true,
                LineKind::Furniture => {}
                LineKind::Content => return Some((j, blank)),
            }
        }
        None
    };

    let mut skip_until = 0usize;
    for (i, line) in lines.iter().enumerate() {
        if i < skip_until {
            continue;
        }
        match line.kind {
            LineKind::Blank => {
                blank_since = true;
                continue;
            }
            LineKind::Furniture => {
                break_since = true;
                continue;
            }
            LineKind::Content => {}
        }
        let text = line.text;
        let t = text.trim();
        let start = block_start_kind(t);
        let table_row = layout == Layout::Plain && is_table_row(text);

        // Continue the open block?
        if let Some(current) = open.as_mut() {
            let continues = if current.kind == BlockKind::Table {
                start.is_none() && table_row && !blank_since
            } else if start.is_some() || table_row || current.kind == BlockKind::Heading {
                false
            } else if !blank_since {
                true
            } else {
                // A blank line: a new paragraph, unless a page break (or, in a PDF, mere line
                // spacing) cut an unfinished one.
                (break_since || layout == Layout::Pdf) && !ends_sentence(&current.text)
            };
            if continues {
                current.append(text, line.page);
                blank_since = false;
                break_since = false;
                continue;
            }
        }
        if let Some(done) = open.take().and_then(Open::finish) {
            blocks.push(done);
        }
        blank_since = false;
        break_since = false;

        let upcoming = next_content(i);
        if let Some(level) = korean_division(t) {
            blocks.push(
                Block::heading(level, squash_whitespace(t)).on_pages(Some((line.page, line.page))),
            );
            continue;
        }
        if CHAPTER.is_match(t) || SECTION.is_match(t) {
            let level = if CHAPTER.is_match(t) { 1 } else { 2 };
            let mut heading = t.to_string();
            // "Chapter 2" on one line and its title on the next.
            let bare = t.split_whitespace().count() <= 2;
            if bare
                && let Some((j, _)) = upcoming
                && is_title_like(lines[j].text)
            {
                heading.push(' ');
                heading.push_str(lines[j].text.trim());
                skip_until = j + 1;
            }
            blocks.push(
                Block::heading(level, squash_whitespace(&heading))
                    .on_pages(Some((line.page, line.page))),
            );
            continue;
        }
        if start.is_none() && !table_row && is_title_like(t) {
            // A short title line standing alone: a subsection heading.
            let alone = match upcoming {
                None => false,
                Some((j, blank)) => blank || block_start_kind(lines[j].text).is_some(),
            };
            if alone && (i == 0 || lines[i - 1].kind != LineKind::Content) {
                blocks.push(Block::heading(3, t).on_pages(Some((line.page, line.page))));
                continue;
            }
        }
        let kind = if table_row {
            BlockKind::Table
        } else {
            start.unwrap_or(BlockKind::Paragraph)
        };
        open = Some(Open::new(kind, 0, text, line.page));
    }
    if let Some(done) = open.take().and_then(Open::finish) {
        blocks.push(done);
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSY: &str = "\
SUSTAINMENT PLANNING

Chapter 1
Fundamentals

1-1. Sustainment planning begins at receipt of mission and continues through-
out the operation. The support operations officer leads it.
1-2. The brigade support battalion provides the
17 January 2024 ATP 4-0.6 1-1

ATP 4-0.6
bulk of field maintenance and distribution for the brigade.
• Class III (bulk) fuel forecasts
• Class V ammunition
NOTE: Forecasts are updated daily.
Figure 1-1. Sustainment synchronization matrix

Section I - Estimates
1-3. Running estimates are kept current.
17 January 2024 ATP 4-0.6 1-2
";

    #[test]
    fn furniture_is_stripped_and_pages_counted() {
        let blocks = extract_plain(MESSY, Some("ATP 4-0.6"));
        let all: String = blocks
            .iter()
            .map(|b| b.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!all.contains("17 January 2024"), "{all}");
        let p12 = blocks
            .iter()
            .find(|b| b.text.starts_with("1-2."))
            .expect("1-2 present");
        assert_eq!(
            p12.text,
            "1-2. The brigade support battalion provides the bulk of field maintenance and distribution for the brigade."
        );
        assert_eq!(p12.pages, Some((1, 2)));
        let p11 = blocks.iter().find(|b| b.text.starts_with("1-1.")).unwrap();
        assert!(
            p11.text.contains("throughout the operation"),
            "{}",
            p11.text
        );
        assert_eq!(p11.pages, Some((1, 1)));
        let p13 = blocks.iter().find(|b| b.text.starts_with("1-3.")).unwrap();
        assert_eq!(p13.pages, Some((2, 2)));
    }

    #[test]
    fn block_kinds_are_classified() {
        let blocks = extract_plain(MESSY, Some("ATP 4-0.6"));
        let headings: Vec<_> = blocks
            .iter()
            .filter(|b| b.kind == BlockKind::Heading)
            .map(|b| (b.level, b.text.as_str()))
            .collect();
        assert_eq!(
            headings,
            vec![
                (3, "SUSTAINMENT PLANNING"),
                (1, "Chapter 1 Fundamentals"),
                (2, "Section I - Estimates")
            ]
        );
        let kinds: Vec<_> = blocks.iter().map(|b| b.kind).collect();
        assert!(kinds.contains(&BlockKind::Note));
        assert!(kinds.contains(&BlockKind::Caption));
        assert_eq!(
            kinds.iter().filter(|k| **k == BlockKind::ListItem).count(),
            2
        );
        let bullet = blocks
            .iter()
            .find(|b| b.kind == BlockKind::ListItem)
            .unwrap();
        assert_eq!(bullet.text, "Class III (bulk) fuel forecasts");
    }

    #[test]
    fn form_feeds_give_pages_and_repeated_headers_go() {
        let page = |n: u32, body: &str| format!("FM 5-0.1 Planning  March 2025\n\n{body}\n\n{n}\n");
        let text = [
            page(1, "2-1. First paragraph of the chapter that"),
            page(2, "continues on the next page.\n\n2-2. Second."),
            page(3, "2-3. Third."),
        ]
        .join("\u{c}");
        let blocks = extract_plain(&text, None);
        let texts: Vec<_> = blocks.iter().map(|b| (b.text.as_str(), b.pages)).collect();
        assert_eq!(
            texts,
            vec![
                (
                    "2-1. First paragraph of the chapter that continues on the next page.",
                    Some((1, 2))
                ),
                ("2-2. Second.", Some((2, 2))),
                ("2-3. Third.", Some((3, 3))),
            ]
        );
    }

    #[test]
    fn aligned_columns_become_a_table() {
        let text = "Class    Description    Example\nI    Subsistence    Rations\nIII    Petroleum    Diesel\n\nAfter the table.";
        let blocks = extract_plain(text, None);
        assert_eq!(blocks[0].kind, BlockKind::Table);
        assert_eq!(
            blocks[0].text,
            "Class | Description | Example\nI | Subsistence | Rations\nIII | Petroleum | Diesel"
        );
        assert_eq!(blocks[1].text, "After the table.");
    }

    #[test]
    fn korean_statute_in_plain_text() {
        let law = "군인사법 시행령(예시)\n\n제1장 총칙\n\n제1조(목적) 이 영은 법에서 위임한 사항을 정한다.\n\n\
제2조(보존) ① 인사자료는 50년간 보존한다.\n② 열람은 10일 이내에 하게 한다.\n\n\
제2장 진급\n제1절 심사\n제3조 삭제 <2021.5.24>\n\n부칙 <제1234호, 2024.6.25.>\n\n\
제1조(시행일) 이 영은 2024년 7월 1일부터 시행한다.\n";
        let blocks = extract_plain(law, None);
        let headings: Vec<(u8, &str)> = blocks
            .iter()
            .filter(|b| b.kind == BlockKind::Heading)
            .map(|b| (b.level, b.text.as_str()))
            .collect();
        assert!(headings.contains(&(2, "제1장 총칙")), "{headings:?}");
        assert!(headings.contains(&(3, "제1절 심사")), "{headings:?}");
        assert!(
            headings.contains(&(2, "부칙 <제1234호, 2024.6.25.>")),
            "{headings:?}"
        );
        let chunked = crate::chunk::chunk("law", &blocks, &crate::chunk::ChunkOptions::default());
        let ids: Vec<String> = chunked
            .passages
            .iter()
            .flat_map(|p| p.paragraphs.clone())
            .collect();
        assert_eq!(
            ids,
            vec!["제1조", "제2조", "부칙 제1조"],
            "{:#?}",
            chunked.passages
        );
        let second = chunked
            .passages
            .iter()
            .find(|p| p.paragraphs.contains(&"제2조".to_string()))
            .unwrap();
        assert!(second.text.contains("② 열람은"), "{}", second.text);
    }
}

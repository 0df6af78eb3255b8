//! From blocks to the normalised document text and its passages.
//!
//! * The normalised text is the blocks' texts joined by blank lines; passages are exact
//!   slices of it, so a citation can always be shown as the span it came from.
//! * A numbered paragraph (`2-15.`) and what belongs to it (bullets, notes, tables, figure
//!   captions, unnumbered continuation text) form one *unit*; its identity is never split:
//!   every passage cut from it carries its number.
//! * Units of the same section are packed into passages of about `target_tokens`; a unit
//!   longer than `max_tokens` is cut at sentence boundaries, never mid-sentence (a single
//!   sentence longer than the limit is cut at line, then word, boundaries as a last resort).
//! * Passages never cross a heading, so each has exactly one section path.
//! * Korean statutes: an article (`제24조 (진급)`, `제47조의2(…)`, as a heading or opening a
//!   paragraph) is a unit like a numbered paragraph, its number the citable identity exactly
//!   as printed; its 항 (`①`), 호 (`1.`) and 목 (`가.`) stay inside it. Articles under a
//!   `부칙` (supplementary provisions) heading are `부칙 제2조`, never confused with the main
//!   `제2조`. A deleted article (`제30조 삭제 <2021.5.24>`) is not a passage.

use std::sync::LazyLock;

use crate::blocks::{Block, BlockKind};
use doctrina_types::Passage;
use regex::Regex;

static NUMBERED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^((?:[A-Z]|\d{1,2})-\d{1,3})\.(?:\s|$)").expect("valid regex"));

/// A Korean statute article opening a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// As printed, spaces removed: `제24조`, `제47조의2`.
    pub id: String,
    /// `제30조 삭제 <2021.5.24>`: repealed, kept in the text only as a marker.
    pub deleted: bool,
}

/// The article a block opens with. A heading may be the bare number (`제24조`) or have its
/// title after it; a paragraph must have the title in parentheses right after the number
/// (`제24조(진급) …`), so body text that starts by citing an article (`제24조에 따라 …`)
/// is not taken for one.
pub fn article(text: &str, heading: bool) -> Option<Article> {
    let text = text.trim_start();
    let (id, end) = doctrina_korean::leading_article(text)?;
    let rest = &text[end..];
    let trimmed = rest.trim_start();
    let titled = trimmed.starts_with(['(', '（']);
    let after_title = if titled {
        trimmed
            .find([')', '）'])
            .map_or("", |i| &trimmed[i + 1..])
            .trim_start()
    } else {
        trimmed
    };
    let deleted = after_title.starts_with("삭제");
    let opens = if heading {
        rest.is_empty() || rest.starts_with(char::is_whitespace) || titled
    } else {
        titled || deleted
    };
    opens.then_some(Article { id, deleted })
}

#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    pub target_tokens: usize,
    pub max_tokens: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            target_tokens: 200,
            max_tokens: 320,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Chunked {
    pub text: String,
    pub passages: Vec<Passage>,
}

/// The paragraph number a block opens with, e.g. `2-15` for `2-15. The brigade ...`.
pub fn paragraph_number(text: &str) -> Option<&str> {
    NUMBERED
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// Estimated model tokens: about 4/3 per word, plus extra for very long words (codes,
/// URLs, garbage) that a WordPiece tokenizer splits into many pieces.
pub fn estimate_tokens(text: &str) -> usize {
    text.split_whitespace()
        .map(|w| {
            let n = w.chars().count();
            if n > 12 { n.div_ceil(4) } else { 1 }
        })
        .sum::<usize>()
        * 4
        / 3
}

struct Unit {
    start: usize,
    end: usize,
    section: usize,
    paragraph: Option<String>,
    first_block: usize,
    last_block: usize,
    tokens: usize,
    /// Text was left out just before this unit (a deleted article): a passage cannot span
    /// the gap, or the left-out text would be inside it.
    after_gap: bool,
    /// The unit opens a statute article (`제24조`).
    article: bool,
}

pub fn chunk(doc_id: &str, blocks: &[Block], options: &ChunkOptions) -> Chunked {
    let max_tokens = options.max_tokens.max(options.target_tokens).max(16);
    let target_tokens = options.target_tokens.clamp(8, max_tokens);

    // 1. Normalised text and block spans.
    let mut text = String::new();
    let mut spans = Vec::with_capacity(blocks.len());
    for block in blocks {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        let start = text.len();
        text.push_str(block.text.trim());
        spans.push((start, text.len()));
    }

    // 2. Sections and paragraph identities, 3. units.
    let mut sections: Vec<Vec<String>> = vec![Vec::new()];
    let mut heading_stack: Vec<(u8, String)> = Vec::new();
    let mut current_paragraph: Option<String> = None;
    let mut units: Vec<Unit> = Vec::new();
    let mut gap = false;
    for (i, block) in blocks.iter().enumerate() {
        let (start, end) = spans[i];
        if start == end {
            continue;
        }
        let opened_article = match block.kind {
            BlockKind::Heading => article(&block.text, true),
            BlockKind::Paragraph => article(&block.text, false),
            _ => None,
        };
        if opened_article.as_ref().is_some_and(|a| a.deleted) {
            current_paragraph = None;
            gap = true;
            continue;
        }
        if block.kind == BlockKind::Heading && opened_article.is_none() {
            while heading_stack.last().is_some_and(|(l, _)| *l >= block.level) {
                heading_stack.pop();
            }
            heading_stack.push((block.level, block.text.trim().to_string()));
            sections.push(heading_stack.iter().map(|(_, t)| t.clone()).collect());
            current_paragraph = None;
            continue;
        }
        let section = sections.len() - 1;
        let opens_article = opened_article.is_some();
        let numbered = if let Some(a) = opened_article {
            let supplementary = heading_stack
                .iter()
                .any(|(_, t)| t.trim_start().starts_with("부칙"));
            Some(if supplementary {
                format!("부칙 {}", a.id)
            } else {
                a.id
            })
        } else if block.kind == BlockKind::Paragraph {
            paragraph_number(&block.text).map(str::to_string)
        } else {
            None
        };
        let opens_unit = numbered.is_some()
            || (current_paragraph.is_none() && block.kind == BlockKind::Paragraph);
        if let Some(n) = numbered {
            current_paragraph = Some(n);
        }
        let joins_previous = !opens_unit
            && !gap
            && units
                .last()
                .is_some_and(|u| u.section == section && u.paragraph == current_paragraph);
        if joins_previous {
            let unit = units.last_mut().expect("checked above");
            unit.end = end;
            unit.last_block = i;
        } else {
            units.push(Unit {
                start,
                end,
                section,
                paragraph: current_paragraph.clone(),
                first_block: i,
                last_block: i,
                tokens: 0,
                after_gap: gap,
                article: opens_article,
            });
        }
        gap = false;
    }
    for unit in &mut units {
        unit.tokens = estimate_tokens(&text[unit.start..unit.end]);
    }

    // 4. Pack units into passages; split oversized units at sentence boundaries.
    let mut pieces: Vec<Piece> = Vec::new();
    let mut current: Option<Piece> = None;
    for unit in &units {
        if unit.tokens > max_tokens {
            if let Some(p) = current.take() {
                pieces.push(p);
            }
            for (start, end) in
                split_sentences(&text, unit.start, unit.end, target_tokens, max_tokens)
            {
                pieces.push(Piece::from_range(unit, start, end));
            }
            continue;
        }
        match current.as_mut() {
            // A statute's article is its citable unit: it is never packed with another.
            Some(p)
                if p.section == unit.section
                    && !unit.after_gap
                    && !unit.article
                    && p.tokens + unit.tokens <= target_tokens =>
            {
                p.end = unit.end;
                p.tokens += unit.tokens;
                p.last_block = unit.last_block;
                if let Some(n) = &unit.paragraph
                    && !p.paragraphs.contains(n)
                {
                    p.paragraphs.push(n.clone());
                }
            }
            _ => {
                if let Some(p) = current.take() {
                    pieces.push(p);
                }
                current = Some(Piece::from_range(unit, unit.start, unit.end));
            }
        }
    }
    if let Some(p) = current.take() {
        pieces.push(p);
    }

    // 5. Passages with pages and character offsets.
    let byte_offsets: Vec<usize> = pieces.iter().flat_map(|p| [p.start, p.end]).collect();
    let char_offsets = bytes_to_chars(&text, &byte_offsets);
    let passages = pieces
        .iter()
        .enumerate()
        .map(|(ordinal, piece)| {
            let pages = page_range(blocks, piece, &spans);
            Passage {
                id: Passage::id_for(doc_id, ordinal as u32),
                doc_id: doc_id.to_string(),
                ordinal: ordinal as u32,
                section_path: sections[piece.section].clone(),
                paragraphs: piece.paragraphs.clone(),
                pages,
                char_start: char_offsets[2 * ordinal],
                char_end: char_offsets[2 * ordinal + 1],
                text: text[piece.start..piece.end].to_string(),
            }
        })
        .collect();
    Chunked { text, passages }
}

struct Piece {
    start: usize,
    end: usize,
    section: usize,
    paragraphs: Vec<String>,
    first_block: usize,
    last_block: usize,
    tokens: usize,
}

impl Piece {
    fn from_range(unit: &Unit, start: usize, end: usize) -> Self {
        Self {
            start,
            end,
            section: unit.section,
            paragraphs: unit.paragraph.iter().cloned().collect(),
            first_block: unit.first_block,
            last_block: unit.last_block,
            tokens: unit.tokens,
        }
    }
}

/// Pages of the blocks a piece overlaps.
fn page_range(blocks: &[Block], piece: &Piece, spans: &[(usize, usize)]) -> Vec<u32> {
    let mut first = u32::MAX;
    let mut last = 0;
    for i in piece.first_block..=piece.last_block {
        let (s, e) = spans[i];
        if e <= piece.start || s >= piece.end {
            continue;
        }
        if let Some((a, b)) = blocks[i].pages {
            first = first.min(a);
            last = last.max(b);
        }
    }
    if last == 0 {
        Vec::new()
    } else {
        (first..=last).collect()
    }
}

/// Cuts `text[start..end]` into ranges of about `target` tokens at sentence boundaries.
fn split_sentences(
    text: &str,
    start: usize,
    end: usize,
    target: usize,
    max: usize,
) -> Vec<(usize, usize)> {
    // Sentence boundaries (UAX #29 plus Korean endings and list markers), refined so that
    // no sentence exceeds `max`.
    let mut sentences: Vec<(usize, usize)> = Vec::new();
    for (offset, offset_end) in doctrina_korean::sentences(&text[start..end]) {
        let s = start + offset;
        let e = start + offset_end;
        let sentence = &text[s..e];
        if estimate_tokens(sentence) <= max {
            sentences.push((s, e));
        } else {
            sentences.extend(split_long(text, s, e, max));
        }
    }
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut cur: Option<(usize, usize, usize)> = None;
    for (s, e) in sentences {
        let tokens = estimate_tokens(&text[s..e]);
        match cur.as_mut() {
            Some((_, ce, ct)) if *ct + tokens <= target => {
                *ce = e;
                *ct += tokens;
            }
            _ => {
                if let Some((cs, ce, _)) = cur.take() {
                    out.push((cs, ce));
                }
                cur = Some((s, e, tokens));
            }
        }
    }
    if let Some((cs, ce, _)) = cur {
        out.push((cs, ce));
    }
    out.into_iter()
        .filter_map(|(s, e)| trim_range(text, s, e))
        .collect()
}

/// Last resort for one over-long "sentence" (a table, a run-on list): cut at line breaks,
/// then at spaces.
fn split_long(text: &str, start: usize, end: usize, max: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut piece_start = start;
    let mut last_break = None;
    for (offset, c) in text[start..end].char_indices() {
        let i = start + offset;
        if c == '\n' || c == ' ' {
            if estimate_tokens(&text[piece_start..i]) >= max {
                let cut = last_break.filter(|&b| b > piece_start).unwrap_or(i);
                out.push((piece_start, cut));
                piece_start = cut;
            }
            last_break = Some(i);
        }
    }
    if piece_start < end {
        out.push((piece_start, end));
    }
    out
}

fn trim_range(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    let (s, e) = (start + lead, end - trail);
    (s < e).then_some((s, e))
}

/// Converts ascending-or-not byte offsets into character offsets in one pass over `text`.
fn bytes_to_chars(text: &str, offsets: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|&i| offsets[i]);
    let mut out = vec![0; offsets.len()];
    let mut chars = 0;
    let mut byte = 0;
    let mut iter = text.char_indices().peekable();
    for i in order {
        let target = offsets[i];
        while byte < target {
            match iter.next() {
                Some((b, c)) => {
                    byte = b + c.len_utf8();
                    chars += 1;
                }
                None => break,
            }
        }
        out[i] = chars;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(text: &str, page: u32) -> Block {
        Block::new(BlockKind::Paragraph, text).on_pages(Some((page, page)))
    }

    #[test]
    fn numbered_paragraphs_keep_identity_and_offsets() {
        let blocks = vec![
            Block::heading(1, "Chapter 2 Planning"),
            Block::heading(2, "Section I — Estimates"),
            para("2-14. Staff sections keep running estimates current.", 3),
            Block::new(BlockKind::ListItem, "Personnel estimate").on_pages(Some((3, 3))),
            para(
                "2-15. The commander's guidance shapes every estimate — always.",
                4,
            ),
            Block::heading(2, "Section II — Orders"),
            para("2-16. Orders are issued in five paragraphs.", 4),
        ];
        let chunked = chunk("doc", &blocks, &ChunkOptions::default());
        assert_eq!(chunked.passages.len(), 2);
        let first = &chunked.passages[0];
        assert_eq!(first.paragraphs, vec!["2-14", "2-15"]);
        assert_eq!(first.pages, vec![3, 4]);
        assert_eq!(
            first.section_path,
            vec!["Chapter 2 Planning", "Section I — Estimates"]
        );
        let second = &chunked.passages[1];
        assert_eq!(second.paragraphs, vec!["2-16"]);
        assert_eq!(second.section_path[1], "Section II — Orders");
        for p in &chunked.passages {
            let by_chars: String = chunked
                .text
                .chars()
                .skip(p.char_start)
                .take(p.char_end - p.char_start)
                .collect();
            assert_eq!(by_chars, p.text);
        }
    }

    #[test]
    fn long_paragraph_is_cut_between_sentences_and_keeps_its_number() {
        let sentence = "The support area must be protected against attack at all times. ";
        let long = format!("3-7. {}", sentence.repeat(60));
        let blocks = vec![para(&long, 9)];
        let options = ChunkOptions {
            target_tokens: 100,
            max_tokens: 150,
        };
        let chunked = chunk("doc", &blocks, &options);
        assert!(chunked.passages.len() >= 4, "{}", chunked.passages.len());
        for p in &chunked.passages {
            assert_eq!(p.paragraphs, vec!["3-7"]);
            assert_eq!(p.pages, vec![9]);
            assert!(p.text.ends_with('.'), "cut mid-sentence: {:?}", p.text);
            assert!(estimate_tokens(&p.text) <= 150);
        }
    }

    #[test]
    fn korean_articles_are_citable_units() {
        let blocks = vec![
            Block::heading(1, "군인사법(예시)"),
            Block::heading(2, "제3장 진급"),
            Block::heading(5, "제24조 (진급)"),
            para("① 장교의 진급은 진급심사를 거쳐 시행한다.", 1),
            para("② 진급 최저 복무기간은 다음 각 호와 같다.", 1),
            Block::new(BlockKind::ListItem, "1. 소위: 1년"),
            Block::heading(5, "제24조의2 (연합참모 보직)"),
            para(
                "연합참모과정을 마친 장교는 3년 이내에 연합 직위에 보직한다.",
                1,
            ),
            Block::heading(5, "제30조 삭제 <2021.5.24>"),
            para(
                "제31조(항고) 징계처분을 받은 사람은 30일 이내에 항고할 수 있다.",
                2,
            ),
            para("제24조에 따라 진급한 사람은 보고한다.", 2),
            Block::heading(2, "부칙"),
            Block::heading(5, "제2조 (경과조치)"),
            para(
                "이 법 시행 당시 진급 예정자 명단에 있는 사람은 종전의 규정에 따른다.",
                2,
            ),
        ];
        let chunked = chunk("law", &blocks, &ChunkOptions::default());
        let ids: Vec<Vec<String>> = chunked
            .passages
            .iter()
            .map(|p| p.paragraphs.clone())
            .collect();
        assert_eq!(
            ids,
            vec![
                vec!["제24조".to_string()],
                vec!["제24조의2".to_string()],
                vec!["제31조".to_string()],
                vec!["부칙 제2조".to_string()],
            ]
        );
        assert!(chunked.passages[0].text.starts_with("제24조 (진급)"));
        assert!(chunked.passages[0].text.contains("1. 소위: 1년"));
        assert!(chunked.passages.iter().all(|p| !p.text.contains("삭제")));
        assert!(
            chunked.passages[2]
                .text
                .ends_with("제24조에 따라 진급한 사람은 보고한다."),
            "a citation is not an article"
        );
        assert_eq!(
            chunked.passages[3].section_path,
            vec!["군인사법(예시)", "부칙"]
        );
        assert_eq!(article("제24조에 따라", false), None);
        assert_eq!(
            article("제 47 조의 2 (연합)", true).map(|a| a.id),
            Some("제47조의2".to_string())
        );
    }

    #[test]
    fn long_korean_paragraph_is_cut_after_sentence_endings() {
        let sentence = "여단 군수참모는 연료와 탄약의 소요를 판단하여 보고한다. ";
        let long = format!("2-3. {}", sentence.repeat(80));
        let options = ChunkOptions {
            target_tokens: 60,
            max_tokens: 90,
        };
        let chunked = chunk("ko", &[para(&long, 1)], &options);
        assert!(chunked.passages.len() >= 3);
        for p in &chunked.passages {
            assert_eq!(p.paragraphs, vec!["2-3"]);
            assert!(p.text.ends_with("한다."), "cut mid-sentence: {:?}", p.text);
        }
    }

    #[test]
    fn unnumbered_text_has_no_paragraph() {
        let blocks = vec![para("An introduction without a number.", 1)];
        let chunked = chunk("d", &blocks, &ChunkOptions::default());
        assert!(chunked.passages[0].paragraphs.is_empty());
        assert_eq!(paragraph_number("A-12. Annex text"), Some("A-12"));
        assert_eq!(paragraph_number("Figure 2-1. Caption"), None);
        assert_eq!(paragraph_number("12-110. Deep"), Some("12-110"));
    }
}

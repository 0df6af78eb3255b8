//! Sentence boundaries for Korean and English text.
//!
//! Unicode's sentence rules (UAX #29) handle most of both languages; on top of them:
//! * a Korean sentence ends at a terminal ending followed by a period (`…한다.`, `…요.`,
//!   `…함.`, `…음.`, `…임.`, `…됨.`) even when the next sentence follows without a space,
//!   as it often does in copied statute text;
//! * a list marker alone (`1.`, `가.`, `①`, `(1)`, `1)`, `a.`) is not a sentence: it is
//!   joined to what follows, so a numbered item stays one unit.

use unicode_segmentation::UnicodeSegmentation;

use crate::is_hangul;

/// Byte ranges of the sentences of `text`, in order; together they cover the text (white
/// space between sentences stays at the end of the earlier one).
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut raw: Vec<(usize, usize)> = Vec::new();
    for (start, piece) in text.split_sentence_bound_indices() {
        split_korean_endings(text, start, start + piece.len(), &mut raw);
    }
    // Join list markers to the sentence after them.
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(raw.len());
    let mut pending: Option<usize> = None;
    for (start, end) in raw {
        let start = pending.take().unwrap_or(start);
        if is_list_marker(text[start..end].trim()) {
            pending = Some(start);
            continue;
        }
        out.push((start, end));
    }
    if let Some(start) = pending {
        match out.last_mut() {
            Some(last) => last.1 = text.len(),
            None => out.push((start, text.len())),
        }
    }
    out
}

/// Splits `text[start..end]` after `다.`/`요.`/`함.`/`음.`/`임.`/`됨.` followed directly by
/// Hangul (UAX #29 sees no boundary there).
fn split_korean_endings(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[start..end];
    let mut from = start;
    let chars: Vec<(usize, char)> = piece.char_indices().collect();
    for w in chars.windows(3) {
        let (_, ending) = w[0];
        let (_, dot) = w[1];
        let (next_at, next) = w[2];
        if dot == '.'
            && matches!(ending, '다' | '요' | '함' | '음' | '임' | '됨')
            && is_hangul(next)
        {
            out.push((from, start + next_at));
            from = start + next_at;
        }
    }
    out.push((from, end));
}

/// `1.`, `12.`, `가.`, `①`, `(1)`, `1)`, `(가)`, `a.`, `-`, `•`.
fn is_list_marker(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    if matches!(s, "-" | "•" | "*" | "·") {
        return true;
    }
    let mut chars = s.chars();
    let first = chars.next().unwrap_or(' ');
    if s.chars().count() == 1 && ('\u{2460}'..='\u{2473}').contains(&first) {
        return true; // ① .. ⑳
    }
    let core = s
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .or_else(|| s.strip_suffix(')'))
        .or_else(|| s.strip_suffix('.'));
    let Some(core) = core else { return false };
    (!core.is_empty() && core.len() <= 3 && core.chars().all(|c| c.is_ascii_digit()))
        || (core.chars().count() == 1
            && core.chars().all(|c| is_hangul(c) || c.is_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        sentences(text)
            .into_iter()
            .map(|(s, e)| text[s..e].trim())
            .collect()
    }

    #[test]
    fn korean_endings() {
        assert_eq!(
            split("여단은 보급을 지원한다. 대대는 연료를 요청한다."),
            vec!["여단은 보급을 지원한다.", "대대는 연료를 요청한다."]
        );
        assert_eq!(
            split("보고서를 제출함.다음 날 회의를 개최함."),
            vec!["보고서를 제출함.", "다음 날 회의를 개최함."]
        );
        assert_eq!(
            split("제출할 것을 요청하였음. 그러나 답이 없었음."),
            vec!["제출할 것을 요청하였음.", "그러나 답이 없었음."]
        );
    }

    #[test]
    fn numbered_items_stay_whole() {
        assert_eq!(
            split("1. 여단은 공격한다. 2. 대대는 방어한다."),
            vec!["1. 여단은 공격한다.", "2. 대대는 방어한다."]
        );
        assert_eq!(
            split("가. 연료 보급을 계획한다. 나. 탄약을 보급한다."),
            vec!["가. 연료 보급을 계획한다.", "나. 탄약을 보급한다."]
        );
    }

    #[test]
    fn english_and_decimals() {
        assert_eq!(
            split("See ATP 4-0.6 for details. The brigade moves at 0600."),
            vec!["See ATP 4-0.6 for details.", "The brigade moves at 0600."]
        );
        let text = "One. Two.";
        let all: String = sentences(text).iter().map(|(s, e)| &text[*s..*e]).collect();
        assert_eq!(all, text);
    }
}

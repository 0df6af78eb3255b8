//! Turning untrusted text (document passages, model output, reviewers' Markdown) into HTML.
//! Markdown goes through pulldown-cmark and then ammonia with a small allow-list; plain text
//! is escaped by askama. Citation marks are linked only after sanitising, and only as
//! digits we produce ourselves, so nothing a document or the model wrote becomes markup.

use doctrina_draft::cite::Ref;
use std::collections::HashSet;
use std::sync::LazyLock;

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.add_tags([
        "p",
        "br",
        "hr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "del",
        "code",
        "pre",
        "blockquote",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    ]);
    // No links or images from untrusted text: a draft must not point the reader elsewhere
    // or make the browser fetch anything.
    b.link_rel(None);
    b
});

/// Longest text rendered as Markdown; a longer one is shown as plain paragraphs.
pub const MAX_MARKDOWN_CHARS: usize = 200_000;
/// Deepest block-quote nesting rendered; deeper markers are folded into this depth.
/// (60,000 nested `>` took 12 s to sanitise; 16 levels are more than any document uses.)
pub const MAX_QUOTE_DEPTH: usize = 16;

/// Folds block-quote markers beyond [`MAX_QUOTE_DEPTH`] on each line.
fn bound_nesting(text: &str) -> std::borrow::Cow<'_, str> {
    let deep = text.lines().any(|line| {
        line.chars()
            .take_while(|c| matches!(c, '>' | ' ' | '\t'))
            .filter(|c| *c == '>')
            .count()
            > MAX_QUOTE_DEPTH
    });
    if !deep {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let prefix_len: usize = line
            .chars()
            .take_while(|c| matches!(c, '>' | ' ' | '\t'))
            .map(char::len_utf8)
            .sum();
        let depth = line[..prefix_len].matches('>').count();
        if depth > MAX_QUOTE_DEPTH {
            out.push_str(&"> ".repeat(MAX_QUOTE_DEPTH));
            out.push_str(&line[prefix_len..]);
        } else {
            out.push_str(line);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Markdown → sanitised HTML, with nesting bounded; text over [`MAX_MARKDOWN_CHARS`] is
/// escaped and shown as paragraphs instead. CPU work: callers on the async runtime run it
/// in `spawn_blocking`.
pub fn markdown(text: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    if text.chars().count() > MAX_MARKDOWN_CHARS {
        let escaped = escape_attr(text);
        return escaped
            .split("\n\n")
            .map(|p| format!("<p>{p}</p>"))
            .collect();
    }
    let text = bound_nesting(text);
    let parser = Parser::new_ext(
        &text,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut raw = String::new();
    html::push_html(&mut raw, parser);
    SANITIZER.clean(&raw).to_string()
}

/// Sanitised Markdown with each citation (`[n]`, `[n.m]`) turned into a link to source `n`
/// from `href(n)`; citations that `valid` rejects are shown struck through and flagged,
/// never as a working citation.
pub fn markdown_with_citations(
    text: &str,
    valid: &dyn Fn(Ref) -> bool,
    href: &dyn Fn(usize) -> String,
) -> String {
    let html = markdown(text);
    doctrina_draft::cite::replace_marks(&html, |refs| {
        refs.iter()
            .map(|&r| {
                let n = r.n;
                if valid(r) {
                    format!(
                        "<a class=\"cite\" data-n=\"{n}\" href=\"{}\">[{r}]</a>",
                        escape_attr(&href(n))
                    )
                } else {
                    format!(
                        "<span class=\"cite invalid\" title=\"source {r} does not exist: this citation is invalid\">[{r}?]</span>"
                    )
                }
            })
            .collect()
    })
}

pub fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A piece of text, marked or not; templates escape each piece.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub text: String,
    pub marked: bool,
}

/// Splits `text` into segments with the character ranges in `spans` marked.
pub fn mark_spans(text: &str, spans: &[(usize, usize)]) -> Vec<Segment> {
    let chars: Vec<char> = text.chars().collect();
    let mut marked = vec![false; chars.len()];
    for &(s, e) in spans {
        for m in marked.iter_mut().take(e.min(chars.len())).skip(s) {
            *m = true;
        }
    }
    let mut out: Vec<Segment> = Vec::new();
    for (c, m) in chars.into_iter().zip(marked) {
        match out.last_mut() {
            Some(seg) if seg.marked == m => seg.text.push(c),
            _ => out.push(Segment {
                text: c.to_string(),
                marked: m,
            }),
        }
    }
    out
}

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "with", "what", "which", "when", "where", "how", "who", "are", "was",
    "from", "that", "this", "into", "does", "must", "should", "can", "not", "its", "their",
];

/// Segments of `text` with the words of `query` marked (prefix match on word stems, exact
/// match on identifiers such as `2-15`), so a result shows why it matched.
pub fn highlight_terms(text: &str, query: &str) -> Vec<Segment> {
    let terms: HashSet<String> = query
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
        .map(|t| t.trim_matches(['.', '-']).to_lowercase())
        .filter(|t| t.chars().count() >= 3 || t.chars().any(|c| c.is_ascii_digit()))
        .filter(|t| !STOPWORDS.contains(&t.as_str()))
        .collect();
    if terms.is_empty() {
        return vec![Segment {
            text: text.to_string(),
            marked: false,
        }];
    }
    let stem = |w: &str| -> String { w.chars().take(5).collect() };
    let stems: HashSet<String> = terms
        .iter()
        .filter(|t| t.chars().all(char::is_alphabetic))
        .map(|t| stem(t))
        .collect();
    let mut spans = Vec::new();
    let mut offset = 0;
    for token in text.split_inclusive(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.')) {
        let len = token.chars().count();
        let word = token
            .trim_end_matches(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
            .trim_matches(['.', '-']);
        let lower = word.to_lowercase();
        let hit = terms.contains(&lower)
            || (lower.chars().count() >= 3
                && lower.chars().all(char::is_alphabetic)
                && stems.contains(&stem(&lower)));
        if hit && !word.is_empty() {
            let start = offset + token.chars().take_while(|c| !c.is_alphanumeric()).count();
            spans.push((start, start + word.chars().count()));
        }
        offset += len;
    }
    mark_spans(text, &spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_sanitised() {
        // Inline payloads in a paragraph, and an HTML block of its own.
        let html = markdown(
            "# Title\n\nText <script>alert(1)</script> **bold** <img src=x onerror=alert(1)> [x](javascript:alert(1))\n\n<div onclick=\"alert(2)\">block</div>\n",
        );
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        for bad in ["<script", "<img", "onerror", "href=", "<div", "onclick"] {
            assert!(!html.contains(bad), "{bad}: {html}");
        }
    }

    #[test]
    fn citations_link_only_valid_numbers() {
        let html = markdown_with_citations(
            "Fuel moves nightly [1][9]. Both [1, 2.3].",
            &|r| r.n <= 2,
            &|n| format!("/s/x/sources/{n}?v=1"),
        );
        assert!(html.contains("href=\"/s/x/sources/1?v=1\""), "{html}");
        assert!(html.contains("cite invalid"), "{html}");
        assert!(html.contains("[9?]"), "{html}");
        assert!(
            html.contains(">[2.3]</a>"),
            "a sentence citation links to its source: {html}"
        );
        assert_eq!(html.matches("class=\"cite\"").count(), 3, "{html}");
    }

    #[test]
    fn spans_and_terms_are_marked() {
        let segs = mark_spans("abcdef", &[(1, 3)]);
        assert_eq!(segs.len(), 3);
        assert!(segs[1].marked && segs[1].text == "bc");
        let segs = highlight_terms(
            "Convoys halt at 2-15. Refuel quickly.",
            "convoy refueling 2-15",
        );
        let marked: Vec<&str> = segs
            .iter()
            .filter(|s| s.marked)
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(marked, vec!["Convoys", "2-15", "Refuel"]);
    }

    #[test]
    fn deep_nesting_and_huge_texts_are_bounded() {
        let html = markdown(&format!("{}deep", ">".repeat(60_000)));
        assert_eq!(html.matches("<blockquote>").count(), MAX_QUOTE_DEPTH);
        assert!(html.contains("deep"));
        let huge = format!("{}<script>x</script>\n\nend", "word ".repeat(50_000));
        let html = markdown(&huge);
        assert!(!html.contains("<script>"), "escaped, not rendered");
        assert!(html.ends_with("end</p>"));
    }
}

//! HTML via scraper (html5ever): headings, paragraphs, list items, tables, captions and
//! loose text in containers. Scripts, styles, forms and other non-content elements are
//! dropped; attributes are never read, so event handlers cannot leak into the text.

use scraper::{ElementRef, Html, Node, Selector};

use crate::blocks::{Block, BlockKind, classify_paragraph, squash_whitespace};

const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "head", "iframe", "object", "embed", "svg",
    "canvas", "form", "button", "select", "input", "textarea", "nav",
];

/// What an HTML document gives: its blocks, its `<title>`, and all of its text (one text
/// node per line, banners and headers included) for finding markings.
pub struct HtmlExtract {
    pub blocks: Vec<Block>,
    pub title: Option<String>,
    pub all_text: String,
}

/// Every walk below is iterative with an explicit stack: nesting depth costs heap, not
/// call stack, so 20,000 nested `<div>`s are just a deep document.
pub fn extract(text: &str) -> HtmlExtract {
    let document = Html::parse_document(text);
    let title = Selector::parse("title")
        .ok()
        .and_then(|sel| document.select(&sel).next())
        .map(|t| squash_whitespace(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let mut blocks = Vec::new();
    let root = Selector::parse("body")
        .ok()
        .and_then(|sel| document.select(&sel).next())
        .unwrap_or_else(|| document.root_element());
    let mut loose = String::new();
    walk(root, &mut blocks, &mut loose);
    flush_loose(&mut loose, &mut blocks);
    let all_text = document
        .root_element()
        .text()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    HtmlExtract {
        blocks,
        title,
        all_text,
    }
}

fn text_of(element: ElementRef<'_>) -> String {
    let mut out = String::new();
    collect_text(element, &mut out);
    squash_whitespace(&out)
}

fn collect_text(element: ElementRef<'_>, out: &mut String) {
    let mut stack = vec![element.children()];
    while let Some(children) = stack.last_mut() {
        let Some(child) = children.next() else {
            stack.pop();
            continue;
        };
        match child.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                if SKIPPED.contains(&e.name()) {
                    continue;
                }
                if matches!(e.name(), "br" | "p" | "div" | "li" | "td" | "th") {
                    out.push(' ');
                }
                stack.push(child.children());
            }
            _ => {}
        }
    }
}

fn flush_loose(loose: &mut String, blocks: &mut Vec<Block>) {
    let text = squash_whitespace(loose);
    if !text.is_empty() {
        blocks.push(Block::new(classify_paragraph(&text), text));
    }
    loose.clear();
}

/// Walks the body: block elements become blocks, inline text gathers into the loose text
/// of its container, which is flushed when the container starts and ends.
fn walk(element: ElementRef<'_>, blocks: &mut Vec<Block>, loose: &mut String) {
    // Each frame: the children still to visit, and whether leaving it ends a container.
    let mut stack = vec![(element.children(), false)];
    while let Some((children, _)) = stack.last_mut() {
        let Some(child) = children.next() else {
            if let Some((_, true)) = stack.pop() {
                flush_loose(loose, blocks);
            }
            continue;
        };
        match child.value() {
            Node::Text(t) => loose.push_str(t),
            Node::Element(e) => {
                let name = e.name();
                if SKIPPED.contains(&name) {
                    continue;
                }
                let Some(child) = ElementRef::wrap(child) else {
                    continue;
                };
                match name {
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        flush_loose(loose, blocks);
                        let level = name[1..].parse().unwrap_or(1);
                        let text = text_of(child);
                        if !text.is_empty() {
                            blocks.push(Block::heading(level, text));
                        }
                    }
                    "p" | "pre" | "address" | "dt" | "dd" => {
                        flush_loose(loose, blocks);
                        let text = text_of(child);
                        if !text.is_empty() {
                            blocks.push(Block::new(classify_paragraph(&text), text));
                        }
                    }
                    "li" => {
                        flush_loose(loose, blocks);
                        let text = text_of(child);
                        if !text.is_empty() {
                            blocks.push(Block::new(BlockKind::ListItem, text));
                        }
                    }
                    "figcaption" | "caption" => {
                        flush_loose(loose, blocks);
                        let text = text_of(child);
                        if !text.is_empty() {
                            blocks.push(Block::new(BlockKind::Caption, text));
                        }
                    }
                    "table" => {
                        flush_loose(loose, blocks);
                        table(child, blocks);
                    }
                    "br" => loose.push(' '),
                    // Inline elements add to the loose text of their container.
                    "a" | "span" | "em" | "strong" | "b" | "i" | "u" | "abbr" | "code"
                    | "small" | "sub" | "sup" | "mark" | "cite" | "q" | "time" => {
                        collect_text(child, loose);
                    }
                    _ => {
                        // Containers (div, section, article, main, blockquote, ul, ol, ...).
                        flush_loose(loose, blocks);
                        stack.push((child.children(), true));
                    }
                }
            }
            _ => {}
        }
    }
}

fn table(table: ElementRef<'_>, blocks: &mut Vec<Block>) {
    let (Ok(rows), Ok(cells), Ok(caption)) = (
        Selector::parse("tr"),
        Selector::parse("th, td"),
        Selector::parse("caption"),
    ) else {
        return;
    };
    if let Some(c) = table.select(&caption).next() {
        let text = text_of(c);
        if !text.is_empty() {
            blocks.push(Block::new(BlockKind::Caption, text));
        }
    }
    let lines: Vec<String> = table
        .select(&rows)
        .map(|row| {
            row.select(&cells)
                .map(text_of)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .filter(|l| !l.trim_matches([' ', '|']).is_empty())
        .collect();
    if !lines.is_empty() {
        blocks.push(Block::new(BlockKind::Table, lines.join("\n")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_and_no_script() {
        let html = r#"<html><head><title>T &amp; S</title><script>var x=1;</script></head>
<body onload="evil()"><h1>Chapter 1</h1><div>Loose <b>text</b> here.</div>
<p onclick="alert(1)">1-1. A paragraph.<script>alert(1)</script></p>
<ul><li>one</li><li>two</li></ul>
<table><caption>Table 1-1. Classes</caption><tr><th>Class</th><th>Item</th></tr><tr><td>I</td><td>Food</td></tr></table>
</body></html>"#;
        let HtmlExtract { blocks, title, .. } = extract(html);
        assert_eq!(title.as_deref(), Some("T & S"));
        let texts: Vec<_> = blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
        assert_eq!(
            texts,
            vec![
                (BlockKind::Heading, "Chapter 1"),
                (BlockKind::Paragraph, "Loose text here."),
                (BlockKind::Paragraph, "1-1. A paragraph."),
                (BlockKind::ListItem, "one"),
                (BlockKind::ListItem, "two"),
                (BlockKind::Caption, "Table 1-1. Classes"),
                (BlockKind::Table, "Class | Item\nI | Food"),
            ]
        );
    }

    #[test]
    fn deep_nesting_is_walked_without_recursion() {
        let depth = 50_000;
        let html = format!(
            "<body>{}<p>1-1. Deep text.</p>{}</body>",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        // A thread with a small stack: a recursive walk would overflow it.
        let blocks = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || extract(&html).blocks)
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].text, "1-1. Deep text.");
    }
}

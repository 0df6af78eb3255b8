//! Markdown via pulldown-cmark: headings, paragraphs, list items (ordered items keep their
//! number), tables (one row per line, cells separated by ` | `), block quotes. Raw HTML is
//! dropped: it is untrusted and carries no doctrine text worth indexing.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::blocks::{Block, BlockKind, classify_paragraph, squash_whitespace};

pub fn extract(body: &str) -> Vec<Block> {
    let parser = Parser::new_ext(body, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    let mut blocks = Vec::new();
    let mut buf = String::new();
    // Ordered-list counters, innermost last; `None` for bullet lists.
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut item_depth = 0usize;
    let mut in_table = false;
    let mut table_rows: Vec<String> = Vec::new();
    let mut row_cells: Vec<String> = Vec::new();
    let mut heading_level = 0u8;
    let mut in_html = false;

    let flush_item = |buf: &mut String, blocks: &mut Vec<Block>| {
        let text = squash_whitespace(buf);
        if !text.is_empty() {
            blocks.push(Block::new(BlockKind::ListItem, text));
        }
        buf.clear();
    };

    for event in parser {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading_level = level as u8;
                buf.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                let text = squash_whitespace(&buf);
                if !text.is_empty() {
                    blocks.push(Block::heading(heading_level, text));
                }
                heading_level = 0;
                buf.clear();
            }
            Event::Start(Tag::Paragraph) => {
                if item_depth == 0 {
                    buf.clear();
                } else if !buf.is_empty() {
                    buf.push(' ');
                }
            }
            Event::End(TagEnd::Paragraph) if item_depth == 0 && !in_table => {
                let text = squash_whitespace(&buf);
                if !text.is_empty() {
                    blocks.push(Block::new(classify_paragraph(&text), text));
                }
                buf.clear();
            }
            Event::Start(Tag::List(start)) => {
                if item_depth > 0 {
                    // A nested list: the parent item's own text becomes its block first.
                    flush_item(&mut buf, &mut blocks);
                }
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Item) => {
                if item_depth > 0 {
                    flush_item(&mut buf, &mut blocks);
                }
                item_depth += 1;
                buf.clear();
                if let Some(Some(n)) = lists.last_mut() {
                    buf.push_str(&format!("{n}. "));
                    *n += 1;
                }
            }
            Event::End(TagEnd::Item) => {
                flush_item(&mut buf, &mut blocks);
                item_depth = item_depth.saturating_sub(1);
            }
            Event::Start(Tag::Table(_)) => {
                in_table = true;
                table_rows.clear();
            }
            Event::End(TagEnd::Table) => {
                in_table = false;
                if !table_rows.is_empty() {
                    blocks.push(Block::new(BlockKind::Table, table_rows.join("\n")));
                }
                table_rows.clear();
            }
            Event::Start(Tag::TableHead | Tag::TableRow) => row_cells.clear(),
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                if row_cells.iter().any(|c| !c.is_empty()) {
                    table_rows.push(row_cells.join(" | "));
                }
                row_cells.clear();
            }
            Event::Start(Tag::TableCell) => buf.clear(),
            Event::End(TagEnd::TableCell) => {
                row_cells.push(squash_whitespace(&buf));
                buf.clear();
            }
            Event::Start(Tag::CodeBlock(_)) => buf.clear(),
            Event::End(TagEnd::CodeBlock) => {
                let text = buf.trim().to_string();
                if !text.is_empty() {
                    blocks.push(Block::new(BlockKind::Paragraph, text));
                }
                buf.clear();
            }
            Event::Start(Tag::HtmlBlock) => in_html = true,
            Event::End(TagEnd::HtmlBlock) => in_html = false,
            Event::Text(t) | Event::Code(t) if !in_html => {
                buf.push_str(&t);
            }
            Event::SoftBreak | Event::HardBreak => buf.push(' '),
            Event::Html(_) | Event::InlineHtml(_) => {}
            _ => {}
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_survives() {
        let md = "# Chapter 1\n\n## Section I\n\n1-1. First paragraph\nwraps here.\n\n- bullet one\n- bullet two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script>\n\nNOTE: careful.\n\n2. Mission\n";
        let blocks = extract(md);
        let kinds: Vec<_> = blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (BlockKind::Heading, "Chapter 1"),
                (BlockKind::Heading, "Section I"),
                (BlockKind::Paragraph, "1-1. First paragraph wraps here."),
                (BlockKind::ListItem, "bullet one"),
                (BlockKind::ListItem, "bullet two"),
                (BlockKind::Table, "a | b\n1 | 2"),
                (BlockKind::Note, "NOTE: careful."),
                (BlockKind::ListItem, "2. Mission"),
            ]
        );
        assert_eq!(blocks[1].level, 2);
    }
}

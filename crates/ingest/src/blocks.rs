/// What a block of extracted text is. Extractors classify; the chunker decides identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A heading; `Block::level` says how deep (1 = chapter).
    Heading,
    Paragraph,
    ListItem,
    Table,
    Note,
    Caption,
}

/// One structural unit of a document, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub kind: BlockKind,
    /// Heading depth (1..=6); 0 for non-headings.
    pub level: u8,
    /// The block's text with whitespace normalised; tables have one row per line.
    pub text: String,
    /// First and last physical page (1-based) the block sits on, when the format has pages.
    pub pages: Option<(u32, u32)>,
}

impl Block {
    pub fn new(kind: BlockKind, text: impl Into<String>) -> Self {
        Self {
            kind,
            level: 0,
            text: text.into(),
            pages: None,
        }
    }

    pub fn heading(level: u8, text: impl Into<String>) -> Self {
        Self {
            kind: BlockKind::Heading,
            level: level.clamp(1, 6),
            text: text.into(),
            pages: None,
        }
    }

    pub fn on_pages(mut self, pages: Option<(u32, u32)>) -> Self {
        self.pages = pages;
        self
    }
}

/// Collapses runs of whitespace into single spaces and trims.
pub fn squash_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Classifies a paragraph-level text by its opening words: notes and figure/table captions
/// are kept apart from body paragraphs.
pub fn classify_paragraph(text: &str) -> BlockKind {
    let t = text.trim_start();
    if t.starts_with("NOTE:") || t.starts_with("Note:") || t.starts_with("NOTE.") {
        BlockKind::Note
    } else if is_caption(t) {
        BlockKind::Caption
    } else {
        BlockKind::Paragraph
    }
}

fn is_caption(t: &str) -> bool {
    let Some(rest) = t
        .strip_prefix("Figure ")
        .or_else(|| t.strip_prefix("Table "))
    else {
        return false;
    };
    // "Figure 2-1." / "Table A-3." / "Figure 4."
    let label: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    !label.is_empty()
        && label.chars().any(|c| c.is_ascii_digit())
        && rest[label.len()..].starts_with(['.', ' ', ':'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_and_notes_are_recognised() {
        assert_eq!(
            classify_paragraph("Figure 2-1. Sustainment synchronization matrix"),
            BlockKind::Caption
        );
        assert_eq!(
            classify_paragraph("Table A-3. Classes of supply"),
            BlockKind::Caption
        );
        assert_eq!(classify_paragraph("NOTE: Plan early."), BlockKind::Note);
        assert_eq!(
            classify_paragraph("Figures show the plan."),
            BlockKind::Paragraph
        );
    }
}

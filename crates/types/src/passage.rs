use serde::{Deserialize, Serialize};

/// A citable chunk of a document: the unit that is indexed, retrieved and cited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// `{doc_id}#{ordinal}`; unique across the corpus.
    pub id: String,
    pub doc_id: String,
    /// Position of the passage in its document, from 0.
    pub ordinal: u32,
    /// Headings from chapter down, e.g. `["Chapter 2 Planning", "Section I Estimates"]`.
    pub section_path: Vec<String>,
    /// Numbered paragraphs the passage covers, e.g. `["2-14", "2-15"]`.
    pub paragraphs: Vec<String>,
    /// Physical pages (1-based) the passage spans; empty for unpaginated formats.
    pub pages: Vec<u32>,
    /// Character (Unicode scalar) offsets of `text` in the normalised document text.
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
}

impl Passage {
    pub fn id_for(doc_id: &str, ordinal: u32) -> String {
        format!("{doc_id}#{ordinal}")
    }

    /// Section path joined for display, `Chapter 2 > Section I`.
    pub fn section_display(&self) -> String {
        self.section_path.join(" > ")
    }
}

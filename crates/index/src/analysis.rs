//! The keyword index's analyzer for text in English, Korean or both (`doctrina`).
//!
//! * Text without Hangul goes through exactly tantivy's `en_stem` pipeline (split on
//!   non-alphanumerics, drop tokens over 40 bytes, lowercase, Snowball English stemmer), so
//!   English indexing and ranking are what they were before Korean existed.
//! * Text with Hangul goes through MeCab with mecab-ko-dic
//!   ([`doctrina_korean::keyword_terms`]): nouns, verb and adjective stems, roots, numbers
//!   kept, particles and endings dropped, compounds as themselves and as their parts; the
//!   Latin words MeCab finds in it are analysed as English (so `sustainment` in a Korean
//!   sentence is the same term as in an English one).
//! * Without MeCab (not installed), Hangul runs become overlapping syllable pairs
//!   (`지속지원` -> `지속`, `속지`, `지원`) and the rest is analysed as English. The index
//!   records which analysis wrote it and is rebuilt from the catalog when that changes.
//!
//! Queries are analysed by the same analyzer, so both sides always agree.

use doctrina_korean::{Term, TermKind};
use tantivy::tokenizer::{
    Language, LowerCaser, PreTokenizedStream, PreTokenizedString, RemoveLongFilter,
    SimpleTokenizer, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// The name the analyzer is registered under (and the schema's text fields use).
pub const ANALYZER: &str = "doctrina";

/// Longest Korean term kept, in bytes (a 20-syllable compound).
const MAX_KOREAN_TERM: usize = 60;

#[derive(Clone)]
pub struct DoctrinaAnalyzer {
    english: TextAnalyzer,
}

impl Default for DoctrinaAnalyzer {
    fn default() -> Self {
        Self { english: english() }
    }
}

/// tantivy's `en_stem`, built the same way tantivy builds it.
fn english() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

impl DoctrinaAnalyzer {
    /// Analyses `text` into tokens (offsets are byte offsets into `text`).
    pub fn tokens(&mut self, text: &str) -> Vec<Token> {
        if !doctrina_korean::has_hangul(text) {
            let mut out = Vec::new();
            let mut stream = self.english.token_stream(text);
            while let Some(token) = stream.next() {
                out.push(token.clone());
            }
            return out;
        }
        let terms = match doctrina_korean::analyzer() {
            Some(mecab) => match doctrina_korean::keyword_terms(mecab, text) {
                Ok(terms) => terms,
                Err(error) => {
                    tracing::warn!(%error, "Korean analysis failed; using Hangul bigrams");
                    self.fallback_terms(text)
                }
            },
            None => self.fallback_terms(text),
        };
        self.analyse_terms(terms)
    }

    /// Hangul bigrams plus the non-Hangul words (as one Latin term each; stemmed below).
    fn fallback_terms(&mut self, text: &str) -> Vec<Term> {
        let mut terms = doctrina_korean::bigram_terms(text);
        // The rest of the text with Hangul blanked (same byte offsets).
        let blanked: String = text
            .chars()
            .map(|c| {
                if doctrina_korean::is_hangul(c) {
                    " ".repeat(c.len_utf8())
                } else {
                    c.to_string()
                }
            })
            .collect();
        let mut simple = SimpleTokenizer::default();
        let mut stream = simple.token_stream(&blanked);
        while let Some(t) = stream.next() {
            terms.push(Term {
                text: t.text.clone(),
                start: t.offset_from,
                end: t.offset_to,
                kind: TermKind::Latin,
                part: false,
            });
        }
        terms.sort_by_key(|t| (t.start, t.part));
        terms
    }

    fn analyse_terms(&mut self, terms: Vec<Term>) -> Vec<Token> {
        let mut out: Vec<Token> = Vec::with_capacity(terms.len());
        let mut position = 0usize;
        for term in terms {
            // Parts of a compound share its position; everything else moves on.
            if !term.part && !out.is_empty() {
                position += 1;
            }
            let push = |text: String, out: &mut Vec<Token>| {
                out.push(Token {
                    offset_from: term.start,
                    offset_to: term.end,
                    position,
                    text,
                    position_length: 1,
                })
            };
            match term.kind {
                TermKind::Latin => {
                    let mut stream = self.english.token_stream(&term.text);
                    while let Some(t) = stream.next() {
                        push(t.text.clone(), &mut out);
                    }
                }
                TermKind::Number => push(term.text, &mut out),
                TermKind::Korean | TermKind::Other => {
                    if term.text.len() <= MAX_KOREAN_TERM {
                        push(term.text.to_lowercase(), &mut out);
                    }
                }
            }
        }
        out
    }
}

impl Tokenizer for DoctrinaAnalyzer {
    type TokenStream<'a> = PreTokenizedStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> PreTokenizedStream {
        let tokens = self.tokens(text);
        PreTokenizedStream::from(PreTokenizedString {
            text: String::new(),
            tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        DoctrinaAnalyzer::default()
            .tokens(text)
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn english_is_exactly_en_stem() {
        let text = "The brigade's sustainment planners forecast Class III (bulk) fuel, 4-0.6!";
        let mut en_stem = english();
        let mut stream = en_stem.token_stream(text);
        let mut expected = Vec::new();
        while let Some(t) = stream.next() {
            expected.push((t.text.clone(), t.offset_from, t.offset_to, t.position));
        }
        let got: Vec<_> = DoctrinaAnalyzer::default()
            .tokens(text)
            .into_iter()
            .map(|t| (t.text, t.offset_from, t.offset_to, t.position))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn korean_by_morphemes_and_latin_stemmed() {
        // Needs MeCab as `make setup` installs it.
        assert!(
            doctrina_korean::analyzer().is_some(),
            "MeCab is installed by make setup"
        );
        let terms = texts("여단 지속지원 계획은 sustainment planning 절차를 따른다");
        for want in [
            "여단",
            "지속지원",
            "지속",
            "지원",
            "계획",
            "sustain",
            "plan",
            "절차",
            "따르",
        ] {
            assert!(
                terms.iter().any(|t| t == want),
                "{want} missing from {terms:?}"
            );
        }
        assert!(!terms.iter().any(|t| t == "은" || t == "를"), "{terms:?}");
        // The same English word analysed alone or inside Korean text is one term.
        assert_eq!(texts("sustainment"), vec!["sustain"]);
    }
}

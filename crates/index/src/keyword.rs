//! The keyword index (tantivy, BM25).
//!
//! Title, section path and body are analysed by [`DoctrinaAnalyzer`](crate::analysis): English
//! exactly as tantivy's `en_stem`, Korean by morphemes (MeCab). Identifiers need
//! more than that: the default tokenizer splits `4-0.6` into `4`, `0`, `6` and `1-4` into
//! `1`, `4`, which matches far too much. So every passage also gets an `ident` field,
//! pre-tokenised here on whitespace with surrounding punctuation trimmed (`ATP 4-0.6,` ->
//! `atp`, `4-0.6`), and a `paragraph` field with its exact paragraph numbers. Queries use
//! identifier-looking terms against those fields (terms, and phrases for `ATP 4-0.6`), on top
//! of the stemmed BM25 query. In Korean text a word carries its particle (`제24조에`,
//! `4-0.6에서`), so a word with Hangul gives its article numbers (`제24조`, `제47조의2`) and
//! its non-Hangul runs (`4-0.6`) instead of itself.
//!
//! Access control: a `caveat` field holds the passage's document caveats in
//! [`caveat_token`](doctrina_types::caveat_token) form and `marking_rank` its level's rank,
//! so a clearance becomes a rank range and a `MustNot` set of denied caveats inside the
//! query (never a filter after top-k).

use std::path::Path;

use doctrina_types::caveat_token;

use crate::access::AccessFilter;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, Occur, PhraseQuery, Query, RangeQuery,
    TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc,
};

use crate::error::{IndexError, Result};

const WRITER_HEAP: usize = 64 * 1024 * 1024;

/// What the keyword index needs to know about a passage.
#[derive(Debug, Clone)]
pub struct KeywordDoc<'a> {
    pub passage_id: &'a str,
    pub doc_id: &'a str,
    pub title: &'a str,
    pub publication: Option<&'a str>,
    pub section: &'a str,
    pub paragraphs: &'a [String],
    pub body: &'a str,
    pub marking_rank: u32,
    /// The document's caveats in [`caveat_token`](doctrina_types::caveat_token) form.
    pub caveats: &'a [String],
}

#[derive(Clone, Copy)]
struct Fields {
    passage_id: Field,
    doc_id: Field,
    title: Field,
    section: Field,
    body: Field,
    ident: Field,
    paragraph: Field,
    publication: Field,
    marking_rank: Field,
    caveat: Field,
}

pub struct KeywordIndex {
    index: Index,
    reader: IndexReader,
    writer: std::sync::Mutex<IndexWriter>,
    fields: Fields,
}

impl std::fmt::Debug for KeywordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywordIndex").finish_non_exhaustive()
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let stemmed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(crate::analysis::ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let pretokenised = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        passage_id: b.add_text_field("passage_id", STRING | STORED),
        doc_id: b.add_text_field("doc_id", STRING | STORED),
        title: b.add_text_field("title", stemmed.clone()),
        section: b.add_text_field("section", stemmed.clone()),
        body: b.add_text_field("body", stemmed),
        ident: b.add_text_field("ident", pretokenised),
        paragraph: b.add_text_field("paragraph", STRING),
        publication: b.add_text_field("publication", STRING),
        marking_rank: b.add_u64_field("marking_rank", INDEXED),
        caveat: b.add_text_field("caveat", STRING),
    };
    (b.build(), fields)
}

/// Identifier-preserving tokens: split on whitespace (and `/`, `,`, `;`), trim punctuation
/// at both ends, lowercase. `ATP 4-0.6,` -> `["atp", "4-0.6"]`; `1-4.` -> `["1-4"]`.
pub fn ident_tokens(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    let is_sep =
        |c: char| c.is_whitespace() || matches!(c, '/' | ',' | ';' | '(' | ')' | '[' | ']');
    let push = |s: usize, e: usize, out: &mut Vec<(usize, usize, String)>| {
        let word = &text[s..e];
        if doctrina_korean::has_hangul(word) {
            korean_ident_tokens(word, s, out);
            return;
        }
        let trimmed_start = word.len()
            - word
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .len();
        let core = word.trim_matches(|c: char| !c.is_alphanumeric());
        if !core.is_empty() {
            let from = s + trimmed_start;
            out.push((from, from + core.len(), core.to_lowercase()));
        }
    };
    for (i, c) in text.char_indices() {
        if is_sep(c) {
            if let Some(s) = start.take() {
                push(s, i, &mut out);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        push(s, text.len(), &mut out);
    }
    out
}

/// The identifiers inside a word with Hangul: its article numbers and its non-Hangul runs,
/// trimmed (`ATP4-0.6에서` -> `atp4-0.6`; `제24조의2에` -> `제24조의2`, `24`, `2`).
fn korean_ident_tokens(word: &str, offset: usize, out: &mut Vec<(usize, usize, String)>) {
    let mut found: Vec<(usize, usize, String)> = doctrina_korean::article_ids(word)
        .into_iter()
        .map(|(s, e, id)| (offset + s, offset + e, id))
        .collect();
    let mut run: Option<usize> = None;
    let flush = |from: usize, to: usize, found: &mut Vec<(usize, usize, String)>| {
        let piece = &word[from..to];
        let lead = piece.len()
            - piece
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .len();
        let core = piece.trim_matches(|c: char| !c.is_alphanumeric());
        if !core.is_empty() {
            let s = offset + from + lead;
            found.push((s, s + core.len(), core.to_lowercase()));
        }
    };
    for (i, c) in word.char_indices() {
        if doctrina_korean::is_hangul(c) {
            if let Some(from) = run.take() {
                flush(from, i, &mut found);
            }
        } else if run.is_none() {
            run = Some(i);
        }
    }
    if let Some(from) = run {
        flush(from, word.len(), &mut found);
    }
    found.sort_by_key(|t| t.0);
    out.extend(found);
}

/// True for tokens that look like identifiers: they mix digits with letters or internal
/// punctuation (`4-0.6`, `2-15`, `a-12`, `opord`+digits), as opposed to plain words.
fn is_identifier(token: &str) -> bool {
    token.chars().any(|c| c.is_ascii_digit())
        && (token.contains(['-', '.']) || token.chars().any(|c| c.is_alphabetic()))
}

/// True when a query names something exactly (`ATP 4-0.6`, `2-15`): keyword retrieval is
/// then the stronger signal, and fusion weighs it up.
pub fn has_identifier(query: &str) -> bool {
    ident_tokens(query).iter().any(|(_, _, t)| is_identifier(t))
}

fn pretokenised(text: &str) -> PreTokenizedString {
    let tokens = ident_tokens(text)
        .into_iter()
        .enumerate()
        .map(|(position, (from, to, text))| Token {
            offset_from: from,
            offset_to: to,
            position,
            text,
            position_length: 1,
        })
        .collect();
    PreTokenizedString {
        text: text.to_string(),
        tokens,
    }
}

/// Publications are matched case- and space-insensitively: `atp  4-0.6` == `ATP 4-0.6`.
pub fn normalise_publication(p: &str) -> String {
    p.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl KeywordIndex {
    /// Opens the index in `dir`, creating it if there is none. An existing index with
    /// another schema (written by another version of doctrina) is an error:
    /// [`KeywordIndex::recreate`] replaces it, and the caller rebuilds it from the catalog.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| IndexError::Keyword(e.into()))?;
        let index = Index::open_or_create(directory, schema).map_err(|e| match e {
            tantivy::TantivyError::SchemaError(message) => IndexError::KeywordSchema {
                path: dir.to_path_buf(),
                message,
            },
            other => other.into(),
        })?;
        index.tokenizers().register(
            crate::analysis::ANALYZER,
            crate::analysis::DoctrinaAnalyzer::default(),
        );
        let writer = index.writer(WRITER_HEAP)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            writer: std::sync::Mutex::new(writer),
            fields,
        })
    }

    /// Deletes whatever index is in `dir` and creates an empty one with the current schema.
    pub fn recreate(dir: &Path) -> Result<Self> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(IndexError::Io {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
        Self::open(dir)
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        // A panic while holding the lock leaves tantivy's writer usable; uncommitted work is
        // discarded by the next rollback/commit either way.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, docs: &[KeywordDoc<'_>]) -> Result<()> {
        let writer = self.writer();
        let f = self.fields;
        for d in docs {
            let mut ident_text = String::new();
            ident_text.push_str(d.title);
            if let Some(p) = d.publication {
                ident_text.push_str(" / ");
                ident_text.push_str(p);
            }
            ident_text.push_str(" / ");
            ident_text.push_str(&d.paragraphs.join(" "));
            ident_text.push_str(" / ");
            ident_text.push_str(d.body);
            let mut document = doc!(
                f.passage_id => d.passage_id,
                f.doc_id => d.doc_id,
                f.title => d.title,
                f.section => d.section,
                f.body => d.body,
                f.marking_rank => u64::from(d.marking_rank),
            );
            document.add_pre_tokenized_text(f.ident, pretokenised(&ident_text));
            for p in d.paragraphs {
                document.add_text(f.paragraph, p);
            }
            if let Some(p) = d.publication {
                document.add_text(f.publication, normalise_publication(p));
            }
            for c in d.caveats {
                document.add_text(f.caveat, caveat_token(c));
            }
            writer.add_document(document)?;
        }
        Ok(())
    }

    pub fn delete_doc(&self, doc_id: &str) {
        self.writer()
            .delete_term(Term::from_field_text(self.fields.doc_id, doc_id));
    }

    /// Makes added and deleted documents durable and visible to searches.
    pub fn commit(&self) -> Result<()> {
        self.writer().commit()?;
        self.reader.reload()?;
        Ok(())
    }

    pub fn rollback(&self) -> Result<()> {
        self.writer().rollback()?;
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.reader.searcher().num_docs() as usize
    }

    pub fn count_doc(&self, doc_id: &str) -> Result<usize> {
        let q = TermQuery::new(
            Term::from_field_text(self.fields.doc_id, doc_id),
            IndexRecordOption::Basic,
        );
        Ok(self.reader.searcher().search(&q, &Count)?)
    }

    /// Every distinct document id present in the index (including ones the catalog may not
    /// know, after a crash).
    pub fn doc_ids(&self) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let mut ids = std::collections::BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.doc_id)?;
            let mut terms = inverted
                .terms()
                .stream()
                .map_err(tantivy::TantivyError::from)?;
            while terms.advance() {
                let id = String::from_utf8_lossy(terms.key()).into_owned();
                let q = TermQuery::new(
                    Term::from_field_text(self.fields.doc_id, &id),
                    IndexRecordOption::Basic,
                );
                if searcher.search(&q, &Count)? > 0 {
                    ids.insert(id);
                }
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// Every caveat token in the index's term dictionary (committed segments). May include
    /// caveats of deleted passages until their segment is merged.
    pub fn caveat_terms(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut out = std::collections::BTreeSet::new();
        for segment in self.reader.searcher().segment_readers() {
            let inverted = segment.inverted_index(self.fields.caveat)?;
            let mut terms = inverted
                .terms()
                .stream()
                .map_err(tantivy::TantivyError::from)?;
            while terms.advance() {
                out.insert(String::from_utf8_lossy(terms.key()).into_owned());
            }
        }
        Ok(out)
    }

    fn filter_query(&self, access: &AccessFilter) -> Result<Option<Box<dyn Query>>> {
        let filter = access.filter();
        let f = self.fields;
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if !filter.doc_ids.is_empty() {
            must.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    filter
                        .doc_ids
                        .iter()
                        .map(|id| Term::from_field_text(f.doc_id, id)),
                )),
            ));
        }
        if !filter.publications.is_empty() {
            must.push((
                Occur::Must,
                Box::new(TermSetQuery::new(
                    access
                        .publication_keys()
                        .iter()
                        .map(|p| Term::from_field_text(f.publication, p)),
                )),
            ));
        }
        if let Some(max) = filter.max_marking_rank {
            must.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    std::ops::Bound::Included(Term::from_field_u64(f.marking_rank, 0)),
                    std::ops::Bound::Included(Term::from_field_u64(f.marking_rank, u64::from(max))),
                )),
            ));
        }
        let mut must_not: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if !filter.exclude_doc_ids.is_empty() {
            must_not.push((
                Occur::MustNot,
                Box::new(TermSetQuery::new(
                    filter
                        .exclude_doc_ids
                        .iter()
                        .map(|id| Term::from_field_text(f.doc_id, id)),
                )),
            ));
        }
        if !filter.exclude_caveats.is_empty() {
            must_not.push((
                Occur::MustNot,
                Box::new(TermSetQuery::new(
                    access
                        .denied_caveat_tokens()
                        .iter()
                        .map(|c| Term::from_field_text(f.caveat, c)),
                )),
            ));
        }
        if must.is_empty() && !must_not.is_empty() {
            // A boolean query of exclusions alone matches nothing: exclude from everything.
            must.push((Occur::Must, Box::new(AllQuery)));
        }
        must.extend(must_not);
        Ok((!must.is_empty()).then(|| Box::new(BooleanQuery::new(must)) as Box<dyn Query>))
    }

    /// The query's terms, plus `expansion`'s (a glossary's other-language terms) weighted
    /// `expansion_weight`, so added terms help without outweighing what was asked.
    fn scoring_query_with(
        &self,
        query: &str,
        expansion: &str,
        expansion_weight: f32,
    ) -> Result<Option<Box<dyn Query>>> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, boost) in [(f.title, 1.5f32), (f.section, 1.2), (f.body, 1.0)] {
            let mut analyzer = self.index.tokenizer_for_field(field)?;
            let mut seen = std::collections::HashSet::new();
            for (text, weight) in [(query, 1.0f32), (expansion, expansion_weight)] {
                let mut stream = analyzer.token_stream(text);
                while let Some(token) = stream.next() {
                    if seen.insert(token.text.clone()) {
                        let term = Term::from_field_text(field, &token.text);
                        let q: Box<dyn Query> =
                            Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                        clauses.push((Occur::Should, Box::new(BoostQuery::new(q, boost * weight))));
                    }
                }
            }
        }
        let idents = ident_tokens(query);
        for (_, _, token) in idents.iter().filter(|(_, _, t)| is_identifier(t)) {
            for (field, boost) in [(f.ident, 3.0f32), (f.paragraph, 3.0)] {
                let term = Term::from_field_text(field, token);
                let q: Box<dyn Query> =
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                clauses.push((Occur::Should, Box::new(BoostQuery::new(q, boost))));
            }
        }
        clauses.extend(self.designator_phrases(&idents));
        if clauses.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(BooleanQuery::new(clauses))))
    }

    /// BM25 top-`limit` passage ids with scores, best first, within `filter` (resolved from
    /// a clearance by `Indexes::resolve_clearance`, the only way to make one).
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        filter: &AccessFilter,
    ) -> Result<Vec<(String, f32)>> {
        self.search_expanded(query, "", 1.0, limit, filter)
    }

    /// [`KeywordIndex::search`] with expansion terms weighted `expansion_weight`.
    pub fn search_expanded(
        &self,
        query: &str,
        expansion: &str,
        expansion_weight: f32,
        limit: usize,
        filter: &AccessFilter,
    ) -> Result<Vec<(String, f32)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        match self.scoring_query_with(query, expansion, expansion_weight)? {
            Some(scoring) => self.run(scoring, limit, filter),
            None => Ok(Vec::new()),
        }
    }

    /// The passages whose paragraph number the query names exactly (`2-8`, `제24조의2`),
    /// best first: those in a publication the query also names (`ATP 4-0.6 2-8`) above the
    /// rest. Empty when the query names no paragraph. Embeddings do not know paragraph
    /// numbers, so retrieval fuses this list in when a query names one.
    pub fn search_references(
        &self,
        query: &str,
        limit: usize,
        filter: &AccessFilter,
    ) -> Result<Vec<(String, f32)>> {
        let f = self.fields;
        let idents = ident_tokens(query);
        let paragraphs: Vec<(Occur, Box<dyn Query>)> = idents
            .iter()
            .filter(|(_, _, t)| is_identifier(t))
            .map(|(_, _, t)| {
                let term = Term::from_field_text(f.paragraph, t);
                let q: Box<dyn Query> = Box::new(TermQuery::new(term, IndexRecordOption::Basic));
                (Occur::Should, q)
            })
            .collect();
        if paragraphs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(paragraphs)))];
        clauses.extend(self.designator_phrases(&idents));
        self.run(Box::new(BooleanQuery::new(clauses)), limit, filter)
    }

    /// "ATP 4-0.6": a designator followed by an identifier, matched as a phrase on `ident`
    /// (a Should clause each).
    fn designator_phrases(
        &self,
        idents: &[(usize, usize, String)],
    ) -> Vec<(Occur, Box<dyn Query>)> {
        let ident = self.fields.ident;
        idents
            .windows(2)
            .filter(|pair| {
                let (a, b) = (&pair[0].2, &pair[1].2);
                is_identifier(b) && a.chars().all(|c| c.is_alphabetic()) && a.len() <= 6
            })
            .map(|pair| {
                let phrase = PhraseQuery::new(vec![
                    Term::from_field_text(ident, &pair[0].2),
                    Term::from_field_text(ident, &pair[1].2),
                ]);
                let q: Box<dyn Query> = Box::new(BoostQuery::new(Box::new(phrase), 4.0));
                (Occur::Should, q)
            })
            .collect()
    }

    fn run(
        &self,
        scoring: Box<dyn Query>,
        limit: usize,
        filter: &AccessFilter,
    ) -> Result<Vec<(String, f32)>> {
        let filter = self.filter_query(filter)?;
        let full: Box<dyn Query> = match filter {
            None => scoring,
            Some(filter) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, scoring),
                (Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))),
            ])),
        };
        let searcher = self.reader.searcher();
        let top: Vec<(f32, DocAddress)> =
            searcher.search(&full, &TopDocs::with_limit(limit).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, address) in top {
            let stored: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = stored
                .get_first(self.fields.passage_id)
                .and_then(|v| v.as_str())
            {
                out.push((id.to_string(), score));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doctrina_types::PassageFilter;

    #[test]
    fn identifiers_survive_tokenisation() {
        let toks: Vec<String> = ident_tokens("See ATP 4-0.6, para 1-4. (S//NF)")
            .into_iter()
            .map(|t| t.2)
            .collect();
        assert_eq!(toks, vec!["see", "atp", "4-0.6", "para", "1-4", "s", "nf"]);
        assert!(is_identifier("4-0.6"));
        assert!(is_identifier("2-15"));
        assert!(!is_identifier("sustainment"));
        let korean: Vec<String> = ident_tokens("ATP 4-0.6에서 법 제24조의2에 따라 72시간")
            .into_iter()
            .map(|t| t.2)
            .collect();
        assert_eq!(korean, vec!["atp", "4-0.6", "제24조의2", "24", "2", "72"]);
        assert!(is_identifier("제24조"));
        assert!(has_identifier("군인사법 제24조에 따르면"));
        assert!(!has_identifier("72시간 전망이란?"));
    }

    /// (rank, caveats) of the test documents, cycled: levels 0..=4, NOFORN, two release
    /// markings and ORCON.
    fn markings() -> Vec<(u32, Vec<String>)> {
        [
            (0, vec![]),
            (3, vec!["NOFORN"]),
            (3, vec!["REL TO USA, GBR"]),
            (2, vec!["rel to fra,usa"]),
            (4, vec!["ORCON"]),
            (1, vec![]),
        ]
        .into_iter()
        .map(|(r, c)| (r, c.into_iter().map(String::from).collect()))
        .collect()
    }

    fn unfiltered() -> AccessFilter {
        AccessFilter::for_tests(PassageFilter::default())
    }

    /// What a clearance resolves to, as `Indexes::resolve_clearance` does it.
    fn resolved(level: &str, caveats: &[&str], tokens: &[String]) -> AccessFilter {
        let scheme = doctrina_types::MarkingScheme::default();
        let clearance = doctrina_types::Clearance {
            level: level.into(),
            caveats: caveats.iter().map(|c| c.to_string()).collect(),
        };
        AccessFilter::for_tests(PassageFilter {
            max_marking_rank: scheme.rank(level),
            exclude_caveats: tokens
                .iter()
                .filter(|t| !scheme.permits_caveat(&clearance, t))
                .cloned()
                .collect(),
            ..PassageFilter::default()
        })
    }

    #[test]
    fn clearance_filter_is_inside_the_query() {
        let dir = tempfile::tempdir().unwrap();
        let index = KeywordIndex::open(dir.path()).unwrap();
        let markings = markings();
        let ids: Vec<String> = (0..60).map(|i| format!("d{i}#0")).collect();
        let doc_ids: Vec<String> = (0..60).map(|i| format!("d{i}")).collect();
        // Restricted passages say "fuel" more often, so they would fill an unfiltered top-k.
        let bodies: Vec<String> = (0..60)
            .map(|i| {
                let (rank, caveats) = &markings[i % markings.len()];
                let times = if *rank > 0 || !caveats.is_empty() {
                    6
                } else {
                    1
                };
                format!("{} convoy planning.", "fuel ".repeat(times))
            })
            .collect();
        let docs: Vec<KeywordDoc<'_>> = (0..60)
            .map(|i| {
                let (rank, caveats) = &markings[i % markings.len()];
                KeywordDoc {
                    passage_id: &ids[i],
                    doc_id: &doc_ids[i],
                    title: "Convoy",
                    publication: None,
                    section: "",
                    paragraphs: &[],
                    body: &bodies[i],
                    marking_rank: *rank,
                    caveats,
                }
            })
            .collect();
        index.add(&docs).unwrap();
        index.commit().unwrap();
        let tokens: Vec<String> = index.caveat_terms().unwrap().into_iter().collect();
        assert_eq!(
            tokens,
            vec!["NOFORN", "ORCON", "REL TO FRA, USA", "REL TO GBR, USA"]
        );
        let permitted = |i: usize, level: u32, allowed: &[&str]| {
            let (rank, caveats) = &markings[i % markings.len()];
            *rank <= level
                && caveats
                    .iter()
                    .all(|c| allowed.contains(&doctrina_types::caveat_token(c).as_str()))
        };
        let cases: [(&str, &[&str], u32, &[&str]); 5] = [
            ("UNCLASSIFIED", &[], 0, &[]),
            ("SECRET", &["REL TO GBR"], 3, &["REL TO GBR, USA"]),
            (
                "SECRET",
                &["REL TO USA"],
                3,
                &["REL TO GBR, USA", "REL TO FRA, USA"],
            ),
            ("TOP SECRET", &["NOFORN"], 4, &["NOFORN"]),
            ("TOP SECRET", &["orcon", "noforn"], 4, &["NOFORN", "ORCON"]),
        ];
        for (level, held, rank, allowed) in cases {
            let filter = resolved(level, held, &tokens);
            let hits = index.search("fuel convoy", 8, &filter).unwrap();
            assert_eq!(hits.len(), 8, "{level} {held:?}: k hits despite the filter");
            for (id, _) in &hits {
                let i: usize = id[1..id.len() - 2].parse().unwrap();
                assert!(permitted(i, rank, allowed), "{level} {held:?} got {id}");
            }
        }
        let unfiltered = index.search("fuel", 8, &unfiltered()).unwrap();
        assert!(
            unfiltered.iter().all(|(id, _)| {
                let i: usize = id[1..id.len() - 2].parse().unwrap();
                !permitted(i, 0, &[])
            }),
            "restricted passages rank first without a filter"
        );
    }

    #[test]
    fn an_index_with_another_schema_is_refused_and_can_be_recreated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut b = Schema::builder();
            b.add_text_field("passage_id", STRING | STORED);
            let old = Index::create_in_dir(dir.path(), b.build()).unwrap();
            let mut writer: IndexWriter = old.writer(WRITER_HEAP).unwrap();
            writer.commit().unwrap();
        }
        assert!(matches!(
            KeywordIndex::open(dir.path()),
            Err(IndexError::KeywordSchema { .. })
        ));
        let index = KeywordIndex::recreate(dir.path()).unwrap();
        assert_eq!(index.count(), 0);
        drop(index);
        KeywordIndex::open(dir.path()).unwrap();
    }

    #[test]
    fn exact_identifiers_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let index = KeywordIndex::open(dir.path()).unwrap();
        let paragraphs_a = vec!["1-4".to_string()];
        let paragraphs_b = vec!["4-1".to_string()];
        index
            .add(&[
                KeywordDoc {
                    passage_id: "a#0",
                    doc_id: "a",
                    title: "Sustainment Planning",
                    publication: Some("ATP 4-0.6"),
                    section: "Chapter 1",
                    paragraphs: &paragraphs_a,
                    body: "1-4. Fuel planning for the brigade.",
                    marking_rank: 0,
                    caveats: &[],
                },
                KeywordDoc {
                    passage_id: "b#0",
                    doc_id: "b",
                    title: "Other manual",
                    publication: Some("FM 1-4"),
                    section: "Chapter 4",
                    paragraphs: &paragraphs_b,
                    body: "4-1. Planning the brigade fuel 4 and 1 and 0 and 6.",
                    marking_rank: 3,
                    caveats: &[],
                },
            ])
            .unwrap();
        index.commit().unwrap();
        let hits = index.search("ATP 4-0.6", 10, &unfiltered()).unwrap();
        assert_eq!(hits[0].0, "a#0");
        let hits = index.search("paragraph 1-4", 10, &unfiltered()).unwrap();
        assert_eq!(hits[0].0, "a#0");
        let restricted = AccessFilter::for_tests(PassageFilter {
            max_marking_rank: Some(0),
            ..PassageFilter::default()
        });
        let hits = index
            .search("brigade fuel planning", 10, &restricted)
            .unwrap();
        assert_eq!(
            hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
            vec!["a#0"]
        );
        index.delete_doc("a");
        index.commit().unwrap();
        assert_eq!(index.count(), 1);
        assert_eq!(index.doc_ids().unwrap(), vec!["b".to_string()]);
        assert!(index.search("", 10, &unfiltered()).unwrap().is_empty());
    }
}

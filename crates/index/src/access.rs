//! [`AccessFilter`]: a search filter whose clearance has been resolved into what both
//! indexes filter on. Only [`Indexes::resolve_clearance`](crate::Indexes::resolve_clearance)
//! makes one, and both the keyword index and every [`VectorStore`](crate::VectorStore) take
//! nothing else, so no backend can be handed a filter whose clearance it would ignore.

use doctrina_types::PassageFilter;

/// A resolved filter: no clearance left, its level turned into a marking-rank bound and the
/// caveats it does not permit listed for exclusion.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessFilter {
    filter: PassageFilter,
    /// Whether the reader may see every document the indexes held when it was resolved
    /// (nothing was excluded by the clearance): only then may raw, corpus-dependent scores
    /// such as BM25 be shown to them.
    sees_everything: bool,
}

impl AccessFilter {
    /// Made by `Indexes::resolve_clearance` only.
    pub(crate) fn resolved(filter: PassageFilter, sees_everything: bool) -> Self {
        debug_assert!(
            filter.clearance.is_none(),
            "a resolved filter has no clearance"
        );
        Self {
            filter: PassageFilter {
                clearance: None,
                ..filter
            },
            sees_everything,
        }
    }

    /// What both indexes filter on.
    pub fn filter(&self) -> &PassageFilter {
        &self.filter
    }

    /// The publications to match, as every index stores them (normalised).
    pub fn publication_keys(&self) -> Vec<String> {
        self.filter
            .publications
            .iter()
            .map(|p| crate::keyword::normalise_publication(p))
            .collect()
    }

    /// The caveats to exclude, as every index stores them ([`caveat_token`] form).
    ///
    /// [`caveat_token`]: doctrina_types::caveat_token
    pub fn denied_caveat_tokens(&self) -> Vec<String> {
        self.filter
            .exclude_caveats
            .iter()
            .map(|c| doctrina_types::caveat_token(c))
            .collect()
    }

    pub fn sees_everything(&self) -> bool {
        self.sees_everything
    }

    /// Narrows the filter: never these documents either (superseded editions).
    pub fn exclude_docs(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if !self.filter.exclude_doc_ids.contains(&id) {
                self.filter.exclude_doc_ids.push(id);
            }
        }
    }

    /// The filter narrowed to these documents (within any it already names), or `None`
    /// when that leaves no document (an empty id list would mean every document).
    pub fn only_docs(&self, ids: &[String]) -> Option<Self> {
        let doc_ids: Vec<String> = if self.filter.doc_ids.is_empty() {
            ids.to_vec()
        } else {
            let wanted: std::collections::HashSet<&String> = ids.iter().collect();
            self.filter
                .doc_ids
                .iter()
                .filter(|id| wanted.contains(id))
                .cloned()
                .collect()
        };
        (!doc_ids.is_empty()).then(|| Self {
            filter: PassageFilter {
                doc_ids,
                ..self.filter.clone()
            },
            sees_everything: self.sees_everything,
        })
    }

    /// A filter resolved against nothing, for this crate's own tests of the indexes.
    #[cfg(test)]
    pub(crate) fn for_tests(filter: PassageFilter) -> Self {
        Self::resolved(filter, false)
    }
}

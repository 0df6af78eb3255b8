//! The drafting pipeline: retrieve for the section and task, assemble numbered sources,
//! fit the context window, stream the model's output (or compose an extractive draft),
//! resolve and verify every citation, and store the record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use doctrina_retrieve::Retriever;
use doctrina_types::{PassageFilter, SearchHit, SearchMode};

use crate::cite;
use crate::context::{self, Source};
use crate::inference::{ChatModel, InferenceError, estimate_tokens};
use crate::judge::Combination;
use crate::record::{
    DraftMode, DraftRecord, DraftStore, EvidenceSpan, SentenceRecord, StoreError, SupportBasis,
    Timings,
};
use crate::sections::SectionLibrary;
use crate::support::Support;
use crate::support::{SupportChecker, SupportError};

/// Headroom kept free in the context window beyond the completion's `max_tokens`.
const CONTEXT_MARGIN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("unknown section '{name}' (available: {available})")]
    UnknownSection { name: String, available: String },
    #[error("the task is empty")]
    EmptyTask,
    #[error("no passages were found for this task; index documents first")]
    NoSources,
    #[error("no inference server is configured; use --mode extractive")]
    NoServer,
    /// The model failed; the record (with whatever streamed) was stored as `draft_id`.
    #[error("{error} (draft {draft_id} stored as incomplete)")]
    Inference {
        draft_id: String,
        error: InferenceError,
    },
    #[error(transparent)]
    Retrieve(#[from] doctrina_retrieve::RetrieveError),
    #[error(transparent)]
    Support(#[from] SupportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl doctrina_types::Faulted for DraftError {
    fn fault(&self) -> doctrina_types::Fault {
        use doctrina_types::Fault;
        match self {
            Self::UnknownSection { .. } | Self::EmptyTask => Fault::Invalid,
            Self::NoSources => Fault::Unprocessable,
            Self::NoServer => Fault::Unavailable,
            Self::Inference { .. } => Fault::Upstream,
            Self::Retrieve(e) => e.fault(),
            Self::Support(e) => e.fault(),
            Self::Store(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::UnknownSection { .. } => "unknown_template",
            Self::EmptyTask => "empty_task",
            Self::NoSources => "no_sources",
            Self::NoServer => "no_inference_server",
            Self::Inference { .. } => "inference_failed",
            Self::Retrieve(e) => e.code(),
            Self::Support(e) => e.code(),
            Self::Store(_) => "store_failed",
        }
    }

    fn public_message(&self) -> String {
        match self {
            // The inference server's own message names the server and what went wrong
            // (timeout, refused connection, bad answer); it carries no secrets.
            Self::Inference { .. } | Self::NoServer => self.to_string(),
            Self::Retrieve(e) => e.public_message(),
            Self::Support(e) => e.public_message(),
            Self::Store(_) => "internal error".to_string(),
            _ => self.to_string(),
        }
    }
}

/// What [`Drafter::judge`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgeOutcome {
    /// `model@server` of the judge, when it was to be asked.
    pub judge: Option<String>,
    /// Questions put to the server (earlier judgements reused are not counted).
    pub asked: usize,
    /// Why the server could not judge (the first error).
    pub error: Option<String>,
    pub ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct DraftRequest {
    pub section: String,
    pub task: String,
    /// The officer's guidance for this section (commander's intent, constraints); given to
    /// the model with the task but not used for retrieval.
    pub guidance: Option<String>,
    pub mode: DraftMode,
    /// How many sources to give the model (before the context budget).
    pub sources: usize,
    pub filter: PassageFilter,
}

pub struct Drafter {
    pub retriever: Arc<Retriever>,
    pub chat: Option<Arc<dyn ChatModel>>,
    /// Whether LLM drafts are generated under a citation grammar.
    pub citation_grammar: doctrina_types::config::CitationGrammar,
    pub checker: SupportChecker,
    /// Whether the inference server judges each cited sentence with the check
    /// (`inference.support_judge`), combined by [`Drafter::combination`].
    pub support_judge: bool,
    pub combination: Combination,
    /// How many of each source's sentences (the best for the task) an LLM draft is given,
    /// numbered so that `[n.m]` cites one (`inference.source_sentences`); 0 gives whole
    /// passages, cited `[n]`.
    pub source_sentences: usize,
    pub sections: SectionLibrary,
    pub store: DraftStore,
}

impl std::fmt::Debug for Drafter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drafter").finish_non_exhaustive()
    }
}

impl Drafter {
    /// Retrieval for a section: the task, and the task with each of the template's queries,
    /// merged by reciprocal rank.
    fn retrieve(
        &self,
        queries: &[String],
        k: usize,
        filter: &PassageFilter,
    ) -> Result<Vec<SearchHit>, DraftError> {
        let mut scores: HashMap<String, (f32, SearchHit)> = HashMap::new();
        for query in queries {
            let hits = self
                .retriever
                .search(query, SearchMode::Hybrid, k.max(5), filter)?;
            for (rank, hit) in hits.into_iter().enumerate() {
                let entry = scores
                    .entry(hit.passage_id.clone())
                    .or_insert_with(|| (0.0, hit.clone()));
                entry.0 += 1.0 / (60.0 + rank as f32 + 1.0);
            }
        }
        let mut merged: Vec<(f32, SearchHit)> = scores.into_values().collect();
        merged.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.passage_id.cmp(&b.1.passage_id))
        });
        Ok(merged.into_iter().take(k).map(|(_, h)| h).collect())
    }

    /// Splits `output` into sentences, resolves their citations against `sources` and
    /// labels each sentence's support. Used on model output and on a reviewer's edits.
    pub fn verify(
        &self,
        output: &str,
        sources: &[Source],
    ) -> Result<(Vec<SentenceRecord>, Vec<usize>), DraftError> {
        let mut invalid = Vec::new();
        let mut sentences = Vec::new();
        for sentence in cite::parse(output, &context::citable(sources)) {
            for n in &sentence.invalid {
                if !invalid.contains(n) {
                    invalid.push(*n);
                }
            }
            let cited: Vec<&str> = sentence
                .citations
                .iter()
                .map(|n| sources[n - 1].hit.text.as_str())
                .collect();
            let verdict = self.checker.check(&sentence.claim, &cited)?;
            let evidence = verdict.evidence.map(|e| EvidenceSpan {
                n: sentence.citations[e.passage],
                char_start: e.char_start,
                char_end: e.char_end,
                text: e.text,
            });
            // Each citation's span: the sentence it names, or for `[n]` the source's
            // sentence that best matches the claim.
            let best: Vec<EvidenceSpan> = verdict
                .spans
                .into_iter()
                .zip(&sentence.citations)
                .map(|(e, &n)| EvidenceSpan {
                    n,
                    char_start: e.char_start,
                    char_end: e.char_end,
                    text: e.text,
                })
                .collect();
            let cited_spans = sentence
                .refs
                .iter()
                .filter_map(|r| match r.m {
                    Some(m) => sources[r.n - 1].sentence(m).map(|s| EvidenceSpan {
                        n: r.n,
                        char_start: s.char_start,
                        char_end: s.char_end,
                        text: s.text.clone(),
                    }),
                    None => best.iter().find(|e| e.n == r.n).cloned(),
                })
                .collect();
            sentences.push(SentenceRecord {
                text: sentence.text,
                citations: sentence.citations,
                refs: sentence.refs,
                invalid_refs: sentence.invalid_refs,
                support: verdict.support,
                score: verdict.score,
                features: verdict.features,
                evidence,
                cited_spans,
                basis: SupportBasis::Check,
                check: None,
                judgement: None,
            });
        }
        Ok((sentences, invalid))
    }

    /// Puts each cited sentence to the inference server as a second judge and combines its
    /// answer with the check's ([`Combination::label`]), when the judge is on and a server
    /// is configured. A sentence of `known` with the same text and citations keeps its
    /// judgement (a reviewer's edit re-asks only what changed). When the server cannot
    /// answer, it is not asked again for this text: the remaining sentences keep the
    /// check's label, capped at `weak`, and the error is returned.
    pub async fn judge(
        &self,
        sentences: &mut [SentenceRecord],
        sources: &[Source],
        known: &[SentenceRecord],
    ) -> JudgeOutcome {
        let Some(chat) = self.chat.as_ref().filter(|_| self.support_judge) else {
            return JudgeOutcome::default();
        };
        let started = Instant::now();
        let mut outcome = JudgeOutcome {
            judge: Some(format!("{}@{}", chat.model(), chat.server())),
            ..JudgeOutcome::default()
        };
        for sentence in sentences.iter_mut() {
            if sentence.citations.is_empty() || sentence.support == Support::Uncited {
                continue;
            }
            // The check's own label (kept from an earlier judgement, so judging is
            // idempotent).
            let check = sentence.check.unwrap_or(sentence.support);
            sentence.check = Some(check);
            let earlier = known
                .iter()
                .find(|k| k.text == sentence.text && k.citations == sentence.citations)
                .and_then(|k| k.judgement.clone());
            let judgement = match earlier {
                Some(j) => Ok(j),
                None if outcome.error.is_some() => Err(()),
                None => {
                    let cited: Vec<&str> = sentence
                        .citations
                        .iter()
                        .filter_map(|n| sources.get(n - 1))
                        .map(|s| s.hit.text.as_str())
                        .collect();
                    match crate::judge::judge(chat.as_ref(), &sentence.text, &cited).await {
                        Ok(j) => match j.verdict() {
                            Ok(_) => {
                                outcome.asked += 1;
                                Ok(j)
                            }
                            Err(unreadable) => {
                                outcome.error.get_or_insert(unreadable);
                                Err(())
                            }
                        },
                        Err(e) => {
                            outcome.error.get_or_insert(e.to_string());
                            Err(())
                        }
                    }
                }
            };
            match judgement {
                Ok(j) => {
                    sentence.support =
                        self.combination
                            .label(&sentence.features, sentence.score, check, &j);
                    sentence.basis = SupportBasis::CheckAndJudge;
                    sentence.judgement = Some(j);
                }
                Err(()) => {
                    sentence.support = crate::judge::without_judge(check);
                    sentence.basis = SupportBasis::JudgeUnavailable;
                    sentence.judgement = None;
                }
            }
        }
        if let Some(error) = &outcome.error {
            tracing::warn!(%error, "support judge unavailable; labels capped at weak");
        }
        outcome.ms = Some(started.elapsed().as_millis() as u64);
        outcome
    }

    /// Produces, verifies and stores a draft. `on_delta` sees streamed text as it arrives.
    pub async fn draft(
        &self,
        request: &DraftRequest,
        on_delta: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<DraftRecord, DraftError> {
        let started = Instant::now();
        let template = self
            .sections
            .get(&request.section)
            .ok_or_else(|| DraftError::UnknownSection {
                name: request.section.clone(),
                available: self
                    .sections
                    .all()
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
            .clone();
        let task = request.task.trim();
        if task.is_empty() {
            return Err(DraftError::EmptyTask);
        }
        let guidance = request
            .guidance
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty());
        let chat = match request.mode {
            DraftMode::Llm => Some(self.chat.clone().ok_or(DraftError::NoServer)?),
            DraftMode::Extractive => None,
        };

        let mut queries = vec![task.to_string()];
        queries.extend(template.queries.iter().map(|q| format!("{task} {q}")));
        let hits = self.retrieve(&queries, request.sources.max(1), &request.filter)?;
        if hits.is_empty() {
            return Err(DraftError::NoSources);
        }
        let mut sources: Vec<Source> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| Source::from_hit(i + 1, h))
            .collect();
        if chat.is_some() && self.source_sentences > 0 {
            self.give_best_sentences(&mut sources, task)?;
        }
        let retrieval_ms = started.elapsed().as_millis() as u64;

        // Fit the prompt into the context window, dropping the lowest-ranked sources.
        let mut messages = context::messages(&template, task, guidance, &sources);
        let mut dropped = Vec::new();
        let mut prompt_tokens;
        let mut token_count = "estimate".to_string();
        loop {
            let text = context::prompt_text(&messages);
            prompt_tokens = match &chat {
                Some(chat) => match chat.count_tokens(&text).await {
                    Some(n) => {
                        token_count = "server".to_string();
                        n
                    }
                    None => estimate_tokens(&text),
                },
                None => estimate_tokens(&text),
            };
            let budget = chat.as_ref().map_or(usize::MAX, |c| {
                c.context_tokens()
                    .saturating_sub(c.max_tokens() as usize + CONTEXT_MARGIN)
            });
            if prompt_tokens <= budget || sources.len() <= 1 {
                break;
            }
            if let Some(last) = sources.pop() {
                dropped.push(last.hit.passage_id);
            }
            messages = context::messages(&template, task, guidance, &sources);
        }
        let flagged: Vec<usize> = sources
            .iter()
            .filter(|s| s.injection_suspected)
            .map(|s| s.n)
            .collect();

        let (draft_id, created_at) = self.store.new_id()?;
        let mut record = DraftRecord {
            draft_id: draft_id.clone(),
            created_at,
            section: template.name.clone(),
            section_title: template.title.clone(),
            task: task.to_string(),
            mode: request.mode,
            text: String::new(),
            raw_output: String::new(),
            prompt: messages.clone(),
            prompt_tokens,
            token_count,
            citation_path: "parse".to_string(),
            server: chat.as_ref().map(|c| c.server().to_string()),
            model: chat
                .as_ref()
                .map_or_else(|| "extractive".to_string(), |c| c.model().to_string()),
            max_tokens: chat.as_ref().map_or(0, |c| c.max_tokens()),
            temperature: chat.as_ref().map_or(0.0, |c| c.temperature()),
            sources: Vec::new(),
            dropped_sources: dropped,
            flagged_sources: flagged,
            sentences: Vec::new(),
            invalid_citations: Vec::new(),
            support_judge: None,
            judge_error: None,
            incomplete: false,
            error: None,
            timings_ms: Timings {
                retrieval: retrieval_ms,
                ..Timings::default()
            },
        };

        let grammar = match (&chat, self.citation_grammar) {
            (Some(_), doctrina_types::config::CitationGrammar::Off) | (None, _) => None,
            (Some(_), doctrina_types::config::CitationGrammar::On) => Some(()),
            (Some(chat), doctrina_types::config::CitationGrammar::Auto) => {
                chat.supports_grammar().await.then_some(())
            }
        }
        .map(|()| {
            crate::cite::grammar(
                &context::citable(&sources),
                &template.title,
                &template.subheadings,
                crate::cite::max_sentence_units(&template.language),
            )
        });
        if grammar.is_some() {
            record.citation_path = "grammar".to_string();
        }
        let outcome = match &chat {
            Some(chat) => match &grammar {
                Some(grammar) => {
                    chat.complete_constrained(&messages, grammar, on_delta)
                        .await
                }
                None => chat.complete(&messages, on_delta).await,
            }
            .map(|c| {
                record.model = c.model.clone();
                record.timings_ms.first_token = c.first_token_ms;
                record.timings_ms.completion_tokens = c.completion_tokens;
                record.timings_ms.tokens_per_second = c.tokens_per_second;
                // Kept as written (repeats included, a cut sentence included), so the
                // officer sees what the model did; marked so it is not taken for a
                // finished draft.
                let stopped = match c.finish_reason.as_deref() {
                    Some(crate::inference::FINISH_REPETITION) => {
                        Some(crate::inference::REPETITION_STOPPED)
                    }
                    Some(crate::inference::FINISH_LENGTH) => Some(crate::inference::LENGTH_STOPPED),
                    _ => None,
                };
                if let Some(reason) = stopped {
                    record.incomplete = true;
                    record.error = Some(reason.to_string());
                }
                c.text
            }),
            None => {
                let text = self.extractive(task, &sources, &template.language)?;
                on_delta(&text);
                Ok(text)
            }
        };
        let failure = match outcome {
            Ok(text) => {
                record.raw_output = text;
                None
            }
            Err(error) => {
                record.raw_output = error.partial().to_string();
                record.incomplete = true;
                record.error = Some(error.to_string());
                Some(error)
            }
        };
        // What `DraftRecord::output` gives once the sources are in the record.
        let output = context::strip_source_labels(&record.raw_output, &sources);
        record.text = cite::render(&output, &context::citable(&sources));
        let (mut sentences, invalid) = self.verify(&output, &sources)?;
        // Extractive drafts are quotes of their sources: the check alone labels them.
        if request.mode == DraftMode::Llm {
            let judged = self.judge(&mut sentences, &sources, &[]).await;
            record.support_judge = judged.judge;
            record.judge_error = judged.error;
            record.timings_ms.judge = judged.ms;
        }
        record.sentences = sentences;
        record.invalid_citations = invalid;
        record.sources = sources;
        record.timings_ms.total = started.elapsed().as_millis() as u64;
        self.store.save(&record)?;
        match failure {
            None => Ok(record),
            Some(error) => Err(DraftError::Inference { draft_id, error }),
        }
    }

    /// Marks each source's [`Drafter::source_sentences`] sentences most similar to the task
    /// as given (in passage order), so the prompt carries short, numbered sources.
    fn give_best_sentences(&self, sources: &mut [Source], task: &str) -> Result<(), DraftError> {
        let texts: Vec<&str> = sources
            .iter()
            .flat_map(|s| s.sentences.iter().map(|x| x.text.as_str()))
            .collect();
        let similarities = self.checker.similarities(task, &texts)?;
        let mut offset = 0;
        for source in sources.iter_mut() {
            let count = source.sentences.len();
            let mut ranked: Vec<(f32, usize)> = similarities[offset..offset + count]
                .iter()
                .zip(&source.sentences)
                .map(|(sim, s)| (*sim, s.m))
                .collect();
            offset += count;
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut given: Vec<usize> = ranked
                .into_iter()
                .take(self.source_sentences)
                .map(|(_, m)| m)
                .collect();
            given.sort_unstable();
            source.given = given;
        }
        Ok(())
    }

    /// An extractive draft: the sentence of each top source that best matches the task,
    /// quoted and cited. Deterministic; needs no inference server.
    /// The notice heading it is in the section's language.
    fn extractive(
        &self,
        task: &str,
        sources: &[Source],
        language: &str,
    ) -> Result<String, DraftError> {
        let mut text = String::from(match language {
            "ko" => {
                "# 발췌 초안: 출처에서 인용한 것이며 생성한 글이 아니다. 사용 전에 검토하고 고칠 것.\n\n"
            }
            _ => {
                "# EXTRACTIVE DRAFT: quoted from the sources, not generated. Review and edit before use.\n\n"
            }
        });
        for source in sources.iter().take(6) {
            let (_, evidence) = self.checker.features(task, &[source.hit.text.as_str()])?;
            let Some(evidence) = evidence else { continue };
            let quote = evidence.text.trim().trim_end_matches(['.', ';', ':']);
            text.push_str(&format!("- \"{quote}.\" [{}]\n", source.n));
        }
        Ok(text)
    }
}

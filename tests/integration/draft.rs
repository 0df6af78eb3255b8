//! Drafting: extractive mode with no server, a real llama-server draft, citation checks
//! through the whole pipeline, and inference faults (fake server) that end in time with a
//! clear message and keep what streamed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use doctrina_draft::cite::Ref;
use doctrina_draft::inference::InferenceError;
use doctrina_draft::record::SupportBasis;
use doctrina_draft::support::Support;
use doctrina_draft::{DraftError, DraftMode, DraftRecord, DraftRequest};
use doctrina_tests::servers::{FakeServer, Fault, LlamaServer, free_port};
use doctrina_tests::{chat, drafter};
use doctrina_types::PassageFilter;
use doctrina_types::config::InferenceConfig;

fn request(mode: DraftMode) -> DraftRequest {
    DraftRequest {
        section: "opord-sustainment".to_string(),
        task: "Sustain the battalion attack: plan bulk fuel and ammunition resupply".to_string(),
        guidance: None,
        mode,
        sources: 5,
        filter: PassageFilter::default(),
    }
}

/// Every citation shown resolves to a source the model was given.
fn assert_citations_resolve(record: &DraftRecord) {
    let n = record.sources.len();
    for s in &record.sentences {
        for c in &s.citations {
            assert!((1..=n).contains(c), "citation [{c}] outside 1..={n}");
        }
        if s.citations.is_empty() {
            assert_eq!(s.support, Support::Uncited, "{s:?}");
        }
        if let Some(e) = &s.evidence {
            let source = &record.sources[e.n - 1];
            let span: String = source
                .hit
                .text
                .chars()
                .skip(e.char_start)
                .take(e.char_end - e.char_start)
                .collect();
            assert_eq!(
                span, e.text,
                "evidence is the exact span of the cited source"
            );
        }
    }
    for bad in &record.invalid_citations {
        assert!(
            !record.text.contains(&format!("[{bad}]")),
            "invalid [{bad}] still shown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractive_draft_needs_no_server() {
    let store = tempfile::tempdir().unwrap();
    // No inference server at all.
    let drafter = drafter(None, store.path());
    let record = drafter
        .draft(&request(DraftMode::Extractive), &|_| {})
        .await
        .expect("extractive draft");
    assert!(
        record.text.starts_with("# EXTRACTIVE DRAFT"),
        "clearly labelled"
    );
    assert!(!record.sources.is_empty() && record.sentences.len() >= 3);
    assert!(record.sentences.iter().all(|s| s.citations.len() == 1));
    let supported = record
        .sentences
        .iter()
        .filter(|s| s.support == Support::Supported)
        .count();
    assert_eq!(
        supported,
        record.sentences.len(),
        "quotes are supported by their sources: {record:#?}"
    );
    assert_citations_resolve(&record);
    // Deterministic, and stored exactly as produced.
    let again = drafter
        .draft(&request(DraftMode::Extractive), &|_| {})
        .await
        .unwrap();
    assert_eq!(again.text, record.text);
    assert_eq!(
        drafter.store.get(&record.draft_id).unwrap().as_ref(),
        Some(&record)
    );
    // LLM mode without a server is a clear error, not a hang.
    let err = drafter
        .draft(&request(DraftMode::Llm), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, DraftError::NoServer), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_draft_against_the_real_llama_server() {
    // The default model of `make run`: the small test model does not follow the prompt
    // (it writes `d,e,f,g,...`), so nothing below about cited sentences would be checked.
    let server = tokio::task::spawn_blocking(LlamaServer::start_default_model)
        .await
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    // Measured alone on 2 cores with one thread: first token 25 s, 15 tokens/s, 59 s in
    // all; the bounds leave room for the other tests that share the cores.
    let chat = chat(&server.url, |c| {
        c.max_tokens = 160;
        c.first_token_timeout_ms = 240_000;
        c.total_timeout_ms = 600_000;
    });
    chat.health().await.expect("llama-server is healthy");
    let mut drafter = drafter(Some(chat), store.path());
    drafter.support_judge = true;
    drafter.source_sentences = 3;
    let deltas = AtomicUsize::new(0);
    let record = drafter
        .draft(&request(DraftMode::Llm), &|_| {
            deltas.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .expect("llm draft");
    assert!(deltas.load(Ordering::SeqCst) > 1, "the draft streamed");
    assert!(!record.raw_output.is_empty());
    assert_eq!(record.server.as_deref(), Some(server.url.as_str()));
    assert_eq!(
        record.token_count, "server",
        "llama-server counted the prompt tokens"
    );
    assert!(record.prompt_tokens > 0 && record.prompt_tokens < 4096);
    assert!(record.timings_ms.first_token.is_some());
    // llama-server takes grammars: the draft was generated under the citation grammar, so
    // no citation can name a source that was not given.
    assert_eq!(record.citation_path, "grammar");
    assert!(
        record.invalid_citations.is_empty(),
        "{:?}",
        record.invalid_citations
    );
    // The server's token count and generation speed are recorded.
    assert!(
        record.timings_ms.completion_tokens.is_some_and(|n| n > 0),
        "{:?}",
        record.timings_ms
    );
    assert!(
        record.timings_ms.tokens_per_second.is_some_and(|r| r > 0.0),
        "{:?}",
        record.timings_ms
    );
    assert!(!record.sources.is_empty());
    assert_citations_resolve(&record);
    // The server judged every cited sentence with the check: each judgement is a closed
    // answer with the first token's probabilities, and `supported` is shown only where
    // the judge and the check agree.
    assert!(
        record
            .support_judge
            .as_deref()
            .is_some_and(|j| j.ends_with(&server.url)),
        "{:?}",
        record.support_judge
    );
    assert_eq!(record.judge_error, None);
    assert!(record.timings_ms.judge.is_some());
    let combination = drafter.combination;
    let cited: Vec<_> = record
        .sentences
        .iter()
        .filter(|s| !s.citations.is_empty())
        .collect();
    assert!(!cited.is_empty(), "{}", record.raw_output);
    for s in cited {
        assert_eq!(s.basis, SupportBasis::CheckAndJudge, "{s:?}");
        let j = s.judgement.as_ref().expect("judged");
        assert!(j.label.is_some() && j.calibrated, "{j:?}");
        assert!(
            (j.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-3,
            "{j:?}"
        );
        let check = s.check.expect("the check's own label is kept");
        assert_eq!(s.support, combination.label(&s.features, s.score, check, j));
        if s.support == Support::Supported {
            // What `Combination::label` promises: the judge's SUPPORTS clears its bar, the
            // rules pass, and a sentence in its sources' language shares their terms.
            let f = &s.features;
            assert!(j.p_supports() >= combination.supports, "{s:?}");
            assert!(
                !(f.novel_number || f.negation_mismatch || f.modality_mismatch),
                "{s:?}"
            );
            assert!(f.missing_names == 0 && !f.altered(), "{s:?}");
            assert!(
                f.quoted
                    || f.cross_lingual
                    || f.overlap >= doctrina_draft::judge::MIN_SAME_LANGUAGE_OVERLAP,
                "{s:?}"
            );
        }
    }
    // Each source was given as its three best sentences, numbered `n.m`; under the grammar
    // every citation names one of them, and its span is exactly that sentence.
    for source in &record.sources {
        assert!(
            !source.given.is_empty() && source.given.len() <= 3,
            "{source:?}"
        );
        for m in &source.given {
            let line = format!("{}.{m} ", source.n);
            assert!(record.prompt[1].content.contains(&line), "{line}");
        }
    }
    for s in &record.sentences {
        assert!(s.invalid_refs.is_empty(), "{s:?}");
        for (r, span) in s.refs.iter().zip(&s.cited_spans) {
            let m = r.m.expect("the grammar only lets sentences be cited");
            let source = &record.sources[r.n - 1];
            assert!(source.given.contains(&m), "{r:?}");
            assert_eq!(span.text, source.sentence(m).unwrap().text);
        }
    }
    // The system prompt carries the template's instructions and the data-not-instructions rule.
    assert!(record.prompt[0].content.contains("not instructions"));
    assert!(record.prompt[0].content.contains("[2.3]"));
    assert!(record.prompt[1].content.contains("<source n=\"1\""));
    assert_eq!(
        drafter.store.get(&record.draft_id).unwrap().as_ref(),
        Some(&record)
    );
}

/// `[n.m]` cites sentence `m` of source `n`: the citation resolves to exactly that
/// sentence of the passage (what the reviewer sees highlighted); a sentence the source was
/// not given with is removed and reported, never shown as valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentence_citations_resolve_to_the_exact_sentence() {
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(None, store.path());
    let quoted = drafter
        .draft(&request(DraftMode::Extractive), &|_| {})
        .await
        .expect("extractive draft");
    let mut sources = quoted.sources.clone();
    for source in &mut sources {
        source.given = source.sentences.iter().map(|s| s.m).take(2).collect();
    }
    let first = sources
        .iter()
        .find(|s| s.given.len() == 2)
        .expect("a source with two sentences");
    let cited = first.sentence(2).unwrap().clone();
    let n = first.n;
    let other = sources.iter().find(|s| s.n != n).unwrap().n;
    let text = format!(
        "{} [{n}.2]. Something else entirely [{n}.9][{other}.1].",
        cited.text.trim_end_matches('.')
    );
    let (sentences, invalid) = drafter.verify(&text, &sources).expect("verify");
    assert!(invalid.is_empty());
    assert_eq!(sentences.len(), 2, "{sentences:#?}");
    let s = &sentences[0];
    assert_eq!(s.refs, vec![Ref { n, m: Some(2) }]);
    assert_eq!(s.cited_spans.len(), 1);
    let span = &s.cited_spans[0];
    assert_eq!(span.text, cited.text);
    let passage: String = first
        .hit
        .text
        .chars()
        .skip(span.char_start)
        .take(span.char_end - span.char_start)
        .collect();
    assert_eq!(
        passage, cited.text,
        "the span is the sentence's exact place"
    );
    assert_eq!(s.support, Support::Supported, "the sentence itself: {s:?}");
    let s = &sentences[1];
    assert_eq!(s.invalid_refs, vec![Ref { n, m: Some(9) }]);
    assert_eq!(
        s.refs,
        vec![Ref {
            n: other,
            m: Some(1)
        }]
    );
    assert!(!s.text.contains(".9]"), "{}", s.text);
    assert_eq!(
        doctrina_draft::cite::render(&text, &doctrina_draft::context::citable(&sources)),
        text.replace(&format!("[{n}.9]"), ""),
    );
}

/// A judge that answers garbage (a stream where one JSON answer was asked for, or prose
/// instead of SUPPORTS / PARTLY / NO) leaves every cited sentence with the check's label,
/// never `supported`, says why in the record, and is asked only once per draft.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_that_cannot_answer_never_leaves_a_sentence_supported() {
    let quote = "Fuel is pushed forward every night [1]. Ammunition follows the fuel [2]. \
                 Rations come with the mail [3].";
    for (fault, stream) in [
        (Fault::Reply(quote.to_string()), true),
        (Fault::JsonReply(quote.to_string()), false),
    ] {
        let server = FakeServer::start(fault).await;
        let store = tempfile::tempdir().unwrap();
        let mut drafter = drafter(Some(chat(&server.url, |c| c.stream = stream)), store.path());
        drafter.support_judge = true;
        let record = drafter
            .draft(&request(DraftMode::Llm), &|_| {})
            .await
            .expect("the draft itself succeeds");
        let error = record
            .judge_error
            .clone()
            .expect("the judge's failure is recorded");
        assert!(
            error.contains(&server.url) || error.contains("judge answered"),
            "{error}"
        );
        let cited: Vec<_> = record
            .sentences
            .iter()
            .filter(|s| !s.citations.is_empty())
            .collect();
        assert_eq!(cited.len(), 3, "{:#?}", record.sentences);
        for s in cited {
            assert_eq!(s.basis, SupportBasis::JudgeUnavailable, "{s:?}");
            assert_ne!(s.support, Support::Supported, "{s:?}");
            assert!(s.judgement.is_none());
        }
        // One request for the draft, one for the first judgement; the rest were not asked.
        assert_eq!(server.request_count(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_citations_are_removed_and_reported() {
    let server = FakeServer::start(Fault::Reply(
        "## a. Logistics\nThe FSC carries fuel forward [1]. Class V is pushed nightly [2][99]. Rations come from the moon [42].\nNo source covers signal.".to_string(),
    ))
    .await;
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(Some(chat(&server.url, |_| {})), store.path());
    let record = drafter
        .draft(&request(DraftMode::Llm), &|_| {})
        .await
        .expect("draft");
    assert_eq!(record.invalid_citations, vec![99, 42]);
    assert!(!record.text.contains("[99]") && !record.text.contains("[42]"));
    assert!(record.text.contains("[2]"));
    let labels: Vec<Support> = record.sentences.iter().map(|s| s.support).collect();
    assert_eq!(labels.len(), 4, "{:#?}", record.sentences);
    assert_eq!(
        labels[2],
        Support::Uncited,
        "only an invalid citation: uncited"
    );
    assert_eq!(labels[3], Support::Uncited);
    assert_citations_resolve(&record);
}

async fn expect_failure(
    fault: Fault,
    tweak: impl FnOnce(&mut InferenceConfig),
) -> (InferenceError, DraftRecord, Duration) {
    let server = FakeServer::start(fault).await;
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(Some(chat(&server.url, tweak)), store.path());
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        drafter.draft(&request(DraftMode::Llm), &|_| {}),
    )
    .await
    .expect("a fault must never hang");
    let elapsed = started.elapsed();
    let Err(DraftError::Inference { draft_id, error }) = outcome else {
        panic!("expected an inference error, got {outcome:?}");
    };
    assert!(
        error.to_string().contains(&server.url),
        "the message names the server: {error}"
    );
    let record = drafter
        .store
        .get(&draft_id)
        .unwrap()
        .expect("the failed draft is stored");
    assert!(record.incomplete);
    assert_eq!(record.error.as_deref(), Some(error.to_string().as_str()));
    (error, record, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_reported() {
    let server = FakeServer::start(Fault::ServerError).await;
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(Some(chat(&server.url, |c| c.retries = 2)), store.path());
    let err = drafter
        .draft(&request(DraftMode::Llm), &|_| {})
        .await
        .unwrap_err();
    let DraftError::Inference { error, .. } = err else {
        panic!("{err}")
    };
    assert!(
        matches!(error, InferenceError::Http { status: 500, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("model crashed"));
    assert_eq!(server.request_count(), 3, "one try and two retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_clear_error() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(Some(chat(&url, |c| c.retries = 1)), store.path());
    let err = drafter
        .draft(&request(DraftMode::Llm), &|_| {})
        .await
        .unwrap_err();
    let DraftError::Inference { error, .. } = err else {
        panic!("{err}")
    };
    assert!(
        matches!(error, InferenceError::Unreachable { .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_token_times_out() {
    let (error, record, elapsed) =
        expect_failure(Fault::SlowFirstToken(Duration::from_secs(20)), |c| {
            c.first_token_timeout_ms = 1_000
        })
        .await;
    assert!(
        matches!(
            error,
            InferenceError::FirstTokenTimeout {
                timeout_ms: 1_000,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        elapsed < Duration::from_secs(15),
        "ended by its timeout, not the server"
    );
    assert!(record.raw_output.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_keeps_what_arrived() {
    let (error, record, _) = expect_failure(Fault::CutStream, |_| {}).await;
    assert!(matches!(error, InferenceError::StreamCut { .. }), "{error}");
    assert_eq!(record.raw_output, "The BSB moves fuel forward [1].");
    assert_eq!(
        record.sentences.len(),
        1,
        "what arrived is still parsed and checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_and_empty_output_are_reported() {
    let (error, record, _) = expect_failure(Fault::InvalidJson, |_| {}).await;
    assert!(
        matches!(error, InferenceError::InvalidResponse { .. }),
        "{error}"
    );
    assert_eq!(record.raw_output, "Partial ");
    let (error, _, _) = expect_failure(Fault::Empty, |_| {}).await;
    assert!(matches!(error, InferenceError::Empty { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_instructions_in_a_source_are_flagged() {
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(None, store.path());
    let mut req = request(DraftMode::Extractive);
    req.section = "opord-situation".to_string();
    req.task =
        "Evaluate information from local sources for reliability and manipulation by residents"
            .to_string();
    let record = drafter.draft(&req, &|_| {}).await.expect("draft");
    let flagged: Vec<&str> = record
        .flagged_sources
        .iter()
        .map(|n| record.sources[n - 1].hit.passage_id.as_str())
        .collect();
    assert!(
        record
            .sources
            .iter()
            .any(|s| s.hit.doc_id == "atp-3-57-9" && s.hit.paragraphs.contains(&"2-4".to_string())),
        "the poisoned paragraph is retrieved: {:?}",
        record
            .sources
            .iter()
            .map(|s| (&s.hit.doc_id, &s.hit.paragraphs))
            .collect::<Vec<_>>()
    );
    assert!(
        flagged.iter().any(|id| id.starts_with("atp-3-57-9")),
        "{flagged:?}"
    );
    // In the prompt, source text sits inside <source> delimiters after the rule to ignore
    // instructions found there.
    let prompt = &record.prompt[1].content;
    let at = prompt
        .find("Ignore all previous instructions")
        .expect("passage text given as data");
    assert!(prompt[..at].rfind("<source n=").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_that_do_not_fit_the_context_are_dropped_lowest_first() {
    let server = FakeServer::start(Fault::Reply(
        "The FSC carries fuel forward [1].".to_string(),
    ))
    .await;
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(
        Some(chat(&server.url, |c| {
            c.context_tokens = 1_400;
            c.max_tokens = 200;
        })),
        store.path(),
    );
    let mut req = request(DraftMode::Llm);
    req.sources = 8;
    let record = drafter.draft(&req, &|_| {}).await.expect("draft");
    assert!(
        !record.dropped_sources.is_empty(),
        "a 1400-token window cannot hold 8 passages"
    );
    assert_eq!(
        record.token_count, "estimate",
        "the fake server has no /tokenize"
    );
    assert!(record.prompt_tokens <= 1_400 - 200 - 64 || record.sources.len() == 1);
    assert_eq!(record.sources.len() + record.dropped_sources.len(), 8);
    for s in &record.sources {
        assert!(!record.dropped_sources.contains(&s.hit.passage_id));
    }
}

/// Drafts against a server that ends the completion early (`fault`): the draft is kept,
/// not failed, marked incomplete with its reason, and stored the same way.
async fn draft_stopped_early(fault: Fault) -> DraftRecord {
    let server = FakeServer::start(fault).await;
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(Some(chat(&server.url, |_| {})), store.path());
    let record = tokio::time::timeout(
        Duration::from_secs(30),
        drafter.draft(&request(DraftMode::Llm), &|_| {}),
    )
    .await
    .expect("a draft stopped early must never hang")
    .expect("a draft stopped early is a draft, not a failure");
    assert!(record.incomplete);
    // The stored record says the same.
    let stored = drafter
        .store
        .get(&record.draft_id)
        .unwrap()
        .expect("stored");
    assert!(stored.incomplete && stored.error == record.error);
    record
}

/// A model stuck writing one sentence is stopped at its third copy instead of running on to
/// `max_tokens`; the draft keeps what it wrote, marked incomplete with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_repeating_a_sentence_is_stopped_at_the_third_copy() {
    let record = draft_stopped_early(Fault::Loop(
        "The FSC carries fuel forward [1]. ".to_string(),
    ))
    .await;
    assert_eq!(
        record
            .raw_output
            .matches("The FSC carries fuel forward")
            .count(),
        3,
        "{}",
        record.raw_output
    );
    let error = record.error.as_deref().expect("the reason is recorded");
    assert!(error.contains("same sentence 3 times"), "{error}");
    // The server never sent its token figures: the record counts what the stream delivered
    // (three events of one sentence each here; one token each from llama-server).
    assert_eq!(record.timings_ms.completion_tokens, Some(3));
    assert!(record.timings_ms.tokens_per_second.is_some());
    // What was written is verified like any draft.
    assert_eq!(record.sentences.len(), 3);
    assert!(record.invalid_citations.is_empty());
}

/// A draft the server ends at its token limit is kept, and marked: its last sentence is
/// most likely cut, and it must not pass for a finished draft.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_ended_at_the_token_limit_is_marked_incomplete() {
    let record = draft_stopped_early(Fault::Truncated(
        "The FSC carries fuel forward [1]. The BSB".to_string(),
    ))
    .await;
    assert!(
        record.raw_output.ends_with("The BSB"),
        "{}",
        record.raw_output
    );
    assert_eq!(
        record.incomplete_reason().as_deref(),
        Some(doctrina_draft::inference::LENGTH_STOPPED)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_answers_work_too() {
    let server = FakeServer::start(Fault::JsonReply(
        "The FSC carries fuel forward [1].".to_string(),
    ))
    .await;
    let store = tempfile::tempdir().unwrap();
    let drafter = drafter(Some(chat(&server.url, |c| c.stream = false)), store.path());
    let record = drafter
        .draft(&request(DraftMode::Llm), &|_| {})
        .await
        .expect("draft");
    assert_eq!(record.raw_output, "The FSC carries fuel forward [1].");
    assert_eq!(record.model, "fake");
    assert_eq!(record.sentences[0].citations, vec![1]);
    // A server without grammar support (no llama-server `/props`) drafts on the parse,
    // check and flag path, and the record says so.
    assert_eq!(record.citation_path, "parse");
}

/// `eval drafts --judge llm`: the real llama-server judges each ALCE question (one per
/// judgement). The small base model's verdicts are not meaningful; the mechanism is: every
/// judgement is asked and either parsed or counted as a judge error, and with the server
/// down every judgement is an error naming the server, while the run still reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inference_server_can_judge_citations() {
    use doctrina_eval::drafts::{Judge, evaluate_filtered};
    let server = tokio::task::spawn_blocking(LlamaServer::start)
        .await
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let judge = chat(&server.url, |c| {
        c.max_tokens = 4;
        c.first_token_timeout_ms = 60_000;
        c.total_timeout_ms = 120_000;
    });
    let mut drafter = drafter(Some(judge), store.path());

    // Drafting's second judge on the same server: each cited sentence of a text is put to
    // it, answered under the grammar of SUPPORTS / PARTLY / NO with the first token's
    // probabilities, and combined with the check; asked again with those judgements known
    // (a reviewer's edit that changed nothing), nothing is re-asked.
    drafter.support_judge = true;
    let quoted = drafter
        .draft(&request(DraftMode::Extractive), &|_| {})
        .await
        .expect("extractive draft");
    let (mut sentences, _) = drafter
        .verify(&quoted.raw_output, &quoted.sources)
        .expect("verify");
    let cited = sentences.iter().filter(|s| !s.citations.is_empty()).count();
    assert!(cited > 0, "{sentences:#?}");
    let outcome = drafter.judge(&mut sentences, &quoted.sources, &[]).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.asked, cited);
    assert!(outcome.judge.unwrap().ends_with(&server.url));
    for s in sentences.iter().filter(|s| !s.citations.is_empty()) {
        assert_eq!(s.basis, SupportBasis::CheckAndJudge, "{s:?}");
        let j = s.judgement.as_ref().expect("judged");
        assert!(j.calibrated && j.label.is_some(), "{j:?}");
        assert!(
            ["SUPPORTS", "PARTLY", "NO"].contains(&j.answer.trim()),
            "{j:?}"
        );
        assert!(
            (j.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-3,
            "{j:?}"
        );
        let check = s.check.expect("the check's label is kept");
        assert_eq!(
            s.support,
            drafter.combination.label(&s.features, s.score, check, j)
        );
    }
    let known = sentences.clone();
    let again = drafter.judge(&mut sentences, &quoted.sources, &known).await;
    assert_eq!(again.asked, 0, "unchanged sentences keep their judgement");
    assert_eq!(sentences, known);
    drafter.support_judge = false;

    let questions: Vec<_> = doctrina_tests::questions().into_iter().take(2).collect();
    let report = evaluate_filtered(
        &drafter,
        &questions,
        "doctrine-answer",
        DraftMode::Extractive,
        3,
        &PassageFilter::default(),
        Judge::Llm,
        &|_, _| {},
    )
    .await
    .expect("evaluation with the LLM judge");
    assert!(report.judge.starts_with("llm:"), "{}", report.judge);
    assert!(report.judge.ends_with(&server.url), "{}", report.judge);
    assert!(report.statements > 0);
    // Every cited statement was put to the judge at least once, and every answer was either
    // a verdict or a counted error.
    let cited = report
        .per_question
        .iter()
        .flat_map(|q| &q.statements)
        .filter(|s| !s.citations.is_empty())
        .count();
    assert!(report.judgements >= cited && cited > 0, "{report:?}");
    assert!(report.judge_errors <= report.judgements, "{report:?}");
    eprintln!(
        "llm judge: {} judgements, {} errors ({:?}), recall {:.3}",
        report.judgements, report.judge_errors, report.judge_error, report.citation_recall
    );

    // The server gone: every judgement fails clearly, nothing is credited.
    let dead = chat(&format!("http://127.0.0.1:{}", free_port()), |c| {
        c.retries = 0
    });
    let store = tempfile::tempdir().unwrap();
    let drafter = doctrina_tests::drafter(Some(dead), store.path());
    let report = evaluate_filtered(
        &drafter,
        &questions,
        "doctrine-answer",
        DraftMode::Extractive,
        3,
        &PassageFilter::default(),
        Judge::Llm,
        &|_, _| {},
    )
    .await
    .expect("the run still reports");
    assert!(report.judgements > 0);
    assert_eq!(report.judge_errors, report.judgements, "{report:?}");
    assert_eq!(report.citation_recall, 0.0);
    assert!(report.judge_error.unwrap().contains("127.0.0.1"));
}

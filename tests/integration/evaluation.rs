//! The evaluator's side of the web app on the real parts (the bundled corpus indexed with
//! the real embedder, the real server): retrieval runs whose figures equal
//! `doctrina_eval::evaluate_retrieval` under the same clearance, extractive draft runs,
//! two evaluators scoring the same citations with the kappa the page shows, JSON and CSV
//! export, comparison of two runs, role denial, and runs hidden from a lower clearance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use doctrina_audit::AuditLog;
use doctrina_tests::{app_state, corpus_index, drafter, questions, serve_state, signed_in};
use doctrina_types::{Clearance, PassageFilter, SearchMode};
use serde_json::{Value, json};

struct App {
    base: String,
    server: Option<doctrina_web::Server>,
    audit: Arc<AuditLog>,
    _dir: tempfile::TempDir,
}

impl App {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = app_state(drafter(None, dir.path()), dir.path());
        let audit = state.audit.clone();
        let server = serve_state(state).await;
        Self {
            base: format!("http://{}", server.addr),
            server: Some(server),
            audit,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }

    fn actions(&self) -> Vec<(String, String, String)> {
        self.audit
            .entries(0, 10_000)
            .unwrap()
            .into_iter()
            .map(|e| (e.event.actor, e.event.action, e.event.outcome))
            .collect()
    }
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = client.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get_text(client: &reqwest::Client, url: String) -> (u16, String) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Starts a run through the API; its id.
async fn start_run(client: &reqwest::Client, base: &str, body: Value) -> i64 {
    let (status, run) = post(client, format!("{base}/api/eval/runs"), body).await;
    assert_eq!(status, 202, "{run}");
    assert_eq!(run["status"], "queued", "{run}");
    run["id"].as_i64().unwrap()
}

/// Polls the run list until run `id` ends, then returns its full export (JSON).
async fn finished(client: &reqwest::Client, base: &str, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let list: Value = client
            .get(format!("{base}/api/eval/runs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let run = list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("run {id} is not listed: {list}"));
        assert!(
            run.get("result").is_none(),
            "the list carries no results: {run}"
        );
        match run["status"].as_str().unwrap() {
            "done" => break,
            "failed" => panic!("run {id} failed: {run}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "run {id} did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = client
        .get(format!("{base}/api/eval/runs/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn clearance_of(name: &str) -> Clearance {
    let (_, _, level, caveats) = doctrina_tests::ACCOUNTS
        .iter()
        .find(|a| a.0 == name)
        .unwrap();
    Clearance {
        level: level.to_string(),
        caveats: caveats.iter().map(|c| c.to_string()).collect(),
    }
}

fn close(a: &Value, b: f64, what: &str) {
    let a = a
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {a}"));
    assert!((a - b).abs() < 1e-9, "{what}: web {a} vs library {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieval_runs_match_the_library_are_exported_compared_and_hidden_above_clearance() {
    let app = App::start().await;
    let base = app.base.clone();
    let evaluator = signed_in(&base, "evaluator").await;

    // The bundled set in every mode, under the evaluator's clearance.
    let id = start_run(
        &evaluator,
        &base,
        json!({"kind": "retrieval", "label": "bundled, all modes"}),
    )
    .await;
    let export = finished(&evaluator, &base, id).await;
    let run = &export["run"];
    assert_eq!(run["spec"]["question_set"], "bundled");
    let result = &run["result"];
    assert_eq!(result["kind"], "retrieval");
    let qs = questions();
    assert_eq!(result["questions"], qs.len());

    let expected = doctrina_eval::evaluate_retrieval(
        &corpus_index().retriever(),
        &qs,
        &[SearchMode::Bm25, SearchMode::Dense, SearchMode::Hybrid],
        10,
        &PassageFilter {
            clearance: Some(clearance_of("evaluator")),
            ..PassageFilter::default()
        },
    )
    .unwrap();
    for (mode, m) in &expected.modes {
        let got = &result["modes"][mode];
        close(&got["recall@1"], m.recall_1, &format!("{mode} recall@1"));
        close(&got["recall@5"], m.recall_5, &format!("{mode} recall@5"));
        close(&got["recall@10"], m.recall_10, &format!("{mode} recall@10"));
        close(&got["mrr@10"], m.mrr_10, &format!("{mode} mrr@10"));
        close(&got["ndcg@10"], m.ndcg_10, &format!("{mode} ndcg@10"));
    }
    for (q, got) in expected
        .per_question
        .iter()
        .zip(result["per_question"].as_array().unwrap())
    {
        assert_eq!(got["id"], q.id.as_str());
        for (mode, m) in &q.modes {
            let g = &got["modes"][mode];
            close(
                &g["metrics"]["ndcg@10"],
                m.ndcg_10,
                &format!("{} {mode}", q.id),
            );
            close(
                &g["metrics"]["recall@5"],
                m.recall_5,
                &format!("{} {mode}", q.id),
            );
            let hits = g["hits"].as_array().unwrap();
            assert_eq!(hits.len(), 10, "{} {mode}: the top 10 are kept", q.id);
            // A relevant hit exists exactly when recall@10 is above zero.
            let any_relevant = hits.iter().any(|h| h["relevant"] == true);
            assert_eq!(any_relevant, m.recall_10 > 0.0, "{} {mode}", q.id);
        }
    }

    // The page: the metric table, the grouped bar chart, the drill-down.
    let (status, html) = get_text(&evaluator, format!("{base}/eval/runs/{id}")).await;
    assert_eq!(status, 200);
    let hybrid = &expected.modes["hybrid"];
    assert!(
        html.contains(&format!("{:.3}", hybrid.recall_5)),
        "hybrid R@5 shown"
    );
    assert!(html.contains("id=\"chart-metrics\""), "{html}");
    assert_eq!(
        html.matches("<rect class=\"bar\"").count(),
        15,
        "five metrics by three modes"
    );
    assert!(html.contains(&format!("data-question=\"{}\"", qs[0].id)));

    // CSV: one row per question and mode, the same figures.
    let (status, csv) = get_text(&evaluator, format!("{base}/api/eval/runs/{id}?format=csv")).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "question_id,question,mode,recall@1,recall@5,recall@10,mrr@10,ndcg@10"
    );
    assert_eq!(lines.len(), 1 + qs.len() * 3);
    let first = &expected.per_question[0];
    let row = lines
        .iter()
        .find(|l| l.starts_with(&format!("{},", first.id)) && l.contains(",hybrid,"))
        .unwrap();
    let ndcg: f64 = row.rsplit(',').next().unwrap().parse().unwrap();
    assert!((ndcg - first.modes["hybrid"].ndcg_10).abs() < 1e-9, "{row}");
    let (status, _) = get_text(&evaluator, format!("{base}/api/eval/runs/{id}?format=xml")).await;
    assert_eq!(status, 400);

    // A second run on an uploaded set (JSONL, two modes), then the comparison.
    let subset: String = qs[..5]
        .iter()
        .map(|q| serde_json::to_string(q).unwrap() + "\n")
        .collect();
    let id2 = start_run(
        &evaluator,
        &base,
        json!({"kind": "retrieval", "questions_jsonl": subset, "modes": ["bm25", "hybrid"], "k": 20}),
    )
    .await;
    let second = finished(&evaluator, &base, id2).await;
    assert_eq!(second["run"]["spec"]["question_set"], "uploaded");
    assert_eq!(second["run"]["result"]["questions"], 5);
    assert_eq!(
        second["run"]["result"]["modes"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["bm25", "hybrid"]
    );
    let (status, html) = get_text(&evaluator, format!("{base}/eval/compare?a={id}&b={id2}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"compare-overall\""));
    assert!(html.contains(&format!(
        "data-question=\"{}\" data-mode=\"hybrid\"",
        qs[0].id
    )));
    // The same question, same mode and depth-independent metrics: no change for hybrid
    // R@5 between the runs, and dense only in A.
    assert!(html.contains("(+0.000)"), "{html}");
    assert!(
        html.contains(&format!("<code>{}</code>", qs[5].id)),
        "questions only in A are named"
    );

    // Bad requests are refused with the reason.
    for (body, needle) in [
        (json!({"kind": "nonsense"}), "unknown run kind"),
        (
            json!({"kind": "retrieval", "modes": ["fuzzy"]}),
            "unknown search mode",
        ),
        (json!({"kind": "retrieval", "k": 0}), "k must be"),
        (
            json!({"kind": "retrieval", "questions_jsonl": "{\"id\":\"x\",\"question\":\"q\",\"gold\":[]}"}),
            "no gold",
        ),
        (
            json!({"kind": "drafts", "mode": "llm"}),
            "no inference server",
        ),
        (json!({}), "kind"),
    ] {
        let (status, body) = post(&evaluator, format!("{base}/api/eval/runs"), body).await;
        assert!(status == 400 || status == 503, "{status} {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle}: {body}");
    }

    // An officer may not start (or read) runs.
    let officer = signed_in(&base, "officer").await;
    let (status, body) = post(
        &officer,
        format!("{base}/api/eval/runs"),
        json!({"kind": "retrieval"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(get_text(&officer, format!("{base}/eval")).await.0, 403);

    // The bundled run holds passages above UNCLASSIFIED: for "low" it does not exist.
    let markings: Vec<&str> = run["markings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        markings.iter().any(|m| !m.starts_with("UNCLASSIFIED")),
        "the evaluator's run should reach restricted passages: {markings:?}"
    );
    let low = signed_in(&base, "low").await;
    for url in [
        format!("{base}/api/eval/runs/{id}"),
        format!("{base}/api/eval/runs/{id}?format=csv"),
        format!("{base}/eval/runs/{id}"),
        format!("{base}/eval/compare?a={id}&b={id2}"),
        format!("{base}/api/eval/runs/999999"),
    ] {
        assert_eq!(get_text(&low, url.clone()).await.0, 404, "{url}");
    }
    let listed: Value = low
        .get(format!("{base}/api/eval/runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != id),
        "{listed}"
    );
    // Low's own run searches only what low may see, and low reads it.
    let own = start_run(
        &low,
        &base,
        json!({"kind": "retrieval", "questions_jsonl": subset, "modes": ["bm25"]}),
    )
    .await;
    let mine = finished(&low, &base, own).await;
    for m in mine["run"]["markings"].as_array().unwrap() {
        assert_eq!(m, "UNCLASSIFIED", "{mine}");
    }
    assert_eq!(mine["run"]["spec"]["clearance"]["level"], "UNCLASSIFIED");

    // Every start and export is in the audit trail.
    let actions = app.actions();
    let count = |actor: &str, action: &str, outcome: &str| {
        actions
            .iter()
            .filter(|(a, x, o)| a == actor && x == action && o.starts_with(outcome))
            .count()
    };
    assert_eq!(count("evaluator", "eval-run", "ok"), 2);
    assert!(count("evaluator", "eval-run", "error") >= 5);
    assert_eq!(count("evaluator", "eval-run-finished", "ok"), 2);
    assert!(count("evaluator", "eval-export", "ok") >= 3);
    assert!(count("low", "eval-export", "error: not_found") >= 2);
    assert_eq!(count("officer", "denied", "denied: role"), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluators_score_a_draft_run_and_see_their_agreement() {
    let app = App::start().await;
    let base = app.base.clone();
    let evaluator = signed_in(&base, "evaluator").await;
    let staff = signed_in(&base, "staff").await;

    let id = start_run(
        &evaluator,
        &base,
        json!({"kind": "drafts", "mode": "extractive", "limit": 3}),
    )
    .await;
    let export = finished(&evaluator, &base, id).await;
    let result = &export["run"]["result"];
    assert_eq!(result["kind"], "drafts");
    assert_eq!(result["mode"], "extractive");
    assert_eq!(result["totals"]["questions"], 3);
    let answers = result["per_question"].as_array().unwrap();
    assert_eq!(answers.len(), 3);
    let mut keys = Vec::new();
    for a in answers {
        assert!(a["draft_id"].is_string(), "{a}");
        for s in a["sentences"].as_array().unwrap() {
            for c in s["citations"].as_array().unwrap() {
                // The cited passage's exact text, with the span the check matched.
                let text = c["passage"]["text"].as_str().unwrap();
                assert!(!text.is_empty());
                let quote = s["text"].as_str().unwrap();
                let (start, end) = (
                    c["passage"]["span"][0].as_u64().unwrap() as usize,
                    c["passage"]["span"][1].as_u64().unwrap() as usize,
                );
                let span: String = text.chars().skip(start).take(end - start).collect();
                assert!(
                    quote.contains(span.trim().trim_end_matches(['.', ';', ':'])),
                    "an extractive sentence quotes its span: {quote} / {span}"
                );
                assert!(
                    ["supports", "partly", "does_not"].contains(&c["auto_label"].as_str().unwrap())
                );
                keys.push(c["key"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(keys.len() >= 5, "{keys:?}");
    let totals = &result["totals"];
    assert_eq!(totals["citations"], keys.len());
    let labels: u64 = totals["support_labels"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(labels, totals["statements"].as_u64().unwrap());

    // Two evaluators judge the same four citations:
    //   evaluator: supports, supports, does not, does not
    //   staff:     supports, does not, does not, does not
    // p_o = 3/4; p_e = 1/2*1/4 + 1/2*3/4 = 1/2; kappa = (3/4 - 1/2) / (1 - 1/2) = 0.5.
    let judge = |labels: [&str; 4]| json!({"judgements": keys[..4].iter().zip(labels).map(|(k, l)| json!({"citation": k, "label": l})).collect::<Vec<_>>()});
    let url = format!("{base}/api/eval/runs/{id}/judgements");
    // A first opinion, replaced by re-scoring.
    let (status, _) = post(
        &evaluator,
        url.clone(),
        judge(["partly", "partly", "partly", "partly"]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &evaluator,
        url.clone(),
        judge(["supports", "supports", "does_not", "does_not"]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["saved"], 4);
    let (status, body) = post(
        &staff,
        url.clone(),
        judge(["supports", "does_not", "does_not", "does_not"]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pair = &body["agreement"]["pairs"][0];
    assert_eq!(
        (pair["a"].as_str(), pair["b"].as_str()),
        (Some("evaluator"), Some("staff"))
    );
    assert_eq!(pair["n"], 4);
    close(&pair["agreement"]["kappa"], 0.5, "kappa");
    close(&pair["agreement"]["observed"], 0.75, "observed");
    close(&pair["agreement"]["expected"], 0.5, "expected");

    // The scoring form: one more citation, with a comment that must come back escaped.
    let key = keys[4].clone();
    let (status, page) = get_text(&evaluator, format!("{base}/eval/runs/{id}/score")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("name=\"label.{key}\"")), "{page}");
    assert!(
        page.contains("value=\"supports\" checked"),
        "my judgements are preselected"
    );
    let r = evaluator
        .post(format!("{base}/eval/runs/{id}/score"))
        .form(&[
            ("_csrf", ""),
            (&format!("label.{key}"), "partly"),
            (&format!("comment.{key}"), "<b>half</b> of it"),
            (&format!("label.{}", keys[0]), ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.ends_with("?saved=1"), "{location}");

    // The run page: the agreement with n and kappa, both plots, the escaped comment.
    let (status, html) = get_text(&evaluator, format!("{base}/eval/runs/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("data-a=\"evaluator\" data-b=\"staff\" data-n=\"4\" data-kappa=\"0.500\""),
        "{html}"
    );
    assert!(html.contains("id=\"chart-metrics\"") && html.contains("id=\"chart-labels\""));
    assert_eq!(html.matches("<rect class=\"bar\"").count(), 3 + 4);
    assert!(html.contains("&#60;b&#62;half&#60;/b&#62; of it"));
    assert!(!html.contains("<b>half</b>"));
    // Agreement with the automatic labels, for each evaluator.
    assert!(html.contains("class=\"with-automatic\" data-a=\"evaluator\" data-n=\"5\""));
    assert!(html.contains("class=\"with-automatic\" data-a=\"staff\" data-n=\"4\""));

    // Bad judgements: an unknown citation, an unknown label, a retrieval run.
    let (status, body) = post(
        &evaluator,
        url.clone(),
        json!({"judgements": [{"citation": "9.9.9", "label": "supports"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("9.9.9"));
    let (status, _) = post(
        &evaluator,
        url.clone(),
        json!({"judgements": [{"citation": keys[0], "label": "maybe"}]}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        &staff,
        format!("{base}/api/eval/runs/999/judgements"),
        judge(["supports"; 4]),
    )
    .await;
    assert_eq!(status, 404);
    let officer = signed_in(&base, "officer").await;
    let (status, _) = post(&officer, url.clone(), judge(["supports"; 4])).await;
    assert_eq!(status, 403);

    // Exports: JSON holds every judgement (one per evaluator per citation) and the
    // agreement; CSV one row per citation and judge.
    let export: Value = evaluator
        .get(format!("{base}/api/eval/runs/{id}?format=json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let judgements = export["judgements"].as_array().unwrap();
    let by = |who: &str| judgements.iter().filter(|j| j["evaluator"] == who).count();
    assert_eq!((by("evaluator"), by("staff")), (5, 4));
    let commented = judgements
        .iter()
        .find(|j| j["citation"] == key.as_str())
        .unwrap();
    assert_eq!(commented["label"], "partly");
    assert_eq!(commented["comment"], "<b>half</b> of it");
    close(
        &export["agreement"]["pairs"][0]["agreement"]["kappa"],
        0.5,
        "exported kappa",
    );
    let (status, csv) = get_text(&evaluator, format!("{base}/api/eval/runs/{id}?format=csv")).await;
    assert_eq!(status, 200);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let judge_col = headers.iter().position(|h| h == "judge").unwrap();
    let label_col = headers.iter().position(|h| h == "label").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let of = |who: &str| rows.iter().filter(|r| &r[judge_col] == who).count();
    assert_eq!(of("automatic"), keys.len());
    assert_eq!((of("evaluator"), of("staff")), (5, 4));
    assert!(
        rows.iter()
            .any(|r| &r[judge_col] == "staff" && &r[label_col] == "does_not")
    );

    // Two draft runs compare side by side.
    let id2 = start_run(&staff, &base, json!({"kind": "drafts", "limit": 2})).await;
    finished(&staff, &base, id2).await;
    let (status, html) = get_text(&evaluator, format!("{base}/eval/compare?a={id}&b={id2}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-name=\"citation recall\""));
    assert!(html.contains(&format!(
        "data-question=\"{}\"",
        answers[0]["id"].as_str().unwrap()
    )));
    // Retrieval and draft runs do not compare.
    let rid = start_run(
        &staff,
        &base,
        json!({"kind": "retrieval", "modes": ["bm25"]}),
    )
    .await;
    finished(&staff, &base, rid).await;
    assert_eq!(
        get_text(&evaluator, format!("{base}/eval/compare?a={id}&b={rid}"))
            .await
            .0,
        400
    );
    // A retrieval run has no citations to score.
    let (status, _) = post(
        &evaluator,
        format!("{base}/api/eval/runs/{rid}/judgements"),
        json!({"judgements": []}),
    )
    .await;
    assert_eq!(status, 409);

    let actions = app.actions();
    let scored = |who: &str| {
        actions
            .iter()
            .filter(|(a, x, o)| a == who && x == "eval-score" && o == "ok")
            .count()
    };
    assert_eq!((scored("evaluator"), scored("staff")), (3, 1));
    app.stop().await;
}

//! An evaluator in real headless Chromium: sign in, start an extractive draft run from the
//! evaluation page, watch it finish (the run page follows it with JavaScript), score its
//! citations in the scoring form, and read the run page with its inline SVG plots and the
//! agreement with a second evaluator. Screenshots: `test-artifacts/browser/evaluator/`.

use std::time::Duration;

use doctrina_tests::browser::Browser;
use doctrina_tests::{PASSWORD, app_state, drafter, serve_state, signed_in};
use fantoccini::Locator;
use serde_json::json;

const LONG: Duration = Duration::from_secs(480);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluator_runs_scores_and_reads_plots_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let state = app_state(drafter(None, dir.path()), dir.path());
    let server = serve_state(state).await;
    let base = format!("http://{}", server.addr);
    let mut b = Browser::start("evaluator").await;

    // Sign in on the evaluation page; the nav names it.
    b.sign_in(&format!("{base}/eval"), "evaluator", PASSWORD)
        .await;
    b.wait_css("#start-drafts", LONG).await;
    let nav = b.client.find(Locator::Css("header nav")).await.unwrap();
    assert!(nav.text().await.unwrap().contains("Evaluation"));
    b.shot("evaluation-page").await;

    // An extractive draft run on the first two bundled questions.
    let limit = b
        .client
        .find(Locator::Css("#start-drafts input[name=limit]"))
        .await
        .unwrap();
    limit.clear().await.unwrap();
    limit.send_keys("2").await.unwrap();
    b.send_keys("#start-drafts input[name=label]", "extractive baseline")
        .await;
    b.click("#start-drafts-button").await;
    b.wait_css("#eval-run", LONG).await;
    b.shot("run-started").await;
    // The page follows the run and reloads when it ends.
    b.wait_css("#score-link", LONG).await;
    let run_url = b.client.current_url().await.unwrap().to_string();
    let id: i64 = run_url.rsplit('/').next().unwrap().parse().unwrap();
    // (Shown in capitals by the style sheet.)
    assert_eq!(
        b.wait_css("#eval-status", LONG)
            .await
            .text()
            .await
            .unwrap()
            .to_lowercase(),
        "done"
    );

    // Score: the first citation supports, the second partly with a comment, the third not.
    b.click("#score-link").await;
    b.wait_css("#score-form", LONG).await;
    let fields = b
        .client
        .find_all(Locator::Css("fieldset.citation-score"))
        .await
        .unwrap();
    assert!(fields.len() >= 3, "{} citations to score", fields.len());
    let mut keys = Vec::new();
    for (field, label) in fields.iter().zip(["supports", "partly", "does_not"]) {
        let key = field.attr("data-citation").await.unwrap().unwrap();
        field
            .find(Locator::Css(&format!("input[value={label}]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        keys.push(key);
    }
    fields[1]
        .find(Locator::Css("input[name^=comment]"))
        .await
        .unwrap()
        .send_keys("only the first half")
        .await
        .unwrap();
    // The passage shown is the exact text, its matched span marked.
    let marked = b
        .js("return document.querySelectorAll('fieldset.citation-score mark').length")
        .await;
    assert!(marked.as_u64().unwrap() >= 3, "{marked}");
    b.shot("scoring").await;
    b.click("#save-scores").await;
    let saved = b.wait_css("#scores-saved", LONG).await;
    assert!(saved.text().await.unwrap().contains("Saved 3"));
    assert_eq!(
        b.client
            .find(Locator::Css("#my-count"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "3"
    );
    // My judgements are kept selected for re-scoring.
    let checked = b
        .js("return document.querySelectorAll('#score-form input[type=radio]:checked').length")
        .await;
    assert_eq!(checked, 3);
    b.shot("scored").await;

    // A second evaluator (through the API) judges the same three citations.
    let staff = signed_in(&base, "staff").await;
    let r = staff
        .post(format!("{base}/api/eval/runs/{id}/judgements"))
        .json(&json!({"judgements": keys.iter().zip(["supports", "does_not", "does_not"]).map(|(k, l)| json!({"citation": k, "label": l})).collect::<Vec<_>>()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The run page: the plots as inline SVG with bars, the agreement table.
    b.client.goto(&run_url).await.unwrap();
    b.wait_css("#chart-labels", LONG).await;
    let bars = b
        .js("return document.querySelectorAll('svg.chart rect.bar').length")
        .await;
    assert_eq!(bars, 3 + 4, "three citation metrics, four support labels");
    let charts = b.js("return Array.from(document.querySelectorAll('svg.chart')).map(s => s.getBoundingClientRect().height > 100)").await;
    assert_eq!(charts, json!([true, true]), "both plots are drawn");
    let kappa = b
        .wait_css("tr.pair td.kappa", LONG)
        .await
        .text()
        .await
        .unwrap();
    // evaluator S,P,D vs staff S,D,D: p_o 2/3; p_e 1/3*1/3 + 1/3*2/3 = 1/3; kappa 0.5.
    assert!(kappa.starts_with("0.500"), "{kappa}");
    let comment = b
        .js("return document.body.textContent.includes('only the first half')")
        .await;
    assert_eq!(comment, true);
    b.client
        .execute(
            "document.getElementById('chart-metrics').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    b.shot("run-page-with-plots").await;

    // Open the first answer's drill-down.
    b.click("details.answer summary").await;
    b.client
        .execute(
            "document.querySelector('details.answer').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    b.shot("drill-down").await;

    b.close().await;
    server.shutdown().await.unwrap();
}

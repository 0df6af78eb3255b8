//! The command-line contract, on the real binary: `index --json` shape and exit codes,
//! `search --json` shape, and recovery from a run killed between the index writes and the
//! catalog commit (injected with the `DOCTRINA_FAILPOINT` hook, which aborts the process).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test"))
        .join("../../corpus/documents")
}

fn doctrina(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_doctrina"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("DOCTRINA_FAILPOINT")
        .output()
        .expect("doctrina runs")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn copy_corpus(dest: &Path) {
    copy_tree(&corpus(), dest);
}

/// Copies a folder with its subfolders (the Korean statutes sit in `법령/`).
fn copy_tree(from: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn index_and_search_json_contract() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    copy_corpus(docs.path());
    std::fs::write(docs.path().join("broken.pdf"), b"%PDF-1.4 nonsense").unwrap();

    let out = doctrina(
        data.path(),
        &["index", docs.path().to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(2), "some files failed -> exit 2");
    let report = json(&out);
    for key in ["indexed", "unchanged", "removed", "chunks", "embedded"] {
        assert!(report[key].is_u64(), "{key} missing: {report}");
    }
    assert_eq!(report["indexed"], 19);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["path"].as_str().unwrap().ends_with("broken.pdf"));
    assert!(failed[0]["error"].as_str().unwrap().contains("PDF"));

    std::fs::remove_file(docs.path().join("broken.pdf")).unwrap();
    let out = doctrina(
        data.path(),
        &["index", docs.path().to_str().unwrap(), "--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(
        (report["unchanged"].as_u64(), report["embedded"].as_u64()),
        (Some(19), Some(0))
    );

    let out = doctrina(data.path(), &["search", "ATP 4-0.6", "-k", "3", "--json"]);
    assert!(out.status.success());
    let hits = json(&out);
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 3);
    let first = &hits[0];
    assert_eq!(first["rank"], 1);
    for key in ["doc_id", "title", "section", "text"] {
        assert!(first[key].is_string(), "{key}: {first}");
    }
    assert_eq!(first["publication"], "ATP 4-0.6");
    assert!(first["paragraphs"].is_array() && first["pages"].is_array());
    assert!(first["scores"]["fused"].is_f64());
    assert!(first["scores"].get("bm25").is_some() && first["scores"].get("dense").is_some());

    for mode in ["bm25", "dense"] {
        let out = doctrina(data.path(), &["search", "fuel", "--mode", mode, "--json"]);
        assert!(out.status.success());
        let hits = json(&out);
        let other = if mode == "bm25" { "dense" } else { "bm25" };
        assert!(hits[0]["scores"][other].is_null(), "{mode}: {}", hits[0]);
    }

    let questions = corpus().join("../eval/questions.jsonl");
    let out = doctrina(
        data.path(),
        &[
            "eval",
            "retrieval",
            "--questions",
            questions.to_str().unwrap(),
            "--modes",
            "bm25,hybrid",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["questions"], 39);
    for key in ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"] {
        assert!(report["modes"]["hybrid"][key].is_f64(), "{key}: {report}");
    }
    assert!(
        report["modes"].get("dense").is_none(),
        "only the modes asked for"
    );
    assert_eq!(report["per_question"].as_array().unwrap().len(), 39);

    let out = doctrina(data.path(), &["search", "fuel", "--mode", "fuzzy"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects a bad flag value");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown search mode"));

    let out = doctrina(data.path(), &["index", "/nonexistent/path", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        json(&out)["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/path")
    );
}

#[test]
fn draft_json_contract_and_inference_failure() {
    let data = tempfile::tempdir().unwrap();
    let out = doctrina(
        data.path(),
        &["index", corpus().to_str().unwrap(), "--json"],
    );
    assert!(out.status.success());
    let args = [
        "draft",
        "--section",
        "opord-execution",
        "--task",
        "Attack to seize OBJ IRON; describe the concept of operations",
        "--mode",
        "extractive",
        "--json",
    ];
    let out = doctrina(data.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let draft = json(&out);
    for key in ["draft_id", "section", "text", "model"] {
        assert!(draft[key].is_string(), "{key}: {draft}");
    }
    assert_eq!(draft["section"], "opord-execution");
    let source = &draft["sources"][0];
    assert_eq!(source["n"], 1);
    for key in ["doc_id", "text"] {
        assert!(source[key].is_string(), "{key}");
    }
    assert!(source["paragraphs"].is_array() && source["pages"].is_array());
    assert!(source.get("publication").is_some());
    let sentence = &draft["sentences"][0];
    assert!(sentence["text"].is_string() && sentence["citations"].is_array());
    assert!(
        ["supported", "weak", "unsupported", "uncited"]
            .contains(&sentence["support"].as_str().unwrap())
    );
    assert!(draft["invalid_citations"].is_array());
    for key in ["retrieval", "total"] {
        assert!(draft["timings_ms"][key].is_u64(), "{key}");
    }
    assert!(draft["timings_ms"].get("first_token").is_some());

    // The stored draft re-opens exactly as produced.
    let id = draft["draft_id"].as_str().unwrap();
    let out = doctrina(data.path(), &["drafts", id, "--json"]);
    assert_eq!(json(&out), draft);

    // LLM mode with the inference server down: exit 1 and a message naming the server.
    let mut llm = args.to_vec();
    llm[6] = "llm";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_doctrina"))
        .args(&llm)
        .arg("--data-dir")
        .arg(data.path())
        .env(
            "DOCTRINA__INFERENCE__BASE_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("DOCTRINA__INFERENCE__RETRIES", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("unreachable"),
        "{stderr}"
    );

    let out = doctrina(
        data.path(),
        &[
            "draft",
            "--section",
            "nope",
            "--task",
            "x",
            "--mode",
            "extractive",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown section 'nope'"));
}

#[test]
fn sections_lists_the_templates() {
    let data = tempfile::tempdir().unwrap();
    let out = doctrina(data.path(), &["sections", "--json"]);
    assert!(out.status.success());
    let sections = json(&out);
    let names: Vec<&str> = sections
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"opord-execution") && names.contains(&"running-estimate"));
    assert!(names.contains(&"ko-opord-execution") && names.contains(&"ko-staff-estimate"));
    assert_eq!(names.len(), 16);
    let korean = sections
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ko-opord-sustainment")
        .unwrap();
    assert_eq!(korean["language"], "ko");
    let out = doctrina(data.path(), &["sections"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Paragraph 3"));
}

#[test]
fn a_run_killed_midway_is_repaired_on_the_next_start() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    copy_corpus(docs.path());
    let root = docs.path().to_str().unwrap();
    let out = doctrina(data.path(), &["index", root, "--json"]);
    assert!(out.status.success());
    let total = json(&out)["total_chunks"].as_u64().unwrap();

    // Change one document, add a new one, then die after both indexes were written but
    // before the catalog committed.
    let edited = docs.path().join("atp-5-0-9.md");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push_str("\n\n3-98. Quartermaster lattice reviews happen weekly.\n");
    std::fs::write(&edited, text).unwrap();
    std::fs::write(
        docs.path().join("new-note.md"),
        "---\nid: new-note\ntitle: New note\nmarking: UNCLASSIFIED\n---\n# Note\n\n1-1. Porcupine drills are new.\n",
    )
    .unwrap();
    let killed = Command::new(env!("CARGO_BIN_EXE_doctrina"))
        .args(["index", root, "--json", "--data-dir"])
        .arg(data.path())
        .env("DOCTRINA_FAILPOINT", "after-index-write")
        .output()
        .unwrap();
    assert!(!killed.status.success(), "the failpoint aborts the run");
    assert!(
        killed.status.code().is_none(),
        "killed by a signal, not an orderly exit"
    );

    // Without repair, the check sees the interrupted write.
    let out = doctrina(data.path(), &["check", "--json"]);
    let health = json(&out);
    assert_eq!(out.status.code(), Some(2), "{health}");
    let interrupted: Vec<&str> = health["interrupted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        interrupted.contains(&"atp-5-0-9") && interrupted.contains(&"new-note"),
        "{health}"
    );

    // Repair puts both indexes back to the last committed state: the old version of the
    // edited document serves, the never-committed one is gone, counts agree.
    let out = doctrina(data.path(), &["check", "--repair", "--json"]);
    let health = json(&out);
    assert!(out.status.success(), "{health}");
    assert_eq!(health["consistent"], true);
    assert_eq!(health["catalog_passages"].as_u64(), Some(total));
    assert_eq!(health["keyword_passages"].as_u64(), Some(total));
    assert_eq!(health["vector_passages"].as_u64(), Some(total));
    assert!(
        health["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "new-note")
    );
    let out = doctrina(
        data.path(),
        &[
            "search",
            "quartermaster lattice",
            "--mode",
            "bm25",
            "--json",
        ],
    );
    let hits = json(&out);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .all(|h| h["paragraphs"] != serde_json::json!(["3-98"])),
        "the uncommitted edit is not served: {hits}"
    );

    // The next run indexes both changes; nothing is lost.
    let out = doctrina(data.path(), &["index", root, "--json"]);
    let report = json(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(report["indexed"], 2, "{report}");
    let out = doctrina(
        data.path(),
        &[
            "search",
            "porcupine drills",
            "--mode",
            "bm25",
            "-k",
            "1",
            "--json",
        ],
    );
    assert_eq!(json(&out)[0]["doc_id"], "new-note");
    let out = doctrina(data.path(), &["check", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A small `doctrina bench --json` run: every figure of the contract is present and sane.
/// It asserts no timings (those are for the full run to report).
#[test]
fn bench_smoke_prints_every_figure() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = doctrina(
        data.path(),
        &[
            "bench",
            "--chunks",
            "60",
            "--scales",
            "500",
            "--queries",
            "10",
            "--reindex-chunks",
            "150",
            "--users",
            "4",
            "--load-seconds",
            "1",
            "--work-dir",
            work.path().to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    let i = &r["indexing"];
    for key in [
        "parse_documents",
        "parse_chunks",
        "raw_embedding",
        "end_to_end",
    ] {
        assert!(i[key]["per_second"].as_f64().unwrap() > 0.0, "{key}: {r}");
    }
    assert!(r["corpus"]["chunks"].as_u64().unwrap() >= 60, "{r}");
    assert_eq!(i["end_to_end"]["items"], r["corpus"]["chunks"], "{r}");
    // Both installed embedding models, the configured one first, on the same passages.
    let embedders = r["embedders"].as_array().unwrap();
    let models: Vec<&str> = embedders
        .iter()
        .map(|e| e["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["multilingual-e5-small", "all-minilm-l6-v2"], "{r}");
    assert_eq!(embedders[0]["configured"], true);
    for e in embedders {
        assert_eq!(e["passages"]["items"], r["corpus"]["chunks"], "{r}");
        assert!(e["passages"]["per_second"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(e["query"]["samples"], 10, "{r}");
    }
    assert!(i["ratio_to_raw"].as_f64().unwrap() > 0.0);
    let re = &r["reindex"];
    assert!(re["chunks"].as_u64().unwrap() >= 150, "{r}");
    assert_eq!(
        re["initial_with_reused_vectors"]["items"], re["chunks"],
        "{r}"
    );
    assert_eq!(re["unchanged_embedded"], 0, "{r}");
    assert!(re["unchanged_seconds"].is_f64());
    assert!(re["changed_files"].as_u64().unwrap() >= 1, "{r}");
    assert!(
        re["changed_embedded_by_model"].as_u64().unwrap() >= 1,
        "{r}"
    );
    let stages = r["memory"]["stages"].as_array().unwrap();
    assert!(stages.len() >= 6, "{r}");
    assert!(i["disk_mb_per_10k_chunks"].as_f64().unwrap() > 0.0);
    assert!(r["batching"]["speedup"].as_f64().unwrap() > 0.0);
    let scale = &r["scales"][0];
    assert_eq!(scale["chunks"], 500);
    assert_eq!(
        scale["backend"], "edge",
        "the embedded store unless --backend qdrant"
    );
    for key in [
        "query_embedding",
        "bm25",
        "dense_excluding_embedding",
        "hybrid_excluding_embedding",
        "hybrid_total",
        "hybrid_total_with_clearance",
    ] {
        assert_eq!(scale[key]["samples"], 10, "{key}: {scale}");
        assert!(scale[key]["p99"].as_f64().unwrap() >= scale[key]["p50"].as_f64().unwrap());
    }
    let load = &r["load"];
    assert!(load["requests"].as_u64().unwrap() > 0, "{load}");
    assert_eq!(load["errors"], 0, "{load}");
    assert!(r["memory"]["peak_rss_mb"].as_f64().unwrap() > 0.0);
    assert!(
        r["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("stored")
                || n.as_str().unwrap().contains("reused")),
        "stored vectors are declared: {r}"
    );
    // The work directory is cleaned up.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

fn beir_mini() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test"))
        .join("../../corpus/eval/beir-mini")
}

/// `eval beir` indexes a BEIR-layout dataset into its own data directory once, then
/// reports the BEIR metrics per mode; a malformed qrels file is a clear error.
#[test]
fn eval_beir_contract() {
    let data = tempfile::tempdir().unwrap();
    let dir = beir_mini();
    let out = doctrina(
        data.path(),
        &["eval", "beir", dir.to_str().unwrap(), "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["dataset"], "beir-mini");
    assert_eq!(r["documents"], 24);
    assert_eq!(r["indexed"], 24);
    assert_eq!(r["questions"], 8);
    assert!(data.path().join("beir/beir-mini/catalog.sqlite").exists());
    for mode in ["bm25", "dense", "hybrid"] {
        let m = &r["modes"][mode];
        for key in ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"] {
            let v = m[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{mode} {key}: {v}");
        }
    }
    // Each query has a clearly matching passage: semantic and hybrid find most of them.
    assert!(
        r["modes"]["hybrid"]["ndcg@10"].as_f64().unwrap() > 0.6,
        "{r}"
    );
    assert_eq!(r["per_question"].as_array().unwrap().len(), 8);
    // The main data directory is untouched.
    assert!(!data.path().join("catalog.sqlite").exists());

    let again = json(&doctrina(
        data.path(),
        &["eval", "beir", dir.to_str().unwrap(), "--json"],
    ));
    assert_eq!(again["indexed"], 0, "the index is reused");
    assert_eq!(again["modes"], r["modes"]);

    let bad = tempfile::tempdir().unwrap();
    for f in ["corpus.jsonl", "queries.jsonl"] {
        std::fs::copy(dir.join(f), bad.path().join(f)).unwrap();
    }
    std::fs::create_dir(bad.path().join("qrels")).unwrap();
    std::fs::write(bad.path().join("qrels/test.tsv"), "q1\td01\tvery\n").unwrap();
    let out = doctrina(
        data.path(),
        &["eval", "beir", bad.path().to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("test.tsv line 1") && err.contains("not an integer"),
        "{err}"
    );
}

/// `eval drafts` in extractive mode (no server): every citation is valid and quoted text
/// supports itself, so recall and precision are high; the report has the contract's shape.
#[test]
fn eval_drafts_contract() {
    let data = tempfile::tempdir().unwrap();
    let out = doctrina(
        data.path(),
        &["index", corpus().to_str().unwrap(), "--json"],
    );
    assert!(out.status.success());
    let questions = corpus().join("../eval/questions.jsonl");
    let out = doctrina(
        data.path(),
        &[
            "eval",
            "drafts",
            "--questions",
            questions.to_str().unwrap(),
            "--mode",
            "extractive",
            "--limit",
            "4",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["questions"], 4);
    assert_eq!(r["mode"], "extractive");
    assert_eq!(r["judge"], "support-check");
    assert_eq!(r["citation_validity"], 1.0, "{r}");
    assert_eq!(r["invalid_citations"], 0);
    assert!(r["statements"].as_u64().unwrap() >= 4, "{r}");
    assert!(r["citation_recall"].as_f64().unwrap() > 0.8, "{r}");
    assert!(r["citation_precision"].as_f64().unwrap() > 0.8, "{r}");
    for label in ["supported", "weak", "unsupported", "uncited"] {
        assert!(r["support_labels"][label].is_u64(), "{label}: {r}");
    }
    let q = &r["per_question"][0];
    assert!(q["draft_id"].is_string());
    assert!(q["statements"][0]["precise"].is_array());

    // With the inference server down, each draft fails clearly and the run still reports.
    let out = Command::new(env!("CARGO_BIN_EXE_doctrina"))
        .args([
            "eval",
            "drafts",
            "--questions",
            questions.to_str().unwrap(),
            "--limit",
            "1",
            "--json",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("DOCTRINA__INFERENCE__BASE_URL", "http://127.0.0.1:9")
        .env("DOCTRINA__INFERENCE__RETRIES", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["failed"], 1, "{r}");
    assert!(
        r["per_question"][0]["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:9"),
        "{r}"
    );
}

/// `eval support`: the report shape on a small labelled file (the gold label
/// `partial` read as `weak`), by the local check; `--judge check+llm` with the server down
/// counts each pair as a judge error instead of failing the run.
#[test]
fn eval_support_contract() {
    let data = tempfile::tempdir().unwrap();
    let pairs = data.path().join("pairs.jsonl");
    let lines = [
        serde_json::json!({"id": "a", "sentence": "Resupply is pushed forward every night.", "passage": "Resupply is pushed forward every night by the forward support company.", "label": "supported"}),
        serde_json::json!({"id": "b", "sentence": "Resupply is pushed forward every 48 hours.", "passage": "Resupply is pushed forward every 24 hours.", "label": "unsupported"}),
        serde_json::json!({"id": "c", "sentence": "Resupply and medical evacuation are pushed forward nightly.", "passage": "Resupply is pushed forward every night.", "label": "partial"}),
    ];
    std::fs::write(
        &pairs,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let args = [
        "eval",
        "support",
        "--pairs",
        pairs.to_str().unwrap(),
        "--json",
    ];
    let out = doctrina(data.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["pairs"], 3);
    assert_eq!(r["judge"], "support-check");
    assert!(r["accuracy"].is_f64(), "{r}");
    for label in ["supported", "weak", "unsupported"] {
        assert!(r["labels"][label]["precision"].is_f64(), "{label}: {r}");
        assert!(r["labels"][label]["recall"].is_f64(), "{label}: {r}");
        assert!(r["confusion"][label]["supported"].is_u64(), "{label}: {r}");
    }
    let per_pair = r["per_pair"].as_array().unwrap();
    assert_eq!(per_pair.len(), 3);
    assert_eq!(per_pair[2]["gold"], "weak", "partial is weak");
    assert_eq!(
        per_pair[1]["predicted"], "unsupported",
        "a changed number: {r}"
    );
    for p in per_pair {
        assert!(p["id"].is_string() && p["evidence"].is_string(), "{p}");
    }
    // The confusion matrix counts every pair once.
    let counted: u64 = ["supported", "weak", "unsupported"]
        .iter()
        .flat_map(|g| {
            let row = &r["confusion"][*g];
            ["supported", "weak", "unsupported"].map(|p| row[p].as_u64().unwrap())
        })
        .sum();
    assert_eq!(counted, 3);

    // The combined judge with its server down: every pair is a judge error, and the check's
    // label stands capped at weak.
    let out = Command::new(env!("CARGO_BIN_EXE_doctrina"))
        .args(args)
        .args(["--judge", "check+llm"])
        .arg("--data-dir")
        .arg(data.path())
        .env("DOCTRINA__INFERENCE__BASE_URL", "http://127.0.0.1:9")
        .env("DOCTRINA__INFERENCE__RETRIES", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["judge"], "check+llm");
    assert_eq!(r["judge_errors"], 3, "{r}");
    for p in r["per_pair"].as_array().unwrap() {
        assert_ne!(p["predicted"], "supported", "{p}");
        assert!(p["error"].as_str().unwrap().contains("127.0.0.1:9"), "{p}");
    }
}

/// `index` is recorded in the audit trail; `audit verify` passes on the intact chain and
/// finds an entry edited behind the log's back.
#[test]
fn audit_verify_detects_a_tampered_entry() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("a.md"),
        "---\nmarking: UNCLASSIFIED\n---\n# A\n\n1-1. Fuel moves at night.\n",
    )
    .unwrap();
    for _ in 0..3 {
        let out = doctrina(
            data.path(),
            &["index", docs.path().to_str().unwrap(), "--json"],
        );
        assert!(out.status.success());
    }
    let out = doctrina(data.path(), &["audit", "list", "--json"]);
    let entries = json(&out);
    assert_eq!(entries.as_array().unwrap().len(), 3, "{entries}");
    assert_eq!(entries[0]["action"], "index");
    assert!(entries[0]["actor"].as_str().unwrap().starts_with("cli:"));
    let out = doctrina(data.path(), &["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["intact"], true);

    // Someone with the file drops the guard triggers and rewrites history.
    let conn = rusqlite::Connection::open(data.path().join("audit.sqlite")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER entries_no_update; UPDATE entries SET outcome = 'error: nothing' WHERE seq = 2;",
    )
    .unwrap();
    drop(conn);
    let out = doctrina(data.path(), &["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(2), "a broken chain exits 2");
    let v = json(&out);
    assert_eq!(v["intact"], false);
    assert_eq!(v["first_break"]["seq"], 2, "{v}");
    let out = doctrina(data.path(), &["audit", "verify"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("BROKEN at entry 2"));
}

/// Runs `doctrina` with `stdin` as its standard input.
fn doctrina_with_stdin(data: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_doctrina"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("doctrina runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn user_add_admin_reads_the_password_from_stdin_never_an_argument() {
    let data = tempfile::tempdir().unwrap();
    let out = doctrina_with_stdin(
        data.path(),
        &[
            "user",
            "add",
            "root",
            "--admin",
            "--clearance",
            "secret",
            "--caveat",
            "NOFORN",
            "--json",
        ],
        "a long admin password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user = json(&out);
    assert_eq!(user["name"], "root");
    assert_eq!(user["clearance"]["level"], "SECRET");
    assert_eq!(
        user["roles"],
        serde_json::json!(["officer", "custodian", "evaluator", "admin"])
    );
    assert!(user.get("password_hash").is_none());
    // The password is stored only as an argon2id hash.
    let db = std::fs::read(data.path().join("users.sqlite")).unwrap();
    assert!(!db.windows(10).any(|w| w == b"long admin"));
    // There is no way to pass a password as an argument.
    let out = doctrina(
        data.path(),
        &["user", "add", "x", "--roles", "officer", "--password", "p"],
    );
    assert!(!out.status.success());
    // Too short, or an unknown level: clear errors, nothing created.
    let out = doctrina_with_stdin(
        data.path(),
        &["user", "add", "ward", "--roles", "officer"],
        "short\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));
    let out = doctrina_with_stdin(
        data.path(),
        &[
            "user",
            "add",
            "ward",
            "--roles",
            "officer",
            "--clearance",
            "COSMIC",
        ],
        "a long enough password\n",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown clearance level"));
    let out = doctrina(data.path(), &["user", "set", "root", "--roles", "officer"]);
    assert!(!out.status.success(), "the last admin keeps the admin role");
    let out = doctrina(data.path(), &["user", "list", "--json"]);
    let users = json(&out);
    assert_eq!(users.as_array().unwrap().len(), 1);
    // Account changes are audited, attributed to the operating-system user.
    let out = doctrina(data.path(), &["audit", "list", "--json"]);
    let entries = json(&out);
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"add-user") && actions.contains(&"update-user"),
        "{actions:?}"
    );
}

fn hostile() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test"))
        .join("../../tests/corpus/hostile")
}

/// Issue 12: each hostile file used to abort `doctrina index` (exit 134, a stack overflow
/// in a parser) or was reported as "no text". Now every one fails alone, with its real
/// cause, or (the deeply nested HTML) indexes; the good file beside them is indexed.
#[test]
fn hostile_files_fail_alone_with_their_real_cause() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(hostile()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "make_hostile.py" {
            std::fs::copy(entry.path(), docs.path().join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(corpus().join("atp-4-0-6.md"), docs.path().join("good.md")).unwrap();
    let out = doctrina(
        data.path(),
        &["index", docs.path().to_str().unwrap(), "--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "files failed, the process did not: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(
        report["indexed"], 2,
        "good.md and nested-divs.html: {report}"
    );
    let failed: Vec<(String, String)> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap();
            let name = Path::new(path).file_name().unwrap().to_string_lossy();
            (name.into_owned(), f["error"].as_str().unwrap().to_string())
        })
        .collect();
    let cause = |name: &str| {
        failed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("{name} did not fail: {report}"))
    };
    assert!(
        cause("xobject-loop.pdf").contains("form XObject /X1"),
        "{report}"
    );
    assert!(
        cause("page-loop.pdf").contains("page tree loops"),
        "{report}"
    );
    assert!(cause("zip-bomb.docx").contains("zip bomb"), "{report}");
    assert_eq!(failed.len(), 3, "{report}");
    for (_, error) in &failed {
        assert!(
            !error.contains("no text"),
            "the real cause is named: {error}"
        );
    }
    let out = doctrina(
        data.path(),
        &["search", "Deep text", "--mode", "bm25", "--json"],
    );
    let hits = json(&out);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["doc_id"] == "nested-divs-html"),
        "the nested HTML is searchable: {hits}"
    );
}

/// `doctrina extract` shows what indexing would make of a file, or why it cannot.
#[test]
fn extract_names_the_cause_or_shows_the_marking_basis() {
    let data = tempfile::tempdir().unwrap();
    let bad = hostile().join("xobject-loop.pdf");
    let out = doctrina(data.path(), &["extract", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("draws itself"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let docs = tempfile::tempdir().unwrap();
    let file = docs.path().join("order.txt");
    std::fs::write(
        &file,
        "SECRET//NOFORN\n\nOPERATION ORDER 7\n\n1. (S//NF) Enemy forces hold the bridge.\n\nSECRET//NOFORN\n",
    )
    .unwrap();
    let out = doctrina(data.path(), &["extract", file.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["meta"]["marking"]["level"], "SECRET", "{doc}");
    assert_eq!(doc["meta"]["marking"]["caveats"][0], "NOFORN", "{doc}");
    let basis = doc["meta"]["marking_basis"].to_string();
    assert!(basis.contains("banner line 1"), "{basis}");
}

/// A closed pipe ends a command quietly: `doctrina sections --json | head -1` used to panic
/// with a backtrace.
#[test]
fn a_closed_stdout_ends_quietly() {
    let data = tempfile::tempdir().unwrap();
    for args in [&["sections", "--json"][..], &["sections"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_doctrina"))
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first write.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: nothing on stderr: {stderr}");
    }
}

/// `doctrina` with the environment a test gives (backend settings, failpoints).
fn doctrina_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_doctrina"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("DOCTRINA_FAILPOINT");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("doctrina runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `vectors migrate` refuses what it cannot do and names the server that is down; with a
/// Qdrant server (`DOCTRINA_TEST_QDRANT_URL`) it copies every vector without embedding,
/// resumes after a kill, and the app then runs on the server with the same results.
#[test]
fn vectors_migrate_contract() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    for name in [
        "atp-4-0-6.md",
        "opord-24-07.md",
        "tc-3-09-9.md",
        "atp-3-57-9.md",
    ] {
        std::fs::copy(corpus().join(name), docs.path().join(name)).unwrap();
    }
    let out = doctrina(
        data.path(),
        &["index", docs.path().to_str().unwrap(), "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let total = json(&out)["total_chunks"].as_u64().unwrap();

    let same = doctrina(data.path(), &["vectors", "migrate", "--to", "edge"]);
    assert!(!same.status.success());
    assert!(
        stderr(&same).contains("already in embedded Qdrant Edge"),
        "{}",
        stderr(&same)
    );
    let no_url = doctrina_env(
        data.path(),
        &["vectors", "migrate", "--to", "qdrant"],
        &[("DOCTRINA__VECTOR__URL", "")],
    );
    assert!(!no_url.status.success());
    let dead = doctrina(
        data.path(),
        &[
            "vectors",
            "migrate",
            "--to",
            "qdrant",
            "--url",
            "http://127.0.0.1:9",
        ],
    );
    assert!(!dead.status.success());
    assert!(
        stderr(&dead).contains("Qdrant server http://127.0.0.1:9"),
        "the error names the server: {}",
        stderr(&dead)
    );
    // An app configured for a server that is down says which, and changes nothing.
    let down = [
        ("DOCTRINA__VECTOR__BACKEND", "qdrant"),
        ("DOCTRINA__VECTOR__URL", "http://127.0.0.1:9"),
    ];
    let check = doctrina_env(data.path(), &["check"], &down);
    assert!(!check.status.success());
    assert!(
        stderr(&check).contains("Qdrant server http://127.0.0.1:9"),
        "{}",
        stderr(&check)
    );
    let check = doctrina(data.path(), &["check", "--json"]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert_eq!(json(&check)["vector_passages"].as_u64(), Some(total));

    let Ok(url) = std::env::var("DOCTRINA_TEST_QDRANT_URL") else {
        eprintln!("DOCTRINA_TEST_QDRANT_URL is not set: the copy to a Qdrant server is not run");
        return;
    };
    let collection = format!("doctrina-cli-{}", std::process::id());
    let migrate = [
        "vectors",
        "migrate",
        "--to",
        "qdrant",
        "--url",
        &url,
        "--collection",
        &collection,
        "--json",
    ];
    let killed = doctrina_env(
        data.path(),
        &migrate,
        &[("DOCTRINA_FAILPOINT", "after-vector-copy")],
    );
    assert!(!killed.status.success(), "the failpoint kills the copy");
    let resumed = doctrina(data.path(), &migrate);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let report = json(&resumed);
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(report["skipped"], 1, "{report}");
    assert_eq!(report["copied"], 3, "{report}");
    assert_eq!(report["target_vectors"].as_u64(), Some(total), "{report}");

    let server = [
        ("DOCTRINA__VECTOR__BACKEND", "qdrant"),
        ("DOCTRINA__VECTOR__URL", url.as_str()),
        ("DOCTRINA__VECTOR__COLLECTION", collection.as_str()),
    ];
    let check = doctrina_env(data.path(), &["check", "--json"], &server);
    assert!(check.status.success(), "{}", stderr(&check));
    let health = json(&check);
    assert_eq!(health["consistent"], true, "{health}");
    assert!(
        health["vector_store"]
            .as_str()
            .unwrap()
            .contains(&collection)
    );
    let query = [
        "search",
        "convoy trail party",
        "--mode",
        "dense",
        "-k",
        "5",
        "--json",
    ];
    let ids = |out: &Output| -> Vec<String> {
        json(out)
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["passage_id"].as_str().unwrap().to_string())
            .collect()
    };
    let on_edge = doctrina(data.path(), &query);
    let on_server = doctrina_env(data.path(), &query, &server);
    assert_eq!(
        ids(&on_edge),
        ids(&on_server),
        "the same vectors give the same ranking"
    );

    // Back to the embedded store, which still holds the old copy: replaced only when asked.
    let back = doctrina_env(
        data.path(),
        &["vectors", "migrate", "--to", "edge"],
        &server,
    );
    assert!(stderr(&back).contains("--overwrite"), "{}", stderr(&back));
    let back = doctrina_env(
        data.path(),
        &[
            "vectors",
            "migrate",
            "--to",
            "edge",
            "--overwrite",
            "--json",
        ],
        &server,
    );
    assert!(back.status.success(), "{}", stderr(&back));
    assert_eq!(json(&back)["target_vectors"].as_u64(), Some(total));

    let store = doctrina_index::QdrantVectorStore::open(
        doctrina_index::QdrantSettings {
            urls: vec![url],
            api_key: None,
            collection,
            shard_number: 1,
            replication_factor: 1,
            write_consistency: 1,
            timeout: std::time::Duration::from_secs(10),
        },
        384,
    )
    .unwrap();
    store.delete_collection().unwrap();
}

//! The custodian's library on the real app: uploads (one and many, metadata sidecars),
//! size and type limits, hostile file names and metadata, replacing an edition, deleting,
//! re-indexing, background jobs with per-file results, and searching while a job runs.

use std::path::Path;
use std::time::{Duration, Instant};

use doctrina_tests::TestIndex;
use doctrina_types::config::LibraryConfig;
use serde_json::{Value, json};

const PASSWORD: &str = "vellum lantern quarry 41";

/// The app with a library, and an HTTP client signed in as a custodian. Signing in happens
/// in [`Custodian::sign_in`] only.
struct Custodian {
    base: String,
    http: reqwest::Client,
    cookie: String,
    csrf: String,
    library: std::path::PathBuf,
    server: Option<doctrina_web::Server>,
    _store: tempfile::TempDir,
    auth: std::sync::Arc<doctrina_auth::AuthStore>,
    name: String,
    index: TestIndex,
}

impl Custodian {
    async fn start(config: LibraryConfig) -> Self {
        let index = TestIndex::new();
        let store = tempfile::tempdir().unwrap();
        // The library lives in the index's data directory, as in `doctrina serve`.
        let app = doctrina_tests::open_app(
            index.data_dir(),
            |c| c.library = config,
            |b| b.indexes(index.indexes.clone()).library(true),
        );
        if app.auth.user("custodian").unwrap().is_none() {
            app.auth
                .add_user(&doctrina_auth::NewUser {
                    name: "custodian".to_string(),
                    password: PASSWORD.to_string(),
                    roles: vec![doctrina_auth::Role::Custodian, doctrina_auth::Role::Officer],
                    clearance: doctrina_types::Clearance {
                        level: "TOP SECRET".to_string(),
                        caveats: Vec::new(),
                    },
                })
                .unwrap();
        }
        let library_dir = app.library.as_ref().unwrap().dir().to_path_buf();
        let auth = app.auth.clone();
        let state = doctrina_web::AppState::new(&app);
        let server = doctrina_web::spawn("127.0.0.1:0".parse().unwrap(), state)
            .await
            .unwrap();
        let mut me = Self {
            base: format!("http://{}", server.addr),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: String::new(),
            csrf: String::new(),
            library: library_dir,
            server: Some(server),
            _store: store,
            auth,
            name: "custodian".to_string(),
            index,
        };
        me.sign_in().await;
        me
    }

    /// Another custodian (and officer) with `clearance`, signed in on the same server.
    async fn colleague(&self, name: &str, level: &str, caveats: &[&str]) -> Custodian {
        self.auth
            .add_user(&doctrina_auth::NewUser {
                name: name.to_string(),
                password: PASSWORD.to_string(),
                roles: vec![doctrina_auth::Role::Custodian, doctrina_auth::Role::Officer],
                clearance: doctrina_types::Clearance {
                    level: level.to_string(),
                    caveats: caveats.iter().map(|c| c.to_string()).collect(),
                },
            })
            .unwrap();
        let mut other = Custodian {
            base: self.base.clone(),
            http: self.http.clone(),
            cookie: String::new(),
            csrf: String::new(),
            library: self.library.clone(),
            server: None,
            _store: tempfile::tempdir().unwrap(),
            auth: self.auth.clone(),
            name: name.to_string(),
            index: TestIndex::new(),
        };
        other.sign_in().await;
        other
    }

    async fn sign_in(&mut self) {
        let r = self
            .http
            .post(format!("{}/api/login", self.base))
            .json(&json!({"name": self.name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login");
        self.cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let body: Value = r.json().await.unwrap();
        self.csrf = body["csrf_token"].as_str().unwrap_or_default().to_string();
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> (u16, Value) {
        let r = builder.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    async fn get_page(&self, path: &str) -> (u16, String) {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn form(files: &[(&str, Vec<u8>)], fields: &[(&str, &str)]) -> reqwest::multipart::Form {
        // Names go as they are (no percent-encoding), as a hostile client would send them.
        let mut form = reqwest::multipart::Form::new().percent_encode_noop();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        for (name, bytes) in files {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        form
    }

    /// `POST /api/documents` (multipart).
    async fn upload(&self, files: &[(&str, Vec<u8>)], fields: &[(&str, &str)]) -> (u16, Value) {
        self.send(
            self.request(reqwest::Method::POST, "/api/documents")
                .multipart(Self::form(files, fields)),
        )
        .await
    }

    async fn replace(
        &self,
        id: &str,
        file: (&str, Vec<u8>),
        fields: &[(&str, &str)],
    ) -> (u16, Value) {
        self.send(
            self.request(
                reqwest::Method::POST,
                &format!("/api/documents/{id}/replace"),
            )
            .multipart(Self::form(&[file], fields)),
        )
        .await
    }

    /// Waits for a job to finish and returns it.
    async fn wait(&self, job: &Value) -> Value {
        let id = job["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no job id: {job}"));
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (status, job) = self.get_json(&format!("/api/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if job["status"] == "done" || job["status"] == "failed" {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn upload_and_wait(&self, files: &[(&str, Vec<u8>)], fields: &[(&str, &str)]) -> Value {
        let (status, job) = self.upload(files, fields).await;
        assert_eq!(status, 202, "{job}");
        self.wait(&job).await
    }

    async fn documents(&self) -> Value {
        let (status, list) = self.get_json("/api/documents").await;
        assert_eq!(status, 200, "{list}");
        list
    }

    async fn search_ids(&self, query: &str, extra: &str) -> Vec<String> {
        let (status, hits) = self
            .get_json(&format!(
                "/api/search?q={}&mode=bm25&k=20{extra}",
                doctrina_web::user::percent_encode(query)
            ))
            .await;
        assert_eq!(status, 200, "{hits}");
        hits.as_array()
            .unwrap()
            .iter()
            .map(|h| h["doc_id"].as_str().unwrap().to_string())
            .collect()
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

/// A small Markdown document about `topic` (a distinctive word search can find).
fn doc(title: &str, topic: &str, paragraphs: usize) -> Vec<u8> {
    let mut text = format!("# {title}\n\n## Chapter 1 General\n\n");
    for i in 1..=paragraphs {
        text.push_str(&format!(
            "1-{i}. The {topic} procedure step {i} requires the staff to coordinate the {topic} \
             plan with adjacent units, confirm the timeline and report completion to the \
             operations officer before the next phase begins.\n\n"
        ));
    }
    text.into_bytes()
}

/// The files in the library folder; the staging folder must hold nothing left over.
fn file_names_in(dir: &Path) -> Vec<String> {
    let staging = dir.join(".staging");
    let left: Vec<_> = std::fs::read_dir(&staging).unwrap().collect();
    assert!(
        left.is_empty(),
        "files left in {}: {left:?}",
        staging.display()
    );
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".staging")
        .collect();
    names.sort();
    names
}

fn assert_error(status: u16, body: &Value, want: u16, code: &str, mentions: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "'{message}' should name '{mentions}'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_replace_reindex_and_delete() {
    let app = Custodian::start(LibraryConfig::default()).await;

    // One file with metadata.
    let job = app
        .upload_and_wait(
            &[(
                "Water Point SOP.md",
                doc("Water Point Operations", "zephyrine", 4),
            )],
            &[
                ("publication", "SOP 9-1"),
                ("edition", "2023-01-01"),
                ("marking", "CUI"),
            ],
        )
        .await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["kind"], "upload");
    assert_eq!(job["actor"], "custodian");
    assert_eq!(job["progress"]["percent"], 100, "{job}");
    let file = &job["files"][0];
    assert_eq!(file["name"], "Water Point SOP.md");
    assert_eq!(file["outcome"], "indexed", "{job}");
    let old_id = file["doc_id"].as_str().unwrap().to_string();
    assert_eq!(old_id, "water-point-sop");
    assert!(app.search_ids("zephyrine", "").await.contains(&old_id));
    let list = app.documents().await;
    let row = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == old_id.as_str())
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(row["publication"], "SOP 9-1");
    assert_eq!(row["marking"], "CUI");

    // Many files at once, of several formats; a name already taken gets a fresh id.
    let job = app
        .upload_and_wait(
            &[
                ("a.md", doc("Alpha", "quillwort", 3)),
                ("b.txt", b"BRAVO NOTES\n\nThe marshwren convoy departs at dawn and the marshwren escort follows.\n".to_vec()),
                ("c.html", b"<html><head><title>Charlie</title></head><body><h1>Charlie</h1><p>The tamarack relay is staffed at all times.</p></body></html>".to_vec()),
                ("Water Point SOP.md", doc("Water Point Copy", "lindworm", 2)),
            ],
            &[],
        )
        .await;
    assert_eq!(job["status"], "done", "{job}");
    let outcomes: Vec<&str> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["indexed"; 4], "{job}");
    assert_eq!(job["files"][3]["doc_id"], "water-point-sop-2", "{job}");
    for (word, id) in [("quillwort", "a"), ("marshwren", "b"), ("tamarack", "c")] {
        assert!(
            app.search_ids(word, "").await.contains(&id.to_string()),
            "{word}"
        );
    }

    // Replace with a new edition: the old one is superseded, left out of search, viewable.
    let (status, job) = app
        .replace(
            &old_id,
            (
                "water-point-2025.md",
                doc("Water Point Operations", "zephyrine", 5),
            ),
            &[("edition", "2025-01-01")],
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let job = app.wait(&job).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["kind"], "replace");
    let new_id = job["files"][0]["doc_id"].as_str().unwrap().to_string();
    let list = app.documents().await;
    let old = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == old_id.as_str())
        .unwrap();
    assert_eq!(old["status"], "superseded", "{list}");
    assert_eq!(old["superseded_by"], new_id.as_str());
    let new = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == new_id.as_str())
        .unwrap();
    assert_eq!(new["publication"], "SOP 9-1", "publication kept: {new}");
    assert_eq!(new["marking"], "CUI", "marking kept: {new}");
    let hits = app.search_ids("zephyrine", "").await;
    assert!(
        hits.contains(&new_id) && !hits.contains(&old_id),
        "{hits:?}"
    );
    let hits = app
        .search_ids("zephyrine", "&include_superseded=true")
        .await;
    assert!(hits.contains(&old_id), "{hits:?}");
    let (status, page) = app.get_page(&format!("/documents/{old_id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Water Point Operations"));
    let (status, body) = app
        .replace("no-such-doc", ("x.md", doc("X", "x", 1)), &[])
        .await;
    assert_error(status, &body, 404, "not_found", "no-such-doc");

    // Re-index one: unchanged.
    let (status, job) = app
        .send(app.request(
            reqwest::Method::POST,
            &format!("/api/documents/{new_id}/reindex"),
        ))
        .await;
    assert_eq!(status, 202, "{job}");
    let job = app.wait(&job).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["files"][0]["outcome"], "unchanged", "{job}");

    // Delete: gone from search, the list and the library folder.
    let (status, job) = app
        .send(app.request(reqwest::Method::DELETE, &format!("/api/documents/{new_id}")))
        .await;
    assert_eq!(status, 202, "{job}");
    let job = app.wait(&job).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["files"][0]["outcome"], "removed");
    assert!(!app.search_ids("zephyrine", "").await.contains(&new_id));
    let list = app.documents().await;
    assert!(
        !list["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == new_id.as_str()),
        "{list}"
    );
    assert!(
        !file_names_in(&app.library)
            .iter()
            .any(|n| n.starts_with("water-point-2025")),
        "{:?}",
        file_names_in(&app.library)
    );
    let (status, body) = app
        .send(app.request(reqwest::Method::DELETE, &format!("/api/documents/{new_id}")))
        .await;
    assert_error(status, &body, 404, "not_found", &new_id);

    // Jobs list, newest first; the audit trail has the requests and the outcomes.
    let (status, jobs) = app.get_json("/api/jobs").await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["delete", "reindex", "replace", "upload", "upload"]);
    let (status, body) = app.get_json("/api/jobs/999").await;
    assert_error(status, &body, 404, "not_found", "999");
    let (status, body) = app.get_json("/api/jobs/abc").await;
    assert_error(status, &body, 404, "not_found", "abc");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_and_type_limits() {
    let app = Custodian::start(LibraryConfig {
        max_upload_bytes: 64 * 1024,
        ..LibraryConfig::default()
    })
    .await;
    let big = vec![b'a'; 100 * 1024];
    let (status, body) = app
        .upload(
            &[("ok.md", doc("Fine", "fine", 1)), ("huge.md", big.clone())],
            &[],
        )
        .await;
    assert_error(status, &body, 413, "too_large", "huge.md");

    let (status, body) = app
        .upload(&[("tool.exe", b"MZ\x90\x00".to_vec())], &[])
        .await;
    assert_error(status, &body, 415, "unsupported_type", "tool.exe");
    let (status, body) = app
        .upload(
            &[("report.pdf", b"\x7fELF\x02\x01\x01\x00binary".to_vec())],
            &[],
        )
        .await;
    assert_error(status, &body, 415, "unsupported_type", "report.pdf");
    let (status, body) = app
        .upload(&[("letter.docx", b"%PDF-1.7 not a zip".to_vec())], &[])
        .await;
    assert_error(status, &body, 415, "unsupported_type", "letter.docx");
    let (status, body) = app
        .upload(&[("notes.md", b"text\x00with NUL".to_vec())], &[])
        .await;
    assert_error(status, &body, 415, "unsupported_type", "notes.md");
    let (status, body) = app.upload(&[], &[("title", "nothing")]).await;
    assert_error(status, &body, 400, "bad_request", "no file");
    let (status, body) = app
        .upload(&[("x.md", doc("X", "x", 1))], &[("marking", "ULTRA")])
        .await;
    assert_error(status, &body, 400, "bad_request", "ULTRA");

    // The page form says the same on an error page.
    let r = app
        .request(
            reqwest::Method::POST,
            &format!("/documents/upload?_csrf={}", app.csrf),
        )
        .multipart(Custodian::form(&[("huge.md", big)], &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("huge.md") && page.contains("upload limit"),
        "{page}"
    );

    // Nothing was stored and no job was queued.
    assert!(
        file_names_in(&app.library).is_empty(),
        "{:?}",
        file_names_in(&app.library)
    );
    let (_, jobs) = app.get_json("/api/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_metadata_are_harmless() {
    let app = Custodian::start(LibraryConfig::default()).await;
    let data_dir = app.index.data_dir().to_path_buf();
    let xss = "<img src=x onerror=alert(1)>";
    let job = app
        .upload_and_wait(
            &[
                ("../../etc/passwd.md", doc("Traversal One", "ravelin", 1)),
                ("..\\..\\x.md", doc("Traversal Two", "ravelin", 1)),
                ("/tmp/absolute.md", doc("Absolute", "ravelin", 1)),
                (
                    "<img src=x onerror=alert(2)>.md",
                    doc("Script Name", "ravelin", 1),
                ),
                ("'; DROP TABLE jobs; --.md", doc("Sql Name", "ravelin", 1)),
            ],
            &[
                ("title", xss),
                ("publication", "x'); DELETE FROM documents; --"),
            ],
        )
        .await;
    assert_eq!(job["status"], "done", "{job}");
    let names: Vec<&str> = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "passwd.md");
    assert_eq!(names[1], "x.md");
    assert_eq!(names[2], "absolute.md");
    assert_eq!(names[3], "<img src=x onerror=alert(2)>.md");
    assert_eq!(names[4], "'; DROP TABLE jobs; --.md");

    // Every stored file sits directly in the library under a generated safe name.
    for name in file_names_in(&app.library) {
        let stem = name.trim_end_matches(".meta.yaml");
        let (id, ext) = stem.rsplit_once('.').unwrap();
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && ext == "md",
            "unsafe stored name {name}"
        );
    }
    for f in job["files"].as_array().unwrap() {
        let path = Path::new(f["path"].as_str().unwrap());
        assert_eq!(path.parent().unwrap(), app.library, "{f}");
    }
    assert!(
        !data_dir.join("etc").exists()
            && !data_dir.parent().unwrap().join("etc/passwd.md").exists()
    );

    // All six are indexed; the SQL-looking values are plain data.
    let list = app.documents().await;
    let docs = list["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 5, "{list}");
    assert!(
        docs.iter()
            .all(|d| d["title"] == xss && d["publication"] == "x'); DELETE FROM documents; --")
    );
    let (_, jobs) = app.get_json("/api/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);

    // Rendered inert on the pages.
    let (status, page) = app.get_page("/documents").await;
    assert_eq!(status, 200);
    assert!(!page.contains("<img src=x"), "raw payload on /documents");
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;") || page.contains("&#60;img"),
        "escaped title shown"
    );
    let (status, page) = app.get_page(&format!("/jobs/{}", job["id"])).await;
    assert_eq!(status, 200);
    assert!(!page.contains("<img src=x"), "raw payload on /jobs");
    assert!(
        page.contains("&lt;img src=x onerror=alert(2)&gt;.md") || page.contains("&#60;img"),
        "{page}"
    );
    assert!(page.contains("id=\"job-progress\""));

    // A NUL byte in a name is refused as malformed or dropped from the name; either way
    // nothing lands outside the library.
    let (status, body) = app
        .upload(&[("nul\0byte.md", doc("Nul", "ravelin", 1))], &[])
        .await;
    if status == 202 {
        let job = app.wait(&body).await;
        assert_eq!(job["files"][0]["name"], "nulbyte.md", "{job}");
    } else {
        assert_eq!(status, 400, "{body}");
    }
    for name in file_names_in(&app.library) {
        assert!(!name.contains('\0'), "{name}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_pdf_is_reported_in_the_job_and_the_list() {
    let app = Custodian::start(LibraryConfig::default()).await;
    let job = app
        .upload_and_wait(
            &[
                ("good.md", doc("Good", "pelorus", 1)),
                (
                    "broken.pdf",
                    b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage".to_vec(),
                ),
            ],
            &[],
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"], "1 of 2 files failed");
    assert_eq!(job["files"][0]["outcome"], "indexed");
    let broken = &job["files"][1];
    assert_eq!(broken["name"], "broken.pdf");
    assert_eq!(broken["outcome"], "failed");
    assert!(
        broken["error"].as_str().unwrap().contains("PDF"),
        "{broken}"
    );
    assert_eq!(job["progress"]["files_failed"], 1);

    let list = app.documents().await;
    let failed = list["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{list}");
    assert!(failed[0]["error"].as_str().unwrap().contains("PDF"));
    let (_, page) = app.get_page("/documents").await;
    assert!(
        page.contains("Files that could not be indexed") && page.contains("corrupt"),
        "{page}"
    );
    let (_, page) = app.get_page(&format!("/jobs/{}", job["id"])).await;
    assert!(
        page.contains("broken.pdf") && page.contains("corrupt"),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_all_is_never_queued_twice_and_search_works_during_a_job() {
    let app = Custodian::start(LibraryConfig::default()).await;
    let job = app
        .upload_and_wait(&[("base.md", doc("Base", "gallivat", 2))], &[])
        .await;
    assert_eq!(job["status"], "done", "{job}");

    // A long upload keeps the worker busy.
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                format!("long-{i}.md"),
                doc(&format!("Long {i}"), &format!("topic{i}"), 60),
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (status, long_job) = app.upload(&refs, &[]).await;
    assert_eq!(status, 202, "{long_job}");

    let (status, first) = app
        .send(app.request(reqwest::Method::POST, "/api/reindex"))
        .await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["status"], "queued");
    let (status, second) = app
        .send(app.request(reqwest::Method::POST, "/api/reindex"))
        .await;
    assert_error(status, &second, 409, "conflict", "already");

    // Search answers while the upload job runs.
    let id = long_job["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut searched_while_running = false;
    while Instant::now() < deadline {
        let (_, job) = app.get_json(&format!("/api/jobs/{id}")).await;
        if job["status"] == "running" {
            assert!(
                app.search_ids("gallivat", "")
                    .await
                    .contains(&"base".to_string())
            );
            let (_, again) = app.get_json(&format!("/api/jobs/{id}")).await;
            searched_while_running = again["status"] == "running";
            break;
        }
        if job["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        searched_while_running,
        "the search ran while the job was running"
    );

    let long_job = app.wait(&long_job).await;
    assert_eq!(long_job["status"], "done", "{long_job}");
    assert!(long_job["progress"]["passages_embedded"].as_u64().unwrap() > 0);
    let first = app.wait(&first).await;
    assert_eq!(first["status"], "done", "{first}");
    assert_eq!(first["kind"], "reindex-all");
    assert!(
        first["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["outcome"] == "unchanged"),
        "{first}"
    );
    assert_eq!(first["progress"]["files_total"], 7, "{first}");
    // Once it is finished, another is accepted.
    let (status, third) = app
        .send(app.request(reqwest::Method::POST, "/api/reindex"))
        .await;
    assert_eq!(status, 202, "{third}");
    app.wait(&third).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_forms_upload_and_delete_through_jobs() {
    let app = Custodian::start(LibraryConfig::default()).await;
    let r = app
        .request(
            reqwest::Method::POST,
            &format!("/documents/upload?_csrf={}", app.csrf),
        )
        .multipart(Custodian::form(
            &[("page.md", doc("Page Upload", "caracole", 2))],
            &[],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/jobs/"), "{location}");
    let (status, page) = app.get_page(&location).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("page.md") && page.contains("job-progress"),
        "{page}"
    );
    let (status, page) = app.get_page("/jobs").await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("href=\"{location}\"")), "{page}");
    let id: i64 = location.trim_start_matches("/jobs/").parse().unwrap();
    let job = app.wait(&json!({"id": id})).await;
    assert_eq!(job["status"], "done", "{job}");

    let (_, page) = app.get_page("/documents").await;
    assert!(page.contains("/documents/page/delete") && page.contains("Upload and index"));
    let r = app
        .request(reqwest::Method::POST, "/documents/page/delete")
        .form(&[("_csrf", app.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let id: i64 = location.trim_start_matches("/jobs/").parse().unwrap();
    let job = app.wait(&json!({"id": id})).await;
    assert_eq!(job["status"], "done", "{job}");
    assert!(file_names_in(&app.library).is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custodian_uploads_in_chromium_and_the_job_page_follows_the_job() {
    use fantoccini::Locator;
    let app = Custodian::start(LibraryConfig::default()).await;
    let files = tempfile::tempdir().unwrap();
    let plain = files.path().join("chromium-manual.md");
    // Long enough that the job page first shows it unfinished and has to follow it.
    std::fs::write(&plain, doc("Chromium Manual", "brigantine", 600)).unwrap();
    let hostile = files.path().join("<img src=x onerror=window.pwned=1>.md");
    std::fs::write(&hostile, doc("Hostile Name", "brigantine", 2)).unwrap();

    let mut b = doctrina_tests::browser::Browser::start("library").await;
    b.client
        .goto(&format!("{}/documents", app.base))
        .await
        .unwrap();
    b.wait_js(
        "return !!document.querySelector('#login-name')",
        Duration::from_secs(30),
    )
    .await;
    b.send_keys("#login-name", "custodian").await;
    b.send_keys("#login-password", PASSWORD).await;
    b.click("#login-submit").await;
    b.wait_js(
        "return !!document.querySelector('details#library')",
        Duration::from_secs(30),
    )
    .await;
    b.click("details#library summary").await;
    b.send_keys(
        "form.upload input[type=file]",
        &format!("{}\n{}", plain.display(), hostile.display()),
    )
    .await;
    b.send_keys("form.upload input[name=publication]", "SOP 7-7")
        .await;
    b.shot("upload-form").await;
    b.click("form.upload button[type=submit]").await;

    // The job page updates itself (no manual refresh) until the job is done.
    b.wait_js(
        "return !!document.querySelector('#job-status')",
        Duration::from_secs(30),
    )
    .await;
    let first = b
        .client
        .execute(
            "return document.querySelector('#job-status').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_ne!(
        first,
        Value::String("done".to_string()),
        "the job was not followed"
    );
    b.shot("job-running").await;
    b.wait_js(
        "var s = document.querySelector('#job-status'); return !!s && s.textContent === 'done';",
        Duration::from_secs(120),
    )
    .await;
    b.wait_js(
        "var p = document.querySelector('#job-progress'); return !!p && p.value === 100;",
        Duration::from_secs(30),
    )
    .await;
    b.shot("job-done").await;
    let text = b
        .client
        .execute(
            "return document.querySelector('#job-files').textContent",
            vec![],
        )
        .await
        .unwrap();
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("<img src=x onerror=window.pwned=1>.md")
            && text.contains("chromium-manual.md"),
        "{text}"
    );
    let pwned = b
        .client
        .execute("return window.pwned === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, Value::Bool(true), "the file name ran as markup");
    assert!(
        app.search_ids("brigantine", "")
            .await
            .contains(&"chromium-manual".to_string())
    );
    b.client
        .goto(&format!("{}/documents", app.base))
        .await
        .unwrap();
    b.wait_js(
        "return !!document.querySelector('form[action=\"/documents/chromium-manual/delete\"]')",
        Duration::from_secs(30),
    )
    .await;
    b.shot("documents-with-actions").await;

    // Replace it with a new edition from its page: the old one is superseded.
    let v2 = files.path().join("chromium-manual-2025.md");
    std::fs::write(&v2, doc("Chromium Manual", "brigantine", 3)).unwrap();
    b.client
        .goto(&format!("{}/documents/chromium-manual", app.base))
        .await
        .unwrap();
    b.wait_js(
        "return !!document.querySelector('#replace input[type=file]')",
        Duration::from_secs(30),
    )
    .await;
    b.send_keys("#replace input[type=file]", &v2.display().to_string())
        .await;
    b.send_keys("#replace input[name=edition]", "2025-01-01")
        .await;
    b.shot("replace-form").await;
    b.click("#replace button[type=submit]").await;
    let done = "var s = document.querySelector('#job-status'); \
                return !!s && (s.textContent === 'done' || s.textContent === 'failed');";
    b.wait_js(done, Duration::from_secs(120)).await;
    b.shot("replace-done").await;
    let status_of = |id: &str| {
        format!(
            "var r = document.getElementById('doc-{id}'); \
             return r ? r.querySelector('.status').textContent : 'absent';"
        )
    };
    b.client
        .goto(&format!("{}/documents", app.base))
        .await
        .unwrap();
    b.wait_js(
        "return !!document.querySelector('table')",
        Duration::from_secs(30),
    )
    .await;
    let old = b
        .client
        .execute(&status_of("chromium-manual"), vec![])
        .await
        .unwrap();
    assert_eq!(old, Value::String("superseded".into()), "the old edition");
    let new = b
        .client
        .execute(&status_of("chromium-manual-2025"), vec![])
        .await
        .unwrap();
    assert_eq!(new, Value::String("indexed".into()), "the new edition");
    b.shot("replaced").await;

    // Delete the new edition from the list.
    b.client
        .find(Locator::Css(
            "form[action=\"/documents/chromium-manual-2025/delete\"] button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_js(done, Duration::from_secs(120)).await;
    b.client
        .goto(&format!("{}/documents", app.base))
        .await
        .unwrap();
    b.wait_js(
        "return !!document.querySelector('table')",
        Duration::from_secs(30),
    )
    .await;
    let gone = b
        .client
        .execute(&status_of("chromium-manual-2025"), vec![])
        .await
        .unwrap();
    assert_eq!(gone, Value::String("absent".into()), "deleted");
    b.shot("deleted").await;

    // A corrupt PDF: the job fails and names the file and the reason.
    let broken = files.path().join("broken-orders.pdf");
    std::fs::write(&broken, b"%PDF-1.4\n1 0 obj << /Type /Catalog >> nonsense").unwrap();
    b.click("details#library summary").await;
    b.send_keys(
        "form.upload input[type=file]",
        &broken.display().to_string(),
    )
    .await;
    b.click("form.upload button[type=submit]").await;
    b.wait_js(done, Duration::from_secs(120)).await;
    let job = b
        .client
        .execute(
            "return [document.querySelector('#job-status').textContent, \
                     document.querySelector('#job-files').textContent]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(job[0], "failed", "{job}");
    assert!(
        job[1].as_str().unwrap().contains("broken-orders.pdf"),
        "{job}"
    );
    b.shot("failed-file").await;
    b.client
        .goto(&format!("{}/documents", app.base))
        .await
        .unwrap();
    b.wait_js(
        "return !!document.querySelector('table')",
        Duration::from_secs(30),
    )
    .await;
    let page = b
        .client
        .execute("return document.querySelector('main').textContent", vec![])
        .await
        .unwrap();
    assert!(
        page.as_str().unwrap().contains("broken-orders"),
        "the list shows the failure"
    );
    b.shot("failed-file-listed").await;
    b.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundled_document_is_reindexed_and_deleted_from_the_index_but_its_file_stays() {
    let app = Custodian::start(LibraryConfig::default()).await;
    let bundled = tempfile::tempdir().unwrap();
    let file = bundled.path().join("bundled-guide.md");
    std::fs::write(&file, doc("Bundled Guide", "carrack", 3)).unwrap();
    let report = app.index.index(&[bundled.path().to_path_buf()]);
    assert_eq!(report.indexed, 1, "{report:?}");
    assert!(
        app.search_ids("carrack", "")
            .await
            .contains(&"bundled-guide-md".to_string())
    );

    // Re-index all covers files outside the library, by their own path.
    std::fs::write(&file, doc("Bundled Guide", "carrack", 4)).unwrap();
    let (status, job) = app
        .send(app.request(reqwest::Method::POST, "/api/reindex"))
        .await;
    assert_eq!(status, 202, "{job}");
    let job = app.wait(&job).await;
    assert_eq!(job["status"], "done", "{job}");
    let entry = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["doc_id"] == "bundled-guide-md")
        .unwrap_or_else(|| panic!("{job}"));
    assert_eq!(entry["outcome"], "indexed", "{job}");

    let (status, job) = app
        .send(app.request(reqwest::Method::DELETE, "/api/documents/bundled-guide-md"))
        .await;
    assert_eq!(status, 202, "{job}");
    let job = app.wait(&job).await;
    assert_eq!(job["status"], "done", "{job}");
    assert!(
        !app.search_ids("carrack", "")
            .await
            .contains(&"bundled-guide-md".to_string())
    );
    assert!(file.exists(), "a file outside the library is never deleted");
    app.stop().await;
}

/// Index health: the page and API compare both indexes with the catalog; a document whose
/// vectors went missing shows as a disagreement, and a repair job (queued like any change)
/// rebuilds it from the catalog until the indexes agree again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_health_reports_and_a_repair_job_fixes_disagreement() {
    let app = Custodian::start(LibraryConfig::default()).await;
    let job = app
        .upload_and_wait(
            &[
                ("a.md", doc("Harbour Operations", "quillwort", 3)),
                ("b.md", doc("Rail Operations", "marshwren", 3)),
            ],
            &[],
        )
        .await;
    assert_eq!(job["status"], "done", "{job}");
    let (status, health) = app.get_json("/api/index/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["consistent"], true, "{health}");
    assert_eq!(health["complete"], true);
    assert_eq!(health["catalog_passages"], health["vector_passages"]);

    // Lose one document's vectors behind the app's back.
    app.index.indexes.vectors.delete_doc("a").unwrap();
    let (_, health) = app.get_json("/api/index/health").await;
    assert_eq!(health["consistent"], false, "{health}");
    assert_ne!(health["catalog_passages"], health["vector_passages"]);
    let (_, page) = app.get_page("/documents/health").await;
    assert!(
        page.contains("The indexes disagree with the catalog"),
        "{page}"
    );

    let (status, job) = app
        .send(app.request(reqwest::Method::POST, "/api/index/repair"))
        .await;
    assert_eq!(status, 202, "{job}");
    let job = app.wait(&job).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["kind"], "repair");
    assert!(
        job["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "a" && f["outcome"] == "repaired"),
        "{job}"
    );
    let (_, health) = app.get_json("/api/index/health").await;
    assert_eq!(health["consistent"], true, "{health}");
    let dense = app
        .index
        .search("quillwort procedure", doctrina_types::SearchMode::Dense, 5);
    assert!(dense.iter().any(|h| h.doc_id == "a"), "vectors are back");
    app.stop().await;
}

/// Issue 12: a CUI custodian uploaded a document with `supersedes: <a SECRET document's id>`
/// and took the SECRET document out of SECRET readers' search. Superseding needs access to
/// what is superseded; a reference to something invisible is refused exactly like one to
/// nothing, and what was superseded is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseding_needs_access_to_what_is_superseded() {
    let boss = Custodian::start(LibraryConfig::default()).await;
    let job = boss
        .upload_and_wait(
            &[("ops-plan.md", doc("Ops Plan", "quillwort", 2))],
            &[("marking", "SECRET"), ("publication", "OPS 7")],
        )
        .await;
    assert_eq!(job["status"], "done", "{job}");
    let secret_id = job["files"][0]["doc_id"].as_str().unwrap().to_string();
    let low = boss.colleague("low-custodian", "CUI", &[]).await;
    for reference in [secret_id.as_str(), "no-such-document"] {
        let front = format!(
            "---\nsupersedes: {reference}\n---\n# Notice\n\n1-1. The quillwort notice replaces earlier guidance on the quillwort procedure.\n"
        );
        let job = low
            .upload_and_wait(&[("notice.md", front.into_bytes())], &[("marking", "CUI")])
            .await;
        assert_eq!(job["status"], "failed", "{job}");
        let error = job["files"][0]["error"].as_str().unwrap();
        assert!(error.contains("supersede"), "{error}");
        assert!(
            !error.contains("SECRET") && !error.contains("Ops Plan"),
            "{error}"
        );
    }
    // The two refusals read the same but for the reference the uploader typed.
    assert!(
        boss.search_ids("quillwort procedure", "")
            .await
            .contains(&secret_id),
        "the SECRET document is still searched"
    );
    // Someone cleared for it may supersede it, and it is audited.
    let front = format!(
        "---\nsupersedes: {secret_id}\npublication: OPS 7\n---\n# Ops Plan 2\n\n1-1. The new quillwort procedure.\n"
    );
    let job = boss
        .upload_and_wait(
            &[("ops-plan-2.md", front.into_bytes())],
            &[("marking", "SECRET")],
        )
        .await;
    assert_eq!(job["status"], "done", "{job}");
    assert!(
        !boss
            .search_ids("quillwort procedure", "")
            .await
            .contains(&secret_id)
    );
    let audit =
        doctrina_audit::AuditLog::open(&boss.index.data_dir().join("audit.sqlite")).unwrap();
    let entry = audit
        .entries(0, 1000)
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.event.action == "upload-job")
        .unwrap();
    assert_eq!(
        entry.event.detail["superseded"][0]["supersedes"][0],
        secret_id.as_str()
    );
    low.stop().await;
    boss.stop().await;
}

/// Issue 12: job pages named documents above the viewing custodian's clearance. A re-index
/// of everything by a CUI custodian lists the SECRET file as a count, not a name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_results_name_only_what_the_viewer_may_see() {
    let boss = Custodian::start(LibraryConfig::default()).await;
    let job = boss
        .upload_and_wait(
            &[
                ("raid-orders.md", doc("Raid Orders", "kestrel", 2)),
                ("open-notes.md", doc("Open Notes", "heron", 2)),
            ],
            &[("marking", "SECRET")],
        )
        .await;
    assert_eq!(job["status"], "done", "{job}");
    let open = boss
        .upload_and_wait(
            &[("field-notes.md", doc("Field Notes", "heron", 2))],
            &[("marking", "UNCLASSIFIED")],
        )
        .await;
    assert_eq!(open["status"], "done", "{open}");
    let low = boss.colleague("low-custodian", "CUI", &[]).await;
    let (status, job) = low
        .send(low.request(reqwest::Method::POST, "/api/reindex"))
        .await;
    assert_eq!(status, 202, "{job}");
    let job = low.wait(&job).await;
    let text = job.to_string();
    for secret in ["raid-orders", "Raid Orders", "open-notes"] {
        assert!(!text.contains(secret), "{secret} named in {text}");
    }
    assert!(text.contains("field-notes"), "{text}");
    assert!(job["hidden_files"].as_u64().unwrap() >= 2, "{text}");
    let (_, page) = low.get_page(&format!("/jobs/{}", job["id"])).await;
    assert!(
        !page.contains("raid-orders"),
        "the job page withholds it too"
    );
    // The one who may see everything sees every line.
    let (status, _) = boss.get_json(&format!("/api/jobs/{}", job["id"])).await;
    assert_eq!(status, 404, "a custodian sees only their own jobs");
    low.stop().await;
    boss.stop().await;
}

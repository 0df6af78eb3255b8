//! Crash safety of the library's background jobs, on the real binary: `doctrina serve` is
//! killed (SIGKILL) in the middle of an upload job of ten files (`DOCTRINA_FAILPOINT=slow-job`
//! makes the worker pause before each file), restarted, and must finish the job, say that it
//! resumed it, and end with every uploaded document indexed and the indexes consistent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "vellum lantern quarry 41";

/// A custodian account in the data directory (the store the server opens).
fn add_custodian(data: &Path) {
    let store = doctrina_auth::AuthStore::open(
        &data.join("users.sqlite"),
        doctrina_types::config::AuthConfig::default(),
    )
    .expect("user store");
    store
        .add_user(&doctrina_auth::NewUser {
            name: "custodian".to_string(),
            password: PASSWORD.to_string(),
            roles: vec![doctrina_auth::Role::Custodian],
            clearance: doctrina_types::Clearance {
                level: "TOP SECRET".to_string(),
                caveats: Vec::new(),
            },
        })
        .expect("custodian added");
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

struct Server {
    child: Child,
    addr: String,
    cookie: String,
    csrf: String,
}

impl Server {
    fn start(data: &Path, slow: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_doctrina"));
        command
            .args(["serve", "--addr", &addr, "--data-dir"])
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if slow {
            command.env("DOCTRINA_FAILPOINT", "slow-job");
        } else {
            command.env_remove("DOCTRINA_FAILPOINT");
        }
        let mut child = command.spawn().expect("doctrina serve starts");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if TcpStream::connect(&addr).is_ok()
                && http(&addr, "GET", "/healthz", &[], b"").status == 200
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("doctrina serve exited: {status}");
            }
            assert!(Instant::now() < deadline, "doctrina serve did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut server = Self {
            child,
            addr,
            cookie: String::new(),
            csrf: String::new(),
        };
        server.sign_in();
        server
    }

    fn sign_in(&mut self) {
        let body = json!({"name": "custodian", "password": PASSWORD}).to_string();
        let r = http(
            &self.addr,
            "POST",
            "/api/login",
            &[("Content-Type", "application/json".to_string())],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "login: {}", r.json());
        self.cookie = r
            .headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        self.csrf = r.json()["csrf_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }

    fn call(&self, method: &str, path: &str, extra: &[(&str, String)], body: &[u8]) -> Response {
        let mut headers = vec![
            ("Cookie", self.cookie.clone()),
            ("X-CSRF-Token", self.csrf.clone()),
        ];
        headers.extend(extra.iter().cloned());
        http(&self.addr, method, path, &headers, body)
    }

    fn job(&self, id: i64) -> Value {
        let r = self.call("GET", &format!("/api/jobs/{id}"), &[], b"");
        assert_eq!(r.status, 200, "{}", r.json());
        r.json()
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

fn document(i: usize) -> String {
    let mut text = format!("# Crash Test Manual {i}\n\n## Chapter 1\n\n");
    for p in 1..=8 {
        text.push_str(&format!(
            "1-{p}. Manual {i} paragraph {p}: the convoy commander confirms the route, the \
             recovery plan and the casualty evacuation plan before the convoy departs.\n\n"
        ));
    }
    text
}

#[test]
fn a_job_killed_midway_resumes_on_restart_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    add_custodian(data.path());
    let server = Server::start(data.path(), true);

    let boundary = "doctrina-crash-test-boundary";
    let mut body = Vec::new();
    for i in 0..10 {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"manual-{i}.md\"\r\nContent-Type: text/markdown\r\n\r\n{}\r\n",
                document(i)
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"marking\"\r\n\r\nUNCLASSIFIED\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let r = server.call(
        "POST",
        "/api/documents",
        &[(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )],
        &body,
    );
    assert_eq!(r.status, 202, "{}", r.json());
    let id = r.json()["id"].as_i64().unwrap();

    // Kill it once a few files are done and the rest are not.
    let deadline = Instant::now() + Duration::from_secs(120);
    let done_before_kill = loop {
        let job = server.job(id);
        let done = job["progress"]["files_done"].as_u64().unwrap();
        assert!(done < 10, "the job finished before the kill: {job}");
        if done >= 3 {
            break done;
        }
        assert!(Instant::now() < deadline, "no progress: {job}");
        std::thread::sleep(Duration::from_millis(50));
    };
    server.kill();

    let server = Server::start(data.path(), false);
    let deadline = Instant::now() + Duration::from_secs(180);
    let job = loop {
        let job = server.job(id);
        if job["status"] == "done" || job["status"] == "failed" {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the resumed job did not finish: {job}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["resumed"], true, "{job}");
    let note = job["resume_note"].as_str().unwrap();
    assert!(note.contains("resumed after an interruption"), "{note}");
    assert!(note.contains("files left"), "{note}");
    // The note names a file that was left and none that was finished before the kill.
    assert!(note.contains("manual-9.md"), "{note}");
    assert!(!note.contains("manual-0.md"), "{note}");
    assert!(done_before_kill >= 3);
    for f in job["files"].as_array().unwrap() {
        assert_eq!(f["outcome"], "indexed", "{job}");
    }

    let list = server.call("GET", "/api/documents", &[], b"").json();
    let documents = list["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 10, "{list}");
    for i in 0..10 {
        let doc = documents
            .iter()
            .find(|d| d["id"] == format!("manual-{i}"))
            .unwrap_or_else(|| panic!("manual-{i} missing: {list}"));
        assert_eq!(doc["status"], "indexed", "{doc}");
        assert!(doc["chunks"].as_u64().unwrap() > 0, "{doc}");
    }
    server.kill();

    // The indexes agree with the catalog.
    let check = Command::new(env!("CARGO_BIN_EXE_doctrina"))
        .args(["check", "--json", "--data-dir"])
        .arg(data.path())
        .env_remove("DOCTRINA_FAILPOINT")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&check.stdout).expect("check --json");
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["documents"], 10, "{report}");
}

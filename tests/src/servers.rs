//! Inference servers for tests: the real llama.cpp `llama-server` with the small GGUF model
//! (started on a free port, stopped on drop), and a fake OpenAI-compatible server used only
//! to inject faults a real server will not produce on demand.

use std::net::TcpListener as StdListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn cache() -> PathBuf {
    doctrina_types::config::cache_dir()
}

/// The path in environment variable `var`, else `relative` under the cache.
fn env_or_cache(var: &str, relative: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join(relative))
}

/// The real llama-server, killed when dropped.
pub struct LlamaServer {
    pub url: String,
    child: Child,
}

impl LlamaServer {
    /// Starts llama-server with the small model (gemma-3-270m, fast, for tests of
    /// mechanism) and waits until `/health` answers 200. Panics with the setup command if
    /// the binary or model is missing.
    pub fn start() -> Self {
        Self::start_with(env_or_cache(
            "DOCTRINA_LLM_MODEL",
            "models/gemma-3-270m-q4_k_m.gguf",
        ))
    }

    /// Starts llama-server with the default model of `make run`
    /// (Qwen2.5-Coder-1.5B-Instruct), for tests that need a model that follows the prompt.
    pub fn start_default_model() -> Self {
        Self::start_with(env_or_cache(
            "DOCTRINA_DEFAULT_LLM_MODEL",
            "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        ))
    }

    fn start_with(model: PathBuf) -> Self {
        let binary = env_or_cache("DOCTRINA_LLAMA_SERVER", "venv/bin/llama-cpp-server");
        assert!(
            binary.exists(),
            "{} missing: run `make setup`",
            binary.display()
        );
        assert!(
            model.exists(),
            "{} missing: run `make setup`",
            model.display()
        );
        let port = free_port();
        // The wrapper runs llama-server as its child: both go in their own process group,
        // which `stop` kills as a whole.
        let child = Command::new(&binary)
            .process_group(0)
            .arg("-m")
            .arg(&model)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--ctx-size",
                "4096",
                // llama-server's own flags follow `--`: the chat template from the GGUF,
                // as `make run` starts it.
                "--",
                "--jinja",
                // One thread: the tests run beside each other (embeddings, Chromium,
                // another llama-server) on 2 cores, and llama.cpp's threads wait for each
                // other at every step, so two threads that must share the cores with other
                // work slow down some 15-30 times (gemma-3-270m measured at 2.4 tokens/s
                // with two threads beside three busy processes, 45.6 with one); a CI run
                // timed a draft out that way.
                "--threads",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llama-server starts");
        let mut server = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = server.child.try_wait().expect("child status") {
                panic!("llama-server exited early: {status}");
            }
            if health_ok(port) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "llama-server not healthy after 120 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Stops the server (also done on drop).
    pub fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn health_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

/// What the fake server does with a chat completion request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// HTTP 500 on every request.
    ServerError,
    /// Headers at once, then nothing for this long.
    SlowFirstToken(Duration),
    /// Two pieces of text, then the connection closes without finishing.
    CutStream,
    /// A stream event that is not JSON.
    InvalidJson,
    /// A finished stream with no text.
    Empty,
    /// A normal stream of this text (for citation checks with controlled output).
    Reply(String),
    /// A non-streaming JSON answer with this text.
    JsonReply(String),
    /// A stream that writes this text over and over (a model stuck in a loop), up to 200
    /// times, as long as the client listens.
    Loop(String),
    /// A stream of this text that the server ends at its token limit (`finish_reason`
    /// `length`).
    Truncated(String),
}

/// A fake OpenAI-compatible server on a free port; counts the requests it saw.
pub struct FakeServer {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn event(content: &str) -> String {
    let data = serde_json::json!({"model": "fake", "choices": [{"delta": {"content": content}, "finish_reason": null}]});
    format!("data: {data}\n\n")
}

const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

impl FakeServer {
    pub async fn start(fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let fault = fault.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let request = read_request(&mut socket).await;
                    if !request.starts_with("POST /v1/chat/completions") {
                        let _ = socket
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = respond(&mut socket, &fault).await;
                });
            }
        });
        Self {
            url,
            requests,
            task,
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = socket.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn respond(socket: &mut tokio::net::TcpStream, fault: &Fault) -> std::io::Result<()> {
    match fault {
        Fault::ServerError => {
            socket
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 13\r\nConnection: close\r\n\r\nmodel crashed")
                .await
        }
        Fault::SlowFirstToken(delay) => {
            socket.write_all(STREAM_HEAD.as_bytes()).await?;
            tokio::time::sleep(*delay).await;
            socket.write_all(event("late").as_bytes()).await
        }
        Fault::CutStream => {
            socket.write_all(STREAM_HEAD.as_bytes()).await?;
            socket.write_all(event("The BSB moves ").as_bytes()).await?;
            socket.flush().await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            socket.write_all(event("fuel forward [1].").as_bytes()).await?;
            socket.flush().await?;
            socket.shutdown().await
        }
        Fault::InvalidJson => {
            socket.write_all(STREAM_HEAD.as_bytes()).await?;
            socket.write_all(event("Partial ").as_bytes()).await?;
            socket.write_all(b"data: {this is not json\n\n").await
        }
        Fault::Empty => {
            socket.write_all(STREAM_HEAD.as_bytes()).await?;
            socket
                .write_all(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
                .await
        }
        Fault::JsonReply(text) => {
            let body = serde_json::json!({
                "model": "fake",
                "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            })
            .to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(body.as_bytes()).await
        }
        Fault::Loop(text) => {
            socket.write_all(STREAM_HEAD.as_bytes()).await?;
            for _ in 0..200 {
                socket.write_all(event(text).as_bytes()).await?;
                socket.flush().await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            socket
                .write_all(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n")
                .await
        }
        Fault::Truncated(text) => {
            socket.write_all(STREAM_HEAD.as_bytes()).await?;
            socket.write_all(event(text).as_bytes()).await?;
            socket
                .write_all(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n")
                .await
        }
        Fault::Reply(text) => {
            socket.write_all(STREAM_HEAD.as_bytes()).await?;
            let mid = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i);
            socket.write_all(event(&text[..mid]).as_bytes()).await?;
            socket.write_all(event(&text[mid..]).as_bytes()).await?;
            socket
                .write_all(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
                .await
        }
    }
}

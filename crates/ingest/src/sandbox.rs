//! Parsing untrusted files in a child process, so that a parser crash cannot take doctrina
//! down.
//!
//! `catch_unwind` catches panics, not stack overflows, aborts or memory faults, and a
//! third-party parser (pdf-extract, html5ever, zip) can hit any of them on a hostile file.
//! So each file is parsed by a child process (`doctrina extract --child`, which calls
//! [`child_main`]): the parent writes a [`Request`] (path, id hint, ingest config, marking
//! scheme) to the child's stdin and reads one JSON [`Response`] from its stdout. The child
//! limits itself before touching the file (address space, CPU seconds, no core dump, no
//! file writes) and the parent kills it after a wall-clock timeout. A child that dies is
//! reported as what killed it (stack overflow, memory, CPU, time, signal), for that file
//! only.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use doctrina_types::MarkingScheme;
use doctrina_types::config::IngestConfig;
use serde::{Deserialize, Serialize};
use wait_timeout::ChildExt;

use crate::error::{IngestError, Result};
use crate::{Ingestor, ParsedDocument};

/// Largest request a child reads (a path and two small configs).
const MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// Stderr kept from a child, to tell why it died.
const MAX_STDERR_BYTES: u64 = 64 * 1024;

/// How to start a child that runs [`child_main`].
#[derive(Debug, Clone)]
pub struct Sandbox {
    program: PathBuf,
    args: Vec<String>,
}

/// What the parent asks.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub path: PathBuf,
    pub id_hint: String,
    pub config: IngestConfig,
    pub scheme: MarkingScheme,
}

/// What the child answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Response {
    Parsed { document: Box<ParsedDocument> },
    Failed { message: String, input: bool },
}

impl Sandbox {
    /// A child started as `program args...`; it must run [`child_main`].
    pub fn new(program: impl Into<PathBuf>, args: &[&str]) -> Self {
        Self {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// `doctrina extract --child` from the running `doctrina` binary.
    pub fn current_exe() -> Result<Self> {
        let exe = std::env::current_exe()
            .map_err(|e| IngestError::Sandbox(format!("cannot find the doctrina binary: {e}")))?;
        Ok(Self::new(exe, &["extract", "--child"]))
    }

    /// Parses `path` in a child process with the limits of `config`.
    pub fn parse(
        &self,
        path: &Path,
        id_hint: &str,
        config: &IngestConfig,
        scheme: &MarkingScheme,
    ) -> Result<ParsedDocument> {
        let request = serde_json::to_vec(&Request {
            path: path.to_path_buf(),
            id_hint: id_hint.to_string(),
            config: config.clone(),
            scheme: scheme.clone(),
        })
        .map_err(|e| IngestError::Sandbox(e.to_string()))?;
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                IngestError::Sandbox(format!("cannot start {}: {e}", self.program.display()))
            })?;
        // The request is small: written before reading, it cannot fill the pipe.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&request); // a child that died early is reported below
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // The document (text and passages) is a few times the file's size in JSON.
        let out_limit = config.max_file_bytes.saturating_mul(8) + 16 * 1024 * 1024;
        let out_reader = std::thread::spawn(move || read_bounded(stdout, out_limit));
        let err_reader = std::thread::spawn(move || read_bounded(stderr, MAX_STDERR_BYTES));
        let wall = Duration::from_secs(config.extract_timeout_secs.max(1));
        let status = match child.wait_timeout(wall) {
            Ok(Some(status)) => Some(status),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(IngestError::Sandbox(format!("waiting for the parser: {e}")));
            }
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let Some(status) = status else {
            return Err(IngestError::ParserTimeout {
                secs: config.extract_timeout_secs,
            });
        };
        if status.success() {
            return match serde_json::from_slice::<Response>(&out) {
                Ok(Response::Parsed { document }) => Ok(*document),
                Ok(Response::Failed { message, input }) => {
                    Err(IngestError::Reported { message, input })
                }
                Err(e) => Err(IngestError::Sandbox(format!(
                    "the parser's answer was unreadable ({e}); {}",
                    last_line(&err)
                ))),
            };
        }
        Err(why_it_died(status, &err, config))
    }
}

fn read_bounded(source: Option<impl Read>, limit: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(source) = source {
        let mut limited = source.take(limit);
        let _ = limited.read_to_end(&mut buf);
        // Drain the rest so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
    }
    buf
}

fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(300).collect())
        .unwrap_or_else(|| "it printed nothing".to_string())
}

/// The cause of a child's death, from its status and what it printed.
fn why_it_died(status: ExitStatus, stderr: &[u8], config: &IngestConfig) -> IngestError {
    use std::os::unix::process::ExitStatusExt;
    let text = String::from_utf8_lossy(stderr);
    if text.contains("has overflowed its stack") {
        return IngestError::ParserCrashed {
            detail: "stack overflow: the file nests or refers to itself too deeply".to_string(),
        };
    }
    if text.contains("memory allocation of") || text.contains("out of memory") {
        return IngestError::ParserMemory {
            limit_mb: config.extract_memory_mb,
        };
    }
    match status.signal() {
        // SIGXCPU at the soft CPU limit, SIGKILL at the hard one.
        Some(24) | Some(9) => IngestError::ParserCpu {
            secs: config.extract_cpu_secs,
        },
        Some(11) | Some(7) => IngestError::ParserCrashed {
            detail: "memory fault".to_string(),
        },
        Some(6) => IngestError::ParserCrashed {
            detail: format!("aborted: {}", last_line(stderr)),
        },
        Some(signal) => IngestError::ParserCrashed {
            detail: format!("killed by signal {signal}"),
        },
        None => IngestError::ParserCrashed {
            detail: format!(
                "exit status {}: {}",
                status.code().unwrap_or(-1),
                last_line(stderr)
            ),
        },
    }
}

/// Limits this process before it parses anything: address space, CPU time, no core
/// dumps, no file writes (its answer goes to a pipe).
fn limit_self(config: &IngestConfig) -> std::io::Result<()> {
    use rlimit::Resource;
    let memory = config.extract_memory_mb.saturating_mul(1024 * 1024);
    Resource::AS.set(memory, memory)?;
    let cpu = config.extract_cpu_secs.max(1);
    Resource::CPU.set(cpu, cpu + 5)?;
    Resource::CORE.set(0, 0)?;
    Resource::FSIZE.set(0, 0)?;
    Ok(())
}

/// The child: reads a [`Request`] from stdin, limits itself, parses, writes a [`Response`]
/// to stdout. Exit status 0 whenever an answer was written (a file that fails to parse is
/// an answer); anything else means the child itself failed.
pub fn child_main() -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut input)
    {
        eprintln!("doctrina extract: cannot read the request: {e}");
        return ExitCode::from(3);
    }
    let request: Request = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("doctrina extract: invalid request: {e}");
            return ExitCode::from(3);
        }
    };
    if let Err(e) = limit_self(&request.config) {
        eprintln!("doctrina extract: cannot set resource limits: {e}");
        return ExitCode::from(3);
    }
    let ingestor = Ingestor::new(request.config, request.scheme);
    let response = match ingestor.parse_file_here(&request.path, &request.id_hint) {
        Ok(document) => Response::Parsed {
            document: Box::new(document),
        },
        Err(e) => Response::Failed {
            input: e.is_input_error(),
            message: e.to_string(),
        },
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = serde_json::to_writer(&mut out, &response)
        .map_err(std::io::Error::from)
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doctrina extract: cannot write the answer: {e}");
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that does what `script` says instead of parsing: injected faults.
    fn faulty(script: &str) -> Sandbox {
        Sandbox::new("/bin/sh", &["-c", script])
    }

    fn parse_with(sandbox: &Sandbox, config: &IngestConfig) -> IngestError {
        sandbox
            .parse(
                Path::new("/nonexistent.md"),
                "x",
                config,
                &MarkingScheme::default(),
            )
            .expect_err("the child failed")
    }

    #[test]
    fn a_crashing_child_fails_the_file_with_its_cause() {
        let config = IngestConfig::default();
        let err = parse_with(&faulty("cat >/dev/null; kill -SEGV $$"), &config);
        assert!(
            matches!(&err, IngestError::ParserCrashed { detail } if detail == "memory fault"),
            "{err}"
        );
        let err = parse_with(
            &faulty(
                "cat >/dev/null; echo \"thread 'main' has overflowed its stack\" >&2; kill -ABRT $$",
            ),
            &config,
        );
        assert!(err.to_string().contains("stack overflow"), "{err}");
        let err = parse_with(
            &faulty(
                "cat >/dev/null; echo 'memory allocation of 1073741824 bytes failed' >&2; kill -ABRT $$",
            ),
            &config,
        );
        assert!(
            matches!(err, IngestError::ParserMemory { limit_mb: 4096 }),
            "{err}"
        );
        let err = parse_with(&faulty("cat >/dev/null; kill -XCPU $$"), &config);
        assert!(matches!(err, IngestError::ParserCpu { .. }), "{err}");
        let err = parse_with(&faulty("cat >/dev/null; echo nonsense"), &config);
        assert!(matches!(err, IngestError::Sandbox(_)), "{err}");
        assert!(!err.is_input_error());
    }

    #[test]
    fn a_hanging_child_is_killed_at_the_timeout() {
        let config = IngestConfig {
            extract_timeout_secs: 1,
            ..IngestConfig::default()
        };
        let started = std::time::Instant::now();
        let err = parse_with(&faulty("cat >/dev/null; exec sleep 30"), &config);
        assert!(
            matches!(err, IngestError::ParserTimeout { secs: 1 }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_missing_parser_is_a_machine_fault() {
        let err = parse_with(
            &Sandbox::new("/nonexistent/doctrina", &[]),
            &IngestConfig::default(),
        );
        assert!(matches!(err, IngestError::Sandbox(_)), "{err}");
        assert!(!err.is_input_error());
    }

    #[test]
    fn answers_round_trip() {
        let failed = Response::Failed {
            message: "no text".into(),
            input: true,
        };
        let text = serde_json::to_string(&failed).unwrap();
        assert!(text.contains("\"outcome\":\"failed\""), "{text}");
        assert!(matches!(
            serde_json::from_str::<Response>(&text).unwrap(),
            Response::Failed { input: true, .. }
        ));
    }
}

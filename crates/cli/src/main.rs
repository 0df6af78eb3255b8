//! `doctrina`: the command-line interface. Commands, flags and `--json` outputs are a stable
//! contract that evaluators script against.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use doctrina_app::App;
use doctrina_index::Indexer;
use doctrina_index::indexer::{FileOutcome, Progress};
use doctrina_ingest::Ingestor;
use doctrina_types::{Config, PassageFilter, SearchHit, SearchMode};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `println!` that returns the write error instead of panicking: a closed pipe
/// (`doctrina sections --json | head -1`) ends the command quietly ([`main`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

/// `print!` that returns the write error instead of panicking (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

#[derive(Debug, Parser)]
#[command(
    name = "doctrina",
    version,
    about = "Air-gapped planning assistant: cited search over doctrine"
)]
struct Cli {
    /// Configuration file (default: ./doctrina.toml if present).
    #[arg(long, global = true, env = "DOCTRINA_CONFIG")]
    config: Option<PathBuf>,
    /// Where the catalog and indexes live (default ./data).
    #[arg(long, global = true, env = "DOCTRINA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Index files and directories (incremental: unchanged files are skipped).
    Index {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print one JSON report object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Parse one file as indexing would (in a child process, with the ingest limits) and
    /// show its metadata, marking basis and passages, or why it cannot be indexed.
    Extract {
        /// The file (Markdown, text, HTML, PDF, DOCX).
        #[arg(required_unless_present = "child")]
        path: Option<PathBuf>,
        /// The document id to use when its metadata gives none (default: from the file name).
        #[arg(long)]
        id_hint: Option<String>,
        #[arg(long)]
        json: bool,
        /// Internal: answer one parse request from the indexer (JSON on stdin and stdout).
        #[arg(long, hide = true)]
        child: bool,
    },
    /// Search the indexed passages.
    Search {
        query: String,
        #[arg(long, default_value = "hybrid")]
        mode: SearchMode,
        #[arg(short = 'k', default_value_t = 10)]
        k: usize,
        /// Only passages of this publication (repeatable).
        #[arg(long)]
        publication: Vec<String>,
        /// Also search editions that a newer indexed edition supersedes.
        #[arg(long)]
        include_superseded: bool,
        #[arg(long)]
        json: bool,
    },
    /// Serve the web app.
    Serve {
        /// Address to listen on (default from config: 127.0.0.1:8080).
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// Compare the catalog with both indexes; with --repair, fix what disagrees.
    Check {
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the documents in the catalog.
    Documents {
        #[arg(long)]
        json: bool,
    },
    /// Draft a plan section from retrieved passages, with verified citations.
    Draft {
        /// Section template name (see `doctrina sections`).
        #[arg(long)]
        section: String,
        /// The task the section is for.
        #[arg(long)]
        task: String,
        /// Guidance for the section (intent, constraints), given to the model with the task.
        #[arg(long)]
        guidance: Option<String>,
        /// `llm` (the local inference server) or `extractive` (quoted passages, no server).
        #[arg(long, default_value = "llm")]
        mode: doctrina_draft::DraftMode,
        /// Sources to give the model (fewer if they do not fit its context window).
        #[arg(long, default_value_t = 6)]
        sources: usize,
        #[arg(long)]
        json: bool,
    },
    /// List stored drafts, or show one exactly as produced.
    Drafts {
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Evaluate retrieval or drafts.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// List the plan-section templates.
    Sections {
        #[arg(long)]
        json: bool,
    },
    /// The bilingual glossary that expands keyword queries across Korean and English.
    #[command(subcommand)]
    Glossary(GlossaryCommand),
    /// The vector store: move its vectors to another backend.
    #[command(subcommand)]
    Vectors(VectorsCommand),
    /// The audit trail: verify its hash chain, or list entries.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Accounts: add, list, change. Passwords are read from the terminal (or one line of
    /// standard input when it is not a terminal), never from arguments.
    #[command(subcommand)]
    User(UserCommand),
    /// Measure parsing, embedding (the limit), end-to-end indexing, batching, re-indexing,
    /// query latency at scale, memory, disk and HTTP load, in one run.
    Bench {
        /// Chunks to generate and index end to end (with embeddings).
        #[arg(long, default_value_t = 2_000)]
        chunks: usize,
        /// Index this directory instead of the generated corpus.
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Passage counts of the query-latency indexes (stored vectors).
        #[arg(long, default_value = "10000,100000", value_delimiter = ',')]
        scales: Vec<usize>,
        /// Queries per mode and scale.
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Size of the corpus copy the re-index figures are measured on.
        #[arg(long, default_value_t = 10_000)]
        reindex_chunks: usize,
        /// Concurrent HTTP users for the load test on the largest scale.
        #[arg(long, default_value_t = 50)]
        users: usize,
        /// Seconds of HTTP load (0 skips it).
        #[arg(long, default_value_t = 30)]
        load_seconds: u64,
        /// Where the corpus and indexes are built (a temporary directory inside it).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// `qdrant`: measure the scale indexes on a Qdrant server too, beside the
        /// embedded store (`--url`, default `vector.url`).
        #[arg(long, default_value = "edge", value_parser = ["edge", "qdrant"])]
        backend: String,
        /// The Qdrant server's gRPC endpoint for `--backend qdrant`.
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum GlossaryCommand {
    /// The entries in use, where the file is, and any line left out of it.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Check a glossary file without installing it (exit 2 with every bad line).
    Check {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Check a glossary file and, if every line is valid, make it the glossary (the
    /// previous one is kept as `glossary.txt.previous`; audited).
    Import {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// What the glossary adds to a keyword query.
    Expand { query: String },
}

#[derive(Debug, Subcommand)]
enum VectorsCommand {
    /// Copy the stored vectors to another backend without embedding again, with progress;
    /// a killed copy resumes when run again. Then set `vector.backend` (and `vector.url`)
    /// to use them.
    Migrate {
        #[arg(long, value_parser = ["qdrant", "edge"])]
        to: String,
        /// The Qdrant server's gRPC endpoint (default: `vector.url`).
        #[arg(long)]
        url: Option<String>,
        /// The server collection (default: `vector.collection`).
        #[arg(long)]
        collection: Option<String>,
        /// Empty a target that already holds vectors first.
        #[arg(long)]
        overwrite: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check that no entry was edited or removed (exit 0 intact, 2 broken).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Entries in order, after sequence number `--after`.
    List {
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. The first admin: `doctrina user add NAME --admin`.
    Add {
        name: String,
        /// Comma-separated roles: officer, custodian, evaluator, admin.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Also make the account an admin (with every role when --roles is not given).
        #[arg(long)]
        admin: bool,
        /// Clearance level (a level of the marking scheme).
        #[arg(long, default_value = "UNCLASSIFIED")]
        clearance: String,
        /// A caveat the person holds, e.g. NOFORN or "REL TO GBR" (repeatable).
        #[arg(long = "caveat")]
        caveats: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change roles, clearance or status (ends the account's sessions).
    Set {
        name: String,
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<String>>,
        #[arg(long)]
        clearance: Option<String>,
        /// Replaces the caveats held (repeatable; `--caveat ""` clears them).
        #[arg(long = "caveat")]
        caveats: Option<Vec<String>>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        #[arg(long)]
        json: bool,
    },
    /// Set a new password (ends the account's sessions).
    Passwd { name: String },
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Recall@1/5/10, MRR@10 and nDCG@10 per mode on a JSONL question set with gold paragraphs.
    Retrieval {
        #[arg(long)]
        questions: PathBuf,
        #[arg(short = 'k', default_value_t = 10)]
        k: usize,
        /// Comma-separated: bm25,dense,hybrid.
        #[arg(long, default_value = "bm25,dense,hybrid", value_delimiter = ',')]
        modes: Vec<SearchMode>,
        #[arg(long)]
        json: bool,
    },
    /// Draft an answer to every question and score its citations: validity, support labels,
    /// ALCE citation recall and precision (judged by the local support check).
    Drafts {
        #[arg(long)]
        questions: PathBuf,
        /// `llm` (the local inference server) or `extractive`.
        #[arg(long, default_value = "llm")]
        mode: doctrina_draft::DraftMode,
        /// The section template the drafts use.
        #[arg(long, default_value = "doctrine-answer")]
        section: String,
        #[arg(long, default_value_t = 6)]
        sources: usize,
        /// Who judges support: `support-check` (local) or `llm` (the inference server).
        #[arg(long, default_value = "support-check")]
        judge: doctrina_eval::drafts::Judge,
        /// Only the first N questions.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// How well citation support is judged on labelled claim/passage pairs (JSONL with
    /// `sentence`, `passage`, `label` and optional `kind`, `lang`, `split`): agreement
    /// overall, by split, language and kind of alteration.
    Support {
        /// Pair files (repeatable).
        #[arg(long, required = true)]
        pairs: Vec<PathBuf>,
        /// `support-check` (the local check), `llm` (the inference server) or `check+llm`
        /// (both, combined as drafts combine them).
        #[arg(long, default_value = "support-check")]
        judge: doctrina_eval::support::Judge,
        #[arg(long)]
        json: bool,
    },
    /// Index a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv) into its own
    /// data directory and report the BEIR metrics (nDCG@10 per mode) on its test queries.
    Beir {
        dir: PathBuf,
        #[arg(short = 'k', default_value_t = 10)]
        k: usize,
        #[arg(long, default_value = "bm25,dense,hybrid", value_delimiter = ',')]
        modes: Vec<SearchMode>,
        /// Where the dataset's indexes live (default: <data-dir>/beir/<dataset name>).
        #[arg(long)]
        index_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DOCTRINA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,qdrant_edge=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // The reader went away (`| head`): nothing more to say to anyone.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, each once: a cause some error already prints in its own
/// message is not repeated.
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

/// Opens the stack from the configuration (the composition root), repairing what an
/// interrupted run left before anything else touches the indexes.
fn open(cli: &Cli) -> Result<App> {
    let config = load_config(cli)?;
    Ok(App::builder(config).open()?)
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Extract { child: true, .. } => Ok(doctrina_ingest::sandbox::child_main()),
        Command::Extract {
            path,
            id_hint,
            json,
            ..
        } => {
            let config = load_config(&cli)?;
            let path = path.as_deref().context("give the file to parse")?;
            let hint = id_hint.clone().unwrap_or_else(|| {
                doctrina_ingest::id_from_path(std::path::Path::new(
                    path.file_name().unwrap_or_default(),
                ))
            });
            let ingestor = Ingestor::new(config.ingest.clone(), config.markings.clone())
                .isolated(doctrina_ingest::Sandbox::current_exe()?);
            let parsed = ingestor
                .parse_file(path, &hint)
                .with_context(|| format!("{} cannot be indexed", path.display()))?;
            if *json {
                outln!("{}", serde_json::to_string(&parsed)?);
            } else {
                let meta = &parsed.meta;
                outln!("{} — {} [{}]", meta.id, meta.title, meta.marking.banner());
                for line in &meta.marking_basis {
                    outln!("  marking: {line}");
                }
                for (key, value) in &meta.extra {
                    outln!("  {key}: {value}");
                }
                for p in &parsed.passages {
                    let preview: String = p.text.chars().take(100).collect();
                    outln!(
                        "  #{} [{}] {} — {}",
                        p.ordinal,
                        p.paragraphs.join(", "),
                        p.section_display(),
                        preview.replace('\n', " ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Draft {
            section,
            task,
            guidance,
            mode,
            sources,
            json,
        } => {
            let app = open(&cli)?;
            let drafter = app.drafter.clone();
            let request = doctrina_draft::DraftRequest {
                section: section.clone(),
                task: task.clone(),
                guidance: guidance.clone(),
                mode: *mode,
                sources: *sources,
                filter: PassageFilter::default(),
            };
            let live = !*json && std::io::stderr().is_terminal();
            let on_delta = move |delta: &str| {
                if live {
                    eprint!("{delta}");
                }
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(drafter.draft(&request, &on_delta));
            let (outcome, draft_id) = match &result {
                Ok(r) => ("ok".to_string(), Some(r.draft_id.clone())),
                Err(doctrina_draft::DraftError::Inference { draft_id, error }) => {
                    (format!("error: {error}"), Some(draft_id.clone()))
                }
                Err(e) => (format!("error: {e}"), None),
            };
            let passages: Vec<String> = draft_id
                .as_deref()
                .and_then(|id| drafter.store.get(id).ok().flatten())
                .map(|r| r.sources.iter().map(|s| s.hit.passage_id.clone()).collect())
                .unwrap_or_default();
            app.audit.append(&doctrina_audit::Event::new(
                &cli_actor(),
                "draft",
                section,
                &outcome,
                serde_json::json!({"mode": mode, "draft_id": draft_id, "passages": passages}),
            ))?;
            match result {
                Ok(record) => {
                    if live {
                        eprintln!();
                    }
                    if *json {
                        outln!("{}", serde_json::to_string(&record)?);
                    } else {
                        print_draft(&record)?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    if live {
                        eprintln!();
                    }
                    Err(e.into())
                }
            }
        }
        Command::Drafts { id, json } => {
            let config = load_config(&cli)?;
            let store = App::open_draft_store(&config)?;
            match id {
                Some(id) => {
                    let record = store
                        .get(id)?
                        .ok_or_else(|| anyhow::anyhow!("no draft '{id}'"))?;
                    if *json {
                        outln!("{}", serde_json::to_string(&record)?);
                    } else {
                        print_draft(&record)?;
                    }
                }
                None => {
                    let drafts = store.list(100)?;
                    if *json {
                        let rows: Vec<_> = drafts
                            .iter()
                            .map(|(id, at, section, task)| {
                                serde_json::json!({"draft_id": id, "created_at": at, "section": section, "task": task})
                            })
                            .collect();
                        outln!("{}", serde_json::to_string(&rows)?);
                    } else {
                        for (id, at, section, task) in drafts {
                            outln!("{id}  {at}  {section:<26} {task}");
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(EvalCommand::Retrieval {
            questions,
            k,
            modes,
            json,
        }) => {
            let questions = doctrina_eval::load_questions(questions)?;
            let app = open(&cli)?;
            let report = doctrina_eval::evaluate_retrieval(
                &app.retriever,
                &questions,
                modes,
                *k,
                &PassageFilter::default(),
            )?;
            if *json {
                outln!("{}", serde_json::to_string(&report)?);
            } else {
                outln!("{} questions", report.questions);
                outln!(
                    "{:<8} {:>9} {:>9} {:>10} {:>8} {:>8}",
                    "mode",
                    "recall@1",
                    "recall@5",
                    "recall@10",
                    "mrr@10",
                    "ndcg@10"
                );
                for (mode, m) in &report.modes {
                    outln!(
                        "{mode:<8} {:>9.3} {:>9.3} {:>10.3} {:>8.3} {:>8.3}",
                        m.recall_1,
                        m.recall_5,
                        m.recall_10,
                        m.mrr_10,
                        m.ndcg_10
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            chunks,
            corpus,
            scales,
            queries,
            reindex_chunks,
            users,
            load_seconds,
            work_dir,
            backend,
            url,
            json,
        } => {
            let config = load_config(&cli)?;
            let qdrant = (backend == "qdrant")
                .then(|| -> Result<doctrina_types::config::VectorConfig> {
                    let url = url.clone().or_else(|| config.vector.url.clone()).context(
                        "--backend qdrant needs --url (the server's gRPC endpoint) or vector.url",
                    )?;
                    Ok(doctrina_types::config::VectorConfig {
                        backend: "qdrant".to_string(),
                        url: Some(url),
                        ..config.vector.clone()
                    })
                })
                .transpose()?;
            let options = doctrina_bench::BenchOptions {
                qdrant,
                chunks: *chunks,
                corpus: corpus.clone(),
                scales: scales.clone(),
                queries: *queries,
                reindex_chunks: *reindex_chunks,
                load_users: *users,
                load_seconds: *load_seconds,
                work_dir: work_dir.clone(),
                ..doctrina_bench::BenchOptions::default()
            };
            let report = doctrina_bench::run(&options, &config)?;
            if *json {
                outln!("{}", serde_json::to_string(&report)?);
            } else {
                out!("{}", doctrina_bench::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User(command) => run_user(&cli, command),
        Command::Audit(AuditCommand::Verify { json }) => {
            let config = load_config(&cli)?;
            let v = audit_log(&config)?.verify()?;
            if *json {
                outln!("{}", serde_json::to_string(&v)?);
            } else if v.intact {
                outln!("intact: {} entries, head {}", v.entries, v.head);
            } else if let Some(b) = &v.first_break {
                outln!(
                    "BROKEN at entry {}: {} ({} entries)",
                    b.seq,
                    b.reason,
                    v.entries
                );
            }
            Ok(if v.intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Audit(AuditCommand::List { after, limit, json }) => {
            let config = load_config(&cli)?;
            let entries = audit_log(&config)?.entries(*after, *limit)?;
            if *json {
                outln!("{}", serde_json::to_string(&entries)?);
            } else {
                for e in &entries {
                    outln!(
                        "{:>6} {} {:<16} {:<12} {:<24} {}",
                        e.seq,
                        e.at,
                        e.event.actor,
                        e.event.action,
                        e.event.target,
                        e.event.outcome
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(EvalCommand::Support { pairs, judge, json }) => {
            let paths: Vec<&std::path::Path> = pairs.iter().map(PathBuf::as_path).collect();
            let pairs = doctrina_eval::support::load_pairs(&paths)?;
            let app = open(&cli)?;
            let report =
                match judge {
                    doctrina_eval::support::Judge::SupportCheck => {
                        doctrina_eval::support::with_support_check(&app.drafter.checker, &pairs)?
                    }
                    doctrina_eval::support::Judge::Llm => {
                        let chat =
                            app.drafter.chat.clone().context(
                                "no inference server is configured (inference.base_url)",
                            )?;
                        tokio::runtime::Runtime::new()?
                            .block_on(doctrina_eval::support::with_llm(chat.as_ref(), &pairs))
                    }
                    doctrina_eval::support::Judge::CheckAndLlm => {
                        let chat =
                            app.drafter.chat.clone().context(
                                "no inference server is configured (inference.base_url)",
                            )?;
                        tokio::runtime::Runtime::new()?.block_on(
                            doctrina_eval::support::with_check_and_llm(
                                &app.drafter.checker,
                                chat.as_ref(),
                                app.drafter.combination,
                                &pairs,
                            ),
                        )?
                    }
                };
            if *json {
                outln!("{}", serde_json::to_string(&report)?);
            } else {
                print_support(&report)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(EvalCommand::Drafts {
            questions,
            mode,
            section,
            sources,
            judge,
            limit,
            json,
        }) => {
            let mut questions = doctrina_eval::load_questions(questions)?;
            if let Some(n) = limit {
                questions.truncate(*n);
            }
            let app = open(&cli)?;
            let drafter = app.drafter.clone();
            let quiet = *json || !std::io::stderr().is_terminal();
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(doctrina_eval::drafts::evaluate_filtered(
                &drafter,
                &questions,
                section,
                *mode,
                *sources,
                &doctrina_types::PassageFilter::default(),
                *judge,
                &|done, total| {
                    if !quiet {
                        eprint!("\rdrafting {done}/{total}");
                    }
                },
            ))?;
            if !quiet {
                eprintln!();
            }
            if *json {
                outln!("{}", serde_json::to_string(&report)?);
            } else {
                outln!(
                    "{} questions, {} statements, {} citations ({} drafts failed), judge: {}",
                    report.questions,
                    report.statements,
                    report.citations,
                    report.failed,
                    report.judge
                );
                if report.judge_errors > 0 {
                    outln!(
                        "judge errors        {} ({})",
                        report.judge_errors,
                        report.judge_error.as_deref().unwrap_or_default()
                    );
                }
                outln!("citation validity   {:.3}", report.citation_validity);
                outln!("citation recall     {:.3}", report.citation_recall);
                outln!("citation precision  {:.3}", report.citation_precision);
                let labels: Vec<String> = report
                    .support_labels
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                outln!("support labels      {}", labels.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(EvalCommand::Beir {
            dir,
            k,
            modes,
            index_dir,
            json,
        }) => {
            let config = load_config(&cli)?;
            let dataset = doctrina_eval::beir::load(dir)?;
            let index_dir = index_dir.clone().unwrap_or_else(|| {
                doctrina_eval::beir::default_index_dir(&config.data_dir, &dataset)
            });
            // The dataset's own data directory, built like any other.
            let mut dataset_config = config.clone();
            dataset_config.data_dir = index_dir.clone();
            let app = App::builder(dataset_config).chat(None).open()?;
            let quiet = *json || !std::io::stderr().is_terminal();
            let indexed = doctrina_eval::beir::index(
                &app.indexes,
                app.embedder.as_ref(),
                &dataset,
                &|done, total| {
                    if !quiet {
                        eprint!("\rindexing {}: {done}/{total} documents", dataset.name);
                    }
                },
            )?;
            if !quiet && indexed > 0 {
                eprintln!();
            }
            let report = doctrina_eval::beir::evaluate(&app.retriever, &dataset, modes, *k)?;
            if *json {
                let mut value = serde_json::to_value(&report)?;
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("dataset".to_string(), dataset.name.clone().into());
                    obj.insert("documents".to_string(), dataset.corpus.len().into());
                    obj.insert("indexed".to_string(), indexed.into());
                    obj.insert(
                        "index_dir".to_string(),
                        index_dir.display().to_string().into(),
                    );
                }
                outln!("{value}");
            } else {
                outln!(
                    "{}: {} documents ({} indexed now), {} judged queries",
                    dataset.name,
                    dataset.corpus.len(),
                    indexed,
                    report.questions
                );
                outln!(
                    "{:<8} {:>8} {:>9} {:>10} {:>8}",
                    "mode",
                    "ndcg@10",
                    "recall@5",
                    "recall@10",
                    "mrr@10"
                );
                for (mode, m) in &report.modes {
                    outln!(
                        "{mode:<8} {:>8.3} {:>9.3} {:>10.3} {:>8.3}",
                        m.ndcg_10,
                        m.recall_5,
                        m.recall_10,
                        m.mrr_10
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Glossary(command) => run_glossary(&cli, command),
        Command::Vectors(command) => run_vectors(&cli, command),
        Command::Sections { json } => {
            let library = doctrina_draft::sections::SectionLibrary::bundled()?;
            if *json {
                outln!("{}", serde_json::to_string(library.all())?);
            } else {
                for t in library.all() {
                    outln!("{:<26} {:<18} {}", t.name, t.kind, t.title);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Index { paths, json } => {
            let app = open(&cli)?;
            let progress = BarProgress::new(!json);
            let result = Indexer::new(&app.indexes, &app.ingestor, app.embedder.as_ref())
                .run(paths, &progress);
            progress.finish();
            let targets: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            app.audit.append(&doctrina_audit::Event::new(
                &cli_actor(),
                "index",
                &targets.join(" "),
                match &result {
                    Ok(r) if r.failed.is_empty() => "ok".to_string(),
                    Ok(r) => format!("partial: {} files failed", r.failed.len()),
                    Err(e) => format!("error: {e}"),
                }
                .as_str(),
                serde_json::to_value(result.as_ref().ok())?,
            ))?;
            let report = result?;
            if *json {
                outln!("{}", serde_json::to_string(&report)?);
            } else {
                outln!(
                    "indexed {} · unchanged {} · removed {} · failed {} · {} passages written, {} embedded · {} passages in the index",
                    report.indexed,
                    report.unchanged,
                    report.removed,
                    report.failed.len(),
                    report.chunks,
                    report.embedded,
                    report.total_chunks
                );
                for f in &report.failed {
                    outln!("  failed: {}: {}", f.path, f.error);
                }
            }
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Search {
            query,
            mode,
            k,
            publication,
            include_superseded,
            json,
        } => {
            let app = open(&cli)?;
            let retriever = app.retriever.clone();
            let filter = PassageFilter {
                publications: publication.clone(),
                include_superseded: *include_superseded,
                ..PassageFilter::default()
            };
            let (hits, plan, _) = retriever.search_explained(query, *mode, *k, &filter)?;
            if let Some(failure) = &plan.degraded {
                eprintln!("doctrina: keyword results only: {failure}");
            }
            if *json {
                outln!(
                    "{}",
                    serde_json::to_string(&hits.iter().map(search_json).collect::<Vec<_>>())?
                );
            } else {
                // How the query was searched (language, glossary, weights), then the hits.
                for reason in &plan.reasons {
                    outln!("· {reason}");
                }
                print_hits(&hits)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { addr } => {
            let config = load_config(&cli)?;
            let addr: SocketAddr = match addr {
                Some(a) => *a,
                None => config
                    .server
                    .addr
                    .parse()
                    .with_context(|| format!("server.addr '{}'", config.server.addr))?,
            };
            // The library's job worker runs in the server only (it resumes interrupted jobs).
            let app = App::builder(config).library(true).open()?;
            if app.auth.users()?.is_empty() {
                eprintln!(
                    "doctrina: there are no accounts yet; create the first admin with \
                     `doctrina user add NAME --admin` (the password is read from the terminal)"
                );
            }
            let runtime = tokio::runtime::Runtime::new()?;
            eprintln!("doctrina: serving on http://{addr}/");
            runtime.block_on(doctrina_web::serve(addr, doctrina_web::AppState::new(&app)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { repair, json } => {
            let config = load_config(&cli)?;
            let app = App::builder(config).repair(*repair).chat(None).open()?;
            let report = app.health.clone();
            if *json {
                outln!("{}", serde_json::to_string(&report)?);
            } else {
                outln!(
                    "{} documents · passages: catalog {} · keyword {} · vectors {} ({}) · {}",
                    report.documents,
                    report.catalog_passages,
                    report.keyword_passages,
                    report.vector_passages,
                    report.vector_store,
                    if report.consistent {
                        "consistent"
                    } else {
                        "INCONSISTENT"
                    }
                );
                for (label, ids) in [
                    ("interrupted", &report.interrupted),
                    ("repaired", &report.repaired),
                    ("removed", &report.removed),
                    ("orphans", &report.orphans),
                    ("mismatched", &report.mismatched),
                ] {
                    if !ids.is_empty() {
                        outln!("  {label}: {}", ids.join(", "));
                    }
                }
            }
            Ok(if report.consistent {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Documents { json } => {
            let app = open(&cli)?;
            let superseded = app.indexes.superseded()?;
            let catalog = app.indexes.catalog();
            let docs = catalog.documents()?;
            let failures = catalog.failures()?;
            if *json {
                let rows: Vec<_> = docs
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "id": d.meta.id,
                            "title": d.meta.title,
                            "publication": d.meta.publication,
                            "edition": d.meta.edition,
                            "supersedes": d.meta.supersedes,
                            "superseded_by": superseded.get(&d.meta.id).map(|n| &n.id),
                            "marking": d.meta.marking.banner(),
                            "format": d.meta.format,
                            "source_path": d.meta.source_path,
                            "status": d.status,
                            "chunks": d.chunk_count,
                            "last_error": d.last_error,
                            "indexed_at": d.indexed_at,
                        })
                    })
                    .collect();
                let failed: Vec<_> = failures
                    .iter()
                    .map(|(path, error)| serde_json::json!({"path": path, "error": error}))
                    .collect();
                outln!(
                    "{}",
                    serde_json::json!({"documents": rows, "failed": failed})
                );
            } else {
                for d in &docs {
                    outln!(
                        "{:<24} {:<14} {:<10} {:>4} chunks  {:<22} {}{}",
                        d.meta.id,
                        d.meta.publication.as_deref().unwrap_or("-"),
                        if superseded.contains_key(&d.meta.id) {
                            "superseded"
                        } else {
                            d.status.as_str()
                        },
                        d.chunk_count,
                        d.meta.marking.banner(),
                        d.meta.title,
                        d.last_error
                            .as_deref()
                            .map(|e| format!("  [last error: {e}]"))
                            .unwrap_or_default()
                    );
                }
                for (path, error) in &failures {
                    outln!("failed: {path}: {error}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A password from the terminal (asked twice) or one line of standard input.
fn read_password(name: &str) -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == again, "the passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn clearance_arg(
    config: &Config,
    level: &str,
    caveats: &[String],
) -> Result<doctrina_types::Clearance> {
    config
        .markings
        .clearance(level, caveats)
        .map_err(anyhow::Error::msg)
}

fn print_user(user: &doctrina_auth::User, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(user)?);
    } else {
        outln!(
            "{}\troles {}\tclearance {}{}\t{}",
            user.name,
            user.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            user.clearance.level,
            if user.clearance.caveats.is_empty() {
                String::new()
            } else {
                format!(" + {}", user.clearance.caveats.join("; "))
            },
            if user.disabled { "disabled" } else { "active" }
        );
    }
    Ok(())
}

fn run_user(cli: &Cli, command: &UserCommand) -> Result<ExitCode> {
    use doctrina_auth::Role;
    let config = load_config(cli)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let (store, audit) = App::open_accounts(&config)?;
    let record = |action: &str, target: &str, outcome: &str, detail: serde_json::Value| {
        audit.append(&doctrina_audit::Event::new(
            &cli_actor(),
            action,
            target,
            outcome,
            detail,
        ))
    };
    match command {
        UserCommand::Add {
            name,
            roles,
            admin,
            clearance,
            caveats,
            json,
        } => {
            let mut roles = Role::parse_list(&roles.join(","))?;
            if *admin {
                if roles.is_empty() {
                    roles = Role::ALL.to_vec();
                } else if !roles.contains(&Role::Admin) {
                    roles.push(Role::Admin);
                }
            }
            anyhow::ensure!(!roles.is_empty(), "give --roles or --admin");
            let clearance = clearance_arg(&config, clearance, caveats)?;
            let password = read_password(name)?;
            let user = store.add_user(&doctrina_auth::NewUser {
                name: name.clone(),
                password,
                roles,
                clearance,
            });
            let outcome = user
                .as_ref()
                .map_or_else(|e| format!("error: {e}"), |_| "ok".into());
            record(
                "add-user",
                name,
                &outcome,
                serde_json::json!({"via": "cli"}),
            )?;
            print_user(&user?, *json)?;
        }
        UserCommand::List { json } => {
            let users = store.users()?;
            if *json {
                outln!("{}", serde_json::to_string(&users)?);
            } else {
                for u in &users {
                    print_user(u, false)?;
                }
            }
        }
        UserCommand::Set {
            name,
            roles,
            clearance,
            caveats,
            disable,
            enable,
            json,
        } => {
            let result = (|| -> Result<doctrina_auth::User> {
                let change = doctrina_auth::Change {
                    roles: roles
                        .as_ref()
                        .map(|r| Role::parse_list(&r.join(",")))
                        .transpose()?,
                    level: clearance.clone(),
                    caveats: caveats.clone(),
                    disabled: (*disable || *enable).then_some(*disable),
                    password: None,
                };
                Ok(store.change(name, &change, &config.markings)?)
            })();
            let outcome = result
                .as_ref()
                .map_or_else(|e| format!("error: {e}"), |_| "ok".into());
            record(
                "update-user",
                name,
                &outcome,
                serde_json::json!({"via": "cli", "roles": roles, "clearance": clearance,
                    "caveats": caveats, "disable": disable, "enable": enable}),
            )?;
            print_user(&result?, *json)?;
        }
        UserCommand::Passwd { name } => {
            let password = read_password(name)?;
            let result = store.set_password(name, &password);
            let outcome = result
                .as_ref()
                .map_or_else(|e| format!("error: {e}"), |_| "ok".into());
            record(
                "update-user",
                name,
                &outcome,
                serde_json::json!({"via": "cli", "password_changed": true}),
            )?;
            result?;
            outln!("password changed; {name}'s sessions ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The audit log of the data directory.
fn audit_log(config: &Config) -> Result<doctrina_audit::AuditLog> {
    Ok(App::open_audit(config)?)
}

/// Who acts on the command line: the operating-system user.
fn glossary_errors_json(errors: &[doctrina_korean::GlossaryError]) -> serde_json::Value {
    serde_json::Value::Array(
        errors
            .iter()
            .map(|e| serde_json::json!({"line": e.line, "message": e.message}))
            .collect(),
    )
}

fn entries_json(glossary: &doctrina_korean::Glossary) -> serde_json::Value {
    serde_json::Value::Array(
        glossary
            .entries()
            .iter()
            .map(|e| serde_json::json!({"korean": e.korean, "english": e.english, "line": e.line}))
            .collect(),
    )
}

fn glossary_store(app: &App) -> Result<&std::sync::Arc<doctrina_retrieve::GlossaryStore>> {
    app.retriever
        .glossary()
        .context("this configuration has no glossary")
}

fn run_glossary(cli: &Cli, command: &GlossaryCommand) -> Result<ExitCode> {
    let read = |file: &PathBuf| {
        std::fs::read(file)
            .with_context(|| format!("reading {}", file.display()))
            .and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", file.display()))
            })
    };
    match command {
        GlossaryCommand::Check { file, json } => {
            let text = read(file)?;
            let (glossary, errors) = doctrina_korean::Glossary::parse_lenient(&text);
            if *json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "file": file.display().to_string(),
                        "entries": glossary.len(),
                        "errors": glossary_errors_json(&errors),
                    })
                );
            } else {
                for e in &errors {
                    outln!("{}:{}: {}", file.display(), e.line, e.message);
                }
                outln!(
                    "{}: {} entries, {} bad lines",
                    file.display(),
                    glossary.len(),
                    errors.len()
                );
            }
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        GlossaryCommand::Show { json } => {
            let app = open(cli)?;
            let store = glossary_store(&app)?;
            let glossary = store.get();
            let problems = store.problems();
            if *json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "path": store.path().display().to_string(),
                        "entries": entries_json(&glossary),
                        "errors": glossary_errors_json(&problems),
                    })
                );
            } else {
                outln!("{} ({} entries)", store.path().display(), glossary.len());
                for e in glossary.entries() {
                    outln!("{} = {}", e.korean, e.english.join(", "));
                }
                for e in &problems {
                    outln!("left out: line {}: {}", e.line, e.message);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        GlossaryCommand::Import { file, json } => {
            let text = read(file)?;
            let app = open(cli)?;
            let store = glossary_store(&app)?;
            let result = store.replace(&text);
            let outcome = match &result {
                Ok(n) => format!("ok: {n} entries"),
                Err(e) => format!("refused: {e}"),
            };
            app.audit.append(&doctrina_audit::Event::new(
                &cli_actor(),
                "glossary",
                &file.display().to_string(),
                &outcome,
                serde_json::json!({"path": store.path().display().to_string()}),
            ))?;
            match result {
                Ok(entries) => {
                    if *json {
                        outln!(
                            "{}",
                            serde_json::json!({"path": store.path().display().to_string(), "entries": entries, "errors": []})
                        );
                    } else {
                        outln!("{}: {entries} entries installed", store.path().display());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(doctrina_retrieve::GlossaryStoreError::Invalid(errors)) => {
                    if *json {
                        outln!(
                            "{}",
                            serde_json::json!({"path": store.path().display().to_string(), "entries": 0, "errors": glossary_errors_json(&errors)})
                        );
                    } else {
                        for e in &errors {
                            eprintln!("{}:{}: {}", file.display(), e.line, e.message);
                        }
                        eprintln!("doctrina: nothing changed ({} bad lines)", errors.len());
                    }
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.into()),
            }
        }
        GlossaryCommand::Expand { query } => {
            let app = open(cli)?;
            let store = glossary_store(&app)?;
            let expansion = store.get().expand(query);
            if expansion.is_empty() {
                outln!("no glossary term in the query");
            } else {
                outln!("{}", expansion.describe());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_support(report: &doctrina_eval::support::SupportReport) -> Result<()> {
    let line = |name: &str, s: &doctrina_eval::support::Summary| {
        format!(
            "{name:<28} {:>4}  {:>5.3}  {:>5.3} {:>5.3}  {:>5.3} {:>5.3}  {:>5.3} {:>5.3}  {:>4}",
            s.pairs,
            s.accuracy,
            s.supported.precision,
            s.supported.recall,
            s.weak.precision,
            s.weak.recall,
            s.unsupported.precision,
            s.unsupported.recall,
            s.false_supported
        )
    };
    outln!("judge: {}", report.judge);
    if report.judge_errors > 0 {
        let first = report.per_pair.iter().find_map(|p| p.error.as_deref());
        outln!(
            "judge errors: {} (counted as unsupported; first: {})",
            report.judge_errors,
            first.unwrap_or_default()
        );
    }
    outln!(
        "{:<28} {:>4}  {:>5}  {:>11}  {:>11}  {:>11}  {:>4}",
        "",
        "n",
        "acc",
        "supp P/R",
        "weak P/R",
        "unsupp P/R",
        "U→S"
    );
    outln!("{}", line("all", &report.overall));
    for (name, s) in &report.by_split {
        outln!("{}", line(&format!("split {name}"), s));
    }
    for (name, s) in &report.by_lang {
        outln!("{}", line(&format!("lang {name}"), s));
    }
    for (name, s) in &report.by_kind {
        outln!("{}", line(&format!("kind {name}"), s));
    }
    Ok(())
}

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_string())
    )
}

fn run_vectors(cli: &Cli, command: &VectorsCommand) -> Result<ExitCode> {
    let VectorsCommand::Migrate {
        to,
        url,
        collection,
        overwrite,
        json,
    } = command;
    let config = load_config(cli)?;
    let target = doctrina_types::config::VectorConfig {
        backend: to.clone(),
        url: url.clone().or_else(|| config.vector.url.clone()),
        collection: collection
            .clone()
            .unwrap_or_else(|| config.vector.collection.clone()),
        ..config.vector.clone()
    };
    // Opened as the server opens it, so interrupted writes are repaired before copying.
    let app = App::builder(config.clone()).chat(None).open()?;
    let bar = (!*json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} vectors",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = |done: usize, total: usize| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let report = doctrina_app::migrate::migrate_vectors(
        &config,
        &app.indexes,
        &target,
        App::dimension(),
        *overwrite,
        &progress,
    )?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if *json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        outln!(
            "{} documents: {} copied ({} vectors), {} already there{} · {} now holds {} vectors",
            report.copy.documents,
            report.copy.copied,
            report.copy.vectors,
            report.copy.skipped,
            if report.resumed { " (resumed)" } else { "" },
            report.to,
            report.copy.target_vectors,
        );
        match to.as_str() {
            "qdrant" => outln!(
                "To use them, set in doctrina.toml:\n  [vector]\n  backend = \"qdrant\"\n  url = \"{}\"\n  collection = \"{}\"",
                target.url.as_deref().unwrap_or_default(),
                target.collection
            ),
            _ => outln!("To use them, set vector.backend = \"edge\" in doctrina.toml."),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_config(cli: &Cli) -> Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

fn print_draft(record: &doctrina_draft::DraftRecord) -> Result<()> {
    outln!(
        "{} — {} [{}] draft {}",
        record.section_title,
        record.task,
        record.model,
        record.draft_id
    );
    if record.incomplete {
        outln!(
            "INCOMPLETE: {}",
            record.error.as_deref().unwrap_or("output broke off")
        );
    }
    outln!("\n{}\n", record.text.trim());
    outln!("Checks:");
    for s in &record.sentences {
        outln!("  [{}] {}", s.support.as_str(), s.text);
    }
    if !record.invalid_citations.is_empty() {
        outln!(
            "  invalid citations removed: {:?}",
            record.invalid_citations
        );
    }
    for n in &record.flagged_sources {
        outln!(
            "  source [{n}] contains text that looks like instructions to the model (prompt injection); it was given as data only"
        );
    }
    if !record.dropped_sources.is_empty() {
        outln!(
            "  dropped to fit the context window: {}",
            record.dropped_sources.join(", ")
        );
    }
    outln!("Sources:");
    for s in &record.sources {
        outln!(
            "  [{}] {} — {} ({})",
            s.n,
            s.label(),
            s.hit.title,
            s.hit.marking
        );
    }
    Ok(())
}

/// The `search --json` object (the contract), from a hit.
fn search_json(hit: &SearchHit) -> serde_json::Value {
    serde_json::json!({
        "rank": hit.rank,
        "doc_id": hit.doc_id,
        "passage_id": hit.passage_id,
        "title": hit.title,
        "publication": hit.publication,
        "section": hit.section,
        "paragraphs": hit.paragraphs,
        "pages": hit.pages,
        "marking": hit.marking,
        "char_start": hit.char_start,
        "char_end": hit.char_end,
        "text": hit.text,
        "scores": hit.scores,
    })
}

fn print_hits(hits: &[SearchHit]) -> Result<()> {
    if hits.is_empty() {
        outln!("no passages match");
    }
    for hit in hits {
        let paragraphs = if hit.paragraphs.is_empty() {
            String::new()
        } else {
            format!(" para {}", hit.paragraphs.join(", "))
        };
        let pages = if hit.pages.is_empty() {
            String::new()
        } else {
            format!(
                " p. {}",
                hit.pages
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        outln!(
            "{:>2}. [{}] {}{}{} — {}",
            hit.rank,
            hit.marking,
            hit.publication.as_deref().unwrap_or(&hit.doc_id),
            paragraphs,
            pages,
            hit.title
        );
        if !hit.section.is_empty() {
            outln!("    {}", hit.section);
        }
        let preview: String = hit.text.chars().take(240).collect();
        outln!(
            "    {}{}",
            preview.replace('\n', " "),
            if hit.text.chars().count() > 240 {
                "…"
            } else {
                ""
            }
        );
        outln!(
            "    fused {:.4} · bm25 {} · dense {}",
            hit.scores.fused,
            hit.scores
                .bm25
                .map_or("—".to_string(), |s| format!("{s:.2}")),
            hit.scores
                .dense
                .map_or("—".to_string(), |s| format!("{s:.3}"))
        );
    }
    Ok(())
}

/// A progress bar on a terminal's stderr; silent otherwise (and with --json).
struct BarProgress {
    bar: Option<ProgressBar>,
}

impl BarProgress {
    fn new(enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files · {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Self { bar }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for BarProgress {
    fn files_found(&self, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn file_done(&self, path: &std::path::Path, _outcome: FileOutcome) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }

    fn passages_embedded(&self, count: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("embedded {count} passages"));
        }
    }
}

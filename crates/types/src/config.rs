//! Layered configuration: built-in defaults < `doctrina.toml` < `DOCTRINA__SECTION__KEY`
//! environment variables < command-line flags (applied by the binary).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::MarkingScheme;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where the catalog and both indexes live.
    pub data_dir: PathBuf,
    pub ingest: IngestConfig,
    pub embedding: EmbeddingConfig,
    pub retrieval: RetrievalConfig,
    pub vector: VectorConfig,
    pub server: ServerConfig,
    pub markings: MarkingScheme,
    pub inference: InferenceConfig,
    pub library: LibraryConfig,
    pub auth: AuthConfig,
    pub korean: KoreanConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            ingest: IngestConfig::default(),
            embedding: EmbeddingConfig::default(),
            retrieval: RetrievalConfig::default(),
            vector: VectorConfig::default(),
            server: ServerConfig::default(),
            markings: MarkingScheme::default(),
            inference: InferenceConfig::default(),
            library: LibraryConfig::default(),
            auth: AuthConfig::default(),
            korean: KoreanConfig::default(),
        }
    }
}

/// The local OpenAI-compatible inference server (llama.cpp's llama-server, vLLM, Ollama).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct InferenceConfig {
    /// e.g. `http://127.0.0.1:8081` (the `/v1/...` paths are appended).
    pub base_url: String,
    /// Model name sent with each request (llama-server serves whatever it loaded).
    pub model: String,
    /// Bearer token, if the server wants one. Never logged or printed.
    pub api_key: Option<String>,
    pub connect_timeout_ms: u64,
    /// Longest wait for the first streamed token.
    pub first_token_timeout_ms: u64,
    /// Longest a whole completion may take.
    pub total_timeout_ms: u64,
    /// Retries for connection errors and 5xx answers (before anything streamed).
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub max_tokens: u32,
    pub temperature: f32,
    /// Stream the completion over SSE (the default); `false` waits for one JSON answer.
    pub stream: bool,
    /// Context window assumed when the server does not say.
    pub context_tokens: usize,
    /// Ask llama-server to reuse the cached prompt prefix (`cache_prompt`); other servers
    /// ignore the field.
    pub cache_prompt: bool,
    /// Bind citations at decoding time with a grammar: `auto` (when the server says it
    /// takes one: llama-server's `/props`), `on` or `off`.
    pub citation_grammar: CitationGrammar,
    /// Ask the server, as a second judge, whether each cited sentence of an LLM draft (and
    /// of a reviewer's edit) is supported, and show `supported` only when it and the local
    /// check agree (README, "Citation support"). About one short request per sentence.
    pub support_judge: bool,
    /// How many sentences of each source an LLM draft is given: the ones most similar to
    /// the task, numbered so that `[2.3]` cites sentence 3 of source 2. `0` gives whole
    /// passages, cited `[n]`.
    pub source_sentences: usize,
}

/// Whether drafts are generated under a citation grammar (see `inference.citation_grammar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CitationGrammar {
    #[default]
    Auto,
    On,
    Off,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8081".to_string(),
            model: "local".to_string(),
            api_key: None,
            connect_timeout_ms: 2_000,
            first_token_timeout_ms: 60_000,
            total_timeout_ms: 300_000,
            retries: 2,
            retry_backoff_ms: 250,
            max_tokens: 400,
            temperature: 0.2,
            stream: true,
            context_tokens: 4096,
            cache_prompt: true,
            citation_grammar: CitationGrammar::Auto,
            support_judge: true,
            source_sentences: 4,
        }
    }
}

impl std::fmt::Debug for InferenceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("first_token_timeout_ms", &self.first_token_timeout_ms)
            .field("total_timeout_ms", &self.total_timeout_ms)
            .field("retries", &self.retries)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// Files larger than this are rejected before parsing.
    pub max_file_bytes: u64,
    /// Aim for chunks of about this many tokens (estimated).
    pub chunk_target_tokens: usize,
    /// Never exceed this many tokens unless a single sentence is longer.
    pub chunk_max_tokens: usize,
    /// The marking of files that state none (no `marking` in their metadata, no banner
    /// line or portion mark in their text). Unset (the default): such files are refused,
    /// so an unmarked file is never silently the lowest level. A folder's
    /// `.doctrina-defaults.yaml` (`marking: CUI`) sets it for the files under it.
    pub default_marking: Option<String>,
    /// Each file is parsed in a child process (`doctrina extract`), so a parser crash on a
    /// hostile file cannot take doctrina down. Longest it may take (wall clock)...
    pub extract_timeout_secs: u64,
    /// ...the CPU time it may use...
    pub extract_cpu_secs: u64,
    /// ...and its address-space limit.
    pub extract_memory_mb: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1024 * 1024,
            chunk_target_tokens: 200,
            chunk_max_tokens: 320,
            default_marking: None,
            extract_timeout_secs: 120,
            extract_cpu_secs: 90,
            extract_memory_mb: 4096,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbeddingConfig {
    /// `multilingual-e5-small` (the default: Korean, English and 90+ languages) or
    /// `all-minilm-l6-v2` (English only, faster). The index records which model wrote its
    /// vectors; opening it with another model re-embeds every passage (or refuses, see
    /// `on_model_change`).
    pub model: String,
    /// Directory holding `model.onnx` and the tokenizer files (default: where setup puts
    /// the model, `~/.cache/doctrina/models/<model>-int8`).
    pub model_dir: Option<PathBuf>,
    /// When the index was written by another model: `reembed` (every passage, from the
    /// catalog) or `refuse` (an error naming both models).
    pub on_model_change: String,
    /// The ONNX Runtime shared library.
    pub ort_dylib: PathBuf,
    /// At most this many texts per ONNX Runtime call.
    pub batch_size: usize,
    /// At most this many (padded, estimated) tokens per call: long passages go a few at a
    /// time. Measured here: 200-token passages embed ~1.4x faster in batches of 8 than 32,
    /// with a third of the memory.
    pub batch_tokens: usize,
    /// Tokens per text; longer texts are truncated by the tokenizer.
    pub max_length: usize,
    /// ONNX Runtime intra-op threads; 0 uses every core.
    pub threads: usize,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        let cache = cache_dir();
        Self {
            model: "multilingual-e5-small".to_string(),
            model_dir: None,
            on_model_change: "reembed".to_string(),
            ort_dylib: cache.join("onnxruntime-1.31.1/libonnxruntime.so.1.31.1"),
            batch_size: 64,
            batch_tokens: 2048,
            max_length: 512,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrievalConfig {
    /// The `k` of reciprocal rank fusion: `1 / (k + rank)`.
    pub rrf_k: f32,
    pub bm25_weight: f32,
    pub dense_weight: f32,
    /// How many candidates each retriever contributes before fusion.
    pub candidates: usize,
    /// Multiplies `bm25_weight` when the query contains an identifier (`ATP 4-0.6`,
    /// `2-15`): embeddings do not know identifiers, exact keyword matches do.
    pub identifier_bm25_boost: f32,
    /// Multiplies `bm25_weight` when few of the passages a reader may see are in the
    /// query's language (below `cross_lingual_share`): a Korean question over English
    /// doctrine can only match through the glossary and shared Latin words, and its
    /// keyword list is mostly noise from the few documents in its own language. The
    /// semantic side (a multilingual model) carries such a query.
    pub cross_lingual_bm25_weight: f32,
    pub cross_lingual_share: f32,
    /// Added to the cosine similarity of passages in the other language than the query's
    /// (English for a Korean query and the reverse) before the semantic ranking is formed.
    /// A multilingual model scores a translation of the same meaning lower than a passage
    /// in the query's own language (about 0.05 lower with multilingual-e5-small, measured
    /// on the bundled question pairs), so without it the other language's passages sink
    /// below weaker same-language ones. Those passages are also searched on their own
    /// (with the glossary's terms added to the query), so the candidates always hold both
    /// languages. The default 0.03 was the largest offset that cost neither English nor
    /// Korean same-language recall on the bundled sets (README). 0 turns the balance off.
    pub cross_lingual_dense_offset: f32,
    /// Weight of the terms the glossary adds to a keyword query, against the query's own
    /// (1.0), when the query's language is not the minority of the reader's sources (then
    /// they count fully: they are the query's way into the other language): an English
    /// question's added Korean terms then do not pull Korean passages above the English
    /// ones it asks about.
    pub glossary_term_weight: f32,
    /// The bilingual glossary expanding keyword queries (default:
    /// `<data_dir>/glossary.txt`, seeded from the bundled starter glossary).
    pub glossary: Option<PathBuf>,
    /// Translate a query into the other language of the reader's sources with the
    /// inference server when its own language is the minority of them (below
    /// `cross_lingual_share`: a Korean question over English doctrine), the glossary's
    /// terms given to the translator; the translation is searched beside the query. A
    /// multilingual embedding model matches a translation far better than the original
    /// (README: "Korean and cross-lingual"). Off, or when the server cannot answer in
    /// `translation_timeout_ms`, the query is searched as written and the plan says why.
    pub translate_queries: bool,
    pub translation_timeout_ms: u64,
    /// Fusion weight of the translation's keyword and semantic lists (each), against the
    /// query's own lists.
    pub translation_weight: f32,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            rrf_k: 60.0,
            bm25_weight: 1.0,
            dense_weight: 1.0,
            candidates: 50,
            identifier_bm25_boost: 2.0,
            cross_lingual_bm25_weight: 0.5,
            cross_lingual_share: 0.5,
            cross_lingual_dense_offset: 0.03,
            glossary_term_weight: 0.5,
            glossary: None,
            translate_queries: true,
            translation_timeout_ms: 10_000,
            translation_weight: 0.5,
        }
    }
}

/// Which vector store backs dense retrieval.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct VectorConfig {
    /// `edge` (embedded Qdrant Edge, the default) or `qdrant` (a server or cluster, at `url`).
    pub backend: String,
    /// The Qdrant server's gRPC endpoint, e.g. `http://127.0.0.1:6334`, or a cluster's
    /// nodes separated by commas (the next is tried when one cannot be reached).
    pub url: Option<String>,
    /// Sent to the Qdrant server with every request. Never logged or printed.
    pub api_key: Option<String>,
    /// The server collection; app servers sharing one corpus use the same name.
    pub collection: String,
    /// Shards of a new collection, spread over the cluster's nodes.
    pub shard_number: u32,
    /// Copies of each shard; 2 survives the loss of one node.
    pub replication_factor: u32,
    /// Replicas that must acknowledge a write (below `replication_factor`, or writes stop
    /// while a node is down).
    pub write_consistency: u32,
    /// Deadline of one request to the server.
    pub timeout_ms: u64,
}

impl Default for VectorConfig {
    fn default() -> Self {
        Self {
            backend: "edge".to_string(),
            url: None,
            api_key: None,
            collection: "doctrina".to_string(),
            shard_number: 1,
            replication_factor: 1,
            write_consistency: 1,
            timeout_ms: 10_000,
        }
    }
}

impl std::fmt::Debug for VectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorConfig")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("collection", &self.collection)
            .field("shard_number", &self.shard_number)
            .field("replication_factor", &self.replication_factor)
            .field("write_consistency", &self.write_consistency)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub addr: String,
    /// Largest accepted request body.
    pub max_upload_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".to_string(),
            max_upload_bytes: 50 * 1024 * 1024,
        }
    }
}

/// Accounts and sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// A session ends after this long without a request.
    pub session_idle_secs: u64,
    /// A session ends this long after login, whatever the activity.
    pub session_max_secs: u64,
    /// Failed logins (per account, and per client address) allowed within `lockout_secs`
    /// before further attempts are refused until the window passes.
    pub max_failures: u32,
    pub lockout_secs: u64,
    /// Failed logins allowed from one client address within `lockout_secs`.
    pub max_failures_per_client: u32,
    /// Mark session cookies `Secure`: `auto` (unless the server listens on loopback, where
    /// browsers are reached over plain HTTP), `always` or `never`.
    pub secure_cookies: String,
    /// Shortest password accepted.
    pub min_password_chars: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_idle_secs: 30 * 60,
            session_max_secs: 12 * 3600,
            max_failures: 5,
            lockout_secs: 15 * 60,
            max_failures_per_client: 20,
            secure_cookies: "auto".to_string(),
            min_password_chars: 12,
        }
    }
}

/// The custodian's library: files uploaded through the web app (`<data_dir>/library/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LibraryConfig {
    /// Largest file accepted by an upload (413 above it).
    pub max_upload_bytes: u64,
    /// Most files accepted in one upload request.
    pub max_files_per_upload: usize,
}

impl Default for LibraryConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 50 * 1024 * 1024,
            max_files_per_upload: 100,
        }
    }
}

/// Korean text analysis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct KoreanConfig {
    /// MeCab and the mecab-ko-dic dictionary (`lib/libmecab*.so*`, `dic/`), as setup
    /// installs them. Without them Korean keyword search falls back to syllable pairs.
    pub mecab_dir: PathBuf,
}

impl Default for KoreanConfig {
    fn default() -> Self {
        Self {
            mecab_dir: cache_dir().join("mecab"),
        }
    }
}

/// `$DOCTRINA_CACHE`, else `$HOME/.cache/doctrina`: where setup puts models and runtimes.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCTRINA_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/doctrina")
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then `file` (or `./doctrina.toml` when it exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("doctrina.toml")),
        }
        figment
            .merge(Env::prefixed("DOCTRINA__").split("__"))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_is_never_printed() {
        let config = InferenceConfig {
            api_key: Some("s3cr3t".into()),
            ..InferenceConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let vector = VectorConfig {
            api_key: Some("s3cr3t".into()),
            ..VectorConfig::default()
        };
        assert!(!format!("{vector:?}").contains("s3cr3t"));
    }

    #[test]
    fn defaults_are_embedded() {
        let config = Config::default();
        assert_eq!(config.vector.backend, "edge");
        assert_eq!(config.retrieval.rrf_k, 60.0);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("custom.toml", "[retrieval]\nrrf_k = 10.0\ncandidates = 7\n")?;
            jail.set_env("DOCTRINA__RETRIEVAL__CANDIDATES", "9");
            let config = Config::load(Some(Path::new("custom.toml"))).expect("config loads");
            assert_eq!(config.retrieval.rrf_k, 10.0);
            assert_eq!(config.retrieval.candidates, 9);
            Ok(())
        });
    }
}

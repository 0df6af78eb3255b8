//! Local text embeddings: the [`Embedder`] seam and its implementation on fastembed with
//! the int8 all-MiniLM-L6-v2 ONNX model and a dynamically loaded ONNX Runtime.
//!
//! Nothing here touches the network: the model and tokenizer are read from a directory that
//! setup filled, and ONNX Runtime from the shared library setup unpacked.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use doctrina_types::config::EmbeddingConfig;
use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Setup has not installed the runtime or model (or the config points elsewhere).
    #[error(
        "{what} not found at {path}: run `make setup` (scripts/setup.sh runtime) or fix the [embedding] config"
    )]
    Missing { what: &'static str, path: PathBuf },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    Runtime { path: PathBuf, message: String },
    #[error("cannot load the embedding model: {0}")]
    Model(String),
    #[error("embedding failed: {0}")]
    Inference(String),
}

pub type Result<T> = std::result::Result<T, EmbedError>;

/// Turns texts into unit-length vectors. Implementations must be deterministic for a given
/// model: the same text always yields the same vector.
pub trait Embedder: Send + Sync {
    fn dimension(&self) -> usize;
    /// Embeds `texts`, returning one vector per text in the same order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// [`Embedder::embed`] in the given order, without grouping texts of similar length
    /// into batches: the baseline the benchmark compares batching against.
    fn embed_in_order(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed(texts)
    }
    /// Passages to be searched (models trained with prefixes get theirs: e5's `passage: `).
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed(texts)
    }
    /// Texts compared with each other or asked with (a search query; both sides of a
    /// similarity check): e5's `query: `.
    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed(texts)
    }
    /// A short name for records and logs; the index records which model wrote its vectors.
    fn model_name(&self) -> &str;
}

/// An embedding model doctrina knows how to run: where setup puts it and how it expects
/// its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// `embedding.model`.
    pub name: &'static str,
    /// Its directory under the cache (`models/<dir>`).
    pub dir: &'static str,
    pub query_prefix: &'static str,
    pub passage_prefix: &'static str,
    /// Languages it was trained on, for the record.
    pub languages: &'static str,
}

/// The models setup installs. multilingual-e5-small (Korean and 90+ languages, 12 layers)
/// is the default; all-MiniLM-L6-v2 (English, 6 layers) is twice as fast on English.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "multilingual-e5-small",
        dir: "multilingual-e5-small-int8",
        query_prefix: "query: ",
        passage_prefix: "passage: ",
        languages: "multilingual (Korean, English and 90+ others)",
    },
    ModelSpec {
        name: "all-minilm-l6-v2",
        dir: "all-minilm-l6-v2-int8",
        query_prefix: "",
        passage_prefix: "",
        languages: "English",
    },
];

impl ModelSpec {
    pub fn named(name: &str) -> Result<&'static ModelSpec> {
        MODELS
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                EmbedError::Model(format!(
                    "unknown embedding.model '{name}' (known: {})",
                    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
                ))
            })
    }
}

/// The process's ONNX Runtime environment; it must outlive every session, so it is never
/// dropped.
static ORT_ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> =
    OnceLock::new();

/// Loads ONNX Runtime from `dylib` once per process. Later calls with another path are
/// ignored: a process can hold only one ONNX Runtime.
pub fn init_onnx_runtime(dylib: &Path) -> Result<ort::environment::Environment> {
    if !dylib.exists() {
        return Err(EmbedError::Missing {
            what: "ONNX Runtime library",
            path: dylib.to_path_buf(),
        });
    }
    let outcome = ORT_ENV.get_or_init(|| {
        ort::init_from(dylib)
            .map_err(|e| e.to_string())?
            .with_name("doctrina")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    });
    match outcome {
        Ok(env) => Ok(env.clone()),
        Err(message) => Err(EmbedError::Runtime {
            path: dylib.to_path_buf(),
            message: message.clone(),
        }),
    }
}

/// fastembed on ONNX Runtime with a model read from disk.
pub struct FastEmbedder {
    model: Mutex<TextEmbedding>,
    batch_size: usize,
    batch_tokens: usize,
    spec: &'static ModelSpec,
}

impl std::fmt::Debug for FastEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastEmbedder")
            .field("name", &self.spec.name)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

fn read(dir: &Path, file: &str, what: &'static str) -> Result<Vec<u8>> {
    let path = dir.join(file);
    std::fs::read(&path).map_err(|_| EmbedError::Missing { what, path })
}

impl FastEmbedder {
    pub fn load(config: &EmbeddingConfig) -> Result<Self> {
        let spec = ModelSpec::named(&config.model)?;
        let environment = init_onnx_runtime(&config.ort_dylib)?;
        let dir = config.model_dir.clone().unwrap_or_else(|| {
            doctrina_types::config::cache_dir()
                .join("models")
                .join(spec.dir)
        });
        let dir = &dir;
        let onnx = read(dir, "model.onnx", "embedding model")?;
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read(dir, "tokenizer.json", "tokenizer")?,
            config_file: read(dir, "config.json", "tokenizer config")?,
            special_tokens_map_file: read(
                dir,
                "special_tokens_map.json",
                "tokenizer special tokens",
            )?,
            tokenizer_config_file: read(dir, "tokenizer_config.json", "tokenizer config")?,
        };
        let model =
            UserDefinedEmbeddingModel::new(onnx, tokenizer_files).with_pooling(Pooling::Mean);
        let mut options = InitOptionsUserDefined::new()
            .with_environment(environment)
            .with_max_length(config.max_length);
        if config.threads > 0 {
            options = options.with_intra_threads(config.threads);
        }
        let embedding = TextEmbedding::try_new_from_user_defined(model, options)
            .map_err(|e| EmbedError::Model(e.to_string()))?;
        Ok(Self {
            model: Mutex::new(embedding),
            batch_size: config.batch_size.max(1),
            batch_tokens: config.batch_tokens.max(1),
            spec,
        })
    }

    pub fn spec(&self) -> &'static ModelSpec {
        self.spec
    }

    fn prefixed(&self, prefix: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if prefix.is_empty() {
            return self.embed(texts);
        }
        let owned: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        self.embed(&refs)
    }

    /// Embeds texts in exactly the order given, `batch_size` per ONNX Runtime call: the
    /// baseline that length bucketing is measured against.
    fn embed_unbucketed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut model = self
            .model
            .lock()
            .map_err(|_| EmbedError::Inference("embedding model lock poisoned".to_string()))?;
        let vectors = model
            .embed(texts, Some(self.batch_size))
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        Ok(vectors.into_iter().map(normalise).collect())
    }
}

impl Embedder for FastEmbedder {
    fn dimension(&self) -> usize {
        doctrina_types::EMBEDDING_DIM
    }

    /// Length-bucketed: texts are sorted by length so each batch pads to a similar length,
    /// and batches are sized by tokens (at most `batch_tokens` padded tokens, at most
    /// `batch_size` texts): long passages go a few at a time, where attention cost and
    /// memory grow with the padded length, short queries many at a time. Vectors come
    /// back in the caller's order.
    fn embed_in_order(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_unbucketed(texts)
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let order = length_order(texts);
        let mut out = vec![Vec::new(); texts.len()];
        let mut model = self
            .model
            .lock()
            .map_err(|_| EmbedError::Inference("embedding model lock poisoned".to_string()))?;
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len()
                && end - start < self.batch_size
                && (end - start + 1) * estimate_tokens(texts[order[end]]) <= self.batch_tokens
            {
                end += 1;
            }
            let batch: Vec<&str> = order[start..end].iter().map(|&i| texts[i]).collect();
            let vectors = model
                .embed(&batch, Some(batch.len()))
                .map_err(|e| EmbedError::Inference(e.to_string()))?;
            for (vector, &i) in vectors.into_iter().zip(&order[start..end]) {
                out[i] = normalise(vector);
            }
            start = end;
        }
        Ok(out)
    }

    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.prefixed(self.spec.passage_prefix, texts)
    }

    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.prefixed(self.spec.query_prefix, texts)
    }

    fn model_name(&self) -> &str {
        self.spec.name
    }
}

/// WordPiece tokens a text will take, roughly (about four characters per token, plus the
/// two special tokens); only used to size batches.
fn estimate_tokens(text: &str) -> usize {
    text.len() / 4 + 2
}

/// Indices of `texts` sorted by length (stable, so equal lengths keep their order).
pub fn length_order(texts: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    order
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl doctrina_types::Faulted for EmbedError {
    fn fault(&self) -> doctrina_types::Fault {
        doctrina_types::Fault::Unavailable
    }

    fn code(&self) -> &'static str {
        "embedder_unavailable"
    }

    fn public_message(&self) -> String {
        "the embedding model is unavailable; keyword search (mode=bm25) still works".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_order_is_stable() {
        assert_eq!(length_order(&["ccc", "a", "bb", "z"]), vec![1, 3, 2, 0]);
    }

    #[test]
    fn missing_runtime_is_a_clear_error() {
        let err = init_onnx_runtime(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert!(err.to_string().contains("make setup"), "{err}");
    }
}

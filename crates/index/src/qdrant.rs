//! The [`VectorStore`] on a Qdrant server or cluster, reached with `qdrant-client` over
//! gRPC: the backend for a corpus that has outgrown one machine's memory, or that several
//! app servers share.
//!
//! It stores exactly what the embedded store does (the same point ids, payload and payload
//! indexes) and filters inside the query the same way, so the conformance suite holds both
//! to one contract. Every write waits until the server has applied it (`wait=true`) before
//! returning, so the catalog commits only after the vectors are durable in the cluster, as
//! with Qdrant Edge.
//!
//! The seam is synchronous (indexing and search call it from blocking code); the client is
//! async. Each call runs on the store's own small runtime and the caller waits on a channel,
//! which is safe from any thread, inside or outside another runtime.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use doctrina_types::caveat_token;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FacetCountsBuilder, FieldType, Filter, GetPointsBuilder,
    PointId, PointStruct, Query, QueryPointsBuilder, Range, UpsertPointsBuilder, Value,
    VectorParamsBuilder, facet_value, point_id, value, vector_output, vectors_config,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use tonic::Code;

use crate::access::AccessFilter;
use crate::error::{IndexError, Result};
use crate::keyword::normalise_publication;
use crate::vector::{VectorPoint, VectorStore, point_id as passage_point_id};

/// Where the collection lives and how it is laid out across the cluster.
#[derive(Clone)]
pub struct QdrantSettings {
    /// gRPC endpoints of the cluster's nodes (one is enough; more are tried in turn when
    /// a node cannot be reached), e.g. `http://127.0.0.1:6334`.
    pub urls: Vec<String>,
    /// Sent with every request; never logged or shown.
    pub api_key: Option<String>,
    pub collection: String,
    /// Shards of a new collection (spread across the cluster's nodes).
    pub shard_number: u32,
    /// Copies of each shard; 2 or more survives the loss of a node.
    pub replication_factor: u32,
    /// Replicas that must acknowledge a write. Keep it below `replication_factor`, or
    /// writes stop while a node is down.
    pub write_consistency: u32,
    /// Per-request deadline (also bounds a dead node's connection attempt).
    pub timeout: Duration,
}

impl From<&doctrina_types::config::VectorConfig> for QdrantSettings {
    /// The `[vector]` settings: `url` is one node's gRPC endpoint or several separated by
    /// commas (an empty list is refused by [`QdrantVectorStore::open`]).
    fn from(vector: &doctrina_types::config::VectorConfig) -> Self {
        Self {
            urls: vector
                .url
                .iter()
                .flat_map(|u| u.split(','))
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            api_key: vector.api_key.clone(),
            collection: vector.collection.clone(),
            shard_number: vector.shard_number,
            replication_factor: vector.replication_factor,
            write_consistency: vector.write_consistency,
            timeout: Duration::from_millis(vector.timeout_ms.max(1)),
        }
    }
}

impl std::fmt::Debug for QdrantSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantSettings")
            .field("urls", &self.urls)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("collection", &self.collection)
            .field("shard_number", &self.shard_number)
            .field("replication_factor", &self.replication_factor)
            .field("write_consistency", &self.write_consistency)
            .finish()
    }
}

/// Points are written in batches of this many (one gRPC message stays well under the
/// server's 32 MiB limit at 384 dimensions).
const UPSERT_BATCH: usize = 512;
/// Largest number of documents one facet request lists.
const FACET_LIMIT: u64 = 10_000_000;

const KEYWORD_FIELDS: [&str; 4] = ["doc_id", "passage_id", "publication", "caveats"];

pub struct QdrantVectorStore {
    /// One client per node, with its URL.
    clients: Vec<(String, Qdrant)>,
    /// The node that answered last, tried first.
    preferred: AtomicUsize,
    settings: QdrantSettings,
    /// Runs the client's futures; shut down in the background on drop (dropping a runtime
    /// from async code would otherwise panic).
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for QdrantVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantVectorStore")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Drop for QdrantVectorStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl QdrantVectorStore {
    /// Connects to the server, creating the collection (cosine, `dimension`) and its payload
    /// indexes if it does not exist. An existing collection of another dimension is refused:
    /// vectors of two models never share one collection.
    pub fn open(settings: QdrantSettings, dimension: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("doctrina-qdrant")
            .enable_all()
            .build()
            .map_err(|e| IndexError::Vector(format!("cannot start the Qdrant client: {e}")))?;
        if settings.urls.is_empty() {
            return Err(IndexError::Vector(
                "no Qdrant server named (vector.url)".to_string(),
            ));
        }
        let clients = settings
            .urls
            .iter()
            .map(|url| {
                Qdrant::from_url(url)
                    .api_key(settings.api_key.clone())
                    .timeout(settings.timeout)
                    .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
                    .skip_compatibility_check()
                    .build()
                    .map(|client| (url.clone(), client))
                    .map_err(|e| IndexError::Vector(format!("Qdrant server {url}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let store = Self {
            clients,
            preferred: AtomicUsize::new(0),
            settings,
            runtime: Some(runtime),
        };
        store.ensure_collection(dimension)?;
        Ok(store)
    }

    /// Runs `call(client, request)` on the store's runtime and waits for it from any
    /// thread. A server that cannot be reached is skipped for the next one in `urls`
    /// (every request is idempotent: upserts by point id, deletes by filter), starting
    /// with the one that last answered.
    fn run<R, T, F, Fut>(&self, what: &str, request: R, call: F) -> Result<T>
    where
        R: Clone + Send + 'static,
        T: Send + 'static,
        F: Fn(Qdrant, R) -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let first = self.preferred.load(Ordering::Relaxed);
        let mut unreachable = Vec::new();
        for n in 0..self.clients.len() {
            let i = (first + n) % self.clients.len();
            let (url, client) = &self.clients[i];
            let (send, receive) = std::sync::mpsc::sync_channel(1);
            let future = call(client.clone(), request.clone());
            runtime.spawn(async move {
                let _ = send.send(future.await);
            });
            match receive.recv() {
                Ok(Ok(value)) => {
                    if n > 0 {
                        tracing::warn!(server = %url, skipped = ?unreachable, "Qdrant: failed over to another node");
                    }
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(value);
                }
                Ok(Err(error)) if unreachable_error(&error) => {
                    unreachable.push((url, describe_error(&error)));
                }
                Ok(Err(error)) => return Err(self.error(url, what, &describe_error(&error))),
                Err(_) => return Err(self.error(url, what, "the request was cancelled")),
            }
        }
        Err(match unreachable.as_slice() {
            [(url, detail)] => self.error(url, what, detail),
            all => IndexError::Vector(format!(
                "Qdrant servers {} (collection {}): {what} failed: no node answered ({})",
                self.urls(),
                self.settings.collection,
                all.iter()
                    .map(|(url, detail)| format!("{url} {detail}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        })
    }

    fn urls(&self) -> String {
        self.settings.urls.join(", ")
    }

    /// An error naming the server and collection (never the API key).
    fn error(&self, url: &str, what: &str, detail: &str) -> IndexError {
        IndexError::Vector(format!(
            "Qdrant server {url} (collection {}): {what} failed: {detail}",
            self.settings.collection
        ))
    }

    fn ensure_collection(&self, dimension: usize) -> Result<()> {
        let name = self.settings.collection.clone();
        let exists = self.run(
            "checking the collection",
            name.clone(),
            |c, name| async move { c.collection_exists(name).await },
        )?;
        // Payload indexes the collection already has (a reopen asks for none).
        let mut indexed = std::collections::HashSet::new();
        if exists {
            let info = self.run(
                "reading the collection",
                name.clone(),
                |c, name| async move { c.collection_info(name).await },
            )?;
            if let Some(info) = &info.result {
                indexed.extend(info.payload_schema.keys().cloned());
            }
            let size = info
                .result
                .and_then(|i| i.config)
                .and_then(|c| c.params)
                .and_then(|p| p.vectors_config)
                .and_then(|v| v.config)
                .and_then(|c| match c {
                    vectors_config::Config::Params(p) => Some(p.size),
                    vectors_config::Config::ParamsMap(_) => None,
                });
            if size != Some(dimension as u64) {
                return Err(IndexError::Vector(format!(
                    "Qdrant server {} (collection {name}): holds vectors of {} dimensions, this \
                     embedder makes {dimension}; use another vector.collection",
                    self.urls(),
                    size.map_or("unnamed or several".to_string(), |s| s.to_string()),
                )));
            }
        } else {
            let create = CreateCollectionBuilder::new(name.clone())
                .vectors_config(VectorParamsBuilder::new(dimension as u64, Distance::Cosine))
                .shard_number(self.settings.shard_number.max(1))
                .replication_factor(self.settings.replication_factor.max(1))
                .write_consistency_factor(self.settings.write_consistency.max(1));
            match self.run(
                "creating the collection",
                create.build(),
                |c, r| async move { c.create_collection(r).await },
            ) {
                Ok(_) => {}
                // Another app server created it meanwhile.
                Err(e) if e.to_string().contains("already exists") => {}
                Err(e) => return Err(e),
            }
        }
        // Those missing (a new collection, or an open that stopped half way; creating an
        // existing index would be a no-op, but a round trip each).
        for (field, kind) in KEYWORD_FIELDS
            .iter()
            .map(|f| (*f, FieldType::Keyword))
            .chain([("marking_rank", FieldType::Integer)])
            .filter(|(field, _)| !indexed.contains(*field))
        {
            let request =
                CreateFieldIndexCollectionBuilder::new(name.clone(), field, kind).wait(true);
            self.run(
                "creating payload indexes",
                request.build(),
                |c, r| async move { c.create_field_index(r).await },
            )?;
        }
        Ok(())
    }

    /// Deletes the whole collection (the conformance suite's clean-up; an operator's
    /// decision otherwise).
    pub fn delete_collection(&self) -> Result<()> {
        let name = self.settings.collection.clone();
        self.run("deleting the collection", name, |c, name| async move {
            c.delete_collection(name).await
        })?;
        Ok(())
    }

    fn doc_condition(doc_id: &str) -> Condition {
        Condition::matches("doc_id", doc_id.to_string())
    }

    /// The same conditions the embedded store puts inside its query.
    fn filter(access: &AccessFilter) -> Option<Filter> {
        let filter = access.filter();
        let mut must = Vec::new();
        if !filter.doc_ids.is_empty() {
            must.push(Condition::matches("doc_id", filter.doc_ids.clone()));
        }
        if !filter.publications.is_empty() {
            must.push(Condition::matches("publication", access.publication_keys()));
        }
        if let Some(max) = filter.max_marking_rank {
            must.push(Condition::range(
                "marking_rank",
                Range {
                    lte: Some(f64::from(max)),
                    ..Range::default()
                },
            ));
        }
        let mut must_not = Vec::new();
        if !filter.exclude_doc_ids.is_empty() {
            must_not.push(Condition::matches("doc_id", filter.exclude_doc_ids.clone()));
        }
        if !filter.exclude_caveats.is_empty() {
            must_not.push(Condition::matches("caveats", access.denied_caveat_tokens()));
        }
        (!must.is_empty() || !must_not.is_empty()).then(|| Filter {
            must,
            must_not,
            ..Filter::default()
        })
    }

    fn delete_where(&self, what: &str, filter: Filter) -> Result<()> {
        let request = DeletePointsBuilder::new(self.settings.collection.clone())
            .points(filter)
            .wait(true);
        self.run(what, request.build(), |c, r| async move {
            c.delete_points(r).await
        })?;
        Ok(())
    }

    fn count_where(&self, filter: Option<Filter>) -> Result<usize> {
        let mut request = CountPointsBuilder::new(self.settings.collection.clone()).exact(true);
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        let response = self.run("counting points", request.build(), |c, r| async move {
            c.count(r).await
        })?;
        Ok(response.result.map_or(0, |r| r.count as usize))
    }
}

/// Whether the node could not be reached or did not answer (another node may), as opposed
/// to refusing the request (which every node would).
fn unreachable_error(error: &QdrantError) -> bool {
    match error {
        QdrantError::ResponseError { status } => {
            matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
                || connect_failure(status)
        }
        _ => false,
    }
}

/// The client reports a connection it could not open as an internal error.
fn connect_failure(status: &tonic::Status) -> bool {
    status.code() == Code::Internal && status.message().starts_with("Failed to connect to")
}

fn describe_error(error: &QdrantError) -> String {
    match error {
        QdrantError::ResponseError { status } if connect_failure(status) => {
            let message = status.message();
            let reason = if message.contains("Connection refused") {
                "connection refused"
            } else if message.contains("timed out") || message.contains("Timeout") {
                "connection timed out"
            } else {
                "cannot connect"
            };
            format!("unreachable ({reason})")
        }
        QdrantError::ResponseError { status } => match status.code() {
            Code::Unavailable => format!("unreachable ({})", status.message()),
            Code::DeadlineExceeded => "did not answer in time".to_string(),
            Code::Unauthenticated | Code::PermissionDenied => {
                "refused the API key (check vector.api_key)".to_string()
            }
            _ => status.message().to_string(),
        },
        other => other.to_string(),
    }
}

fn string_value(value: &Value) -> Option<&str> {
    match &value.kind {
        Some(value::Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn point_number(id: &PointId) -> Option<u64> {
    match id.point_id_options {
        Some(point_id::PointIdOptions::Num(n)) => Some(n),
        _ => None,
    }
}

impl VectorStore for QdrantVectorStore {
    fn upsert(&self, points: &[VectorPoint]) -> Result<()> {
        for batch in points.chunks(UPSERT_BATCH) {
            let structs: Vec<PointStruct> = batch
                .iter()
                .map(|p| {
                    let caveats: Vec<Value> = p
                        .caveats
                        .iter()
                        .map(|c| Value::from(caveat_token(c)))
                        .collect();
                    let mut payload = HashMap::from([
                        ("passage_id".to_string(), Value::from(p.passage_id.clone())),
                        ("doc_id".to_string(), Value::from(p.doc_id.clone())),
                        (
                            "marking_rank".to_string(),
                            Value::from(i64::from(p.marking_rank)),
                        ),
                        ("caveats".to_string(), Value::from(caveats)),
                    ]);
                    if let Some(publication) = &p.publication {
                        payload.insert(
                            "publication".to_string(),
                            Value::from(normalise_publication(publication)),
                        );
                    }
                    PointStruct::new(
                        passage_point_id(&p.passage_id),
                        p.vector.clone(),
                        Payload::from(payload),
                    )
                })
                .collect();
            let request =
                UpsertPointsBuilder::new(self.settings.collection.clone(), structs).wait(true);
            self.run("writing vectors", request.build(), |c, r| async move {
                c.upsert_points(r).await
            })?;
        }
        Ok(())
    }

    fn delete_doc(&self, doc_id: &str) -> Result<()> {
        self.delete_where(
            "deleting a document's vectors",
            Filter::must([Self::doc_condition(doc_id)]),
        )
    }

    fn retain_docs(&self, keep: &[String]) -> Result<()> {
        let filter = if keep.is_empty() {
            Filter::default()
        } else {
            Filter::must_not([Condition::matches("doc_id", keep.to_vec())])
        };
        self.delete_where("removing orphaned vectors", filter)
    }

    fn search(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &AccessFilter,
    ) -> Result<Vec<(String, f32)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut request = QueryPointsBuilder::new(self.settings.collection.clone())
            .query(Query::new_nearest(vector.to_vec()))
            .limit(limit as u64)
            .with_payload(true);
        if let Some(filter) = Self::filter(filter) {
            request = request.filter(filter);
        }
        let response = self.run("searching", request.build(), |c, r| async move {
            c.query(r).await
        })?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|p| {
                let id = string_value(p.payload.get("passage_id")?)?.to_string();
                Some((id, p.score))
            })
            .collect())
    }

    fn count(&self) -> Result<usize> {
        self.count_where(None)
    }

    fn count_doc(&self, doc_id: &str) -> Result<usize> {
        self.count_where(Some(Filter::must([Self::doc_condition(doc_id)])))
    }

    fn doc_counts(&self) -> Result<BTreeMap<String, usize>> {
        let request = FacetCountsBuilder::new(self.settings.collection.clone(), "doc_id")
            .limit(FACET_LIMIT)
            .exact(true);
        let response = self.run(
            "counting points per document",
            request.build(),
            |c, r| async move { c.facet(r).await },
        )?;
        Ok(response
            .hits
            .into_iter()
            // The server's payload index may still list a deleted document, with no points.
            .filter(|hit| hit.count > 0)
            .filter_map(|hit| match hit.value?.variant? {
                facet_value::Variant::StringValue(id) => Some((id, hit.count as usize)),
                _ => None,
            })
            .collect())
    }

    fn vectors(&self, passage_ids: &[String]) -> Result<HashMap<String, Vec<f32>>> {
        let mut out = HashMap::new();
        for batch in passage_ids.chunks(UPSERT_BATCH) {
            let wanted: HashMap<u64, &String> =
                batch.iter().map(|p| (passage_point_id(p), p)).collect();
            let ids: Vec<PointId> = wanted.keys().map(|n| PointId::from(*n)).collect();
            let request = GetPointsBuilder::new(self.settings.collection.clone(), ids)
                .with_payload(true)
                .with_vectors(true);
            let response = self.run("reading vectors", request.build(), |c, r| async move {
                c.get_points(r).await
            })?;
            for point in response.result {
                let Some(id) = point.payload.get("passage_id").and_then(string_value) else {
                    continue;
                };
                // A point id collision would hand one passage another's vector.
                if point
                    .id
                    .as_ref()
                    .and_then(point_number)
                    .and_then(|n| wanted.get(&n))
                    .is_none_or(|p| p.as_str() != id)
                {
                    continue;
                }
                if let Some(vector_output::Vector::Dense(dense)) =
                    point.vectors.and_then(|v| v.get_vector())
                {
                    out.insert(id.to_string(), dense.data);
                }
            }
        }
        Ok(out)
    }

    fn flush(&self) -> Result<()> {
        // Every write already waited until the server applied it (and wrote its WAL); the
        // server optimises its own segments.
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "Qdrant server {} (collection {})",
            self.urls(),
            self.settings.collection
        )
    }
}

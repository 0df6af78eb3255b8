//! The vector store seam and its embedded implementation on Qdrant Edge (the server
//! implementation is in [`crate::qdrant`]).
//!
//! Points carry the passage id, document id, marking rank, caveats and publication as
//! payload, with payload indexes on the fields used as filters, so a filter is part of the
//! nearest-neighbour query itself rather than applied after top-k. Caveats are stored in
//! [`caveat_token`] form, so a clearance's denied caveats are an exact `must_not` match.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use doctrina_types::caveat_token;
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfigBuilder, EdgeShard,
    EdgeVectorParamsBuilder, FacetRequest, FacetValue, FieldCondition, FieldIndexOperations,
    Filter, JsonPath, Match, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStruct, QueryEnum, QueryRequest, Range,
    ScoringQuery, UpdateOperation, VectorStructInternal, WithPayloadInterface, WithVector,
};
use serde_json::json;

use crate::access::AccessFilter;
use crate::error::{IndexError, Result};
use crate::keyword::normalise_publication;

/// A passage's vector and the payload that filters need.
#[derive(Debug, Clone)]
pub struct VectorPoint {
    pub passage_id: String,
    pub doc_id: String,
    pub marking_rank: u32,
    /// The document's caveats; stored in [`caveat_token`] form.
    pub caveats: Vec<String>,
    pub publication: Option<String>,
    pub vector: Vec<f32>,
}

/// Dense retrieval storage. Qdrant Edge (embedded) is the default; a Qdrant server reached
/// with qdrant-client is the second implementation this seam exists for.
pub trait VectorStore: Send + Sync {
    fn upsert(&self, points: &[VectorPoint]) -> Result<()>;
    fn delete_doc(&self, doc_id: &str) -> Result<()>;
    /// Removes points whose document is not in `keep` (orphans left by a crash).
    fn retain_docs(&self, keep: &[String]) -> Result<()>;
    /// Nearest passages to `vector`, best first, with cosine similarity, within `filter`
    /// (inside the query; only `Indexes::resolve_clearance` makes one).
    fn search(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &AccessFilter,
    ) -> Result<Vec<(String, f32)>>;
    fn count(&self) -> Result<usize>;
    fn count_doc(&self, doc_id: &str) -> Result<usize>;
    /// Points per document id, for every document the store holds (orphans included).
    fn doc_counts(&self) -> Result<BTreeMap<String, usize>>;
    /// Stored vectors of the given passages (those that exist).
    fn vectors(&self, passage_ids: &[String]) -> Result<HashMap<String, Vec<f32>>>;
    /// Makes writes durable and compacts/indexes segments when worthwhile.
    fn flush(&self) -> Result<()>;
    /// Which store this is, for messages (`Qdrant server http://…:6334 (collection …)`).
    fn describe(&self) -> String;
}

/// Point ids are derived from passage ids: the first 8 bytes of their sha256.
pub fn point_id(passage_id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(passage_id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

fn vector_error(e: impl std::fmt::Display) -> IndexError {
    IndexError::Vector(e.to_string())
}

fn key(name: &'static str) -> JsonPath {
    name.parse().expect("payload keys are valid json paths")
}

pub struct EdgeVectorStore {
    shard: EdgeShard,
}

impl std::fmt::Debug for EdgeVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeVectorStore").finish_non_exhaustive()
    }
}

impl EdgeVectorStore {
    pub fn open(dir: &Path, dimension: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let config = EdgeConfigBuilder::new()
            .vector(
                "",
                EdgeVectorParamsBuilder::new(dimension, Distance::Cosine).build(),
            )
            .build();
        let fresh = !dir.join("edge_config.json").exists();
        let shard = if fresh {
            EdgeShard::new(dir, config).map_err(vector_error)?
        } else {
            EdgeShard::load(dir, None).map_err(vector_error)?
        };
        let store = Self { shard };
        if fresh {
            for (field, schema) in [
                ("doc_id", PayloadSchemaType::Keyword),
                ("passage_id", PayloadSchemaType::Keyword),
                ("publication", PayloadSchemaType::Keyword),
                ("caveats", PayloadSchemaType::Keyword),
                ("marking_rank", PayloadSchemaType::Integer),
            ] {
                store
                    .shard
                    .update(UpdateOperation::FieldIndexOperation(
                        FieldIndexOperations::CreateIndex(CreateIndex {
                            field_name: key(field),
                            field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                        }),
                    ))
                    .map_err(vector_error)?;
            }
        }
        Ok(store)
    }

    fn filter(access: &AccessFilter) -> Result<Option<Filter>> {
        let filter = access.filter();
        let mut must = Vec::new();
        if !filter.doc_ids.is_empty() {
            must.push(Condition::Field(FieldCondition::new_match(
                key("doc_id"),
                Match::from(filter.doc_ids.clone()),
            )));
        }
        if !filter.publications.is_empty() {
            must.push(Condition::Field(FieldCondition::new_match(
                key("publication"),
                Match::from(access.publication_keys()),
            )));
        }
        if let Some(max) = filter.max_marking_rank {
            must.push(Condition::Field(FieldCondition::new_range(
                key("marking_rank"),
                Range {
                    lt: None,
                    gt: None,
                    gte: None,
                    lte: Some(OrderedFloat(f64::from(max))),
                },
            )));
        }
        let mut must_not = Vec::new();
        if !filter.exclude_doc_ids.is_empty() {
            must_not.push(Condition::Field(FieldCondition::new_match(
                key("doc_id"),
                Match::from(filter.exclude_doc_ids.clone()),
            )));
        }
        if !filter.exclude_caveats.is_empty() {
            // `caveats` is an array: a point matches when any of its caveats is denied.
            must_not.push(Condition::Field(FieldCondition::new_match(
                key("caveats"),
                Match::from(access.denied_caveat_tokens()),
            )));
        }
        Ok((!must.is_empty() || !must_not.is_empty()).then(|| Filter {
            must: (!must.is_empty()).then_some(must),
            must_not: (!must_not.is_empty()).then_some(must_not),
            ..Filter::default()
        }))
    }
}

impl VectorStore for EdgeVectorStore {
    fn upsert(&self, points: &[VectorPoint]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let structs = points
            .iter()
            .map(|p| {
                let caveats: Vec<String> = p.caveats.iter().map(|c| caveat_token(c)).collect();
                let payload = json!({
                    "passage_id": p.passage_id,
                    "doc_id": p.doc_id,
                    "marking_rank": p.marking_rank,
                    "caveats": caveats,
                    "publication": p.publication.as_deref().map(normalise_publication),
                });
                PointStruct::new(
                    PointId::NumId(point_id(&p.passage_id)),
                    p.vector.clone(),
                    payload,
                )
                .into()
            })
            .collect();
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(structs)),
            ))
            .map_err(vector_error)
    }

    fn delete_doc(&self, doc_id: &str) -> Result<()> {
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePointsByFilter(Filter::new_must(Condition::Field(
                    FieldCondition::new_match(key("doc_id"), Match::from(doc_id.to_string())),
                ))),
            ))
            .map_err(vector_error)
    }

    fn retain_docs(&self, keep: &[String]) -> Result<()> {
        let filter = if keep.is_empty() {
            Filter::default()
        } else {
            Filter::new_must_not(Condition::Field(FieldCondition::new_match(
                key("doc_id"),
                Match::from(keep.to_vec()),
            )))
        };
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePointsByFilter(filter),
            ))
            .map_err(vector_error)
    }

    fn search(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &AccessFilter,
    ) -> Result<Vec<(String, f32)>> {
        let filter = Self::filter(filter)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let request = QueryRequest {
            prefetches: Vec::new(),
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(
                NamedQuery::default_dense(vector.to_vec()),
            ))),
            filter,
            score_threshold: None,
            limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        };
        let points = self.shard.query(request).map_err(vector_error)?;
        Ok(points
            .into_iter()
            .filter_map(|p| {
                let id = p.payload?.0.get("passage_id")?.as_str()?.to_string();
                Some((id, p.score))
            })
            .collect())
    }

    fn count(&self) -> Result<usize> {
        self.shard
            .count(CountRequest {
                filter: None,
                exact: true,
            })
            .map_err(vector_error)
    }

    fn count_doc(&self, doc_id: &str) -> Result<usize> {
        self.shard
            .count(CountRequest {
                filter: Some(Filter::new_must(Condition::Field(
                    FieldCondition::new_match(key("doc_id"), Match::from(doc_id.to_string())),
                ))),
                exact: true,
            })
            .map_err(vector_error)
    }

    fn doc_counts(&self) -> Result<BTreeMap<String, usize>> {
        let response = self
            .shard
            .facet(FacetRequest {
                key: key("doc_id"),
                limit: usize::MAX,
                filter: None,
                exact: true,
            })
            .map_err(vector_error)?;
        Ok(response
            .hits
            .into_iter()
            .filter(|hit| hit.count > 0)
            .filter_map(|hit| match hit.value {
                FacetValue::Keyword(id) => Some((id, hit.count)),
                _ => None,
            })
            .collect())
    }

    fn vectors(&self, passage_ids: &[String]) -> Result<HashMap<String, Vec<f32>>> {
        let ids: Vec<PointId> = passage_ids
            .iter()
            .map(|p| PointId::NumId(point_id(p)))
            .collect();
        let records = self
            .shard
            .retrieve(
                &ids,
                Some(WithPayloadInterface::Bool(true)),
                Some(WithVector::Bool(true)),
            )
            .map_err(vector_error)?;
        let mut out = HashMap::new();
        for record in records {
            let Some(id) = record
                .payload
                .as_ref()
                .and_then(|p| p.0.get("passage_id"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
            else {
                continue;
            };
            let vector = match record.vector {
                Some(VectorStructInternal::Single(v)) => v,
                Some(VectorStructInternal::Named(mut named)) => match named.remove("") {
                    Some(qdrant_edge::VectorInternal::Dense(v)) => v,
                    _ => continue,
                },
                _ => continue,
            };
            out.insert(id, vector);
        }
        Ok(out)
    }

    fn flush(&self) -> Result<()> {
        self.shard.optimize().map_err(vector_error)?;
        self.shard.flush();
        Ok(())
    }

    fn describe(&self) -> String {
        "embedded Qdrant Edge".to_string()
    }
}

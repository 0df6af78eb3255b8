//! Integration tests on the real parts: tantivy, Qdrant Edge, ONNX Runtime with the int8
//! MiniLM model, and the real HTTP server on port 0.

mod bad_input;
mod browser;
mod draft;
mod formats;
mod incremental;
mod retrieval;
mod support;
mod web;
mod workspace;

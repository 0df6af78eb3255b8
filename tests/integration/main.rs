//! Integration tests on the real parts: tantivy, Qdrant Edge, ONNX Runtime with the int8
//! MiniLM model, and the real HTTP server on port 0.

mod access;
mod accounts;
mod bad_input;
mod browser;
mod browser_eval;
mod draft;
mod evaluation;
mod formats;
mod incremental;
mod korean;
mod library;
mod retrieval;
mod support;
mod web;
mod workspace;

//! Drafting plan sections through the local inference server, with verified citations:
//! section templates (data files), context assembly with numbered sources and
//! prompt-injection flags, the OpenAI-compatible streaming client, `[n]` citation parsing,
//! the local support check and the inference server as a second judge, extractive drafts and draft records.

pub mod cite;
pub mod context;
pub mod drafter;
pub mod inference;
pub mod judge;
pub mod record;
pub mod sections;
pub mod support;
pub mod translate;

pub use drafter::{DraftError, DraftRequest, Drafter};
pub use record::{DraftMode, DraftRecord, DraftStore};

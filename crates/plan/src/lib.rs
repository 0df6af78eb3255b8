//! Plans built section by section from cited drafts. A section's text only becomes final
//! when a person accepts it: every draft and every edit is kept as a numbered version with
//! its author and time, its sentences re-verified against the sources the model was given,
//! and the cited sentences an edit removed or changed recorded with it.

pub mod export;
pub mod review;
pub mod store;
pub mod workspace;

pub use review::{ChangeKind, CitationChange, track_changes};
pub use store::{
    Comment, MarkingOverride, NewVersion, Plan, PlanError, PlanKind, PlanStore, Review,
    ReviewAction, Section, SectionStatus, Version, VersionKind,
};
pub use workspace::{Workspace, WorkspaceError};

//! Drafting plan sections: citation parsing and the local support check. (The inference
//! client, context assembly and draft records build on these.)

pub mod cite;
pub mod sections;
pub mod support;

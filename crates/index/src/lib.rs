//! doctrina-index

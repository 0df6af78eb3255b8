//! doctrina-retrieve

//! doctrina-web

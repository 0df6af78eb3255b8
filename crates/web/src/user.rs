//! Who is acting: the signed-in account (see [`crate::auth`]); its name is recorded with
//! every version, review, comment and audit entry.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use doctrina_auth::Session;

use crate::AppError;

/// The signed-in account's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Session>>()
            .map(|s| Actor(s.user.name.clone()))
            .ok_or(AppError::unauthenticated(false))
    }
}

/// `%XX` decoding for cookie values and query strings we build ourselves.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters (for cookie values and URLs).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_round_trips() {
        let name = "Maj. Hale <script> & ü";
        assert_eq!(percent_decode(&percent_encode(name)), name);
    }
}

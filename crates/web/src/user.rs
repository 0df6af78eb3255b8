//! Who is acting. Until accounts exist (issue 6), a person names themselves once (a cookie
//! set from the page header, or the `X-Doctrina-User` header for API clients); the name is
//! recorded with every version, review and comment.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub const USER_HEADER: &str = "x-doctrina-user";
pub const USER_COOKIE: &str = "doctrina_user";
pub const DEFAULT_USER: &str = "officer";
const MAX_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    /// A display name made safe to store and show: printable, single-line, bounded.
    pub fn clean(raw: &str) -> Option<String> {
        let name: String = raw
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME)
            .collect();
        let name = name.trim();
        (!name.is_empty()).then(|| name.to_string())
    }
}

fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(USER_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let name = header
            .or_else(|| cookie(parts, USER_COOKIE))
            .and_then(|n| Actor::clean(&n))
            .unwrap_or_else(|| DEFAULT_USER.to_string());
        Ok(Actor(name))
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
    fn names_are_cleaned_and_round_trip() {
        assert_eq!(Actor::clean("  Maj. Hale\n"), Some("Maj. Hale".to_string()));
        assert_eq!(Actor::clean(" \t"), None);
        assert_eq!(Actor::clean(&"x".repeat(500)).unwrap().len(), MAX_NAME);
        let name = "Maj. Hale <script>";
        assert_eq!(percent_decode(&percent_encode(name)), name);
    }
}

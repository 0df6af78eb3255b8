//! Whose fault a failure is, decided by the crate that knows, so every front end (the web
//! app's status codes, the CLI's exit codes) reports the same failure the same way.
//!
//! Each library crate's error implements [`Faulted`]: a [`Fault`] kind and a stable code
//! (`embedder_unavailable`, `not_found`, ...). The web layer maps kinds to HTTP statuses in
//! one `match` ([`Fault::http_status`]) and shows server faults without their internals.

/// The kinds of failure, each with one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The request or input is wrong (400).
    Invalid,
    /// The input is understood but cannot be processed as given (422): e.g. nothing to
    /// draft from.
    Unprocessable,
    /// Over a size limit (413).
    TooLarge,
    /// A type that is not accepted, or bytes that are not what they claim (415).
    Unsupported,
    /// Not signed in, or the session ended (401).
    Unauthenticated,
    /// Signed in, but not allowed (403).
    Forbidden,
    /// Absent, or invisible to this person (404).
    NotFound,
    /// Conflicts with the current state (409).
    Conflict,
    /// Too many attempts; retry later (429).
    Throttled,
    /// A part of this installation is down or not set up (503): the index, the embedder,
    /// the audit log, a vector server.
    Unavailable,
    /// A server we depend on answered badly (502): the inference server.
    Upstream,
    /// A bug or a broken store (500).
    Internal,
}

impl Fault {
    pub fn http_status(self) -> u16 {
        match self {
            Self::Invalid => 400,
            Self::Unprocessable => 422,
            Self::TooLarge => 413,
            Self::Unsupported => 415,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Throttled => 429,
            Self::Unavailable => 503,
            Self::Upstream => 502,
            Self::Internal => 500,
        }
    }

    /// True for failures of this machine or a dependency rather than of the request.
    pub fn is_server_fault(self) -> bool {
        matches!(self, Self::Unavailable | Self::Upstream | Self::Internal)
    }
}

/// An error that knows whose fault it is.
pub trait Faulted: std::error::Error {
    fn fault(&self) -> Fault;
    /// A stable, machine-readable code (`snake_case`), the same for the same failure
    /// wherever it surfaces.
    fn code(&self) -> &'static str;
    /// What a user may be told. Server faults default to a generic line without internals;
    /// errors whose own message is safe and useful (naming the inference server and what
    /// went wrong) override this.
    fn public_message(&self) -> String {
        if self.fault().is_server_fault() {
            "internal error".to_string()
        } else {
            self.to_string()
        }
    }
    /// Seconds after which a throttled request may be retried.
    fn retry_after(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_status() {
        let kinds = [
            Fault::Invalid,
            Fault::Unprocessable,
            Fault::TooLarge,
            Fault::Unsupported,
            Fault::Unauthenticated,
            Fault::Forbidden,
            Fault::NotFound,
            Fault::Conflict,
            Fault::Throttled,
            Fault::Unavailable,
            Fault::Upstream,
            Fault::Internal,
        ];
        let statuses: std::collections::HashSet<u16> =
            kinds.iter().map(|k| k.http_status()).collect();
        assert_eq!(statuses.len(), kinds.len());
        assert!(
            kinds
                .iter()
                .filter(|k| k.is_server_fault())
                .all(|k| k.http_status() >= 500)
        );
    }
}

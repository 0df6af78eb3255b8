//! Shared domain types for doctrina: documents, passages, markings, search hits and the
//! layered configuration. Every other crate speaks in these types; this crate depends on
//! nothing of doctrina's own.

pub mod config;
mod document;
mod marking;
mod passage;
mod search;

pub mod fault;

pub use config::Config;
pub use document::{DocumentMeta, DocumentStatus, SourceFormat};
pub use fault::{Fault, Faulted};
pub use marking::{Clearance, Marking, MarkingScheme, UNREADABLE, caveat_token};
pub use passage::Passage;
pub use search::{
    PassageFilter, QueryPlan, QueryTranslation, ScoreBreakdown, SearchHit, SearchMode,
};

use sha2::{Digest, Sha256};

/// `t` in UTC as RFC 3339: `YYYY-MM-DDTHH:MM:SSZ`, or with `.mmm` before the `Z` when
/// `millis` (the stores' SQLite `strftime('%Y-%m-%dT%H:%M:%fZ')` format, so the two compare
/// as text).
pub fn utc_timestamp(t: std::time::SystemTime, millis: bool) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = if millis {
        format!(".{:03}", d.subsec_millis())
    } else {
        String::new()
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Replaces the file at `path` with `bytes` so a reader (or a crash) sees the old content or
/// the new, never a mix: written to `<name>.tmp` beside it, synced, then renamed over it.
/// Creates the parent directory if needed.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
}

/// Lowercase hex sha256 of `bytes`; used for content hashes of files and passage texts.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Dimension of the embedding vectors (all-MiniLM-L6-v2).
pub const EMBEDDING_DIM: usize = 384;

/// A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage
/// return first) prefixed with `'`, for CSV exports of untrusted text (document text,
/// questions, search queries, account names).
pub fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn utc_timestamps_in_both_store_formats() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_709_210_096_789);
        assert_eq!(super::utc_timestamp(t, false), "2024-02-29T12:34:56Z");
        assert_eq!(super::utc_timestamp(t, true), "2024-02-29T12:34:56.789Z");
        assert_eq!(
            super::utc_timestamp(std::time::UNIX_EPOCH, true),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn spreadsheet_formulas_are_defused() {
        use super::spreadsheet_safe as cell;
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("plain"), "plain");
    }
}

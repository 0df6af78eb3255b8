//! The web app in English and Korean. Templates write English and pass each piece of text
//! through `me.t("...")`; the Korean table (`templates/i18n/ko.toml`, English text as the
//! key) is compiled in. Text without a Korean entry stays English, so a missing entry is
//! visible but never breaks a page. Errors are translated by their stable code
//! (`error.not_found`), with the English detail beneath.
//!
//! Which language: the account's choice (`POST /api/session/language`), else the browser's
//! `Accept-Language`, else English.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;

/// The languages of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ko,
}

static KO: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    toml::from_str(include_str!("../../../templates/i18n/ko.toml")).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the Korean interface text does not parse; showing English");
        HashMap::new()
    })
});

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ko => "ko",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Self::En),
            "ko" => Some(Self::Ko),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header this app speaks (by quality).
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut offers: Vec<(f32, Self)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim().to_ascii_lowercase();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                    .unwrap_or(1.0);
                let primary = tag.split('-').next()?.to_string();
                Some((q, Self::parse(&primary)?))
            })
            .collect();
        offers.sort_by(|a, b| b.0.total_cmp(&a.0));
        offers.first().map(|(_, l)| *l)
    }

    /// `english` in this language (itself when there is no translation).
    pub fn t(self, english: &str) -> String {
        match self {
            Self::En => english.to_string(),
            Self::Ko => KO
                .get(english)
                .cloned()
                .unwrap_or_else(|| english.to_string()),
        }
    }

    /// The heading of an error page for an error code.
    pub fn error_title(self, code: &str) -> String {
        let key = format!("error.{code}");
        match self {
            Self::Ko => KO.get(&key).cloned().unwrap_or_else(|| "오류".to_string()),
            Self::En => String::new(),
        }
    }

    /// Every English key without a Korean entry among `keys` (for the tests).
    pub fn missing(keys: &[&str]) -> Vec<String> {
        keys.iter()
            .filter(|k| !KO.contains_key(**k))
            .map(|k| k.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_language_is_picked_by_quality() {
        assert_eq!(
            Lang::from_accept_language("ko-KR,ko;q=0.9,en;q=0.8"),
            Some(Lang::Ko)
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,ko;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("fr-FR"), None);
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn the_korean_table_parses_and_falls_back_to_english() {
        assert!(!KO.is_empty(), "templates/i18n/ko.toml parses");
        assert_eq!(Lang::Ko.t("Search"), "검색");
        assert_eq!(Lang::Ko.t("no such text"), "no such text");
        assert_eq!(Lang::En.t("Search"), "Search");
        // Reasons the drafter records in a fixed wording are shown in Korean too.
        for stopped in [
            doctrina_draft::inference::REPETITION_STOPPED,
            doctrina_draft::inference::LENGTH_STOPPED,
        ] {
            assert_ne!(Lang::Ko.t(stopped), stopped);
        }
    }

    /// The `"..."` literals of `me.t("...")` calls in a template.
    fn literal_keys(template: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut rest = template;
        while let Some(at) = rest.find("me.t(\"") {
            rest = &rest[at + "me.t(\"".len()..];
            let mut key = String::new();
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => key.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        rest = &rest[i..];
                        break;
                    }
                    c => key.push(c),
                }
            }
            keys.push(key);
        }
        keys
    }

    #[test]
    fn every_template_text_has_a_korean_entry() {
        let dir =
            std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test"))
                .join("../../templates");
        let mut missing = Vec::new();
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "html") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for key in literal_keys(&text) {
                checked += 1;
                if !KO.contains_key(&key) {
                    missing.push(format!("{}: {key}", path.display()));
                }
            }
        }
        assert!(checked > 300, "only {checked} texts found");
        assert!(missing.is_empty(), "no Korean for:\n{}", missing.join("\n"));
        // Texts the Rust code translates (exports, statuses).
        for key in [
            "Accepted: version {v} by {by}.",
            "NOT ACCEPTED: this section is {status} and is not part of the approved plan.",
            "References",
            "drafted",
            "Operation order",
        ] {
            assert!(KO.contains_key(key), "{key}");
        }
    }
}

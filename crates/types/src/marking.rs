use serde::{Deserialize, Serialize};

/// A classification marking: a level from the [`MarkingScheme`] plus caveats
/// (e.g. `NOFORN`, `REL TO USA, GBR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marking {
    pub level: String,
    #[serde(default)]
    pub caveats: Vec<String>,
}

impl Default for Marking {
    fn default() -> Self {
        Self {
            level: "UNCLASSIFIED".to_string(),
            caveats: Vec::new(),
        }
    }
}

impl Marking {
    /// The banner form, e.g. `SECRET//NOFORN`.
    pub fn banner(&self) -> String {
        if self.caveats.is_empty() {
            self.level.clone()
        } else {
            format!("{}//{}", self.level, self.caveats.join("/"))
        }
    }
}

impl std::fmt::Display for Marking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.banner())
    }
}

/// Ordered classification levels, lowest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkingScheme {
    pub levels: Vec<String>,
}

impl Default for MarkingScheme {
    fn default() -> Self {
        Self {
            levels: [
                "UNCLASSIFIED",
                "CUI",
                "CONFIDENTIAL",
                "SECRET",
                "TOP SECRET",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

impl MarkingScheme {
    /// Rank of a level (0 = lowest), matched case-insensitively; `None` if unknown.
    pub fn rank(&self, level: &str) -> Option<u32> {
        let wanted = level.trim();
        self.levels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(wanted))
            .map(|p| p as u32)
    }

    /// The canonical spelling of a level, or `None` if it is not in the scheme.
    pub fn canonical(&self, level: &str) -> Option<&str> {
        self.rank(level).map(|r| self.levels[r as usize].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_scheme_order() {
        let scheme = MarkingScheme::default();
        assert_eq!(scheme.rank("unclassified"), Some(0));
        assert_eq!(scheme.rank("SECRET"), Some(3));
        assert_eq!(scheme.rank("top secret"), Some(4));
        assert_eq!(scheme.rank("COSMIC"), None);
    }

    #[test]
    fn banner_joins_caveats() {
        let m = Marking {
            level: "SECRET".into(),
            caveats: vec!["NOFORN".into()],
        };
        assert_eq!(m.banner(), "SECRET//NOFORN");
        assert_eq!(Marking::default().banner(), "UNCLASSIFIED");
    }
}

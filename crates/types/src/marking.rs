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

impl Marking {
    /// Parses a banner line such as `SECRET//NOFORN` or `SECRET//REL TO USA, GBR`.
    pub fn parse_banner(banner: &str) -> Self {
        let mut parts = banner.split("//").map(str::trim);
        let level = parts.next().unwrap_or_default();
        Self {
            level: if level.is_empty() {
                "UNCLASSIFIED".to_string()
            } else {
                level.to_string()
            },
            caveats: parts
                .flat_map(|p| p.split('/'))
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
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
    /// The marking a product drawn from `markings` must carry: the highest level and every
    /// caveat (NOFORN overrides release markings). Unknown levels count as the highest
    /// level of the scheme, so they can never lower the result.
    pub fn highest<'a>(&self, markings: impl IntoIterator<Item = &'a Marking>) -> Marking {
        let top = self.levels.len().saturating_sub(1) as u32;
        let mut best: Option<(u32, String)> = None;
        let mut caveats: Vec<String> = Vec::new();
        for m in markings {
            let rank = self.rank(&m.level).unwrap_or(top);
            if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                let level = self.canonical(&m.level).unwrap_or(&m.level).to_string();
                best = Some((rank, level));
            }
            for c in &m.caveats {
                if !caveats.iter().any(|k| k.eq_ignore_ascii_case(c)) {
                    caveats.push(c.clone());
                }
            }
        }
        if caveats.iter().any(|c| c.eq_ignore_ascii_case("NOFORN")) {
            caveats.retain(|c| !c.to_ascii_uppercase().starts_with("REL TO"));
        }
        Marking {
            level: best.map_or_else(|| self.levels[0].clone(), |(_, l)| l),
            caveats,
        }
    }

    pub fn canonical(&self, level: &str) -> Option<&str> {
        self.rank(level).map(|r| self.levels[r as usize].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_marking_takes_top_level_and_all_caveats() {
        let scheme = MarkingScheme::default();
        let ms = [
            Marking::parse_banner("CUI"),
            Marking::parse_banner("SECRET//REL TO USA, GBR"),
            Marking::parse_banner("CONFIDENTIAL"),
        ];
        assert_eq!(scheme.highest(&ms).banner(), "SECRET//REL TO USA, GBR");
        let ms = [
            Marking::parse_banner("SECRET//REL TO USA, GBR"),
            Marking::parse_banner("secret//NOFORN"),
        ];
        assert_eq!(scheme.highest(&ms).banner(), "SECRET//NOFORN");
        assert_eq!(scheme.highest(&[]).banner(), "UNCLASSIFIED");
        let odd = [Marking::parse_banner("COSMIC")];
        assert_eq!(scheme.highest(&odd).level, "COSMIC");
    }

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

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

/// The level and caveat of a marking that could not be read (a corrupt catalog column,
/// an empty stored banner). No scheme knows them, so nobody is cleared for it: every
/// marking read fails closed.
pub const UNREADABLE: &str = "UNREADABLE";

impl Marking {
    /// A marking that could not be read: above every clearance.
    pub fn unreadable() -> Self {
        Self {
            level: UNREADABLE.to_string(),
            caveats: vec![UNREADABLE.to_string()],
        }
    }

    /// Parses a banner line such as `SECRET//NOFORN` or `SECRET//REL TO USA, GBR`. An
    /// empty banner is [`Marking::unreadable`], never the lowest level.
    pub fn parse_banner(banner: &str) -> Self {
        let mut parts = banner.split("//").map(str::trim);
        let level = parts.next().unwrap_or_default();
        if level.is_empty() {
            return Self::unreadable();
        }
        Self {
            level: level.to_string(),
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

/// Ordered classification levels, lowest first, and the caveats people may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkingScheme {
    pub levels: Vec<String>,
    /// Caveats an account may be given (`REL TO` stands for `REL TO <country>`), so a typo in
    /// a clearance is refused rather than silently granting nothing. Empty: any caveat.
    /// Documents may carry caveats outside this list: nobody holds those, so they are
    /// visible to no one with a clearance.
    #[serde(default = "default_caveats")]
    pub caveats: Vec<String>,
}

fn default_caveats() -> Vec<String> {
    ["NOFORN", "ORCON", "PROPIN", "REL TO"]
        .into_iter()
        .map(String::from)
        .collect()
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
            caveats: default_caveats(),
        }
    }
}

impl MarkingScheme {
    /// A clearance from what an administrator typed: the level in its canonical spelling,
    /// the caveats trimmed (empty ones dropped) and checked against `caveats`.
    pub fn clearance<S: AsRef<str>>(
        &self,
        level: &str,
        caveats: impl IntoIterator<Item = S>,
    ) -> Result<Clearance, String> {
        let canonical = self.canonical(level).ok_or_else(|| {
            format!(
                "unknown clearance level {level:?} (expected one of {})",
                self.levels.join(", ")
            )
        })?;
        let clearance = Clearance {
            level: canonical.to_string(),
            caveats: caveats
                .into_iter()
                .map(|c| c.as_ref().trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
        };
        self.check_clearance_caveats(&clearance)?;
        Ok(clearance)
    }

    /// Checks the caveats of a clearance against `caveats`: `Err` names the first unknown one.
    pub fn check_clearance_caveats(&self, clearance: &Clearance) -> Result<(), String> {
        if self.caveats.is_empty() {
            return Ok(());
        }
        for c in &clearance.caveats {
            let token = caveat_token(c);
            let known = self.caveats.iter().any(|k| {
                let k = caveat_token(k);
                if k == "REL TO" {
                    token
                        .strip_prefix("REL TO ")
                        .is_some_and(|country| !country.is_empty() && !country.contains(','))
                } else {
                    k == token
                }
            });
            if !known {
                return Err(format!(
                    "unknown caveat {c:?} (known: {}; REL TO takes one country per entry, e.g. REL TO GBR)",
                    self.caveats.join(", ")
                ));
            }
        }
        Ok(())
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

    /// Whether a person holding `clearance` may see a document marked `marking`: the
    /// document's level is at or below the clearance's level and every caveat is permitted
    /// ([`MarkingScheme::permits_caveat`]).
    ///
    /// Levels fail safe: a document level the scheme does not know counts as above the top
    /// level, so no clearance permits it; a clearance level the scheme does not know permits
    /// nothing at all (not even the lowest level), since it may be a typo for anything.
    pub fn permits(&self, clearance: &Clearance, marking: &Marking) -> bool {
        let (Some(held), Some(needed)) = (self.rank(&clearance.level), self.rank(&marking.level))
        else {
            return false;
        };
        needed <= held
            && marking
                .caveats
                .iter()
                .all(|c| self.permits_caveat(clearance, c))
    }

    /// Whether `clearance` permits one caveat. Caveats compare in their [`caveat_token`]
    /// form (case and spacing do not matter). A release marking `REL TO A, B` is permitted
    /// when the clearance holds `REL TO X` for some listed country X; every other caveat
    /// (`NOFORN`, `ORCON`, anything unknown) only when the clearance holds exactly it.
    pub fn permits_caveat(&self, clearance: &Clearance, caveat: &str) -> bool {
        let token = caveat_token(caveat);
        match release_countries(&token) {
            Some(listed) => clearance
                .caveats
                .iter()
                .filter_map(|held| release_countries(&caveat_token(held)))
                .flatten()
                .any(|country| listed.contains(&country)),
            None => clearance
                .caveats
                .iter()
                .any(|held| caveat_token(held) == token),
        }
    }
}

/// What a person is cleared to see: a level of the [`MarkingScheme`] and the caveats they
/// hold (`NOFORN`, `ORCON`, `REL TO GBR`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clearance {
    pub level: String,
    #[serde(default)]
    pub caveats: Vec<String>,
}

const RELEASE_PREFIX: &str = "REL TO";

/// The normalised form of a caveat, as stored in the indexes and compared everywhere:
/// uppercase with single spaces; a release marking's countries (split on commas, slashes
/// and whitespace) are sorted, deduplicated and joined with `", "`.
/// `rel to  usa,gbr` -> `REL TO GBR, USA`; ` noforn ` -> `NOFORN`.
pub fn caveat_token(caveat: &str) -> String {
    let upper = caveat
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    let Some(rest) = upper.strip_prefix(RELEASE_PREFIX) else {
        return upper;
    };
    if !(rest.is_empty() || rest.starts_with([' ', ',', '/', ':'])) {
        return upper; // `REL TOKEN`: not a release marking
    }
    let mut countries: Vec<&str> = rest
        .split(|c: char| c == ',' || c == '/' || c == ':' || c.is_whitespace())
        .filter(|c| !c.is_empty())
        .collect();
    countries.sort_unstable();
    countries.dedup();
    if countries.is_empty() {
        RELEASE_PREFIX.to_string()
    } else {
        format!("{RELEASE_PREFIX} {}", countries.join(", "))
    }
}

/// The countries of a release marking in token form, or `None` for any other caveat.
fn release_countries(token: &str) -> Option<Vec<String>> {
    let rest = token.strip_prefix(RELEASE_PREFIX)?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some(
        rest.split(", ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearance_caveats_are_checked_against_the_scheme() {
        let scheme = MarkingScheme::default();
        let with = |caveats: &[&str]| Clearance {
            level: "SECRET".into(),
            caveats: caveats.iter().map(|c| c.to_string()).collect(),
        };
        assert!(
            scheme
                .check_clearance_caveats(&with(&["noforn", "REL TO GBR"]))
                .is_ok()
        );
        assert!(scheme.check_clearance_caveats(&with(&["NOFRON"])).is_err());
        assert!(scheme.check_clearance_caveats(&with(&["REL TO"])).is_err());
        assert!(
            scheme
                .check_clearance_caveats(&with(&["REL TO USA, GBR"]))
                .is_err()
        );
        let open = MarkingScheme {
            caveats: vec![],
            ..MarkingScheme::default()
        };
        assert!(open.check_clearance_caveats(&with(&["ANYTHING"])).is_ok());
    }

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

    fn clearance(level: &str, caveats: &[&str]) -> Clearance {
        Clearance {
            level: level.to_string(),
            caveats: caveats.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn marking(level: &str, caveats: &[&str]) -> Marking {
        Marking {
            level: level.to_string(),
            caveats: caveats.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn caveat_tokens_are_normalised() {
        assert_eq!(caveat_token(" noforn "), "NOFORN");
        assert_eq!(caveat_token("rel to  usa,gbr"), "REL TO GBR, USA");
        assert_eq!(caveat_token("REL TO USA, GBR"), "REL TO GBR, USA");
        assert_eq!(caveat_token("REL TO GBR/USA/GBR"), "REL TO GBR, USA");
        assert_eq!(caveat_token("REL TO"), "REL TO");
        assert_eq!(caveat_token("rel token"), "REL TOKEN");
        assert_eq!(caveat_token("orcon"), "ORCON");
        let token = caveat_token("REL TO USA, FRA");
        assert_eq!(caveat_token(&token), token, "idempotent");
    }

    #[test]
    fn levels_permit_at_or_below_and_fail_safe_when_unknown() {
        let scheme = MarkingScheme::default();
        let secret = clearance("secret", &[]);
        assert!(scheme.permits(&secret, &marking("UNCLASSIFIED", &[])));
        assert!(scheme.permits(&secret, &marking("SECRET", &[])));
        assert!(!scheme.permits(&secret, &marking("TOP SECRET", &[])));
        // A document level the scheme does not know is above every clearance.
        let top = clearance("TOP SECRET", &["NOFORN", "ORCON", "REL TO USA"]);
        assert!(!scheme.permits(&top, &marking("COSMIC", &[])));
        // A clearance level the scheme does not know permits nothing, not even the lowest.
        let unknown = clearance("SECERT", &["NOFORN"]);
        assert!(!scheme.permits(&unknown, &marking("UNCLASSIFIED", &[])));
    }

    #[test]
    fn release_markings_need_one_listed_country() {
        let scheme = MarkingScheme::default();
        let usa = clearance("SECRET", &["REL TO USA"]);
        let gbr = clearance("SECRET", &["rel to gbr"]);
        let fra = clearance("SECRET", &["REL TO FRA"]);
        let none = clearance("SECRET", &[]);
        let m = marking("SECRET", &["REL TO USA, GBR"]);
        assert!(scheme.permits(&usa, &m));
        assert!(scheme.permits(&gbr, &m));
        assert!(!scheme.permits(&fra, &m));
        assert!(!scheme.permits(&none, &m));
        assert!(scheme.permits_caveat(&fra, "rel to usa,  fra"));
        // A clearance listing several countries holds each of them.
        let both = clearance("SECRET", &["REL TO GBR, FRA"]);
        assert!(scheme.permits_caveat(&both, "REL TO FRA"));
        // A release marking with no country permits nobody.
        assert!(!scheme.permits_caveat(&usa, "REL TO"));
    }

    #[test]
    fn other_caveats_need_to_be_held_exactly() {
        let scheme = MarkingScheme::default();
        let noforn = clearance("TOP SECRET", &["noforn"]);
        assert!(scheme.permits(&noforn, &marking("SECRET", &["NOFORN"])));
        assert!(!scheme.permits(&noforn, &marking("SECRET", &["ORCON"])));
        assert!(!scheme.permits(&noforn, &marking("SECRET", &["NOFORN", "ORCON"])));
        assert!(!scheme.permits(&noforn, &marking("SECRET", &["REL TO USA"])));
        let rel = clearance("TOP SECRET", &["REL TO USA"]);
        assert!(!scheme.permits(&rel, &marking("SECRET", &["NOFORN"])));
        assert!(!scheme.permits(&rel, &marking("SECRET", &["PROPIN"])));
        let both = clearance("TOP SECRET", &["NOFORN", "ORCON"]);
        assert!(scheme.permits(&both, &marking("CUI", &[" orcon ", "NOFORN"])));
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

    #[test]
    fn unreadable_markings_fail_closed() {
        let scheme = MarkingScheme::default();
        let top = clearance("TOP SECRET", &["NOFORN", "ORCON", "REL TO USA"]);
        assert!(!scheme.permits(&top, &Marking::parse_banner("")));
        assert!(!scheme.permits(&top, &Marking::parse_banner("  //  ")));
        assert!(!scheme.permits(&top, &Marking::unreadable()));
        let product = scheme.highest(&[Marking::default(), Marking::unreadable()]);
        assert!(!scheme.permits(&top, &product));
    }
}

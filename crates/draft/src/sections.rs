//! Plan-section templates: data files (`templates/sections/*.toml`), not code. Each names
//! the section, instructs the model, lists retrieval queries and the expected sub-headings.
//! The bundled set is compiled in; a directory given in config replaces it.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionTemplate {
    pub name: String,
    pub title: String,
    /// What the section belongs to: operation order, mission analysis, ...
    pub kind: String,
    pub instructions: String,
    /// Retrieval queries used in addition to the officer's task.
    pub queries: Vec<String>,
    pub subheadings: Vec<String>,
    /// The language the section is written in (`en`, `ko`): the prompt's rules and labels
    /// are given in it, and the model is asked to write in it whatever the sources' language.
    #[serde(default = "english")]
    pub language: String,
}

fn english() -> String {
    "en".to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    #[error("cannot read section templates in {path}: {message}")]
    Read { path: String, message: String },
    #[error("section template {origin}: {message}")]
    Invalid { origin: String, message: String },
}

const BUNDLED: &[(&str, &str)] = &[
    (
        "opord-situation.toml",
        include_str!("../../../templates/sections/opord-situation.toml"),
    ),
    (
        "opord-mission.toml",
        include_str!("../../../templates/sections/opord-mission.toml"),
    ),
    (
        "opord-execution.toml",
        include_str!("../../../templates/sections/opord-execution.toml"),
    ),
    (
        "opord-sustainment.toml",
        include_str!("../../../templates/sections/opord-sustainment.toml"),
    ),
    (
        "opord-command-signal.toml",
        include_str!("../../../templates/sections/opord-command-signal.toml"),
    ),
    (
        "mission-analysis-summary.toml",
        include_str!("../../../templates/sections/mission-analysis-summary.toml"),
    ),
    (
        "coa-statement.toml",
        include_str!("../../../templates/sections/coa-statement.toml"),
    ),
    (
        "running-estimate.toml",
        include_str!("../../../templates/sections/running-estimate.toml"),
    ),
    (
        "doctrine-answer.toml",
        include_str!("../../../templates/sections/doctrine-answer.toml"),
    ),
    (
        "ko-mission-analysis-brief.toml",
        include_str!("../../../templates/sections/ko-mission-analysis-brief.toml"),
    ),
    (
        "ko-opord-command-signal.toml",
        include_str!("../../../templates/sections/ko-opord-command-signal.toml"),
    ),
    (
        "ko-opord-execution.toml",
        include_str!("../../../templates/sections/ko-opord-execution.toml"),
    ),
    (
        "ko-opord-mission.toml",
        include_str!("../../../templates/sections/ko-opord-mission.toml"),
    ),
    (
        "ko-opord-situation.toml",
        include_str!("../../../templates/sections/ko-opord-situation.toml"),
    ),
    (
        "ko-opord-sustainment.toml",
        include_str!("../../../templates/sections/ko-opord-sustainment.toml"),
    ),
    (
        "ko-staff-estimate.toml",
        include_str!("../../../templates/sections/ko-staff-estimate.toml"),
    ),
];

/// The available section templates, in a stable order.
#[derive(Debug, Clone)]
pub struct SectionLibrary {
    templates: Vec<SectionTemplate>,
}

fn parse(origin: &str, text: &str) -> Result<SectionTemplate, SectionError> {
    let template: SectionTemplate = toml::from_str(text).map_err(|e| SectionError::Invalid {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    let stem = origin.strip_suffix(".toml").unwrap_or(origin);
    let stem = Path::new(stem)
        .file_name()
        .map_or(stem.to_string(), |s| s.to_string_lossy().into_owned());
    if template.name != stem {
        return Err(SectionError::Invalid {
            origin: origin.to_string(),
            message: format!("name '{}' does not match the file name", template.name),
        });
    }
    if !matches!(template.language.as_str(), "en" | "ko") {
        return Err(SectionError::Invalid {
            origin: origin.to_string(),
            message: format!("language '{}' is not one of en, ko", template.language),
        });
    }
    if template.instructions.trim().is_empty() || template.queries.is_empty() {
        return Err(SectionError::Invalid {
            origin: origin.to_string(),
            message: "instructions and at least one query are required".to_string(),
        });
    }
    Ok(template)
}

impl SectionLibrary {
    /// The templates shipped with doctrina.
    pub fn bundled() -> Result<Self, SectionError> {
        let templates = BUNDLED
            .iter()
            .map(|(origin, text)| parse(origin, text))
            .collect::<Result<_, _>>()?;
        Ok(Self { templates })
    }

    /// Every `*.toml` file in `dir`, sorted by name.
    pub fn load(dir: &Path) -> Result<Self, SectionError> {
        let read_error = |e: std::io::Error| SectionError::Read {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        let mut templates = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(read_error)?;
            templates.push(parse(&path.display().to_string(), &text)?);
        }
        Ok(Self { templates })
    }

    pub fn all(&self) -> &[SectionTemplate] {
        &self.templates
    }

    pub fn get(&self, name: &str) -> Option<&SectionTemplate> {
        self.templates.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_templates_cover_the_required_sections() {
        let library = SectionLibrary::bundled().expect("bundled templates parse");
        for name in [
            "opord-situation",
            "opord-mission",
            "opord-execution",
            "opord-sustainment",
            "opord-command-signal",
            "mission-analysis-summary",
            "coa-statement",
            "running-estimate",
        ] {
            let t = library
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert!(
                t.instructions.contains("[2]"),
                "{name} asks for [n] citations"
            );
            assert!(!t.subheadings.is_empty());
            assert_eq!(t.language, "en");
        }
    }

    #[test]
    fn korean_templates_cover_the_operation_order_and_staff_products() {
        let library = SectionLibrary::bundled().unwrap();
        let korean: Vec<&SectionTemplate> = library
            .all()
            .iter()
            .filter(|t| t.language == "ko")
            .collect();
        let titles: Vec<&str> = korean.iter().map(|t| t.title.as_str()).collect();
        for title in ["1. 상황", "2. 임무", "3. 실시", "5. 지휘 및 통신"] {
            assert!(titles.contains(&title), "{title} missing from {titles:?}");
        }
        assert!(
            titles.iter().any(|t| t.contains("전투근무지원")),
            "{titles:?}"
        );
        assert!(titles.iter().any(|t| t.contains("임무분석")), "{titles:?}");
        assert!(titles.iter().any(|t| t.contains("참모판단")), "{titles:?}");
        for t in korean {
            assert!(doctrina_korean::has_hangul(&t.instructions), "{}", t.name);
            // Korean and English retrieval queries, so English doctrine is found too.
            assert!(t.queries.iter().any(|q| doctrina_korean::has_hangul(q)));
            assert!(t.queries.iter().any(|q| !doctrina_korean::has_hangul(q)));
        }
    }

    #[test]
    fn an_unknown_template_language_is_refused() {
        let err = parse(
            "x.toml",
            "name = \"x\"\ntitle = \"t\"\nkind = \"k\"\ninstructions = \"i\"\nqueries = [\"q\"]\nsubheadings = []\nlanguage = \"fr\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("'fr'"), "{err}");
    }

    #[test]
    fn a_wrong_template_is_a_clear_error() {
        let err = parse("x.toml", "name = \"y\"\ntitle = \"t\"\nkind = \"k\"\ninstructions = \"i\"\nqueries = [\"q\"]\nsubheadings = []\n")
            .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        assert!(parse("x.toml", "name = 1").is_err());
    }
}

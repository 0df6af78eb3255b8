//! Document metadata from YAML front matter or a `<file>.meta.yaml` sidecar, resolved
//! against what the document itself says (its title heading) and the path it came from.

use std::path::Path;

use doctrina_types::{DocumentMeta, Marking, MarkingScheme, SourceFormat};
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::blocks::{Block, BlockKind};
use crate::error::{IngestError, Result};

/// Metadata as written by a custodian; every key optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SidecarMeta {
    pub id: Option<String>,
    pub title: Option<String>,
    pub publication: Option<String>,
    pub edition: Option<String>,
    pub supersedes: Option<String>,
    pub marking: Option<String>,
    pub caveats: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    id: Option<Value>,
    title: Option<Value>,
    publication: Option<Value>,
    edition: Option<Value>,
    supersedes: Option<Value>,
    marking: Option<Value>,
    #[serde(default)]
    caveats: Option<Value>,
}

fn scalar(v: Option<Value>, key: &str, origin: &str) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(Value::Sequence(items)) if key == "supersedes" => {
            let parts: Vec<String> = items
                .into_iter()
                .filter_map(|i| scalar(Some(i), key, origin).ok().flatten())
                .collect();
            Ok(Some(parts.join("; ")).filter(|s| !s.is_empty()))
        }
        Some(_) => Err(IngestError::Metadata {
            origin: origin.to_string(),
            message: format!("'{key}' must be a single value"),
        }),
    }
}

fn list(v: Option<Value>, origin: &str) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split('/')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()),
        Some(Value::Sequence(items)) => items
            .into_iter()
            .map(|i| scalar(Some(i), "caveats", origin).map(|s| s.unwrap_or_default()))
            .filter(|r| !matches!(r, Ok(s) if s.is_empty()))
            .collect(),
        Some(_) => Err(IngestError::Metadata {
            origin: origin.to_string(),
            message: "'caveats' must be a list of strings".to_string(),
        }),
    }
}

fn parse_yaml(text: &str, origin: &str) -> Result<SidecarMeta> {
    if text.trim().is_empty() {
        return Ok(SidecarMeta::default());
    }
    let raw: RawMeta = serde_yaml_ng::from_str(text).map_err(|e| IngestError::Metadata {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    Ok(SidecarMeta {
        id: scalar(raw.id, "id", origin)?,
        title: scalar(raw.title, "title", origin)?,
        publication: scalar(raw.publication, "publication", origin)?,
        edition: scalar(raw.edition, "edition", origin)?,
        supersedes: scalar(raw.supersedes, "supersedes", origin)?,
        marking: scalar(raw.marking, "marking", origin)?,
        caveats: list(raw.caveats, origin)?,
    })
}

pub fn parse_sidecar(bytes: &[u8], path: &Path) -> Result<SidecarMeta> {
    let origin = format!("sidecar {}", path.display());
    let text = std::str::from_utf8(bytes).map_err(|e| IngestError::Metadata {
        origin: origin.clone(),
        message: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
    })?;
    parse_yaml(text, &origin)
}

/// Splits `---\n<yaml>\n---\n` front matter off a Markdown or text document.
pub fn split_front_matter(text: &str) -> Result<(Option<SidecarMeta>, &str)> {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return Ok((None, text));
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" || line.trim_end() == "..." {
            let yaml = &rest[..offset];
            let body = &rest[offset + line.len()..];
            return Ok((Some(parse_yaml(yaml, "front matter")?), body));
        }
        offset += line.len();
    }
    Err(IngestError::Metadata {
        origin: "front matter".to_string(),
        message: "opening '---' has no closing '---'".to_string(),
    })
}

/// Splits `SECRET//NOFORN` into a level and caveats; validates the level against the scheme.
fn resolve_marking(
    marking: Option<&str>,
    extra_caveats: &[String],
    scheme: &MarkingScheme,
) -> Result<Marking> {
    let Some(written) = marking else {
        let mut m = Marking::default();
        if let Some(lowest) = scheme.levels.first() {
            m.level = lowest.clone();
        }
        m.caveats = extra_caveats.to_vec();
        return Ok(m);
    };
    let mut parts = written.split("//");
    let level_text = parts.next().unwrap_or_default().trim();
    let level = scheme
        .canonical(level_text)
        .ok_or_else(|| IngestError::Metadata {
            origin: "marking".to_string(),
            message: format!(
                "unknown marking level '{level_text}' (known: {})",
                scheme.levels.join(", ")
            ),
        })?
        .to_string();
    let mut caveats: Vec<String> = parts
        .flat_map(|p| p.split('/'))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    for c in extra_caveats {
        if !caveats.contains(c) {
            caveats.push(c.clone());
        }
    }
    Ok(Marking { level, caveats })
}

#[allow(clippy::too_many_arguments)]
pub fn resolve(
    given: Option<SidecarMeta>,
    extracted_title: Option<String>,
    blocks: &[Block],
    scheme: &MarkingScheme,
    source_path: &str,
    id_hint: &str,
    format: SourceFormat,
    content_hash: String,
) -> Result<DocumentMeta> {
    let given = given.unwrap_or_default();
    let marking = resolve_marking(given.marking.as_deref(), &given.caveats, scheme)?;
    let id = match given.id {
        Some(id) => {
            let slug = crate::slug(&id);
            if slug.is_empty() {
                return Err(IngestError::Metadata {
                    origin: "id".to_string(),
                    message: format!("'{id}' has no letters or digits"),
                });
            }
            slug
        }
        None => id_hint.to_string(),
    };
    let title = given
        .title
        .or(extracted_title)
        .or_else(|| {
            blocks
                .iter()
                .find(|b| b.kind == BlockKind::Heading)
                .map(|b| b.text.clone())
        })
        .unwrap_or_else(|| {
            Path::new(source_path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| id.clone())
        });
    Ok(DocumentMeta {
        id,
        title,
        publication: given.publication,
        edition: given.edition,
        supersedes: given.supersedes,
        marking,
        source_path: source_path.to_string(),
        format,
        content_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_split_and_parsed() {
        let doc = "---\nid: atp-4-0-6\ntitle: Sustainment\npublication: ATP 4-0.6\nedition: 2024-01-17\nmarking: SECRET//NOFORN\ncaveats: [REL TO USA]\n---\n# Body\n";
        let (meta, body) = split_front_matter(doc).unwrap();
        let meta = meta.unwrap();
        assert_eq!(body, "# Body\n");
        assert_eq!(meta.publication.as_deref(), Some("ATP 4-0.6"));
        assert_eq!(meta.edition.as_deref(), Some("2024-01-17"));
        let marking = resolve_marking(
            meta.marking.as_deref(),
            &meta.caveats,
            &MarkingScheme::default(),
        )
        .unwrap();
        assert_eq!(marking.level, "SECRET");
        assert_eq!(marking.caveats, vec!["NOFORN", "REL TO USA"]);
    }

    #[test]
    fn unknown_level_and_unclosed_front_matter_are_errors() {
        assert!(resolve_marking(Some("ULTRA"), &[], &MarkingScheme::default()).is_err());
        assert!(split_front_matter("---\ntitle: x\n# no end").is_err());
        assert!(split_front_matter("---\nbogus_key: 1\n---\n").is_err());
    }

    #[test]
    fn missing_marking_defaults_to_lowest_level() {
        let m = resolve_marking(None, &[], &MarkingScheme::default()).unwrap();
        assert_eq!(m.banner(), "UNCLASSIFIED");
    }
}

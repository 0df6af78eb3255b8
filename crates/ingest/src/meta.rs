//! Document metadata from YAML front matter and a `<file>.meta.yaml` sidecar, merged field
//! by field and resolved against what the document itself says (its title heading, the
//! banner and portion markings in its text) and the path it came from.
//!
//! Unknown keys never reject a document: they are kept as extra metadata (shown on the
//! document page). A key one or two letters away from a known one (`markng`) is refused,
//! because silently ignoring a misspelt `marking` would index the document below its level.

use std::collections::BTreeMap;
use std::path::Path;

use doctrina_types::{DocumentMeta, Marking, MarkingScheme, SourceFormat};
use serde_yaml_ng::Value;

use crate::blocks::{Block, BlockKind};
use crate::error::{IngestError, Result};
use crate::markings::Evidence;

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
    /// Keys doctrina does not interpret, in file order of their names (sorted), as text.
    pub extra: BTreeMap<String, String>,
}

/// Where a piece of metadata came from, for messages and the document's marking basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    FrontMatter,
    Sidecar,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Self::FrontMatter => "front matter",
            Self::Sidecar => "sidecar",
        }
    }
}

/// The keys doctrina interprets, with the other spellings documents use for them (Korean
/// statutes as published carry `제목` and `시행일자`).
const KEYS: &[(&str, &[&str])] = &[
    ("id", &["doc_id", "document_id"]),
    ("title", &["제목", "법령명", "명칭"]),
    ("publication", &["pub", "발간번호", "교범번호"]),
    ("edition", &["date", "시행일자", "발행일자", "발간일자"]),
    ("supersedes", &["대체"]),
    ("marking", &["classification"]),
    ("caveats", &[]),
];

/// The canonical key for a written key, if doctrina interprets it.
fn canonical_key(key: &str) -> Option<&'static str> {
    let lower = key.trim().to_lowercase();
    KEYS.iter()
        .find(|(name, aliases)| *name == lower || aliases.contains(&lower.as_str()))
        .map(|(name, _)| *name)
}

/// Levenshtein distance, for catching misspelt keys (short ASCII keys only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A known key that `key` looks like a misspelling of.
fn near_miss(key: &str) -> Option<&'static str> {
    let lower = key.trim().to_lowercase();
    if !lower.is_ascii() || lower.len() < 3 {
        return None;
    }
    KEYS.iter()
        .map(|(name, _)| *name)
        .find(|name| edit_distance(&lower, name) <= if name.len() <= 4 { 1 } else { 2 })
}

fn scalar(v: &Value, key: &str, origin: &str) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Tagged(t) => scalar(&t.value, key, origin),
        Value::Sequence(items) if key == "supersedes" => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|i| scalar(i, key, origin).ok().flatten())
                .collect();
            Ok(Some(parts.join("; ")).filter(|s| !s.is_empty()))
        }
        _ => Err(IngestError::Metadata {
            origin: origin.to_string(),
            message: format!("'{key}' must be a single value"),
        }),
    }
}

fn list(v: &Value, origin: &str) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s
            .split('/')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()),
        Value::Sequence(items) => items
            .iter()
            .map(|i| scalar(i, "caveats", origin).map(|s| s.unwrap_or_default()))
            .filter(|r| !matches!(r, Ok(s) if s.is_empty()))
            .collect(),
        _ => Err(IngestError::Metadata {
            origin: origin.to_string(),
            message: "'caveats' must be a list of strings".to_string(),
        }),
    }
}

/// Any YAML value as display text (extra metadata): scalars as written, sequences joined.
fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => display(&t.value),
        Value::Sequence(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| format!("{}: {}", display(k), display(v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Longest extra value kept, in characters.
const MAX_EXTRA_CHARS: usize = 2_000;
/// Most extra keys kept per document.
const MAX_EXTRA_KEYS: usize = 64;

fn parse_yaml(text: &str, origin: &str) -> Result<SidecarMeta> {
    if text.trim().is_empty() {
        return Ok(SidecarMeta::default());
    }
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| IngestError::Metadata {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    let mapping = match value {
        Value::Null => return Ok(SidecarMeta::default()),
        Value::Mapping(m) => m,
        _ => {
            return Err(IngestError::Metadata {
                origin: origin.to_string(),
                message: "expected `key: value` lines".to_string(),
            });
        }
    };
    let mut meta = SidecarMeta::default();
    let mut seen: BTreeMap<&'static str, String> = BTreeMap::new();
    for (key, value) in &mapping {
        let key_text = display(key);
        let Some(canonical) = canonical_key(&key_text) else {
            if let Some(known) = near_miss(&key_text) {
                return Err(IngestError::Metadata {
                    origin: origin.to_string(),
                    message: format!("unknown key '{key_text}' (did you mean '{known}'?)"),
                });
            }
            if meta.extra.len() < MAX_EXTRA_KEYS {
                let text: String = display(value).chars().take(MAX_EXTRA_CHARS).collect();
                meta.extra.insert(key_text, text);
            }
            continue;
        };
        if let Some(first) = seen.insert(canonical, key_text.clone()) {
            return Err(IngestError::Metadata {
                origin: origin.to_string(),
                message: format!("'{first}' and '{key_text}' both set '{canonical}'"),
            });
        }
        match canonical {
            "id" => meta.id = scalar(value, "id", origin)?,
            "title" => meta.title = scalar(value, "title", origin)?,
            "publication" => meta.publication = scalar(value, "publication", origin)?,
            "edition" => meta.edition = scalar(value, "edition", origin)?,
            "supersedes" => meta.supersedes = scalar(value, "supersedes", origin)?,
            "marking" => meta.marking = scalar(value, "marking", origin)?,
            _ => meta.caveats = list(value, origin)?,
        }
    }
    Ok(meta)
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

/// Metadata from the document's own front matter and its sidecar, kept apart until
/// [`resolve`] merges them field by field.
#[derive(Debug, Clone, Default)]
pub struct GivenMeta {
    pub front: Option<SidecarMeta>,
    pub sidecar: Option<SidecarMeta>,
}

impl GivenMeta {
    /// The sources in order of precedence for descriptive fields: the document's own front
    /// matter first, then the sidecar fills what it leaves out.
    fn sources(&self) -> impl Iterator<Item = (Origin, &SidecarMeta)> {
        self.front
            .iter()
            .map(|m| (Origin::FrontMatter, m))
            .chain(self.sidecar.iter().map(|m| (Origin::Sidecar, m)))
    }

    fn first<'a>(
        &'a self,
        field: impl Fn(&'a SidecarMeta) -> Option<&'a String>,
    ) -> Option<String> {
        self.sources().find_map(|(_, m)| field(m).cloned())
    }

    pub fn publication(&self) -> Option<String> {
        self.first(|m| m.publication.as_ref())
    }

    /// The id: the sidecar's first. A sidecar is written by whoever manages the file (the
    /// library names each upload), so a file's own front matter cannot take over the id of
    /// another document.
    fn id(&self) -> Option<String> {
        self.sidecar
            .as_ref()
            .and_then(|m| m.id.clone())
            .or_else(|| self.front.as_ref().and_then(|m| m.id.clone()))
    }
}

/// Splits `SECRET//NOFORN` into a level and caveats; validates the level against the scheme.
fn parse_marking(
    written: &str,
    extra_caveats: &[String],
    scheme: &MarkingScheme,
    origin: &str,
) -> Result<Marking> {
    let mut parts = written.split("//");
    let level_text = parts.next().unwrap_or_default().trim();
    let level = scheme
        .canonical(level_text)
        .ok_or_else(|| IngestError::Metadata {
            origin: origin.to_string(),
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

/// How a document's marking is decided when nothing in or beside it marks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmarked {
    /// Refuse the file (the default): an unmarked file is never silently the lowest level.
    Refuse,
    /// Give it this marking (`ingest.default_marking`, or a folder's
    /// `.doctrina-defaults.yaml`), and say so in its marking basis.
    Default { marking: String, origin: String },
}

/// The document's marking: the highest of every marking stated about it (front matter,
/// sidecar, banner lines and portion marks in its text), with the basis of that decision.
pub fn resolve_marking(
    given: &GivenMeta,
    evidence: &Evidence,
    scheme: &MarkingScheme,
    unmarked: &Unmarked,
) -> Result<(Marking, Vec<String>)> {
    // (marking, basis, whether it states a level: caveats alone do not)
    let mut found: Vec<(Marking, String, bool)> = Vec::new();
    for (origin, meta) in given.sources() {
        match &meta.marking {
            Some(written) => {
                let m = parse_marking(written, &meta.caveats, scheme, origin.as_str())?;
                let basis = format!("{}: {}", origin.as_str(), m.banner());
                found.push((m, basis, true));
            }
            // Caveats without a level still restrict the document.
            None if !meta.caveats.is_empty() => {
                let m = Marking {
                    level: scheme.levels.first().cloned().unwrap_or_default(),
                    caveats: meta.caveats.clone(),
                };
                let basis = format!("{} caveats: {}", origin.as_str(), meta.caveats.join("/"));
                found.push((m, basis, false));
            }
            None => {}
        }
    }
    for item in &evidence.items {
        found.push((item.marking.clone(), item.describe(), true));
    }
    if !found.iter().any(|(_, _, states_level)| *states_level) {
        match unmarked {
            Unmarked::Refuse => return Err(IngestError::Unmarked),
            Unmarked::Default { marking, origin } => {
                let m = parse_marking(marking, &[], scheme, origin)?;
                let basis = format!("{origin} for unmarked files: {}", m.banner());
                found.push((m, basis, true));
            }
        }
    }
    let marking = scheme.highest(found.iter().map(|(m, _, _)| m));
    // Say so when the metadata disagrees with itself or the text raised the marking above
    // what the metadata said. Portions below the document's level are normal.
    let stated: std::collections::BTreeSet<String> = found
        .iter()
        .filter(|(_, basis, states)| *states && !basis.starts_with("portion mark"))
        .map(|(m, _, _)| m.banner())
        .collect();
    let mut basis: Vec<String> = found.into_iter().map(|(_, b, _)| b).collect();
    if stated.len() > 1 || (!stated.is_empty() && !stated.contains(&marking.banner())) {
        basis.insert(
            0,
            format!(
                "the statements about its marking differ; the highest applies: {}",
                marking.banner()
            ),
        );
    }
    Ok((marking, basis))
}

#[allow(clippy::too_many_arguments)]
pub fn resolve(
    given: GivenMeta,
    extracted_title: Option<String>,
    blocks: &[Block],
    evidence: &Evidence,
    scheme: &MarkingScheme,
    unmarked: &Unmarked,
    source_path: &str,
    id_hint: &str,
    format: SourceFormat,
    content_hash: String,
) -> Result<DocumentMeta> {
    let (marking, marking_basis) = resolve_marking(&given, evidence, scheme, unmarked)?;
    let id = match given.id() {
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
        .first(|m| m.title.as_ref())
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
    // Every edition either source says this one replaces.
    let mut supersedes: Vec<String> = Vec::new();
    for (_, m) in given.sources() {
        for part in m.supersedes.iter().flat_map(|s| s.split(';')) {
            let part = part.trim().to_string();
            if !part.is_empty() && !supersedes.contains(&part) {
                supersedes.push(part);
            }
        }
    }
    let mut extra = BTreeMap::new();
    for (_, m) in given.sources().collect::<Vec<_>>().into_iter().rev() {
        extra.extend(m.extra.clone());
    }
    // Korean statutes (front matter with `법령구분`, law type) are cited by their name:
    // `군인사법#제24조`.
    let publication = given.publication().or_else(|| {
        extra
            .keys()
            .any(|k| k == "법령구분" || k == "law_type")
            .then(|| title.clone())
    });
    Ok(DocumentMeta {
        id,
        title,
        publication,
        language: language_of(blocks).to_string(),
        edition: given.first(|m| m.edition.as_ref()),
        supersedes: Some(supersedes.join("; ")).filter(|s| !s.is_empty()),
        marking,
        marking_basis,
        extra,
        source_path: source_path.to_string(),
        format,
        content_hash,
    })
}

/// The language of a document's text, judged on its first 20,000 characters of text.
fn language_of(blocks: &[Block]) -> &'static str {
    let mut sample = String::new();
    for b in blocks {
        if sample.len() > 60_000 {
            break;
        }
        sample.push_str(&b.text);
        sample.push('\n');
    }
    let sample: String = sample.chars().take(20_000).collect();
    match doctrina_korean::detect(&sample) {
        doctrina_korean::Language::Unknown => "",
        other => other.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markings;

    fn scheme() -> MarkingScheme {
        MarkingScheme::default()
    }

    fn yaml(text: &str) -> SidecarMeta {
        parse_yaml(text, "test").unwrap()
    }

    #[test]
    fn front_matter_is_split_and_parsed() {
        let doc = "---\nid: atp-4-0-6\ntitle: Sustainment\npublication: ATP 4-0.6\nedition: 2024-01-17\nmarking: SECRET//NOFORN\ncaveats: [REL TO USA]\n---\n# Body\n";
        let (meta, body) = split_front_matter(doc).unwrap();
        let meta = meta.unwrap();
        assert_eq!(body, "# Body\n");
        assert_eq!(meta.publication.as_deref(), Some("ATP 4-0.6"));
        assert_eq!(meta.edition.as_deref(), Some("2024-01-17"));
        let marking = parse_marking(
            meta.marking.as_deref().unwrap(),
            &meta.caveats,
            &scheme(),
            "t",
        )
        .unwrap();
        assert_eq!(marking.level, "SECRET");
        assert_eq!(marking.caveats, vec!["NOFORN", "REL TO USA"]);
    }

    #[test]
    fn unknown_keys_are_kept_and_korean_keys_are_understood() {
        let meta =
            yaml("제목: 군인사법(예시)\n법령구분: 법률\n시행일자: 2024-07-01\n소관부처: 국방부\n");
        assert_eq!(meta.title.as_deref(), Some("군인사법(예시)"));
        assert_eq!(meta.edition.as_deref(), Some("2024-07-01"));
        assert_eq!(meta.extra.get("법령구분").map(String::as_str), Some("법률"));
        assert_eq!(
            meta.extra.get("소관부처").map(String::as_str),
            Some("국방부")
        );
        assert!(yaml("bogus_key: 1\nreviewers: [a, b]\n").extra.len() == 2);
    }

    #[test]
    fn misspelt_and_duplicate_keys_are_refused() {
        let err = parse_yaml("markng: SECRET\n", "t").unwrap_err().to_string();
        assert!(err.contains("did you mean 'marking'"), "{err}");
        assert!(parse_yaml("title: a\n제목: b\n", "t").is_err());
    }

    #[test]
    fn unknown_level_and_unclosed_front_matter_are_errors() {
        assert!(parse_marking("ULTRA", &[], &scheme(), "t").is_err());
        assert!(split_front_matter("---\ntitle: x\n# no end").is_err());
    }

    #[test]
    fn front_matter_without_marking_does_not_lower_the_sidecar() {
        // The upload form said SECRET//NOFORN; the file's own front matter says nothing
        // about its marking: the document stays SECRET//NOFORN.
        let given = GivenMeta {
            front: Some(yaml("title: Own title\n")),
            sidecar: Some(yaml("id: upload-1\nmarking: SECRET//NOFORN\n")),
        };
        let (m, basis) =
            resolve_marking(&given, &Evidence::default(), &scheme(), &Unmarked::Refuse).unwrap();
        assert_eq!(m.banner(), "SECRET//NOFORN");
        assert_eq!(basis, vec!["sidecar: SECRET//NOFORN"]);
    }

    #[test]
    fn disagreeing_markings_take_the_highest_and_say_so() {
        let given = GivenMeta {
            front: Some(yaml("marking: UNCLASSIFIED\n")),
            sidecar: Some(yaml("marking: SECRET\ncaveats: [NOFORN]\n")),
        };
        let (m, basis) =
            resolve_marking(&given, &Evidence::default(), &scheme(), &Unmarked::Refuse).unwrap();
        assert_eq!(m.banner(), "SECRET//NOFORN");
        assert!(basis[0].contains("differ"), "{basis:?}");
        assert!(basis.iter().any(|b| b == "front matter: UNCLASSIFIED"));
    }

    #[test]
    fn banners_in_the_text_raise_the_marking() {
        let evidence = markings::scan(
            "SECRET//NOFORN\n\n1-1. Text.\n\nSECRET//NOFORN\n",
            &scheme(),
        );
        let given = GivenMeta {
            front: Some(yaml("marking: UNCLASSIFIED\n")),
            sidecar: None,
        };
        let (m, _) = resolve_marking(&given, &evidence, &scheme(), &Unmarked::Refuse).unwrap();
        assert_eq!(m.banner(), "SECRET//NOFORN");
    }

    #[test]
    fn unmarked_is_refused_or_defaulted_never_silently_lowest() {
        let none = GivenMeta::default();
        let err =
            resolve_marking(&none, &Evidence::default(), &scheme(), &Unmarked::Refuse).unwrap_err();
        assert!(matches!(err, IngestError::Unmarked), "{err}");
        let policy = Unmarked::Default {
            marking: "CUI".into(),
            origin: "ingest.default_marking".into(),
        };
        let (m, basis) = resolve_marking(&none, &Evidence::default(), &scheme(), &policy).unwrap();
        assert_eq!(m.banner(), "CUI");
        assert_eq!(
            basis,
            vec!["ingest.default_marking for unmarked files: CUI"]
        );
        // Caveats alone do not state a level.
        let caveats_only = GivenMeta {
            front: None,
            sidecar: Some(yaml("caveats: [NOFORN]\n")),
        };
        assert!(
            resolve_marking(
                &caveats_only,
                &Evidence::default(),
                &scheme(),
                &Unmarked::Refuse
            )
            .is_err()
        );
    }

    #[test]
    fn fields_merge_front_matter_first_and_supersedes_unite() {
        let given = GivenMeta {
            front: Some(yaml(
                "title: Front\nsupersedes: SOP 1 (2020)\nmarking: CUI\n",
            )),
            sidecar: Some(yaml(
                "id: up-1\ntitle: Side\npublication: SOP 1\nsupersedes: old-id\n",
            )),
        };
        let meta = resolve(
            given,
            None,
            &[],
            &Evidence::default(),
            &scheme(),
            &Unmarked::Refuse,
            "/x/up-1.md",
            "hint",
            SourceFormat::Markdown,
            "h".into(),
        )
        .unwrap();
        assert_eq!(meta.id, "up-1");
        assert_eq!(meta.title, "Front");
        let given = GivenMeta {
            front: Some(yaml("id: someone-elses\nmarking: CUI\n")),
            sidecar: Some(yaml("id: up-2\n")),
        };
        let named = resolve(
            given,
            None,
            &[],
            &Evidence::default(),
            &scheme(),
            &Unmarked::Refuse,
            "/x/up-2.md",
            "hint",
            SourceFormat::Markdown,
            "h".into(),
        )
        .unwrap();
        assert_eq!(named.id, "up-2", "the sidecar names the document");
        assert_eq!(meta.publication.as_deref(), Some("SOP 1"));
        assert_eq!(meta.supersedes.as_deref(), Some("SOP 1 (2020); old-id"));
    }
}

//! A plan as one document: the accepted text of each section with its citations renumbered
//! into one plan-wide reference list (publication, paragraph, page), each section's marking
//! as its portion mark and the highest of them as the banner. Sections nobody accepted are exported as
//! an explicit placeholder, never as if they were final.

use std::collections::HashMap;

use doctrina_draft::context::Source;
use doctrina_types::{Marking, MarkingScheme};
use serde::Serialize;

use crate::store::{Plan, Section, Version};

/// One section as given to the exporter: its accepted version (if any) and the sources
/// that version's citations number.
#[derive(Debug)]
pub struct SectionInput<'a> {
    pub section: &'a Section,
    pub accepted: Option<&'a Version>,
    pub sources: &'a [Source],
    /// The accepted version's marking: every source it was drafted from, its own marks,
    /// raised or overridden as recorded (`Workspace::section_marking`).
    pub marking: Marking,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// The number used in the exported text.
    pub n: usize,
    pub passage_id: String,
    pub doc_id: String,
    pub title: String,
    pub publication: Option<String>,
    pub paragraphs: Vec<String>,
    pub pages: Vec<u32>,
    pub marking: String,
    /// `ATP 4-0.6, para 2-8, p. 3`
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedSection {
    pub title: String,
    pub status: String,
    /// The accepted version number, if any.
    pub version: Option<u32>,
    pub accepted_by: Option<String>,
    /// Markdown with citations renumbered into [`Export::references`] (`None` when the
    /// section has no accepted text).
    pub text: Option<String>,
    /// The section's marking (portion mark): the highest of every source its accepted
    /// version was drafted from and of its text's own marks, as raised or overridden.
    pub marking: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub plan_id: String,
    pub title: String,
    pub kind: String,
    /// The highest marking of every exported section.
    pub banner: String,
    pub sections: Vec<ExportedSection>,
    pub references: Vec<Reference>,
}

/// Builds the export. `accepted_by` names who accepted each section's version.
pub fn build(
    plan: &Plan,
    inputs: &[SectionInput<'_>],
    accepted_by: &dyn Fn(&Section) -> Option<String>,
    scheme: &MarkingScheme,
) -> Export {
    let mut references: Vec<Reference> = Vec::new();
    let mut by_passage: HashMap<String, usize> = HashMap::new();
    let mut all_markings: Vec<Marking> = Vec::new();
    let mut sections = Vec::new();
    for input in inputs {
        let Some(version) = input.accepted else {
            sections.push(ExportedSection {
                title: input.section.title.clone(),
                status: input.section.status.as_str().to_string(),
                version: None,
                accepted_by: None,
                text: None,
                marking: scheme.highest(&[]).banner(),
            });
            continue;
        };
        // A sentence citation (`[2.3]`) exports as its passage's reference: the reference
        // list names passages.
        let text = doctrina_draft::cite::replace_marks(&version.text, |refs| {
            let mut out = String::new();
            for n in refs.iter().map(|r| r.n) {
                let Some(source) = input.sources.iter().find(|s| s.n == n) else {
                    // Not a valid citation: exported visibly unresolved, never as a reference.
                    out.push_str(&format!("[{n}: unresolved]"));
                    continue;
                };
                let hit = &source.hit;
                let global = *by_passage.entry(hit.passage_id.clone()).or_insert_with(|| {
                    references.push(Reference {
                        n: references.len() + 1,
                        passage_id: hit.passage_id.clone(),
                        doc_id: hit.doc_id.clone(),
                        title: hit.title.clone(),
                        publication: hit.publication.clone(),
                        paragraphs: hit.paragraphs.clone(),
                        pages: hit.pages.clone(),
                        marking: hit.marking.clone(),
                        label: source.label(),
                    });
                    references.len()
                });
                out.push_str(&format!("[{global}]"));
            }
            out
        });
        all_markings.push(input.marking.clone());
        sections.push(ExportedSection {
            title: input.section.title.clone(),
            status: input.section.status.as_str().to_string(),
            version: Some(version.n),
            accepted_by: accepted_by(input.section),
            text: Some(text),
            marking: input.marking.banner(),
        });
    }
    Export {
        plan_id: plan.id.clone(),
        title: plan.title.clone(),
        kind: plan.kind.title().to_string(),
        banner: scheme.highest(&all_markings).banner(),
        sections,
        references,
    }
}

/// The export as Markdown: banner top and bottom, sections with portion marks, references.
pub fn to_markdown(export: &Export) -> String {
    to_markdown_in(export, &ExportLabels::english())
}

/// The words an export adds around the plan's own text, in the reader's language. The
/// banner and portion marks are markings, never translated.
pub struct ExportLabels {
    /// The plan's kind (`Operation order`) in the reader's language.
    pub kind: String,
    /// `Accepted: version {v} by {by}.`
    pub accepted: String,
    /// `NOT ACCEPTED: this section is {status} and is not part of the approved plan.`
    pub not_accepted: String,
    pub references: String,
    /// A section status (`drafted`) in the reader's language.
    pub status: Box<dyn Fn(&str) -> String + Send + Sync>,
}

impl ExportLabels {
    pub fn english() -> Self {
        Self {
            kind: String::new(),
            accepted: "Accepted: version {v} by {by}.".to_string(),
            not_accepted:
                "NOT ACCEPTED: this section is {status} and is not part of the approved plan."
                    .to_string(),
            references: "References".to_string(),
            status: Box::new(str::to_string),
        }
    }

    pub fn accepted_line(&self, version: u32, by: &str) -> String {
        self.accepted
            .replace("{v}", &version.to_string())
            .replace("{by}", by)
    }

    pub fn not_accepted_line(&self, status: &str) -> String {
        self.not_accepted
            .replace("{status}", &(self.status)(status))
    }
}

/// [`to_markdown`] with the labels in the reader's language.
pub fn to_markdown_in(export: &Export, labels: &ExportLabels) -> String {
    let kind = if labels.kind.is_empty() {
        &export.kind
    } else {
        &labels.kind
    };
    let mut out = format!("**{}**\n\n# {}\n\n", export.banner, export.title);
    out.push_str(&format!("_{kind}_\n\n"));
    for section in &export.sections {
        out.push_str(&format!("## {}\n\n", section.title));
        match &section.text {
            Some(text) => {
                out.push_str(&format!("({})\n\n", section.marking));
                out.push_str(text.trim());
                out.push_str("\n\n");
                if let (Some(v), Some(by)) = (section.version, &section.accepted_by) {
                    out.push_str(&format!("_{}_\n\n", labels.accepted_line(v, by)));
                }
            }
            None => out.push_str(&format!(
                "> {}\n\n",
                labels.not_accepted_line(&section.status)
            )),
        }
    }
    if !export.references.is_empty() {
        out.push_str(&format!("## {}\n\n", labels.references));
        for r in &export.references {
            out.push_str(&format!(
                "{}. {} — {} ({})\n",
                r.n, r.label, r.title, r.marking
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!("**{}**\n", export.banner));
    out
}

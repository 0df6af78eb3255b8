//! PDF text layer via pdf-extract (on lopdf), one string per page, then the same
//! furniture-stripping and paragraph rebuilding as plain text with real page numbers.
//!
//! Before extracting, the document's structure is checked with bounded, iterative walks:
//! a page tree that loops back on itself and form XObjects that draw themselves (directly
//! or through others) are reported as what they are. pdf-extract recurses into both and
//! would overflow the stack. Whatever else makes it fail is contained twice: a panic is
//! caught here and reported as a corrupt PDF, and the whole parse runs in a child process
//! with limits ([`crate::sandbox`]), so even a crash fails only this file.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{Dictionary, Document, Object, ObjectId};

use crate::blocks::Block;
use crate::error::{IngestError, Result};
use crate::text;

/// Most page-tree nodes and form XObjects the structure check visits.
const MAX_NODES: usize = 200_000;

pub struct PdfExtract {
    pub blocks: Vec<Block>,
    /// Each page's raw text (furniture included), for finding markings.
    pub pages: Vec<String>,
}

pub fn extract(bytes: &[u8], publication: Option<&str>) -> Result<PdfExtract> {
    if !bytes.starts_with(b"%PDF") {
        let head = bytes.iter().take(1024);
        if !head.clone().any(|&b| b == b'%') || !bytes.windows(5).take(1024).any(|w| w == b"%PDF-")
        {
            return Err(IngestError::CorruptPdf(
                "no %PDF header: this is not a PDF file".to_string(),
            ));
        }
    }
    let pages = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<String>> {
        let doc = Document::load_mem(bytes).map_err(|e| IngestError::CorruptPdf(e.to_string()))?;
        if doc.is_encrypted() {
            // PDFs "encrypted" with an empty user password are readable; try that first.
            return pdf_extract::extract_text_from_mem_by_pages(bytes).map_err(|e| {
                tracing::debug!(error = %e, "encrypted pdf could not be opened");
                IngestError::EncryptedPdf
            });
        }
        check_structure(&doc)?;
        pdf_extract::extract_text_from_mem_by_pages(bytes)
            .map_err(|e| IngestError::CorruptPdf(e.to_string()))
    }))
    .map_err(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the parser failed");
        IngestError::CorruptPdf(format!("unreadable content ({why})"))
    })??;
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    let blocks = text::extract_pages(&refs, true, publication, text::Layout::Pdf);
    Ok(PdfExtract { blocks, pages })
}

fn corrupt(message: String) -> IngestError {
    IngestError::CorruptPdf(message)
}

/// The object a value refers to, following at most a few references.
fn resolve<'a>(doc: &'a Document, object: &'a Object) -> Option<(Option<ObjectId>, &'a Object)> {
    doc.dereference(object).ok()
}

fn dict_of<'a>(
    doc: &'a Document,
    object: &'a Object,
) -> Option<(Option<ObjectId>, &'a Dictionary)> {
    let (id, object) = resolve(doc, object)?;
    match object {
        Object::Dictionary(d) => Some((id, d)),
        Object::Stream(s) => Some((id, &s.dict)),
        _ => None,
    }
}

/// Checks the page tree and form XObjects for loops, without recursion.
pub fn check_structure(doc: &Document) -> Result<()> {
    let catalog = doc
        .catalog()
        .map_err(|e| corrupt(format!("no document catalog: {e}")))?;
    let pages_root = catalog
        .get(b"Pages")
        .map_err(|_| corrupt("the catalog has no page tree".to_string()))?;
    let mut pages: Vec<ObjectId> = Vec::new();
    check_page_tree(doc, pages_root, &mut pages)?;
    check_forms(doc, &pages)
}

/// Walks the page tree depth first; a node met twice means the tree loops (or shares a
/// subtree, which no valid PDF does).
fn check_page_tree(doc: &Document, root: &Object, pages: &mut Vec<ObjectId>) -> Result<()> {
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut stack: Vec<&Object> = vec![root];
    while let Some(node) = stack.pop() {
        let Some((id, dict)) = dict_of(doc, node) else {
            continue; // a dangling kid: pdf-extract skips it too
        };
        if let Some(id) = id {
            if !seen.insert(id) {
                return Err(corrupt(format!(
                    "the page tree loops back on itself (object {} {} is reached twice)",
                    id.0, id.1
                )));
            }
            if seen.len() > MAX_NODES {
                return Err(corrupt(format!(
                    "the page tree has more than {MAX_NODES} nodes"
                )));
            }
        }
        match dict.get(b"Kids").ok().and_then(|k| resolve(doc, k)) {
            Some((_, Object::Array(kids))) => {
                // A node with kids is an inner node (whatever its /Type says). Reversed, so
                // pages come off the stack in document order.
                stack.extend(kids.iter().rev());
            }
            _ => {
                if let Some(id) = id {
                    pages.push(id);
                }
            }
        }
    }
    Ok(())
}

/// The form XObjects a resource dictionary names, by name.
fn forms_in(doc: &Document, resources: Option<&Object>) -> HashMap<Vec<u8>, ObjectId> {
    let mut out = HashMap::new();
    let Some((_, resources)) = resources.and_then(|r| dict_of(doc, r)) else {
        return out;
    };
    let Some((_, xobjects)) = resources.get(b"XObject").ok().and_then(|x| dict_of(doc, x)) else {
        return out;
    };
    for (name, value) in xobjects.iter() {
        let Ok(id) = value.as_reference() else {
            continue;
        };
        let is_form = doc
            .get_object(id)
            .ok()
            .and_then(|o| o.as_stream().ok())
            .and_then(|s| s.dict.get(b"Subtype").ok())
            .and_then(|s| s.as_name().ok())
            .is_some_and(|n| n == b"Form");
        if is_form {
            out.insert(name.clone(), id);
        }
    }
    out
}

/// The XObject names a content stream draws (`/Name Do`).
fn drawn(content: &[u8]) -> Vec<Vec<u8>> {
    let Ok(content) = pdf_extract::content::Content::decode(content) else {
        return Vec::new(); // pdf-extract reports undecodable content itself
    };
    content
        .operations
        .iter()
        .filter(|op| op.operator == "Do")
        .filter_map(|op| op.operands.first()?.as_name().ok().map(<[u8]>::to_vec))
        .collect()
}

/// Builds the graph of which form draws which (a form without its own resources uses
/// those of the page it is drawn on) and reports the first cycle with its names.
fn check_forms(doc: &Document, pages: &[ObjectId]) -> Result<()> {
    // Edges: (form) -> forms it draws; names kept for the message.
    let mut edges: HashMap<ObjectId, Vec<(ObjectId, Vec<u8>)>> = HashMap::new();
    let mut names: HashMap<ObjectId, Vec<u8>> = HashMap::new();
    // Forms still to read, with the resources they inherit.
    let mut queue: Vec<(ObjectId, HashMap<Vec<u8>, ObjectId>)> = Vec::new();
    for &page in pages {
        let Ok(page_dict) = doc.get_dictionary(page) else {
            continue;
        };
        let page_forms = forms_in(doc, page_dict.get(b"Resources").ok());
        for (name, id) in &page_forms {
            names.entry(*id).or_insert_with(|| name.clone());
            queue.push((*id, page_forms.clone()));
        }
    }
    let mut read: HashSet<ObjectId> = HashSet::new();
    while let Some((form, inherited)) = queue.pop() {
        if !read.insert(form) {
            continue;
        }
        if read.len() > MAX_NODES {
            return Err(corrupt(format!("more than {MAX_NODES} form XObjects")));
        }
        let Ok(stream) = doc.get_object(form).and_then(|o| o.as_stream()) else {
            continue;
        };
        let own = forms_in(doc, stream.dict.get(b"Resources").ok());
        let scope = if own.is_empty() { inherited } else { own };
        let content = stream
            .decompressed_content()
            .unwrap_or_else(|_| stream.content.clone());
        for name in drawn(&content) {
            if let Some(&target) = scope.get(&name) {
                names.entry(target).or_insert_with(|| name.clone());
                edges.entry(form).or_default().push((target, name));
                queue.push((target, scope.clone()));
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        let label = |id: &ObjectId| {
            format!(
                "/{} (object {})",
                String::from_utf8_lossy(names.get(id).map_or(b"?".as_slice(), Vec::as_slice)),
                id.0
            )
        };
        let message = if cycle.len() == 1 {
            format!("form XObject {} draws itself", label(&cycle[0]))
        } else {
            let path: Vec<String> = cycle.iter().chain(cycle.first()).map(label).collect();
            format!(
                "form XObjects draw each other in a loop: {}",
                path.join(" -> ")
            )
        };
        return Err(corrupt(format!(
            "{message}; a viewer or parser following it never ends"
        )));
    }
    Ok(())
}

/// A cycle in the directed graph, by iterative depth-first search with colours.
fn find_cycle(edges: &HashMap<ObjectId, Vec<(ObjectId, Vec<u8>)>>) -> Option<Vec<ObjectId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        Grey,
        Black,
    }
    let mut colour: HashMap<ObjectId, Colour> = HashMap::new();
    let mut starts: Vec<&ObjectId> = edges.keys().collect();
    starts.sort();
    for &start in starts {
        if colour.contains_key(&start) {
            continue;
        }
        // (node, index of the next edge to follow); `path` mirrors the grey nodes.
        let mut stack: Vec<(ObjectId, usize)> = vec![(start, 0)];
        colour.insert(start, Colour::Grey);
        while let Some((node, next)) = stack.last_mut() {
            let out = edges.get(node).map_or(&[][..], Vec::as_slice);
            if *next >= out.len() {
                colour.insert(*node, Colour::Black);
                stack.pop();
                continue;
            }
            let target = out[*next].0;
            *next += 1;
            match colour.get(&target) {
                Some(Colour::Grey) => {
                    let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    return Some(stack[from..].iter().map(|(n, _)| *n).collect());
                }
                Some(Colour::Black) => {}
                None => {
                    colour.insert(target, Colour::Grey);
                    stack.push((target, 0));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_clear_error() {
        let err = extract(b"this is not a pdf at all", None).err().unwrap();
        assert!(err.to_string().contains("not a PDF"), "{err}");
        let err = extract(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage", None)
            .err()
            .unwrap();
        assert!(matches!(err, IngestError::CorruptPdf(_)), "{err}");
    }

    fn hostile(name: &str) -> Vec<u8> {
        let path =
            std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test"))
                .join("../../tests/corpus/hostile")
                .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_form_that_draws_itself_is_named() {
        let err = extract(&hostile("xobject-loop.pdf"), None).err().unwrap();
        let message = err.to_string();
        assert!(message.contains("form XObject /X1"), "{message}");
        assert!(message.contains("draws itself"), "{message}");
    }

    #[test]
    fn a_page_tree_loop_is_named() {
        let err = extract(&hostile("page-loop.pdf"), None).err().unwrap();
        assert!(err.to_string().contains("page tree loops"), "{err}");
    }

    #[test]
    fn cycles_through_several_forms_are_found() {
        let id = |n: u32| (n, 0u16);
        let mut edges: HashMap<ObjectId, Vec<(ObjectId, Vec<u8>)>> = HashMap::new();
        edges.insert(id(1), vec![(id(2), b"B".to_vec())]);
        edges.insert(id(2), vec![(id(3), b"C".to_vec())]);
        edges.insert(id(3), vec![(id(1), b"A".to_vec())]);
        let cycle = find_cycle(&edges).unwrap();
        assert_eq!(cycle.len(), 3);
        edges.insert(id(3), vec![]);
        assert!(find_cycle(&edges).is_none());
    }
}

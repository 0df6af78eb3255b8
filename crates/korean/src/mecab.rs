//! MeCab's C API, loaded at run time with dlopen (as ONNX Runtime is): the library from PyPI
//! `python-mecab-ko` and the compiled mecab-ko-dic dictionary, both installed by setup.
//!
//! Threading follows MeCab's own rules: one model for the process (read-only once loaded),
//! and a tagger with its own lattice per concurrent caller. Sharing one tagger between two
//! threads hangs; here each call takes a worker from a pool (making one if none is free).
//!
//! Two hazards are bounded before text reaches MeCab: the lattice costs about 475 bytes per
//! input byte, and parse time grows with the square of a long run of one character class, so
//! input goes in pieces of at most [`MAX_PIECE_BYTES`], cut at whitespace.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_float, c_int, c_long, c_uchar, c_uint, c_ushort, c_void};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::{KoreanError, Result};

/// Longest piece of text given to one parse.
pub const MAX_PIECE_BYTES: usize = 4096;

/// `mecab_node_t` (mecab.h, 0.996): the fields are read, never written.
#[repr(C)]
struct Node {
    prev: *mut Node,
    next: *mut Node,
    enext: *mut Node,
    bnext: *mut Node,
    rpath: *mut c_void,
    lpath: *mut c_void,
    /// Points into the input; not NUL-terminated (`length` bytes).
    surface: *const c_char,
    /// NUL-terminated CSV.
    feature: *const c_char,
    id: c_uint,
    length: c_ushort,
    rlength: c_ushort,
    rc_attr: c_ushort,
    lc_attr: c_ushort,
    posid: c_ushort,
    char_type: c_uchar,
    stat: c_uchar,
    isbest: c_uchar,
    alpha: c_float,
    beta: c_float,
    prob: c_float,
    wcost: i16,
    cost: c_long,
}

const BOS_NODE: u8 = 2;
const EOS_NODE: u8 = 3;

type Ptr = *mut c_void;

/// The functions used, resolved once.
struct Api {
    _lib: libloading::Library,
    model_new: unsafe extern "C" fn(c_int, *mut *mut c_char) -> Ptr,
    model_destroy: unsafe extern "C" fn(Ptr),
    model_new_tagger: unsafe extern "C" fn(Ptr) -> Ptr,
    model_new_lattice: unsafe extern "C" fn(Ptr) -> Ptr,
    destroy: unsafe extern "C" fn(Ptr),
    lattice_destroy: unsafe extern "C" fn(Ptr),
    lattice_set_sentence2: unsafe extern "C" fn(Ptr, *const c_char, usize),
    lattice_get_bos_node: unsafe extern "C" fn(Ptr) -> *const Node,
    lattice_strerror: unsafe extern "C" fn(Ptr) -> *const c_char,
    parse_lattice: unsafe extern "C" fn(Ptr, Ptr) -> c_int,
    strerror: unsafe extern "C" fn(Ptr) -> *const c_char,
}

impl Api {
    fn load(path: &Path) -> Result<Self> {
        let fail = |e: libloading::Error| KoreanError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        // SAFETY: the library is MeCab 0.996 (pinned by sha256 in setup); its initialisers
        // only set up C++ statics. Each symbol is read with the signature mecab.h declares.
        unsafe {
            let lib = libloading::Library::new(path).map_err(fail)?;
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get($name).map_err(fail)?
                };
            }
            Ok(Self {
                model_new: sym!(b"mecab_model_new\0"),
                model_destroy: sym!(b"mecab_model_destroy\0"),
                model_new_tagger: sym!(b"mecab_model_new_tagger\0"),
                model_new_lattice: sym!(b"mecab_model_new_lattice\0"),
                destroy: sym!(b"mecab_destroy\0"),
                lattice_destroy: sym!(b"mecab_lattice_destroy\0"),
                lattice_set_sentence2: sym!(b"mecab_lattice_set_sentence2\0"),
                lattice_get_bos_node: sym!(b"mecab_lattice_get_bos_node\0"),
                lattice_strerror: sym!(b"mecab_lattice_strerror\0"),
                parse_lattice: sym!(b"mecab_parse_lattice\0"),
                strerror: sym!(b"mecab_strerror\0"),
                _lib: lib,
            })
        }
    }
}

/// The loaded dictionary model: shared by every thread.
struct Model {
    api: Api,
    ptr: Ptr,
}

// SAFETY: MeCab's model is immutable once built; it hands out taggers and lattices and is
// only read while parsing (MeCab documents one model shared across threads).
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `mecab_model_new` and every worker holding it is gone
        // (workers hold an `Arc<Model>`).
        unsafe { (self.api.model_destroy)(self.ptr) }
    }
}

/// A tagger and its lattice: used by one caller at a time.
struct Worker {
    model: Arc<Model>,
    tagger: Ptr,
    lattice: Ptr,
}

// SAFETY: a worker is used by one thread at a time (taken from the pool's mutex).
unsafe impl Send for Worker {}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: both were made from `model`, which outlives them (the Arc).
        unsafe {
            (self.model.api.lattice_destroy)(self.lattice);
            (self.model.api.destroy)(self.tagger);
        }
    }
}

/// One morpheme: its byte range in the text given and MeCab's feature fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Morpheme {
    pub start: usize,
    pub end: usize,
    /// `NNG,*,T,지원,*,*,*,*`: part of speech, semantic class, final consonant, reading,
    /// type (`Inflect`, `Compound`, `Preanalysis`), first and last part of speech,
    /// expression (`지속/NNG/*+지원/NNG/*`).
    pub feature: String,
}

impl Morpheme {
    fn field(&self, i: usize) -> &str {
        self.feature.split(',').nth(i).unwrap_or("*")
    }

    /// The part of speech (the first of a combined tag: `VV` of `VV+EP`).
    pub fn tag(&self) -> &str {
        self.field(0).split('+').next().unwrap_or("*")
    }

    pub fn kind(&self) -> &str {
        self.field(4)
    }

    /// The expression's parts as `(form, tag)`: `[("지속", "NNG"), ("지원", "NNG")]`.
    pub fn parts(&self) -> Vec<(&str, &str)> {
        let expression = self.field(7);
        if expression == "*" {
            return Vec::new();
        }
        expression
            .split('+')
            .filter_map(|p| {
                let mut it = p.split('/');
                Some((it.next()?, it.next()?))
            })
            .collect()
    }
}

/// MeCab with mecab-ko-dic.
pub struct Mecab {
    model: Arc<Model>,
    pool: Mutex<Vec<Worker>>,
}

impl std::fmt::Debug for Mecab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mecab").finish_non_exhaustive()
    }
}

impl Mecab {
    /// Loads the library at `lib` and the compiled dictionary in `dic`.
    pub fn load(lib: &Path, dic: &Path) -> Result<Self> {
        if !lib.is_file() {
            return Err(KoreanError::Missing {
                what: "the MeCab library",
                path: lib.to_path_buf(),
            });
        }
        if !dic.join("sys.dic").is_file() {
            return Err(KoreanError::Missing {
                what: "the mecab-ko-dic dictionary",
                path: dic.to_path_buf(),
            });
        }
        let api = Api::load(lib)?;
        let dic_text = dic.to_string_lossy().into_owned();
        // argv form: a dictionary path with spaces stays one argument. `-r /dev/null`: no
        // mecabrc is read (MeCab would look in the home directory and /usr/local/etc).
        let args: Vec<CString> = ["mecab", "-r", "/dev/null", "-d", dic_text.as_str()]
            .iter()
            .map(|a| CString::new(*a))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| KoreanError::Load {
                path: dic.to_path_buf(),
                message: "the path contains a NUL byte".into(),
            })?;
        let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        // SAFETY: argv points at NUL-terminated strings that outlive the call; MeCab copies
        // what it keeps.
        let ptr = unsafe { (api.model_new)(argv.len() as c_int, argv.as_mut_ptr()) };
        if ptr.is_null() {
            // SAFETY: strerror(NULL) returns MeCab's last global error as a C string.
            let message = unsafe { CStr::from_ptr((api.strerror)(std::ptr::null_mut())) }
                .to_string_lossy()
                .into_owned();
            return Err(KoreanError::Load {
                path: dic.to_path_buf(),
                message,
            });
        }
        Ok(Self {
            model: Arc::new(Model { api, ptr }),
            pool: Mutex::new(Vec::new()),
        })
    }

    fn worker(&self) -> Result<Worker> {
        if let Some(w) = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(w);
        }
        let api = &self.model.api;
        // SAFETY: the model is valid for the life of `self.model`.
        let (tagger, lattice) = unsafe {
            (
                (api.model_new_tagger)(self.model.ptr),
                (api.model_new_lattice)(self.model.ptr),
            )
        };
        if tagger.is_null() || lattice.is_null() {
            return Err(KoreanError::Analysis(
                "MeCab could not make a tagger".into(),
            ));
        }
        Ok(Worker {
            model: self.model.clone(),
            tagger,
            lattice,
        })
    }

    /// The morphemes of `text` (byte offsets into it), pieces of at most
    /// [`MAX_PIECE_BYTES`] parsed one at a time.
    pub fn analyze(&self, text: &str) -> Result<Vec<Morpheme>> {
        let mut worker = self.worker()?;
        let mut out = Vec::new();
        for (offset, piece) in pieces(text) {
            parse(&mut worker, piece, offset, &mut out)?;
        }
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(worker);
        Ok(out)
    }
}

fn parse(worker: &mut Worker, piece: &str, offset: usize, out: &mut Vec<Morpheme>) -> Result<()> {
    let api = &worker.model.api;
    // SAFETY: the lattice reads `piece` (ptr, len) during the parse below, and the nodes'
    // surfaces point into it; both are used before `piece` goes out of scope.
    unsafe {
        (api.lattice_set_sentence2)(worker.lattice, piece.as_ptr() as *const c_char, piece.len());
        if (api.parse_lattice)(worker.tagger, worker.lattice) == 0 {
            let message = CStr::from_ptr((api.lattice_strerror)(worker.lattice))
                .to_string_lossy()
                .into_owned();
            return Err(KoreanError::Analysis(message));
        }
        let mut node = (api.lattice_get_bos_node)(worker.lattice);
        let base = piece.as_ptr() as usize;
        while !node.is_null() {
            let n = &*node;
            if n.stat != BOS_NODE && n.stat != EOS_NODE && !n.surface.is_null() {
                let start = (n.surface as usize).saturating_sub(base);
                let end = start + n.length as usize;
                if end <= piece.len()
                    && piece.is_char_boundary(start)
                    && piece.is_char_boundary(end)
                {
                    out.push(Morpheme {
                        start: offset + start,
                        end: offset + end,
                        feature: CStr::from_ptr(n.feature).to_string_lossy().into_owned(),
                    });
                }
            }
            node = n.next;
        }
    }
    Ok(())
}

/// `text` in pieces of at most [`MAX_PIECE_BYTES`], cut at whitespace where there is any
/// (else at a character boundary), with their byte offsets.
fn pieces(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + MAX_PIECE_BYTES).min(text.len());
        if end < text.len() {
            let window = &text[start..floor_boundary(text, end)];
            end = match window.rfind(char::is_whitespace) {
                Some(i) if i > 0 => start + i,
                _ => floor_boundary(text, end),
            };
            if end <= start {
                end = ceil_boundary(text, start + 1);
            }
        }
        out.push((start, &text[start..end]));
        start = end;
    }
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_and_cut_at_whitespace() {
        let text = "가나다 ".repeat(2000);
        let parts = pieces(&text);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|(_, p)| p.len() <= MAX_PIECE_BYTES));
        let joined: String = parts.iter().map(|(_, p)| *p).collect();
        assert_eq!(joined, text);
        for (offset, p) in &parts {
            assert_eq!(&text[*offset..*offset + p.len()], *p);
        }
        let dense = "가".repeat(3000);
        let joined: String = pieces(&dense).iter().map(|(_, p)| *p).collect();
        assert_eq!(joined, dense);
    }

    #[test]
    fn feature_fields_are_read() {
        let m = Morpheme {
            start: 0,
            end: 12,
            feature: "NNG,*,T,지속지원,Compound,*,*,지속/NNG/*+지원/NNG/*".into(),
        };
        assert_eq!(m.tag(), "NNG");
        assert_eq!(m.kind(), "Compound");
        assert_eq!(m.parts(), vec![("지속", "NNG"), ("지원", "NNG")]);
        let v = Morpheme {
            start: 0,
            end: 6,
            feature: "VV+EP,*,T,따랐,Inflect,VV,EP,따르/VV/*+았/EP/*".into(),
        };
        assert_eq!(v.tag(), "VV");
        assert_eq!(v.parts()[0], ("따르", "VV"));
    }
}

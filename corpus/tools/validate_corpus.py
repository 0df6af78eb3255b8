#!/usr/bin/env python3
"""Consistency checker for the doctrina sample corpus (SAMPLE DATA, fictional).

Layout: the documents are read from corpus/documents/ (every .md, .txt, .html,
.pdf and .docx file there); the evaluation data from corpus/eval/.

Checks:
  * every document in corpus/documents/ has metadata (YAML front matter for
    .md/.txt, a <file>.meta.yaml sidecar for .html/.pdf/.docx) with the keys
    id, title, publication, edition, marking, caveats; ids are unique;
    markings are from the allowed set; `supersedes` names an existing edition;
    a document file left directly in corpus/ gives a warning;
  * doctrine-style numbered paragraphs ("1-4. text", "A-2. text") are
    numbered consecutively per chapter/appendix, and each is 40-150 words
    (bullets belonging to the paragraph included) -- warnings only;
  * eval/questions.jsonl: every gold item "PUB#PARA" exists in the current
    (non-superseded) edition of an UNCLASSIFIED document;
  * eval/support_pairs.jsonl: every passage equals the corpus text of the
    referenced paragraph (paragraph text without its number and without any
    bullet list that follows it; whitespace normalised to single spaces).

Usage:
    python3 corpus/tools/validate_corpus.py            # report, exit 1 on errors
    python3 corpus/tools/validate_corpus.py --dump REF # print the text of one paragraph, e.g. "ATP 4-0.6#2-8"

Dependencies: PyYAML is required. python-docx and pypdf are optional (without
them the DOCX is read from the generator's source data and the PDF text layer
is not cross-checked). Example:
    /tmp/corpusvenv/bin/pip install pyyaml python-docx pypdf
    /tmp/corpusvenv/bin/python corpus/tools/validate_corpus.py
"""

from __future__ import annotations

import html.parser
import json
import os
import re
import sys
import unicodedata

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.dirname(HERE)
DOCUMENTS = os.path.join(CORPUS, "documents")  # the files doctrina indexes
EVAL = os.path.join(CORPUS, "eval")
sys.path.insert(0, HERE)

PARA_RE = re.compile(r"^(?P<num>(?:[A-Z]|\d{1,2})-\d{1,2})\.\s+(?P<text>\S.*)$")
KEYS = ("id", "title", "publication", "edition", "marking", "caveats")
MARKINGS = {"UNCLASSIFIED", "CUI", "CONFIDENTIAL", "SECRET", "TOP SECRET"}
DOC_EXT = (".md", ".txt", ".html", ".pdf", ".docx")


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s)).strip()


class Para:
    def __init__(self, num: str, text: str):
        self.num = num
        self.text = norm(text)
        self.bullets: list[str] = []

    def words(self) -> int:
        return len(self.text.split()) + sum(len(b.split()) for b in self.bullets)


# --------------------------------------------------------------------------- metadata

def split_front_matter(raw: str):
    if not raw.startswith("---\n"):
        return None, raw
    end = raw.index("\n---\n", 4)
    return yaml.safe_load(raw[4:end]), raw[end + 5:]


# --------------------------------------------------------------------------- extractors

def paras_markdown(body: str) -> list[Para]:
    out: list[Para] = []
    in_code = False
    for line in body.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        m = PARA_RE.match(line)
        if m:
            out.append(Para(m["num"], m["text"]))
        elif line.startswith("- ") and out:
            out[-1].bullets.append(line[2:])
        elif line.startswith("#") or line.startswith("NOTE:") or line.startswith("Table ") or line.startswith("Figure "):
            if out:
                out.append(None)  # barrier: bullets after a heading do not belong to the last paragraph
    return [p for p in out if p is not None]


def clean_pdf_text(body: str, pub: str) -> str:
    """Undo the artefacts of PDF-to-text extraction (running heads, folios, form feeds, hyphenation)."""
    lines = []
    for line in body.replace("\f", "\n").splitlines():
        s = line.strip()
        if s == pub or re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}", s) or re.fullmatch(r"[A-Z0-9]{1,2}-\d{1,3}", s):
            continue
        if re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4} " + re.escape(pub) + r" [A-Z0-9]{1,2}-\d{1,3}", s):
            continue
        if re.fullmatch(r"Chapter \d+", s):
            continue
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", text)        # re-join hyphenated wraps
    text = re.sub(r"\n(?:[ \t]*\n)+(?=[a-z(])", "\n", text)     # paragraph split by a page break
    return unicodedata.normalize("NFKC", text)


def paras_text(body: str) -> list[Para]:
    out: list[Para] = []
    for block in re.split(r"\n\s*\n", body):
        lines = block.strip("\n").splitlines()
        if not lines:
            continue
        m = PARA_RE.match(lines[0])
        if not m:
            continue
        text, bullets = [m["text"]], []
        for ln in lines[1:]:
            s = ln.strip()
            if s.startswith("•"):
                bullets.append(s[1:].strip())
            elif bullets:
                bullets[-1] += " " + s
            else:
                text.append(s)
        p = Para(m["num"], " ".join(text))
        p.bullets = bullets
        out.append(p)
    return out


class _HTMLParas(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras: list[Para] = []
        self.buf = None
        self.li = None
        self.skip = 0
        self.last_was_para = False

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "p":
            self.buf = []
        elif tag == "li":
            self.li = []
        elif tag in ("h1", "h2", "h3", "table", "figure"):
            self.last_was_para = False

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag == "p" and self.buf is not None:
            m = PARA_RE.match(norm("".join(self.buf)))
            if m:
                self.paras.append(Para(m["num"], m["text"]))
                self.last_was_para = True
            else:
                self.last_was_para = False
            self.buf = None
        elif tag == "li" and self.li is not None:
            if self.last_was_para and self.paras:
                self.paras[-1].bullets.append(norm("".join(self.li)))
            self.li = None

    def handle_data(self, data):
        if self.skip:
            return
        if self.buf is not None:
            self.buf.append(data)
        if self.li is not None:
            self.li.append(data)


def paras_html(raw: str) -> list[Para]:
    p = _HTMLParas()
    p.feed(raw)
    return p.paras


def paras_blocks(blocks) -> list[Para]:
    out: list[Para] = []
    for b in blocks:
        if b[0] == "para":
            out.append(Para(b[1], b[2]))
        elif b[0] == "bullets" and out:
            out[-1].bullets.extend(b[1])
    return out


def paras_docx(path: str, fallback_blocks) -> list[Para]:
    try:
        import docx  # type: ignore
    except ImportError:
        return paras_blocks(fallback_blocks)
    out: list[Para] = []
    for par in docx.Document(path).paragraphs:
        m = PARA_RE.match(par.text)
        if m and par.style.name == "Normal":
            out.append(Para(m["num"], m["text"]))
        elif par.style.name == "List Bullet" and out:
            out[-1].bullets.append(par.text)
    return out


# --------------------------------------------------------------------------- corpus

class Doc:
    def __init__(self, fname, meta, paras, kind):
        self.fname, self.meta, self.paras, self.kind = fname, meta, paras, kind

    @property
    def pub(self):
        return self.meta["publication"]


def load_corpus(errors: list[str]):
    import make_binary_samples as mbs

    docs = []
    if not os.path.isdir(DOCUMENTS):
        errors.append(f"documents directory {DOCUMENTS} not found")
        return docs
    for fname in sorted(os.listdir(DOCUMENTS)):
        path = os.path.join(DOCUMENTS, fname)
        if not fname.endswith(DOC_EXT) or fname == "README.md" or not os.path.isfile(path):
            continue
        ext = os.path.splitext(fname)[1]
        if ext in (".md", ".txt"):
            raw = open(path, encoding="utf-8").read()
            meta, body = split_front_matter(raw)
            if meta is None:
                errors.append(f"{fname}: no YAML front matter")
                continue
        else:
            side = path + ".meta.yaml"
            if not os.path.exists(side):
                errors.append(f"{fname}: missing sidecar {fname}.meta.yaml")
                continue
            meta = yaml.safe_load(open(side, encoding="utf-8"))
            body = None
        missing = [k for k in KEYS if k not in meta]
        if missing:
            errors.append(f"{fname}: metadata missing keys {missing}")
            continue
        meta["edition"] = str(meta["edition"])
        if ext == ".md":
            paras = paras_markdown(body)
        elif ext == ".txt":
            if "\f" in body:
                body = clean_pdf_text(body, meta["publication"])
            paras = paras_text(body)
        elif ext == ".html":
            paras = paras_html(open(path, encoding="utf-8").read())
        elif ext == ".docx":
            paras = paras_docx(path, mbs.DOCS[fname])
        else:
            paras = paras_blocks(mbs.DOCS[fname])
        docs.append(Doc(fname, meta, paras, ext))
    return docs


def current_docs(docs):
    superseded = set()
    for d in docs:
        sup = d.meta.get("supersedes")
        if sup:
            superseded.add(sup)
    cur = {}
    for d in docs:
        label = "%s (%s)" % (d.pub, d.meta["edition"][:4])
        if label in superseded:
            continue
        cur.setdefault(d.pub, []).append(d)
    return cur


def paragraph_index(docs, unclassified_only=True):
    idx = {}
    for pub, ds in current_docs(docs).items():
        for d in ds:
            if unclassified_only and d.meta["marking"] != "UNCLASSIFIED":
                continue
            for p in d.paras:
                idx[f"{pub}#{p.num}"] = p
    return idx


def check_docs(docs, errors, warnings):
    ids = {}
    editions = {"%s (%s)" % (d.pub, d.meta["edition"][:4]) for d in docs}
    for d in docs:
        m = d.meta
        if m["id"] in ids:
            errors.append(f"{d.fname}: duplicate id {m['id']} (also {ids[m['id']]})")
        ids[m["id"]] = d.fname
        if m["marking"] not in MARKINGS:
            errors.append(f"{d.fname}: bad marking {m['marking']!r}")
        if not isinstance(m["caveats"], list):
            errors.append(f"{d.fname}: caveats must be a list")
        if m.get("supersedes") and m["supersedes"] not in editions:
            warnings.append(f"{d.fname}: supersedes {m['supersedes']!r} (that edition is not in the corpus)")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", m["edition"]):
            errors.append(f"{d.fname}: edition must be an ISO date")
        if not d.paras:
            continue  # orders use OPORD-style numbering
        # numbering
        last = {}
        for p in d.paras:
            ch, n = p.num.split("-")
            n = int(n)
            if n != last.get(ch, 0) + 1:
                errors.append(f"{d.fname}: paragraph {p.num} out of sequence (previous {ch}-{last.get(ch, 0)})")
            last[ch] = n
            w = p.words()
            if not 40 <= w <= 150:
                warnings.append(f"{d.fname}: paragraph {p.num} has {w} words")
        chapters = [c for c in last if c.isdigit()]
        for c in chapters:
            if not 6 <= last[c] <= 15:
                warnings.append(f"{d.fname}: chapter {c} has {last[c]} numbered paragraphs")


def check_pdf_layer(docs, warnings):
    try:
        import pypdf  # type: ignore
    except ImportError:
        return
    for d in docs:
        if d.kind != ".pdf":
            continue
        text = "\n".join(pg.extract_text() for pg in pypdf.PdfReader(os.path.join(DOCUMENTS, d.fname)).pages)
        for p in d.paras:
            if not re.search(r"(?m)^" + re.escape(p.num) + r"\.", text):
                warnings.append(f"{d.fname}: paragraph {p.num} not found at a line start in the PDF text layer")


def check_eval(docs, errors):
    idx = paragraph_index(docs)
    qpath = os.path.join(EVAL, "questions.jsonl")
    spath = os.path.join(EVAL, "support_pairs.jsonl")
    counts = {}
    if os.path.exists(qpath):
        seen = set()
        for n, line in enumerate(open(qpath, encoding="utf-8"), 1):
            q = json.loads(line)
            if q["id"] in seen:
                errors.append(f"questions.jsonl:{n}: duplicate id {q['id']}")
            seen.add(q["id"])
            for g in q["gold"]:
                if g not in idx:
                    errors.append(f"questions.jsonl:{n} ({q['id']}): gold {g} not an UNCLASSIFIED current paragraph")
        counts["questions"] = len(seen)
    if os.path.exists(spath):
        seen = set()
        labels = {}
        for n, line in enumerate(open(spath, encoding="utf-8"), 1):
            s = json.loads(line)
            if s["id"] in seen:
                errors.append(f"support_pairs.jsonl:{n}: duplicate id {s['id']}")
            seen.add(s["id"])
            labels[s["label"]] = labels.get(s["label"], 0) + 1
            if s["label"] not in ("supported", "weak", "unsupported"):
                errors.append(f"support_pairs.jsonl:{n}: bad label {s['label']}")
            p = idx.get(s["passage_ref"])
            if p is None:
                errors.append(f"support_pairs.jsonl:{n} ({s['id']}): unknown passage_ref {s['passage_ref']}")
            elif norm(s["passage"]) != p.text:
                errors.append(f"support_pairs.jsonl:{n} ({s['id']}): passage differs from {s['passage_ref']}")
        counts["support_pairs"] = len(seen)
        counts["labels"] = labels
    return counts


def main(argv):
    errors, warnings = [], []
    docs = load_corpus(errors)
    if len(argv) > 2 and argv[1] == "--dump":
        idx = paragraph_index(docs, unclassified_only=False)
        p = idx.get(argv[2])
        print(p.text if p else "not found")
        return 0
    check_docs(docs, errors, warnings)
    for fname in sorted(os.listdir(CORPUS)):
        if fname.endswith(DOC_EXT) and fname != "README.md":
            warnings.append(f"{fname}: document outside documents/ (not validated, not indexed)")
    check_pdf_layer(docs, warnings)
    counts = check_eval(docs, errors)
    for d in docs:
        chs = sorted({p.num.split("-")[0] for p in d.paras}, key=lambda c: (not c.isdigit(), c))
        print(f"{d.fname:28} {d.pub:16} {d.meta['edition']} {d.meta['marking']:13} "
              f"{len(d.paras):3} numbered paragraphs; chapters/appendices {','.join(chs) or '-'}")
    print("eval:", counts)
    for w in warnings:
        print("WARNING:", w)
    for e in errors:
        print("ERROR:", e)
    print(f"{len(docs)} documents, {len(errors)} errors, {len(warnings)} warnings")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

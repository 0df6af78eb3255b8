#!/usr/bin/env python3
"""Writes the hostile files doctrina must survive (issue 12), next to this script.

Each one crashed or misled an earlier version:
  xobject-loop.pdf   a form XObject whose content stream draws itself (/X1 Do inside X1):
                     unbounded recursion in the PDF parser, a stack overflow
  page-loop.pdf      a page tree whose /Kids point back at an ancestor
  nested-divs.html   20,000 nested <div>s: recursion in an HTML walker
  zip-bomb.docx      a DOCX whose word/document.xml inflates to 120 MB of whitespace
Run with any Python 3 (standard library only); the output is deterministic.
"""
import io
import os
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def pdf(objects, root=1):
    """A classic PDF with a correct xref table from a list of object bodies (1-based)."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n" % (len(objects) + 1))
    out.write(b"0000000000 65535 f \n")
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, root, xref))
    return out.getvalue()


def stream(dictionary, data):
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def xobject_loop():
    page_content = b"BT /F1 12 Tf 72 720 Td (Self-referencing form) Tj ET /X1 Do"
    form_content = b"q /X1 Do Q"
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 6 0 R >> /XObject << /X1 5 0 R >> >> >>",
        stream(b"", page_content),
        stream(b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
               b"/Resources << /XObject << /X1 5 0 R >> >>", form_content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def page_loop():
    content = b"BT /F1 12 Tf 72 720 Td (Looping page tree) Tj ET"
    return pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        # The root's kids: a page and an intermediate node whose kids point back at the root.
        b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 6 0 R >> >> >>",
        stream(b"", content),
        b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def nested_divs(depth=20_000):
    return ("<!doctype html><html><head><title>Nested</title></head><body>"
            + "<div>" * depth + "<p>1-1. Deep text.</p>" + "</div>" * depth
            + "</body></html>\n").encode()


def zip_bomb(inflated=120 * 1024 * 1024):
    buf = io.BytesIO()
    fixed = (2026, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        def add(name, data):
            info = zipfile.ZipInfo(name, date_time=fixed)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
        add("[Content_Types].xml",
            b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            b'<Default Extension="xml" ContentType="application/xml"/></Types>')
        head = (b'<?xml version="1.0" encoding="UTF-8"?><w:document '
                b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>')
        tail = b"<w:p><w:r><w:t>1-1. Text after the padding.</w:t></w:r></w:p></w:body></w:document>"
        add("word/document.xml", head + b" " * (inflated - len(head) - len(tail)) + tail)
    return buf.getvalue()


for name, data in [("xobject-loop.pdf", xobject_loop()), ("page-loop.pdf", page_loop()),
                   ("nested-divs.html", nested_divs()), ("zip-bomb.docx", zip_bomb())]:
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    # Marked, so that the only thing wrong with each file is the file itself.
    with open(os.path.join(HERE, name + ".meta.yaml"), "w") as f:
        f.write("marking: UNCLASSIFIED\n")
    print(f"{name}: {len(data)} bytes")

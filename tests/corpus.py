"""Small, real files of common formats, built in memory for detector tests and benchmarks.

Each builder returns the bytes of a complete, well-formed file, so that detectors are
judged on content a user could really upload; nothing is read from disk or the network.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable

ENGLISH = (
    "The committee met on Tuesday to review the quarterly figures. Sales rose in the\n"
    "northern region, while costs in the warehouse fell after the new schedule began.\n"
    "Members agreed to revisit the hiring plan next month and to publish a short summary\n"
    "for staff. The chair thanked everyone for their patience during the long meeting.\n"
)


def pdf() -> bytes:
    """A one-page PDF 1.4 document with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length 44 >>\nstream\nBT /F1 24 Tf 72 720 Td (Hello) Tj ET\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width: int = 16, height: int = 16) -> bytes:
    """A valid RGB PNG of a simple gradient."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 16 % 256, y * 16 % 256, 128)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """A JFIF header with quantisation, frame and scan segments (the pixels are noise)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(range(1, 65))
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 8, 8, 1) + b"\x01\x11\x00"
    dht = b"\xff\xc4" + struct.pack(">H", 20) + b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + app0 + dqt + sof0 + dht + sos + b"\x00" * 64 + b"\xff\xd9"


def gif() -> bytes:
    """A 1x1 GIF89a image."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
        b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def _zip(entries: list[tuple[str, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in entries:
            archive.writestr(name, text)
    return buffer.getvalue()


def zip_archive() -> bytes:
    """A ZIP of two text files."""
    return _zip([("notes.txt", ENGLISH), ("data/readme.md", "# Data\n\nNothing here.\n")])


_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_OOXML_CT = "application/vnd.openxmlformats-officedocument"


def _content_types(overrides: dict[str, str]) -> str:
    parts = "".join(
        f'<Override PartName="{name}" ContentType="{kind}"/>' for name, kind in overrides.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f"{parts}</Types>"
    )


def _root_rels(target: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_RELS_NS}">'
        f'<Relationship Id="rId1" Type="{_DOC_REL}" Target="{target}"/></Relationships>'
    )


def docx() -> bytes:
    """A Word document, its entries in the order Word writes them."""
    body = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>Hello from chute.</w:t></w:r></w:p></w:body></w:document>"
    )
    main = f"{_OOXML_CT}.wordprocessingml.document.main+xml"
    return _zip(
        [
            ("[Content_Types].xml", _content_types({"/word/document.xml": main})),
            ("_rels/.rels", _root_rels("word/document.xml")),
            ("word/document.xml", body),
        ]
    )


def xlsx() -> bytes:
    """An Excel workbook with one sheet, its entries in the order Excel writes them."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel_ns = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    workbook = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<workbook xmlns="{ns}" xmlns:r="{rel_ns}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    workbook_rels = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="{_RELS_NS}">'
        f'<Relationship Id="rId1" Type="{rel_ns}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    )
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="{ns}"><sheetData>'
        '<row r="1"><c r="A1"><v>42</v></c></row></sheetData></worksheet>'
    )
    sml = f"{_OOXML_CT}.spreadsheetml"
    types = {
        "/xl/workbook.xml": f"{sml}.sheet.main+xml",
        "/xl/worksheets/sheet1.xml": f"{sml}.worksheet+xml",
    }
    return _zip(
        [
            ("[Content_Types].xml", _content_types(types)),
            ("_rels/.rels", _root_rels("xl/workbook.xml")),
            ("xl/workbook.xml", workbook),
            ("xl/_rels/workbook.xml.rels", workbook_rels),
            ("xl/worksheets/sheet1.xml", sheet),
        ]
    )


def gzip_archive() -> bytes:
    """Gzip-compressed English text."""
    return gzip.compress(ENGLISH.encode() * 4, mtime=0)


def text() -> bytes:
    """Plain English prose."""
    return (ENGLISH * 3).encode()


def json_document(records: int = 20) -> bytes:
    """A pretty-printed JSON document of records (about 140 bytes each)."""
    items = [
        {"id": n, "name": f"item-{n}", "price": n * 1.5, "tags": ["a", "b"], "active": n % 2 == 0}
        for n in range(records)
    ]
    return json.dumps({"items": items, "count": len(items)}, indent=2).encode()


def large_json() -> bytes:
    """A JSON document of about 200 KiB, much larger than a detector's 64 KiB head."""
    return json_document(records=1500)


def office_with_media(office: bytes, media_size: int = 300 * 1024) -> bytes:
    """An OOXML file (`docx()`, `xlsx()`) grown by a stored binary part, as with a photo."""
    buffer = io.BytesIO(office)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_STORED) as archive:
        archive.writestr("media/image1.bin", bytes(range(256)) * (media_size // 256))
    return buffer.getvalue()


def csv_document() -> bytes:
    """A CSV table with a header row."""
    lines = ["id,name,city,amount,date"]
    cities = ["London", "Paris", "Berlin", "Madrid", "Rome"]
    lines += [
        f"{n},Customer {n},{cities[n % 5]},{n * 13.25:.2f},2024-01-{n % 28 + 1:02d}"
        for n in range(1, 41)
    ]
    return ("\n".join(lines) + "\n").encode()


def html() -> bytes:
    """A small HTML5 page."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<title>Quarterly report</title>\n<link rel="stylesheet" href="style.css">\n'
        "</head>\n<body>\n<h1>Quarterly report</h1>\n"
        f'<p>{ENGLISH}</p>\n<ul>\n<li><a href="/sales">Sales</a></li>\n'
        '<li><a href="/costs">Costs</a></li>\n</ul>\n</body>\n</html>\n'
    ).encode()


def python_source() -> bytes:
    """A short Python module."""
    return (
        b'"""Compute simple statistics."""\n\nfrom __future__ import annotations\n\n'
        b"import statistics\nfrom dataclasses import dataclass\n\n\n@dataclass\n"
        b"class Summary:\n    mean: float\n    median: float\n\n\n"
        b"def summarise(values: list[float]) -> Summary:\n"
        b'    """The mean and median of the values."""\n'
        b'    if not values:\n        raise ValueError("no values")\n'
        b"    return Summary(statistics.mean(values), statistics.median(values))\n\n\n"
        b'if __name__ == "__main__":\n    print(summarise([1.0, 2.0, 3.5]))\n'
    )


def tar_archive() -> bytes:
    """A POSIX (pax) tar of two text files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, text in (("notes.txt", ENGLISH), ("data/readme.md", "# Data\n")):
            entry = tarfile.TarInfo(name)
            entry.size = len(text.encode())
            archive.addfile(entry, io.BytesIO(text.encode()))
    return buffer.getvalue()


def xml_document() -> bytes:
    """An XML catalogue of books."""
    books = "".join(
        f'  <book id="bk{n}">\n    <author>Author {n}</author>\n    <title>Title {n}</title>\n'
        f"    <price>{n}.95</price>\n  </book>\n"
        for n in range(8)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<catalog>\n{books}</catalog>\n'.encode()


def yaml_document() -> bytes:
    """A YAML settings file with comments, mappings and a list."""
    return (
        b"# Service settings\nservice:\n  name: chute\n  port: 8000\n  workers: 4\n"
        b"database:\n  url: postgresql://localhost/chute\n  pool:\n    size: 10\n"
        b"    timeout: 30\nfeatures:\n  - upload\n  - detection\n  - retries\n"
        b"logging:\n  level: INFO\n  json: true\n"
    )


def shell_script() -> bytes:
    """A POSIX shell script that rotates logs."""
    return (
        b"#!/bin/sh\nset -eu\n\n# Rotate the logs of the service, keeping the last five.\n"
        b'LOG_DIR="${LOG_DIR:-/var/log/chute}"\nfor n in 4 3 2 1; do\n'
        b'    if [ -f "$LOG_DIR/chute.log.$n" ]; then\n'
        b'        mv "$LOG_DIR/chute.log.$n" "$LOG_DIR/chute.log.$((n + 1))"\n    fi\ndone\n'
        b'mv "$LOG_DIR/chute.log" "$LOG_DIR/chute.log.1"\necho "rotated logs in $LOG_DIR"\n'
    )


def python_script() -> bytes:
    """`python_source()` made a program by a `#!` line."""
    return b"#!/usr/bin/env python3\n" + python_source()


def javascript_source() -> bytes:
    """A small Node.js module."""
    return (
        b'"use strict";\n\nconst express = require("express");\nconst app = express();\n\n'
        b"function total(items) {\n"
        b"  return items.reduce((sum, item) => sum + item.price * item.quantity, 0);\n}\n\n"
        b'app.get("/total", (req, res) => {\n  const items = JSON.parse(req.query.items || "[]");\n'
        b"  res.json({ total: total(items) });\n});\n\nmodule.exports = { app, total };\n"
    )


def svg_image() -> bytes:
    """A small SVG icon."""
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
        b'width="64" height="64" viewBox="0 0 64 64">\n  <title>chute</title>\n'
        b'  <rect x="4" y="4" width="56" height="56" rx="8" fill="#2a6"/>\n'
        b'  <path d="M16 20 L48 20 L32 48 Z" fill="#fff"/>\n</svg>\n'
    )


def markdown_with_python() -> bytes:
    """A README with a Python example: libmagic reads its imports as a Python script."""
    return (
        b"# chute\n\nchute takes content into a processing pipeline and tracks every piece of"
        b" it as a\n**job**. Workers claim jobs under a lease.\n\n## Use it from Python\n\n"
        b"```python\nimport asyncio\nfrom chute.domain import Mode, SourceType\n\n\n"
        b"async def main() -> None:\n    engine = build_engine()\n"
        b"    job = await engine.create_job(source_type=SourceType.UPLOAD, mode=Mode.AUTO)\n"
        b"    print(job.mime_type)\n\n\nasyncio.run(main())\n```\n\n"
        b"See the [API](docs/api.md) for the whole contract.\n"
    )


CORPUS: dict[str, Callable[[], bytes]] = {
    "pdf": pdf,
    "png": png,
    "jpeg": jpeg,
    "gif": gif,
    "zip": zip_archive,
    "docx": docx,
    "xlsx": xlsx,
    "gzip": gzip_archive,
    "text": text,
    "json": json_document,
    "csv": csv_document,
    "html": html,
    "python": python_source,
    "tar": tar_archive,
    "xml": xml_document,
    "yaml": yaml_document,
    "shell": shell_script,
    "python_script": python_script,
    "javascript": javascript_source,
    "svg": svg_image,
    "markdown": markdown_with_python,
}
"""Every builder by a short name, for parametrised tests and benchmarks."""

"""NUL and lone surrogates put into every string a request of the API can carry, found
from chute's own OpenAPI description: JSON body fields (nested ones, the keys and values
of free JSON objects), query parameters (strings on the wire, whatever their type), path
parameters, headers, upload form fields and file names.

A `Slot` is one such place; `inject` takes a valid request drawn by schemathesis for its
operation, made real (`contract._fitting`: a worker that holds the job, a source that
fits its type) and puts the bad text there; `Slot.loc` is where the 422 must point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import schemathesis
from hypothesis import strategies as st

from tests.fuzz import contract

UPLOAD = "/api/v1/upload"
BOUNDARY = "chute-fuzz-unstorable-5e0c"
# What a client can send that no database stores: NUL, and surrogates from either half.
BAD_CHARACTERS = ("\x00", "\ud800", "\udbff", "\udc00", "\udfff")
CHOICES = {
    "priority": "normal",
    "mode": "auto",
    "detect": "true",
    "queue": "default",
    "run_after": "2020-01-01T00:00:00Z",  # passed: due now
}


@dataclass(frozen=True)
class Slot:
    """One place of one operation where a client may send text."""

    method: str
    path: str
    where: str  # body, query, path, header, field (of a form), filename
    name: tuple[str | int, ...]  # the field's path in the body, or a parameter's name
    kind: str = "text"  # text, or json (a free JSON object: its keys and values)

    @property
    def loc(self) -> list[str | int]:
        """The start of the `loc` of the error that must name this slot."""
        if self.where == "filename":
            return ["body", "file", 0, "filename"]
        if self.where == "field":
            return ["body", *self.name]
        return [self.where, *self.name]

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} {self.where}:{'.'.join(map(str, self.name))}"


@dataclass(frozen=True)
class Request:
    """A request as bytes on the wire: what httpx sends as it is."""

    method: str
    url: str
    headers: list[tuple[bytes, bytes]]
    content: bytes | None


# -- the slots, from the description --------------------------------------------------------


# Operations whose answers never end (a stream), which a whole read cannot check: their
# refusals of such text are tested with real processes (tests/e2e/test_stream_processes.py).
ENDLESS = {"stream_events"}


def slots(description: dict[str, Any]) -> list[Slot]:
    """Every slot of every operation of `description` (but endless ones)."""
    found = []
    for path, item in description["paths"].items():
        for method, operation in item.items():
            if operation.get("operationId") in ENDLESS:
                continue
            for parameter in operation.get("parameters", ()):
                name = parameter["name"]
                found.append(Slot(method, path, parameter["in"], (name,)))
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = content["application/json"]["schema"]
                for name, kind in _fields(description, schema, ()):
                    found.append(Slot(method, path, "body", name, kind))
            if "multipart/form-data" in content:
                form = _resolve(description, content["multipart/form-data"]["schema"])
                for name in form["properties"]:
                    where = "filename" if name == "file" else "field"
                    found.append(Slot(method, path, where, (name,)))
    return found


def _resolve(description: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = description
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def _fields(
    description: dict[str, Any], schema: dict[str, Any], at: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], str]]:
    """(path, kind) of every string field of an object schema, nested ones included."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for name, field in _resolve(description, schema).get("properties", {}).items():
        options = [_resolve(description, o) for o in field.get("anyOf", [field])]
        options = [o for option in options for o in (option, option.get("items") or {})]
        options = [_resolve(description, o) for o in options]
        if any(o.get("type") == "object" and o.get("additionalProperties") for o in options):
            found.append(((*at, name), "json"))
        elif any(o.get("type") == "string" for o in options):
            found.append(((*at, name), "text"))
        elif any("properties" in o for o in options):  # an object, or an array of them
            item = next(o for o in options if "properties" in o)
            nested = any(
                "properties" in _resolve(description, o) for o in field.get("anyOf", [field])
            )
            found += _fields(description, item, (*at, name) if nested else (*at, name, 0))
    return found


# -- putting the bad text in ----------------------------------------------------------------


@st.composite
def spoiled(draw: st.DrawFn, text: str) -> str:
    """`text` with a bad character put in at a drawn place."""
    bad = draw(st.sampled_from(BAD_CHARACTERS))
    at = draw(st.integers(0, len(text)))
    return text[:at] + bad + text[at:]


@st.composite
def spoiled_json(draw: st.DrawFn, value: Any) -> dict[str, Any]:
    """A JSON object (`value` when it is one) with bad text in a drawn key or string,
    at a drawn depth."""
    bad = draw(spoiled(draw(st.text(max_size=5))))
    inner: Any = draw(st.sampled_from([bad, {bad: 1}]))  # a string, or a key
    for _ in range(draw(st.integers(0, 3))):
        inner = draw(st.sampled_from([[inner], {"deep": inner}, [1, {"k": inner}]]))
    base = dict(value) if isinstance(value, dict) else {}
    base[draw(st.sampled_from(["x", "tenant"]))] = inner
    return base


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return _as_text(value[0]) if value else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def inject(draw: st.DrawFn, slot: Slot, case: schemathesis.Case, job_ids: list[str]) -> Request:
    """`case` made real (a job of `job_ids`, values that fit), with bad text at `slot`."""
    parameters = dict(case.path_parameters or {})
    if "job_id" in parameters:
        parameters["job_id"] = draw(st.sampled_from(job_ids))
    query = dict(case.query or {})
    contract._fitting(query)
    body = case.body if isinstance(case.body, dict) and slot.path != UPLOAD else None
    contract._fitting(body)
    headers: dict[str, str] = {}
    name = str(slot.name[0])
    if slot.where == "path":
        parameters[name] = draw(spoiled(parameters[name]))
    elif slot.where == "query":
        query[name] = draw(spoiled(_as_text(query.get(name))))
    elif slot.where == "header":
        headers[name] = draw(spoiled("key"))
    elif slot.where == "body":
        body = _put(draw, body or {}, slot)
    wire = [(k.encode(), v.encode("utf-8", "surrogatepass")) for k, v in headers.items()]
    content = None
    if slot.path == UPLOAD:
        content, content_type = _form(draw, slot, case.body)
        wire.append((b"content-type", content_type.encode()))
    elif body is not None:
        content = json.dumps(body).encode()  # ASCII escapes: \u0000, \ud800
        wire.append((b"content-type", b"application/json"))
    return Request(slot.method.upper(), _url(slot.path, parameters, query), wire, content)


def _url(path: str, parameters: dict[str, str], query: dict[str, Any]) -> str:
    """The URL, percent-encoded as UTF-8 (a surrogate as WTF-8 writes it)."""

    def encoded(value: Any) -> str:
        return quote(_as_text(value), safe="", errors="surrogatepass")

    url = path.format(**{name: encoded(value) for name, value in parameters.items()})
    pairs = [
        f"{quote(name)}={encoded(item)}"
        for name, value in query.items()
        if value is not None
        for item in (value if isinstance(value, list) else [value])
    ]
    return url + ("?" + "&".join(pairs) if pairs else "")


def _put(draw: st.DrawFn, body: dict[str, Any], slot: Slot) -> dict[str, Any]:
    """`body` with bad text at the slot's field (made when the case left it out)."""
    parent: Any = body
    for step, following in zip(slot.name[:-1], slot.name[1:], strict=True):
        if isinstance(parent, list):
            while len(parent) <= int(step):  # a job of a batch
                parent.append({"source_type": "url", "source_uri": contract.SOURCES["url"]})
            parent = parent[int(step)]
        else:
            if parent.get(step) is None:  # left out, or null
                parent[step] = [] if isinstance(following, int) else {}
            parent = parent[step]
    last = slot.name[-1]
    value = parent.get(last) if isinstance(parent, dict) else None
    if slot.kind == "json":
        parent[last] = draw(spoiled_json(value))
    elif isinstance(value, list) and value:
        value[draw(st.integers(0, len(value) - 1))] = draw(spoiled(_as_text(value[0])))
    else:
        parent[last] = draw(spoiled(value if isinstance(value, str) else "text"))
    return body


def _form(draw: st.DrawFn, slot: Slot, drawn: Any) -> tuple[bytes, str]:
    """The upload of `drawn` (schemathesis's files and fields) as bytes, up to three
    files, each holding bytes, with bad text in the slot's field or first file name."""
    drawn = drawn if isinstance(drawn, dict) else {}
    files = [getattr(f, "data", b"") or b"%PDF-1.4" for f in drawn.get("file", [])][:3]
    parts: list[tuple[bytes, bytes]] = []
    for index, data in enumerate(files or [b"%PDF-1.4"]):
        name = f"file-{index}.pdf"
        if slot.where == "filename" and index == 0:
            name = draw(spoiled(name))
        disposition = b'form-data; name="file"; ' + _filename(draw, name)
        parts.append((disposition, data))
    for field in ("priority", "mode", "detect", "metadata", "queue", "run_after"):
        value = CHOICES.get(field, '{"tenant": "acme"}')
        if slot.where == "field" and slot.name == (field,):
            raw = draw(st.booleans()) and field == "metadata"
            text = json.dumps({"tenant": draw(spoiled("acme"))}) if raw else draw(spoiled(value))
        elif field in drawn or field == "metadata":
            text = value
        else:
            continue
        disposition = f'form-data; name="{field}"'.encode()
        parts.append((disposition, text.encode("utf-8", "surrogatepass")))
    parts = draw(st.permutations(parts)) if slot.where == "field" else parts
    delimiter = f"--{BOUNDARY}".encode()
    body = b"".join(
        delimiter + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + data + b"\r\n"
        for disposition, data in parts
    )
    return body + delimiter + b"--\r\n", f"multipart/form-data; boundary={BOUNDARY}"


def _filename(draw: st.DrawFn, name: str) -> bytes:
    """A file name as a client may write it: RFC 5987's percent-encoded UTF-8 (WTF-8
    for a surrogate), or the raw bytes in quotes."""
    if draw(st.booleans()):
        return b"filename*=UTF-8''" + quote(name, safe="", errors="surrogatepass").encode()
    return b'filename="' + name.encode("utf-8", "surrogatepass") + b'"'

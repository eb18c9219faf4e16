"""A till that knows the terminal API by its OpenAPI document alone (docs/openapi.json): no
import of pitap's code. Each call names an operation (method and path template of the
document); the request is built from it (path and query parameters, the security scheme, the
required headers, the body checked against the request schema) and sent with the standard
library's http.client (api_support.call); the answer must have a status the operation declares,
the content type declared for it, and a body valid against the declared schema (jsonschema).
An answer the document does not declare fails the test: that is how gaps in it are found.
Not a test module itself."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jsonschema
from api_support import Answer, call

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


class Undeclared(AssertionError):
    """The server answered something the document does not declare."""


def _json_schema(schema: Any, doc: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema: $ref inlined, `nullable` as a null type."""
    if isinstance(schema, list):
        return [_json_schema(s, doc, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/") and ref not in seen, ref
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        return _json_schema(target, doc, (*seen, ref))
    out = {k: _json_schema(v, doc, seen) for k, v in schema.items()
           if k not in ("nullable", "example", "description")}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return list(self.spec.get("parameters", []))


class Document:
    """docs/openapi.json, its operations and schemas."""

    def __init__(self, path: Path = DOCUMENT) -> None:
        self.doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        assert self.doc["openapi"].startswith("3.0"), self.doc["openapi"]

    def operations(self) -> list[Operation]:
        return [Operation(method.upper(), path, spec)
                for path, item in self.doc["paths"].items()
                for method, spec in item.items() if method in ("get", "post", "put", "delete")]

    def operation(self, method: str, path: str) -> Operation:
        found = [op for op in self.operations() if (op.method, op.path) == (method, path)]
        assert found, f"the document has no {method} {path}"
        return found[0]

    def schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        plain: dict[str, Any] = _json_schema(schema, self.doc)
        return plain

    def component(self, name: str) -> dict[str, Any]:
        return self.schema({"$ref": f"#/components/schemas/{name}"})

    def validate(self, value: object, schema: dict[str, Any], what: str) -> None:
        try:
            jsonschema.Draft7Validator(self.schema(schema)).validate(value)
        except jsonschema.ValidationError as exc:
            raise Undeclared(f"{what}: {exc.message} at {list(exc.absolute_path)}") from None

    def security_headers(self, op: Operation, key: str | None) -> dict[str, str]:
        """The credentials the operation's security requirement names, for `key`."""
        if key is None:
            return {}
        headers: dict[str, str] = {}
        for requirement in op.spec.get("security", self.doc.get("security", [])):
            for name in requirement:
                scheme = self.doc["components"]["securitySchemes"][name]
                if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer":
                    headers["Authorization"] = f"Bearer {key}"
                elif scheme["type"] == "apiKey" and scheme["in"] == "header":
                    headers[scheme["name"]] = key
                else:
                    raise AssertionError(f"security scheme {scheme} not known to this client")
        return headers


@dataclass
class Client:
    """Calls by the document: `client.call("POST", "/v1/payments/{id}/cancel", id=3)`."""

    base: str
    key: str | None
    doc: Document
    called: set[tuple[str, str]] = field(default_factory=set)  # (method, path) of each call

    def url(self, op: Operation, values: dict[str, object]) -> str:
        path, query = op.path, {}
        for param in op.parameters:
            name, where = param["name"], param["in"]
            if where == "path":
                assert name in values, f"{op.method} {op.path} needs {name}"
                path = path.replace("{" + name + "}", quote(str(values[name]), safe=""))
            elif where == "query" and name in values:
                query[name] = str(values[name])
        assert "{" not in path, path
        return path + (f"?{urlencode(query)}" if query else "")

    def call(self, method: str, path: str, body: object = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None, key: object = "the client's",
             valid: bool = True, **values: object) -> Answer:
        """Operation `method path` with `body` (JSON) or `raw` bytes, the header parameters in
        `headers` and the path and query parameters in `values`; `key` another key (None: no
        Authorization). `valid`: the request must conform to the document (False for the
        tests of bad input, which the server must refuse)."""
        op = self.doc.operation(method, path)
        self.called.add((op.method, op.path))
        sent = dict(headers or {})
        for param in op.parameters:
            if param["in"] == "header" and param.get("required") and valid:
                assert param["name"] in sent, f"{method} {path} needs header {param['name']}"
                self.doc.validate(sent[param["name"]], param["schema"], param["name"])
            if param["in"] == "query" and param["name"] in values and valid:
                self.doc.validate(_typed(values[param["name"]], param["schema"]),
                                  param["schema"], param["name"])
        request_body = op.spec.get("requestBody")
        if valid and body is not None:
            assert request_body is not None, f"{method} {path} takes no body"
            schema = request_body["content"]["application/json"]["schema"]
            self.doc.validate(body, schema, f"request body of {method} {path}")
        elif valid and request_body is not None and request_body.get("required"):
            assert raw is not None or body is not None, f"{method} {path} needs a body"
        given = self.key if key == "the client's" else key
        sent |= self.doc.security_headers(op, given if isinstance(given, str) else None)
        answer = call(self.base, method, self.url(op, values), None, body, raw=raw,
                      headers=sent)
        self.check(op, answer)
        return answer

    def check(self, op: Operation, answer: Answer) -> None:
        """The answer as the document declares it for its status: raises Undeclared if not."""
        what = f"{op.method} {op.path} -> {answer.status}"
        declared = op.spec["responses"].get(str(answer.status), op.spec["responses"].get(
            "default"))
        if declared is None:
            raise Undeclared(f"{what}: status not in the document: {answer.body!r}")
        content = declared.get("content", {})
        got = answer.headers.get("content-type", "").split(";")[0].strip()
        if not content:
            return
        if got not in content:
            raise Undeclared(f"{what}: content type {got!r}, the document says {list(content)}")
        if got == "application/json":
            self.doc.validate(answer.body, content[got].get("schema", {}), what)
        for name, header in declared.get("headers", {}).items():
            if name.lower() in answer.headers:
                self.doc.validate(_typed(answer.headers[name.lower()], header["schema"]),
                                  header["schema"], f"{what} header {name}")
            elif header.get("required"):
                raise Undeclared(f"{what}: no {name} header")


def _typed(text: object, schema: dict[str, Any]) -> object:
    """A header's or query parameter's text as its schema's type (an integer, ...)."""
    if schema.get("type") == "integer" and isinstance(text, str) and re.fullmatch(r"-?\d+",
                                                                                  text):
        return int(text)
    return text

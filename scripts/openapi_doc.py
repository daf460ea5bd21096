"""The admin API page of the docs, rendered from the app's own OpenAPI document.

The document is the one ``GET /api/v1/openapi.json`` serves, made by building the app
(on a throwaway SQLite file, nothing fetched) and asking it through Flask's test client,
so the page cannot drift from the API. A mkdocs hook (``hooks:`` in mkdocs.yml) puts the
rendering where docs/admin-api.md says ``<!-- openapi -->``;
``python scripts/openapi_doc.py`` prints it.
"""

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- openapi -->"
METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document():
    """The OpenAPI document as the running app serves it."""
    sys.path.insert(0, str(ROOT))
    from newsletter import create_app  # noqa: PLC0415 (imported only when the docs build)

    with tempfile.TemporaryDirectory() as instance:
        app = create_app(
            {
                "SECRET_KEY": "docs-build",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/docs.sqlite",
                "CELERY_BROKER_URL": "memory://",
                "RATELIMIT_STORAGE_URI": "memory://",
            },
            instance_path=instance,
        )
        response = app.test_client().get("/api/v1/openapi.json")
        if response.status_code != 200:
            raise RuntimeError(f"/api/v1/openapi.json answered {response.status_code}")
        return response.get_json()


def _cell(text):
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _name(ref_or_name):
    """A schema's name without spectree's hash suffix: ``Error.e32a174`` is ``Error``."""
    return ref_or_name.rsplit("/", 1)[-1].split(".", 1)[0]


def _type(schema):
    """A schema's type in a few characters: a $ref's name, an array's item type, a union."""
    if not schema:
        return ""
    if "$ref" in schema:
        name = _name(schema["$ref"])
        return f"[{name}](#{name.lower()})"
    for union in ("anyOf", "oneOf", "allOf"):
        if union in schema:
            return " or ".join(_type(s) for s in schema[union])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return f"`{schema.get('type', 'object')}`"


def _operation(method, path, op):
    out = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary") and "<" not in op["summary"]:  # not spectree's "name <GET>"
        out += [_cell(op["summary"]), ""]
    if op.get("description") and op.get("description") != op.get("summary"):
        out += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        out += [
            f"| `{p['name']}` | {p.get('in', '')} | {_type(p.get('schema', {}))} | "
            f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
            for p in params
        ]
        out.append("")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        out += [f"Body ({media}): {_type(content.get('schema', {}))}", ""]
    responses = op.get("responses", {})
    if responses:
        out += ["| answer | description | body |", "|---|---|---|"]
        for code, answer in responses.items():
            schemas = [c.get("schema", {}) for c in answer.get("content", {}).values()]
            shown = ", ".join(_type(s) for s in schemas)
            out.append(f"| `{code}` | {_cell(answer.get('description'))} | {shown} |")
        out.append("")
    return out


def _schema(name, schema):
    out = [f"### {_name(name)}", ""]
    if schema.get("description"):
        out += [_cell(schema["description"]), ""]
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    if properties:
        out += ["| field | type | required | description |", "|---|---|---|---|"]
        out += [
            f"| `{field}` | {_type(prop)} | {'yes' if field in required else 'no'} | "
            f"{_cell(prop.get('description') or prop.get('title'))} |"
            for field, prop in properties.items()
        ]
        out.append("")
    elif schema.get("type") or "enum" in schema:
        out += [f"Type: {_type(schema)}", ""]
    return out


def render(document):
    """The document as Markdown: every operation, then every schema."""
    info = document.get("info", {})
    out = [
        f"*{_cell(info.get('title'))}, version {_cell(info.get('version'))}, "
        f"OpenAPI {document.get('openapi', '')}.*",
        "",
        "## Operations",
        "",
    ]
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                out += _operation(method, path, item[method])
    out += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        out += _schema(name, schema)
    return "\n".join(out)


def on_page_markdown(markdown, page, **kwargs):
    """mkdocs hook: the rendering where the admin API page asks for it."""
    if MARKER in markdown:
        return markdown.replace(MARKER, render(openapi_document()))
    return markdown


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--json":
        print(json.dumps(openapi_document(), indent=2))
    else:
        print(render(openapi_document()))

"""Validates an OpenAPI document with openapi-spec-validator, a checker written by others (the
version is taken from the document's `openapi` field), and JSON bodies against the schemas it
names, with jsonschema (which openapi-spec-validator brings along).

Input on stdin: {"document": {...}, "instances": [["SchemaName", value], ...]}.
Prints {"version": "...", "errors": [...], "instances": [[...errors of each instance...]]}:
empty lists when everything holds. scripts/test installs the package."""

import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator


def where(e):
    path = "/".join(str(p) for p in getattr(e, "absolute_path", []) or [])
    return f"{path}: {e.message}" if path else e.message


def main():
    given = json.load(sys.stdin)
    doc = given["document"]
    version = str(doc.get("openapi", ""))
    validator = OpenAPIV31SpecValidator if version.startswith("3.1") else OpenAPIV30SpecValidator
    errors = [where(e) for e in validator(doc).iter_errors()]
    # The document is the root the schemas' "#/components/schemas/..." refer into; OpenAPI 3.1
    # schemas are JSON Schema 2020-12.
    checked = []
    for name, value in given.get("instances", []):
        root = dict(doc, **{"$ref": f"#/components/schemas/{name}"})
        try:
            checked.append([where(e) for e in Draft202012Validator(root).iter_errors(value)])
        except Exception as e:  # a schema the document does not have, say
            checked.append([f"{type(e).__name__}: {e}"])
    json.dump({"version": version, "errors": errors, "instances": checked}, sys.stdout,
              ensure_ascii=False)


if __name__ == "__main__":
    main()

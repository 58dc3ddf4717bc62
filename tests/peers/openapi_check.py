"""Validates an OpenAPI document (JSON on stdin) with openapi-spec-validator, a checker written
by others: the version is taken from the document's `openapi` field. Prints
{"errors": ["...", ...]}, empty when the document is valid. scripts/test installs the package."""

import json
import sys

from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator


def main():
    doc = json.load(sys.stdin)
    version = str(doc.get("openapi", ""))
    validator = OpenAPIV31SpecValidator if version.startswith("3.1") else OpenAPIV30SpecValidator
    errors = []
    for e in validator(doc).iter_errors():
        where = "/".join(str(p) for p in getattr(e, "absolute_path", []) or [])
        errors.append(f"{where}: {e.message}" if where else e.message)
    json.dump({"version": version, "errors": errors}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

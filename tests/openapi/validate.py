"""Validates the served OpenAPI document: the OpenAPI 3.1 schema (openapi-spec-validator),
then every request example against its request schema (JSON Schema 2020-12, the dialect
of OpenAPI 3.1), resolving `#/components/...` references inside the document.

    python validate.py openapi.json
"""

import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator


def main(path):
    with open(path) as f:
        doc = json.load(f)
    if not str(doc.get("openapi", "")).startswith("3.1."):
        sys.exit(f"not an OpenAPI 3.1 document: openapi = {doc.get('openapi')!r}")
    errors = list(OpenAPIV31SpecValidator(doc).iter_errors())
    for e in errors:
        print(f"openapi: {e.message} at {'/'.join(map(str, e.absolute_path))}", file=sys.stderr)
    checked, failed = 0, len(errors)
    for route, item in doc["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody")
            if body is None:
                continue
            media = body["content"]["application/json"]
            if "example" not in media:
                print(f"{method.upper()} {route}: the request body has no example", file=sys.stderr)
                failed += 1
                continue
            # The schema with the document's components beside it, so that its
            # `#/components/schemas/...` references resolve.
            schema = {**media["schema"], "components": doc.get("components", {})}
            for e in Draft202012Validator(schema).iter_errors(media["example"]):
                print(f"{method.upper()} {route}: example: {e.message}", file=sys.stderr)
                failed += 1
            checked += 1
    operations = sum(len(item) for item in doc["paths"].values())
    print(f"openapi: {operations} operations, {checked} request examples checked, {failed} problems")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1])

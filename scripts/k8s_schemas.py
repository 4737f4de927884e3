#!/usr/bin/env python3
"""Write kubeconform's JSON schemas from a Kubernetes API server's OpenAPI v2 document.

kubeconform downloads its schemas from the internet by default, which cannot be done
here; the API server in use publishes the same definitions. One stand-alone, strict
schema per kind, named as kubeconform looks them up: {kind}-{group prefix}-{version}.json.

    kubectl get --raw /openapi/v2 | scripts/k8s_schemas.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def resolve(node: Any, definitions: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline $refs; a recursive reference (e.g. JSONSchemaProps) becomes {}."""
    if isinstance(node, list):
        return [resolve(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return {} if name in seen else resolve(definitions[name], definitions, (*seen, name))
    out = {key: resolve(value, definitions, seen) for key, value in node.items()}
    # Strict: unknown fields are errors, as in a server-side apply with field validation.
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    if "format" in out and out["format"] == "int-or-string":
        out = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    return out


def file_name(group: str, version: str, kind: str) -> str:
    prefix = group.split(".", maxsplit=1)[0]
    suffix = f"-{prefix.lower()}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json"


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    definitions = json.load(sys.stdin)["definitions"]
    count = 0
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            schema = resolve(definition, definitions, (name,))
            schema["$schema"] = "http://json-schema.org/schema#"
            path = out / file_name(gvk["group"], gvk["version"], gvk["kind"])
            path.write_text(json.dumps(schema))
            count += 1
    print(f"{count} schemas in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

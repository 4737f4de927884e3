#!/usr/bin/env python3
"""Write kubeconform's JSON schemas from a Kubernetes API server's OpenAPI v2 document,
or from CustomResourceDefinition files.

kubeconform downloads its schemas from the internet by default, which cannot be done
here; the API server in use publishes the same definitions. One stand-alone, strict
schema per kind, named as kubeconform looks them up: {kind}-{group prefix}-{version}.json.

    kubectl get --raw /openapi/v2 | scripts/k8s_schemas.py OUT_DIR
    scripts/k8s_schemas.py --crds OUT_DIR crds/*.yaml

The server's document holds only the custom resources installed at the time (none on a
fresh cluster, stale ones on a cluster with an older install), so the project's own kinds
are skipped there and written from its CRD files instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT_GROUP = "roadlab.dev"


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


# kubeconform's openapi2jsonschema does this conversion in Python with its own
# dependencies; these few lines are all of it this project needs.
def structural(node: Any) -> Any:
    """A CRD's structural OpenAPI v3 schema as a strict JSON schema."""
    if isinstance(node, list):
        return [structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-int-or-string"):
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    out = {key: structural(value) for key, value in node.items() if not key.startswith("x-")}
    if node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", True)
    elif out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def crd_schemas(out: Path, files: list[str]) -> int:
    count = 0
    for file in files:
        for crd in yaml.safe_load_all(Path(file).read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                schema = structural(version["schema"]["openAPIV3Schema"])
                # The API server adds these to every custom resource's schema.
                properties = schema.setdefault("properties", {})
                properties.setdefault("apiVersion", {"type": "string"})
                properties.setdefault("kind", {"type": "string"})
                properties.setdefault("metadata", {"type": "object"})
                schema["$schema"] = "http://json-schema.org/schema#"
                name = file_name(spec["group"], version["name"], spec["names"]["kind"])
                (out / name).write_text(json.dumps(schema))
                count += 1
    return count


def main() -> None:
    if sys.argv[1] == "--crds":
        out = Path(sys.argv[2])
        out.mkdir(parents=True, exist_ok=True)
        count = crd_schemas(out, sys.argv[3:])
        print(f"{count} schemas of custom resources in {out}", file=sys.stderr)
        return
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    definitions = json.load(sys.stdin)["definitions"]
    count = 0
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            if gvk["group"] == PROJECT_GROUP:
                continue
            schema = resolve(definition, definitions, (name,))
            schema["$schema"] = "http://json-schema.org/schema#"
            path = out / file_name(gvk["group"], gvk["version"], gvk["kind"])
            path.write_text(json.dumps(schema))
            count += 1
    print(f"{count} schemas in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

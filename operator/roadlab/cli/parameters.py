"""Lab names, `--param` values and the Lab manifest `kubectl lab start` creates. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from roadlab.api import naming
from roadlab.api.lab import LabSpec, ParamValue
from roadlab.catalog.loader import check_known_parameters, resolve_parameters
from roadlab.catalog.schema import LabDefinition, ParameterError
from roadlab.cli.common import Manifest


def sanitize_name(text: str, max_length: int = naming.MAX_LAB_NAME_LENGTH) -> str:
    """Lowercase DNS-label form of text: other characters become '-', at most max_length."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return name[:max_length].rstrip("-")


def default_lab_name(learner: str, lab_id: str) -> str:
    """<learner>-<lab id> as a valid Lab name; the learner part is shortened, never the id."""
    lab_part = sanitize_name(lab_id)
    room = naming.MAX_LAB_NAME_LENGTH - len(lab_part) - 1
    learner_part = sanitize_name(learner, room) if room > 0 else ""
    return f"{learner_part}-{lab_part}" if learner_part else lab_part


def valid_lab_name(name: str) -> bool:
    return len(name) <= naming.MAX_LAB_NAME_LENGTH and naming.is_dns1123_label(name)


_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_INTEGER = re.compile(r"[+-]?[0-9]+")


def type_parameter(name: str, raw: str, declared_type: str | None) -> ParamValue:
    """A --param value converted to its declared type; undeclared: inferred from the text."""
    lowered = raw.strip().lower()
    if declared_type == "integer":
        if _INTEGER.fullmatch(raw.strip()) is None:
            raise ParameterError(f"parameter {name!r}: {raw!r} is not an integer")
        return int(raw.strip())
    if declared_type == "boolean":
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
        raise ParameterError(f"parameter {name!r}: {raw!r} is not a boolean (true or false)")
    if declared_type == "string":
        return raw
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.fullmatch(raw) is not None:
        return int(raw)
    return raw


def parse_parameters(
    pairs: Sequence[str], definition: LabDefinition | None
) -> dict[str, ParamValue]:
    """--param k=v pairs, typed by the catalog; with a definition, fully validated."""
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"--param {pair!r}: expected NAME=VALUE")
        if key in raw:
            raise ParameterError(f"parameter {key!r} is given more than once")
        raw[key] = value
    if definition is None:
        return {key: type_parameter(key, value, None) for key, value in raw.items()}
    check_known_parameters(definition, raw, quoted=False)
    typed = {
        key: type_parameter(key, value, definition.parameters[key].type)
        for key, value in raw.items()
    }
    resolve_parameters(definition, typed)  # constraints and required parameters
    return typed


def lab_manifest(
    name: str, lab_id: str, learner: str, ttl: str, parameters: Mapping[str, ParamValue]
) -> Manifest:
    """The Lab to create; LabSpec validates lab id, learner and TTL (ValidationError)."""
    spec = LabSpec(lab=lab_id, learner=learner, ttl=ttl, parameters=dict(parameters))
    body = spec.model_dump(
        by_alias=True, exclude_none=True, mode="json", exclude={"validation", "extensions"}
    )
    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": {"name": name},
        "spec": body,
    }

"""Field paths into Kubernetes objects, as written in lab.yaml.

    spec.replicas
    spec.metrics[0].resource.target.averageUtilization
    spec.template.spec.containers[name=web].resources.requests.cpu
    metadata.labels["istio-injection"]        (keys containing dots or other specials)

A segment is a bare key (anything but . [ ] " '), or a bracket: [N] list index,
["key"] / ['key'] map key, [field=value] the first list element whose field equals value;
the field may be a dotted path of bare keys: route[destination.subset=v2].weight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeAlias

MAX_PATH_LENGTH = 256


@dataclass(frozen=True)
class Key:
    name: str


@dataclass(frozen=True)
class Index:
    position: int


@dataclass(frozen=True)
class Match:
    field: str
    value: str


Segment: TypeAlias = Key | Index | Match

_BARE = re.compile(r"[^.\[\]\"']+")
_INDEX = re.compile(r"\[([0-9]{1,6})\]")
_QUOTED = re.compile(r"\[(\"([^\"]*)\"|'([^']*)')\]")
_MATCH = re.compile(r"\[([^.\[\]\"'=]+(?:\.[^.\[\]\"'=]+)*)=(\"([^\"]*)\"|'([^']*)'|([^\]\"']*))\]")


class PathError(ValueError):
    """A field path does not follow the syntax above."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def parse_path(text: str) -> tuple[Segment, ...]:
    """Parse a field path, raising PathError with the position of the problem."""
    if not isinstance(text, str) or not text:
        raise PathError("a field path must be a non-empty string")
    if len(text) > MAX_PATH_LENGTH:
        raise PathError(f"field path is longer than {MAX_PATH_LENGTH} characters")
    segments: list[Segment] = []
    pos = 0
    expect_key = True  # at the start or right after a dot
    while pos < len(text):
        char = text[pos]
        if char == "[":
            if quoted := _QUOTED.match(text, pos):
                segments.append(
                    Key(quoted.group(2) if quoted.group(2) is not None else quoted.group(3))
                )
                pos = quoted.end()
            elif index := _INDEX.match(text, pos):
                segments.append(Index(int(index.group(1))))
                pos = index.end()
            elif match := _MATCH.match(text, pos):
                value = next(g for g in match.group(3, 4, 5) if g is not None)
                segments.append(Match(match.group(1), value))
                pos = match.end()
            else:
                raise PathError(
                    f"invalid bracket in field path {text!r} at position {pos}: use [0], "
                    '["key"] or [field=value]'
                )
            expect_key = False
        elif char == ".":
            if expect_key:
                raise PathError(f"empty segment in field path {text!r} at position {pos}")
            pos += 1
            expect_key = True
            if pos == len(text):
                raise PathError(f"field path {text!r} ends with a dot")
        elif expect_key and (bare := _BARE.match(text, pos)):
            segments.append(Key(bare.group(0)))
            pos = bare.end()
            expect_key = False
        else:
            raise PathError(f"unexpected {char!r} in field path {text!r} at position {pos}")
    return tuple(segments)


def resolve(document: Any, path: str | tuple[Segment, ...]) -> Any:
    """The value at path, or MISSING when any step does not exist."""
    segments = parse_path(path) if isinstance(path, str) else path
    current = document
    for segment in segments:
        if isinstance(segment, Key):
            if not isinstance(current, dict) or segment.name not in current:
                return MISSING
            current = current[segment.name]
        elif isinstance(segment, Index):
            if not isinstance(current, list) or segment.position >= len(current):
                return MISSING
            current = current[segment.position]
        else:
            if not isinstance(current, list):
                return MISSING
            found = MISSING
            for item in current:
                if _as_text(_field(item, segment.field)) == segment.value:
                    found = item
                    break
            if found is MISSING:
                return MISSING
            current = found
    return current


def _field(item: Any, dotted: str) -> Any:
    """item[a][b] for "a.b", or None when a step is missing."""
    for key in dotted.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(key)
    return item


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

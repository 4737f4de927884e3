"""Comparing observed field values with the values a lab expects.

Equality is exact, with two relaxations: numbers compare numerically (2 == 2.0, and a
number against a numeric string such as a ConfigMap value "2"), and a resource quantity
with a unit compares by amount ("100m" == "0.1", "1Gi" == "1024Mi"). Ordering
(at least / at most) works on numbers and quantities only. Booleans are never numbers.
"""

from __future__ import annotations

import json
from fractions import Fraction

from roadlab.probes.quantity import QuantityError, has_unit, parse_quantity


def _number(value: object) -> Fraction | None:
    """The numeric value of a number or quantity string, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        try:
            return parse_quantity(value)
        except QuantityError:
            return None
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def values_equal(actual: object, expected: object) -> bool:
    """Whether the observed value satisfies `fieldEquals: expected`."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if actual == expected and type(actual) is type(expected):
        return True
    if _is_number(actual) and _is_number(expected):
        return actual == expected
    numeric = _is_number(actual) or _is_number(expected)
    if numeric or has_unit(actual) or has_unit(expected):
        left, right = _number(actual), _number(expected)
        return left is not None and right is not None and left == right
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            values_equal(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            values_equal(actual[k], expected[k]) for k in actual
        )
    return False


def compare(actual: object, bound: object) -> int | None:
    """-1, 0 or 1 comparing two numbers/quantities; None when either is not numeric."""
    left, right = _number(actual), _number(bound)
    if left is None or right is None:
        return None
    return (left > right) - (left < right)


def as_text(value: object) -> str:
    """How a value is matched against a regex: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))

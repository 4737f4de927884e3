"""Kubernetes resource quantities ("100m", "0.1", "128Mi", "1e3") as exact fractions.

Follows resource.Quantity's serialisation: an optionally signed decimal number, then at
most one suffix: binary (Ki Mi Gi Ti Pi Ei), decimal SI (n u m "" k M G T P E) or a
decimal exponent (e3, E-2).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_QUANTITY_LENGTH = 64
MAX_EXPONENT = 30

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_HAS_UNIT = re.compile(r"[A-Za-z]")


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Fraction:
    """The exact value of a quantity: "100m" -> 1/10, "128Mi" -> 134217728, 2 -> 2."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        return Fraction(value)
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a quantity")
    text = value.strip()
    match = _QUANTITY.fullmatch(text) if len(text) <= MAX_QUANTITY_LENGTH else None
    if match is None:
        raise QuantityError(
            f"{value!r} is not a quantity (expected e.g. 100m, 0.5, 128Mi, 2Gi, 1e3)"
        )
    number = Fraction(str(match.group("number")))
    suffix = match.group("suffix") or ""
    if suffix in _BINARY:
        return number * Fraction(1024) ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * Fraction(10) ** _DECIMAL[suffix]
    exponent = int(suffix[1:])
    if abs(exponent) > MAX_EXPONENT:
        raise QuantityError(f"{value!r}: exponent out of range")
    return number * Fraction(10) ** exponent


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except QuantityError:
        return False
    return True


def has_unit(value: object) -> bool:
    """Whether value is a string quantity with a unit suffix ("100m", "1Gi", "1e3")."""
    return isinstance(value, str) and bool(_HAS_UNIT.search(value)) and is_quantity(value)


def millicores(value: str | int | float) -> float:
    """CPU quantity in millicores ("250m" -> 250.0, "123456n" -> 0.123456)."""
    return float(parse_quantity(value) * 1000)


def mebibytes(value: str | int | float) -> float:
    """Memory quantity in MiB ("131072Ki" -> 128.0)."""
    return float(parse_quantity(value) / 1024**2)

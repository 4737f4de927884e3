"""Field paths, Kubernetes quantities and value comparison used by the probes."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadlab.probes.paths import MISSING, Index, Key, Match, PathError, parse_path, resolve
from roadlab.probes.quantity import (
    QuantityError,
    has_unit,
    mebibytes,
    millicores,
    parse_quantity,
)
from roadlab.probes.values import as_text, compare, values_equal

HPA: dict[str, Any] = {
    "metadata": {
        "name": "web",
        "labels": {"istio-injection": "enabled", "app.kubernetes.io/name": "web"},
    },
    "spec": {
        "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 50}}}
        ],
        "template": {
            "spec": {
                "containers": [
                    {"name": "init", "resources": {}},
                    {"name": "web", "resources": {"requests": {"cpu": "100m"}}},
                ]
            }
        },
        "flag": False,
        "nothing": None,
    },
}


# --- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("spec.replicas", (Key("spec"), Key("replicas"))),
        (
            "spec.metrics[0].resource.target.averageUtilization",
            (
                Key("spec"),
                Key("metrics"),
                Index(0),
                Key("resource"),
                Key("target"),
                Key("averageUtilization"),
            ),
        ),
        (
            "spec.template.spec.containers[name=web].resources.requests.cpu",
            (
                Key("spec"),
                Key("template"),
                Key("spec"),
                Key("containers"),
                Match("name", "web"),
                Key("resources"),
                Key("requests"),
                Key("cpu"),
            ),
        ),
        (
            'metadata.labels["istio-injection"]',
            (Key("metadata"), Key("labels"), Key("istio-injection")),
        ),
        ("metadata.labels['a.b/c']", (Key("metadata"), Key("labels"), Key("a.b/c"))),
        ('containers[name="my web"]', (Key("containers"), Match("name", "my web"))),
        ("data.answer", (Key("data"), Key("answer"))),
        ("items[2][0]", (Key("items"), Index(2), Index(0))),
        ("a.b-c_d/e", (Key("a"), Key("b-c_d/e"))),
    ],
)
def test_parse_path(path: str, segments: tuple[object, ...]) -> None:
    assert parse_path(path) == segments


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "non-empty"),
        ("spec..replicas", "empty segment"),
        (".spec", "empty segment"),
        ("spec.", "ends with a dot"),
        ("spec[", "invalid bracket"),
        ("spec[x]", "invalid bracket"),
        ("spec[-1]", "invalid bracket"),
        ('spec["unterminated]', "invalid bracket"),
        ("spec]", "unexpected ']'"),
        ('spec.replicas"', "unexpected"),
        ("a" * 300, "longer than 256"),
    ],
)
def test_parse_path_errors(path: str, message: str) -> None:
    with pytest.raises(PathError, match=message):
        parse_path(path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.metrics[0].resource.target.averageUtilization", 50),
        ("spec.template.spec.containers[name=web].resources.requests.cpu", "100m"),
        ("spec.template.spec.containers[1].resources.requests.cpu", "100m"),
        ('metadata.labels["istio-injection"]', "enabled"),
        ('metadata.labels["app.kubernetes.io/name"]', "web"),
        ("spec.flag", False),
        ("spec.nothing", None),
        ("spec.metrics[1]", MISSING),
        ("spec.template.spec.containers[name=db].resources", MISSING),
        ("spec.missing.deeper", MISSING),
        ("spec.flag.deeper", MISSING),
        ("spec.metrics.name", MISSING),
        ("spec.metrics[0][0]", MISSING),
        ("metadata[name=x]", MISSING),
    ],
)
def test_resolve(path: str, value: object) -> None:
    assert resolve(HPA, path) == value if value is not MISSING else resolve(HPA, path) is MISSING


def test_resolve_match_on_non_string_field() -> None:
    doc = {"ports": [{"port": 80, "name": "http"}, {"port": 443, "ready": True}]}
    assert resolve(doc, "ports[port=443].port") == 443
    assert resolve(doc, "ports[ready=true].port") == 443


# --- quantities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Fraction(1, 10)),
        ("0.1", Fraction(1, 10)),
        ("1", 1),
        ("1.5", Fraction(3, 2)),
        (".5", Fraction(1, 2)),
        ("128Mi", 128 * 2**20),
        ("1Gi", 2**30),
        ("1k", 1000),
        ("1M", 10**6),
        ("2E", 2 * 10**18),
        ("1e3", 1000),
        ("1E3", 1000),
        ("5e-3", Fraction(5, 1000)),
        ("123456n", Fraction(123456, 10**9)),
        ("10u", Fraction(10, 10**6)),
        ("-1", -1),
        ("+2", 2),
        (" 3 ", 3),
        (2, 2),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(text: str | int | float, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", "m", "1mm", "1 m", "1KiB", "1K", "1e", "1e400", "abc", "1..2", ".", True, None]
)
def test_parse_quantity_rejects(text: Any) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_quantity_conversions() -> None:
    assert millicores("250m") == 250
    assert millicores("1") == 1000
    assert millicores("123456n") == pytest.approx(0.123456)
    assert mebibytes("131072Ki") == 128
    assert mebibytes("1Gi") == 1024
    assert has_unit("100m") and has_unit("1e3") and not has_unit("0.1") and not has_unit("web")


DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}  # fmt: skip
BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted({**DECIMAL, **BINARY})))
def test_quantity_integer_with_suffix(number: int, suffix: str) -> None:
    assert parse_quantity(f"{number}{suffix}") == number * {**DECIMAL, **BINARY}[suffix]


@given(st.integers(min_value=0, max_value=10**9))
def test_millicores_and_cores_agree(milli: int) -> None:
    cores = Fraction(milli, 1000)
    decimal = f"{milli // 1000}.{milli % 1000:03d}"
    assert parse_quantity(f"{milli}m") == cores == parse_quantity(decimal)
    assert values_equal(f"{milli}m", decimal)


@given(st.integers(min_value=-(10**6), max_value=10**6), st.integers(min_value=-9, max_value=9))
def test_quantity_exponent(number: int, exponent: int) -> None:
    assert parse_quantity(f"{number}e{exponent}") == number * Fraction(10) ** exponent


@given(st.text(max_size=40))
def test_parse_quantity_never_raises_anything_else(text: str) -> None:
    try:
        value = parse_quantity(text)
    except QuantityError:
        return
    assert isinstance(value, Fraction)


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["m", "", "k", "Mi", "Gi"]),
)
def test_compare_is_numeric(a: int, b: int, suffix: str) -> None:
    expected = (a > b) - (a < b)
    assert compare(f"{a}{suffix}", f"{b}{suffix}") == expected


# --- comparison -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "expected", "equal"),
    [
        (2, 2, True),
        (2, 2.0, True),
        (2, 3, False),
        ("42", "42", True),
        ("42", 42, True),  # a ConfigMap value against a YAML number
        ("42.0", "42", False),  # strings without units compare as text
        ("0.1", "100m", True),
        ("100m", "0.1", True),
        ("1Gi", "1024Mi", True),
        ("128Mi", "134217728", True),
        ("128Mi", "128M", False),
        ("web", "web", True),
        ("web", "Web", False),
        (True, True, True),
        (True, 1, False),
        (1, True, False),
        ("true", True, False),
        (None, None, True),
        (None, 0, False),
        ([1, "2"], [1, 2], True),
        ({"a": "100m"}, {"a": "0.1"}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ("100m", "abc", False),
    ],
)
def test_values_equal(actual: object, expected: object, equal: bool) -> None:
    assert values_equal(actual, expected) is equal


def test_compare_and_as_text() -> None:
    assert compare("200m", "0.1") == 1
    assert compare(2, "2") == 0
    assert compare("1Gi", 2**31) == -1
    assert compare("web", 1) is None
    assert compare(True, 1) is None
    assert as_text(True) == "true"
    assert as_text(None) == "null"
    assert as_text(3) == "3"
    assert as_text({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'


VIRTUAL_SERVICE = {
    "spec": {
        "http": [
            {
                "route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10},
                    {"destination": "not-a-map", "weight": 0},
                ]
            }
        ]
    }
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.http[0].route[destination.subset=v2].weight", 10),
        ("spec.http[0].route[destination.subset=v1].weight", 90),
        ("spec.http[0].route[destination.subset=v3].weight", MISSING),
        ("spec.http[0].route[destination.host.deeper=x]", MISSING),
    ],
)
def test_resolve_match_on_a_dotted_field(path: str, value: object) -> None:
    found = resolve(VIRTUAL_SERVICE, path)
    assert found == value if value is not MISSING else found is MISSING


def test_parse_match_on_a_dotted_field() -> None:
    assert parse_path("route[destination.subset=v2].weight") == (
        Key("route"),
        Match("destination.subset", "v2"),
        Key("weight"),
    )

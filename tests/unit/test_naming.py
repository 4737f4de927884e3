from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadlab.api import naming


def test_api_coordinates() -> None:
    assert naming.API_VERSION == "roadlab.dev/v1alpha1"
    assert (naming.GROUP, naming.VERSION, naming.PLURAL, naming.KIND) == (
        "roadlab.dev",
        "v1alpha1",
        "labs",
        "Lab",
    )


def test_namespace_for() -> None:
    assert naming.namespace_for("smoke-alice") == "lab-smoke-alice"
    longest = "a" * naming.MAX_LAB_NAME_LENGTH
    assert len(naming.namespace_for(longest)) == 63


@pytest.mark.parametrize("name", ["", "a" * 60, "Upper", "a.b", "-a", "a-", "a_b"])
def test_namespace_for_rejects(name: str) -> None:
    with pytest.raises(ValueError, match="DNS-1123"):
        naming.namespace_for(name)


def test_labels() -> None:
    assert naming.labels("x", naming.COMPONENT_CHECK) == {
        "app.kubernetes.io/managed-by": "roadlab",
        "roadlab.dev/lab": "x",
        "roadlab.dev/component": "check",
    }
    with pytest.raises(ValueError, match="unknown component"):
        naming.labels("x", "bogus")


def test_dns_helpers() -> None:
    assert naming.is_dns1123_label("a-1")
    assert not naming.is_dns1123_label("a" * 64)
    assert naming.is_dns1035_label("web")
    assert not naming.is_dns1035_label("1web")
    assert naming.is_dns1123_subdomain("a.b-c.d")
    assert not naming.is_dns1123_subdomain("a..b")
    assert not naming.is_dns1123_subdomain("")
    assert not naming.is_dns1123_subdomain("a" * 254)


def test_check_job_name_is_deterministic_and_distinct() -> None:
    first = naming.check_job_name("smoke-alice", "token-1")
    assert first == naming.check_job_name("smoke-alice", "token-1")
    assert first != naming.check_job_name("smoke-alice", "token-2")
    assert first.startswith("check-smoke-alice-")
    # Same 48-char prefix, different lab: still different names.
    a, b = "a" * 58 + "x", "a" * 58 + "y"
    assert naming.check_job_name(a, "t") != naming.check_job_name(b, "t")


lab_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,57}[a-z0-9])?", fullmatch=True)


@given(lab_names, st.text(max_size=200))
def test_check_job_name_is_a_valid_label(lab_name: str, token: str) -> None:
    name = naming.check_job_name(lab_name, token)
    assert len(name) <= 63
    assert naming.is_dns1123_label(name)

"""helm_release: release Secrets encoded as Helm 3 writes them (JSON, gzip, base64, and the
Secret's own base64), read revision by revision; hostile Secrets read as no release."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from probe_support import FakeContext

from roadlab.probes import run_check, validate_check
from roadlab.probes.helm import (
    MAX_DECODED_BYTES,
    MAX_REVISIONS,
    ReleaseDecodeError,
    decode_release,
    merge_values,
    release_secret_name,
    release_secret_names,
)

CHART_DEFAULTS = {"replicaCount": 1, "version": "v1", "image": {"tag": "0.1.0", "pull": "Never"}}


def release_secret(
    revision: int,
    *,
    status: str = "superseded",
    chart_version: str = "0.1.0",
    config: dict[str, Any] | None = None,
    description: str = "Install complete",
    release: str = "greeter",
) -> dict[str, Any]:
    """A Secret as `kubectl get -o json` shows one Helm wrote."""
    body = {
        "name": release,
        "namespace": "lab-x",
        "version": revision,
        "info": {"status": status, "description": description},
        "chart": {
            "metadata": {"name": "greeter", "version": chart_version, "apiVersion": "v2"},
            "values": CHART_DEFAULTS,
        },
        "config": config or {},
        "manifest": "---\n# Source: greeter/templates/deployment.yaml\n",
    }
    helm_encoded = base64.b64encode(gzip.compress(json.dumps(body).encode()))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": release_secret_name(release, revision),
            "labels": {"owner": "helm", "name": release, "status": status},
        },
        "data": {"release": base64.b64encode(helm_encoded).decode()},
    }


def history(*secrets: dict[str, Any]) -> FakeContext:
    ctx = FakeContext()
    for secret in secrets:
        ctx.add(secret)
    return ctx


def installed_upgraded_rolled_back() -> FakeContext:
    values = {"replicaCount": 2, "version": "blue"}
    return history(
        release_secret(1, config=values),
        release_secret(2, chart_version="0.2.0", config=values, description="Upgrade complete"),
        release_secret(3, status="deployed", config=values, description="Rollback to 1"),
    )


FULL_CHECK = {
    "release": "greeter",
    "chartName": "greeter",
    "chartVersion": "0.1.0",
    "values": {"replicaCount": 2, "version": "blue", "image.tag": "0.1.0"},
    "minRevision": 3,
    "descriptionMatches": "^Rollback to 1$",
    "historyChartVersions": ["0.2.0"],
}


def test_install_upgrade_rollback_passes_with_its_history_as_evidence() -> None:
    ctx = installed_upgraded_rolled_back()
    result = run_check(ctx, "helm_release", FULL_CHECK)
    assert result.state == "Passed", result.message
    assert result.message == (
        'Helm release greeter: revision 3 (greeter-0.1.0) is deployed, "Rollback to 1" as expected'
    )
    assert result.evidence["history"] == (
        "1:greeter-0.1.0:superseded, 2:greeter-0.2.0:superseded, 3:greeter-0.1.0:deployed"
    )
    assert result.evidence["values.replicaCount"] == 2
    # Revisions 1 to 4 were asked for: the first miss after the history ends it.
    assert [name for _, _, name in ctx.reads] == [
        release_secret_name("greeter", n) for n in range(1, 5)
    ]


def test_an_upgrade_not_rolled_back_fails_with_every_reason() -> None:
    ctx = history(
        release_secret(1, config={"version": "blue"}),
        release_secret(2, status="deployed", chart_version="0.3.0", description="Upgrade complete"),
    )
    result = run_check(ctx, "helm_release", FULL_CHECK)
    assert result.state == "Failed"
    assert result.message == (
        'Helm release greeter: revision 2 runs chart version "0.3.0", expected "0.1.0"; '
        "value replicaCount is 1, expected 2; "
        'value version is "v1", expected "blue"; '
        "it has 2 revisions, expected at least 3 (`helm history` lists them); "
        'revision 2 says "Upgrade complete", expected it to match "^Rollback to 1$"; '
        'no revision ran chart version "0.2.0"'
    )


def test_a_failed_upgrade_is_not_deployed() -> None:
    ctx = history(
        release_secret(1, config={"replicaCount": 2}),
        release_secret(2, status="failed", description='Upgrade "greeter" failed: timed out'),
    )
    result = run_check(ctx, "helm_release", {"release": "greeter"})
    assert result.state == "Failed"
    assert 'revision 2 is "failed", expected "deployed"' in result.message


def test_no_release_says_how_to_install_one() -> None:
    ctx = FakeContext()
    result = run_check(ctx, "helm_release", {"release": "greeter"})
    assert result.state == "Failed"
    assert result.message == (
        "Helm release greeter not found in namespace lab-x (no Secret "
        "sh.helm.release.v1.greeter.v1): install it with `helm install greeter <chart>`"
    )
    assert len(ctx.reads) == MAX_REVISIONS


def test_pruned_history_starts_later() -> None:
    # helm upgrade --history-max 2 deleted revisions 1 to 3.
    ctx = history(
        release_secret(4, chart_version="0.2.0"),
        release_secret(5, status="deployed", description="Rollback to 3"),
    )
    result = run_check(ctx, "helm_release", {"release": "greeter", "minRevision": 5})
    assert result.state == "Passed", result.message
    assert result.evidence["history"] == "4:greeter-0.2.0:superseded, 5:greeter-0.1.0:deployed"


def test_user_values_override_chart_defaults_like_helm() -> None:
    merged = merge_values(CHART_DEFAULTS, {"image": {"tag": "0.2.0"}, "version": None})
    assert merged == {"replicaCount": 1, "image": {"tag": "0.2.0", "pull": "Never"}}


def test_a_forged_secret_is_not_a_release() -> None:
    forged = release_secret(1, status="deployed")
    forged["type"] = "Opaque"
    result = run_check(history(forged), "helm_release", {"release": "greeter"})
    assert result.state == "Failed"
    assert "no readable revision" in result.message
    assert "not helm.sh/release.v1" in result.message


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not base64 at all!", "not base64"),
        (base64.b64encode(b"\x1f\x8bgarbage"), "not valid gzip"),
        (base64.b64encode(gzip.compress(b"[1, 2]")), "not a JSON object"),
        (base64.b64encode(b"{not json"), "not JSON"),
    ],
)
def test_undecodable_releases_are_refused(payload: bytes, reason: str) -> None:
    secret = {"type": "helm.sh/release.v1", "data": {"release": base64.b64encode(payload).decode()}}
    with pytest.raises(ReleaseDecodeError, match=reason):
        decode_release(secret)


def test_a_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"{" + b" " * (MAX_DECODED_BYTES + 10) + b"}")
    assert len(bomb) < 20_000  # small on the wire, 8 MB unpacked
    secret = {
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(base64.b64encode(bomb)).decode()},
    }
    with pytest.raises(ReleaseDecodeError, match="larger than"):
        decode_release(secret)


def test_the_readable_names_are_the_revisions_in_order() -> None:
    names = release_secret_names("greeter")
    assert names[0] == "sh.helm.release.v1.greeter.v1"
    assert names[-1] == f"sh.helm.release.v1.greeter.v{MAX_REVISIONS}"
    assert len(set(names)) == MAX_REVISIONS


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"release": "Greeter"}, "release"),
        ({"release": "greeter", "values": {"a..b": 1}}, "values"),
        ({"release": "greeter", "descriptionMatches": "("}, "invalid regular expression"),
        ({"release": "greeter", "minRevision": MAX_REVISIONS + 1}, "minRevision"),
        ({"release": "greeter", "chartVersin": "0.1.0"}, "chartVersin"),
    ],
)
def test_bad_arguments_are_refused_at_catalog_load(args: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_check("helm_release", args)


def test_the_upgrade_counts_while_it_is_the_current_revision() -> None:
    ctx = history(
        release_secret(1),
        release_secret(2, status="deployed", chart_version="0.2.0", description="Upgrade complete"),
    )
    args = {"release": "greeter", "minRevision": 2, "historyChartVersions": ["0.2.0"]}
    assert run_check(ctx, "helm_release", args).state == "Passed"

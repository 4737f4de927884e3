"""The reconciler against the typed in-memory API (kube_fake): a Lab provisioned, a check
run on the warm checker or as a Job, and a drifted guardrail put back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from kube_fake import FakeKubeApi

from roadlab.api import checker_wire, conditions
from roadlab.catalog.schema import LabDefinition
from roadlab.controller import check_runs, checks, reconciler, warm, workspace
from roadlab.controller.settings import CheckSettings, PortalSettings
from roadlab.kube.operator_api import OperatorApi

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
KEY = "k" * 40
WARM = CheckSettings("roadlab-system", "img", (), warm_checker=True, checker_key=KEY)
JOBS_ONLY = CheckSettings("roadlab-system", "img")
LAB_ID = ("roadlab.dev/v1alpha1", "Lab", None, "alice")


def new_lab() -> dict[str, Any]:
    return {
        "apiVersion": "roadlab.dev/v1alpha1",
        "kind": "Lab",
        "metadata": {"name": "alice", "uid": "uid-1", "generation": 1, "resourceVersion": "1"},
        "spec": {"lab": "smoke", "learner": "alice"},
    }


def provisioned(api: FakeKubeApi, catalog: dict[str, LabDefinition]) -> dict[str, Any]:
    lab = new_lab()
    api.add(lab)
    outcome = reconciler.reconcile_lab(api, catalog, lab, NOW, "roadlab-system")
    return {**lab, "status": outcome.status_patch()}


def test_the_fake_is_an_operator_api() -> None:
    assert isinstance(FakeKubeApi(), OperatorApi)


def test_a_new_lab_is_provisioned_with_its_guardrails_and_the_learners_lab_role(
    catalog: dict[str, LabDefinition],
) -> None:
    api = FakeKubeApi()
    lab = provisioned(api, catalog)
    assert conditions.is_true(reconciler.conditions_of(lab), conditions.PROVISIONED)
    kinds = [key[1] for key in api.applied]
    assert kinds[0] == "Namespace"
    assert ("rbac.authorization.k8s.io/v1", "ClusterRole", None, "roadlab-learner-alice") in (
        api.applied
    )
    binding = api.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "roadlab-learner-alice")
    assert binding is not None
    assert binding["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    # Environment objects are seeded (created once), never re-applied.
    assert api.created and all(key[2] == "lab-alice" for key in api.created)


def answered(document: Mapping[str, Any]) -> Any:
    def answer(path: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        assert path == checker_wire.proxy_path("roadlab-system")
        assert checker_wire.verify(KEY.encode(), body, headers.get(checker_wire.SIGNATURE_HEADER))
        return 200, json.dumps(document).encode()

    return answer


def all_passed(catalog: dict[str, LabDefinition]) -> dict[str, Any]:
    ids = [t.id for t in catalog["smoke"].tasks]
    return {"version": 1, "results": [{"id": i, "state": "Passed", "message": "ok"} for i in ids]}


def test_a_short_check_runs_on_the_warm_checker_and_its_results_are_the_patch(
    catalog: dict[str, LabDefinition],
) -> None:
    api = FakeKubeApi(proxy_answer=answered(all_passed(catalog)))
    lab = provisioned(api, catalog)
    started = check_runs.start_check(api, catalog, lab, "t1", NOW, WARM)
    assert started.wait_reason is None
    assert started.status_patch is not None
    assert started.status_patch["lastCheck"]["job"] == checks.WARM_JOB
    assert started.status_patch["lastCheck"]["state"] == "Passed"
    assert started.status_patch["progress"].startswith(str(len(catalog["smoke"].tasks)))
    assert started.collected is not None
    assert started.collected.completed_now
    spec = json.loads(api.proxied[0][1])
    assert spec["namespace"] == "lab-alice"
    assert not [key for key in api.created if key[1] == "Job"]


def test_without_a_warm_checker_the_check_is_a_job(catalog: dict[str, LabDefinition]) -> None:
    api = FakeKubeApi(proxy_answer=None)  # the proxy answers 503: no checker pod
    lab = provisioned(api, catalog)
    started = check_runs.start_check(api, catalog, lab, "t1", NOW, WARM)
    assert started.warm_fallback is not None and "503" in started.warm_fallback
    assert started.status_patch is not None
    assert started.status_patch["lastCheck"]["state"] == "Running"
    assert [key for key in api.created if key[1] == "Job"]
    # Switched off, the warm checker is not even asked.
    api2 = FakeKubeApi()
    check_runs.start_check(api2, catalog, provisioned(api2, catalog), "t1", NOW, JOBS_ONLY)
    assert api2.proxied == []


def test_a_warm_check_past_its_time_limit_is_timed_out(catalog: dict[str, LabDefinition]) -> None:
    def hang(*_: Any) -> Any:
        raise urllib3.exceptions.ReadTimeoutError(None, "/v1/check", "read timed out")  # type: ignore[arg-type]

    api = FakeKubeApi(proxy_answer=hang)
    lab = provisioned(api, catalog)
    started = check_runs.start_check(api, catalog, lab, "t1", NOW, WARM)
    assert started.status_patch is not None
    assert started.status_patch["lastCheck"]["state"] == "TimedOut"
    assert {t["state"] for t in started.status_patch["tasks"]} == {"Error"}


def test_a_forged_or_garbled_answer_becomes_errors_not_results(
    catalog: dict[str, LabDefinition],
) -> None:
    api = FakeKubeApi(proxy_answer=lambda *_: (200, b"<html>not a result</html>"))
    lab = provisioned(api, catalog)
    started = check_runs.start_check(api, catalog, lab, "t1", NOW, WARM)
    assert started.status_patch is not None
    assert {t["state"] for t in started.status_patch["tasks"]} == {"Error"}
    assert started.status_patch["lastCheck"]["state"] == "Error"


def test_one_warm_run_per_lab_at_a_time(catalog: dict[str, LabDefinition]) -> None:
    api = FakeKubeApi(proxy_answer=answered(all_passed(catalog)))
    lab = provisioned(api, catalog)
    assert warm.claim("alice")
    try:
        started = check_runs.start_check(api, catalog, lab, "t1", NOW, WARM)
    finally:
        warm.release("alice")
    assert started.wait_reason == "a check of this lab is running"
    assert api.proxied == []


def test_the_long_probe_of_a_load_test_stays_a_job(catalog: dict[str, LabDefinition]) -> None:
    assert checks.runs_warm(catalog["smoke"], warm_checker=True)
    assert not checks.runs_warm(catalog["hpa"], warm_checker=True)
    assert not checks.runs_warm(catalog["smoke"], warm_checker=False)


def test_the_key_comes_from_the_secret_when_not_given(catalog: dict[str, LabDefinition]) -> None:
    api = FakeKubeApi(proxy_answer=answered(all_passed(catalog)))
    api.secrets[("roadlab-system", warm.KEY_SECRET, "key")] = KEY + "\n"
    settings = CheckSettings("roadlab-system", "img", (), warm_checker=True)
    warm._key_cache.forget()
    started = check_runs.start_check(api, catalog, provisioned(api, catalog), "t1", NOW, settings)
    assert started.collected is not None


@pytest.mark.parametrize("drift", ["quota", "none"])
def test_a_drifted_guardrail_is_applied_again_and_only_it(
    catalog: dict[str, LabDefinition], drift: str
) -> None:
    api = FakeKubeApi()
    lab = provisioned(api, catalog)
    quota_key = ("v1", "ResourceQuota", "lab-alice", "roadlab-quota")
    observed = api.get(*quota_key[:2], quota_key[3], quota_key[2])
    assert observed is not None
    if drift == "quota":
        observed["spec"]["hard"]["pods"] = "999"
    observed["status"] = {"used": {"pods": "1"}}  # the cluster's own change: no drift
    api.applied.clear()
    restored = reconciler.restore_guardrail(api, catalog, lab, observed, NOW, "roadlab-system")
    assert restored == (drift == "quota")
    assert api.applied == ([quota_key] if drift == "quota" else [])


def test_the_portal_gets_an_access_token_and_a_workspace_once(
    catalog: dict[str, LabDefinition],
) -> None:
    api = FakeKubeApi()
    lab = new_lab()
    api.add(lab)
    portal = PortalSettings(access_tokens=True, workspace_image="toolbox:1")
    outcome = reconciler.reconcile_lab(api, catalog, lab, NOW, "roadlab-system", portal=portal)
    secret_key = ("v1", "Secret", "roadlab-system", "roadlab-portal-alice")
    secret = api.objects[secret_key]
    token = workspace.token_of(secret)
    assert len(token) >= 32
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert outcome.status.portal_token_sha256 == workspace.token_digest(token)
    deployment = api.objects[("apps/v1", "Deployment", "lab-alice", "workspace")]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "learner"
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    # Again: the same token (the Secret is only created once), the same digest.
    api.secrets[("roadlab-system", "roadlab-portal-alice", "token")] = token
    again = reconciler.reconcile_lab(
        api, catalog, {**lab, "status": outcome.status_patch()}, NOW, "roadlab-system",
        portal=portal,
    )  # fmt: skip
    assert workspace.token_of(api.objects[secret_key]) == token
    assert again.status.portal_token_sha256 == outcome.status.portal_token_sha256


def test_without_a_workspace_image_there_is_no_workspace(
    catalog: dict[str, LabDefinition],
) -> None:
    api = FakeKubeApi()
    lab = new_lab()
    api.add(lab)
    reconciler.reconcile_lab(api, catalog, lab, NOW, "roadlab-system", portal=PortalSettings())
    assert ("apps/v1", "Deployment", "lab-alice", "workspace") not in api.objects

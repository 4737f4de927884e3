"""Hostile input: generated Lab specs and parameters through the real API and operator.

Every input must be refused by the API server (the CRD schema and its CEL rules) or be
reported in the Lab's conditions with a reason; the operator must not crash; and nothing a
Lab makes may land outside its own namespace (the check Jobs in the operator's namespace
aside). ROADLAB_FUZZ_EXAMPLES sets the number of generated Labs (CI: 30).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from kubernetes import client

from .lifecycle import LAB_LABEL, census
from .operator_fixtures import OPERATOR_NAMESPACE, Labs, OperatorProcess
from .waiting import wait_until

EXAMPLES = int(os.environ.get("ROADLAB_FUZZ_EXAMPLES", "30"))
CATALOG_LABS = ["smoke", "light", "hpa", "istio", "triton", "mlflow"]
KNOWN_REASONS = {
    "Ready", "Provisioned", "Provisioning", "InvalidSpec", "UnknownLab", "InvalidParameters",
    "PrerequisiteMissing", "RenderFailed", "ApplyFailed", "Expired", "WithinTTL",
}  # fmt: skip

# Payloads that would break out of a naive template: YAML structure, extra documents, Jinja
# expressions and sandbox escapes, cluster-scoped objects, other namespaces.
HOSTILE = [
    "x\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: pwned}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for x in range(10**9) %}x{% endfor %}",
    "a: b\nnamespace: kube-system",
    '"; kind: ClusterRoleBinding',
    "${HOME}",
    "' OR 1=1 --",
    "\x00\x01\x7f",
    "🙂" * 80,
    "a" * 300,
]

# Any Unicode JSON can carry (lone surrogates cannot be encoded at all).
characters = st.characters(exclude_categories=("Cs",))


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(characters, max_size=max_size)


scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    st.booleans(),
    text(300),
    st.sampled_from(HOSTILE),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(8), inner),
    max_leaves=6,
)
parameter_names = st.one_of(
    st.sampled_from(["replicas", "answer", "minReplicas", "maxReplicas", "targetCPU",
                     "canaryWeight", "maxP95Ms", "experiment", "minRuns", "modelName"]),
    text(70),
)  # fmt: skip
specs = st.fixed_dictionaries(
    {
        "lab": st.one_of(st.sampled_from(CATALOG_LABS), text(50)),
        "learner": st.one_of(st.sampled_from(["alice", "bob@example.com"]), text(70)),
    },
    optional={
        "ttl": st.one_of(st.sampled_from(["5m", "1h", "7d", "8d", "0m", "1m", "2h30m"]),
                         text(40)),
        "parameters": st.dictionaries(parameter_names, values, max_size=6),
        "validation": st.fixed_dictionaries(
            {}, optional={"intervalSeconds": st.integers(-5, 100000),
                          "timeoutSeconds": st.integers(-5, 2000)}),
        "unknownField": values,
    },
)  # fmt: skip


def is_the_learners_lab_grant(api: client.ApiClient, kind: str, name: str, lab: str) -> bool:
    """The one cluster-scoped grant a Lab makes: its learner's get/watch/patch on that Lab
    alone (roadlab-learner-<lab>), exactly as the operator builds it, whatever the spec."""
    if name != f"roadlab-learner-{lab}":
        return False
    rbac = client.RbacAuthorizationV1Api(api)
    if kind == "ClusterRole":
        rules = rbac.read_cluster_role(name).rules or []
        return [(r.api_groups, r.resources, r.resource_names, r.verbs) for r in rules] == [
            (["roadlab.dev"], ["labs"], [lab], ["get", "watch", "patch"])
        ]
    binding = rbac.read_cluster_role_binding(name)
    subjects = {(s.kind, s.name, s.namespace) for s in binding.subjects or []}
    return (
        binding.role_ref.name == name
        and ("ServiceAccount", "learner", f"lab-{lab}") in (subjects)
        and all(s[0] in ("ServiceAccount", "User") for s in subjects)
        and len(subjects) == 2
    )


def is_the_portal_token(api: client.ApiClient, name: str, lab: str) -> bool:
    """The Lab's portal access token (roadlab-portal-<lab>): one random token, no more."""
    if name != f"roadlab-portal-{lab}":
        return False
    secret = client.CoreV1Api(api).read_namespaced_secret(name, OPERATOR_NAMESPACE)
    return set(secret.data or {}) == {"token"} and secret.type == "Opaque"


def escaped(api: client.ApiClient, name: str) -> list[str]:
    """Objects labelled for this Lab outside its namespace (check Jobs and pods, the
    learner's grant on their own Lab and the portal's access token excepted)."""
    found = []
    for kind, meta in census(api, f"{LAB_LABEL}={name}"):
        where = meta.get("namespace")
        if kind == "Namespace" and meta["name"] == f"lab-{name}":
            continue
        if where == f"lab-{name}":
            continue
        if where == OPERATOR_NAMESPACE and kind in {"Job", "Pod"}:
            continue
        if (
            where == OPERATOR_NAMESPACE
            and kind == "Secret"
            and is_the_portal_token(api, meta["name"], name)
        ):
            continue
        if kind in {"ClusterRole", "ClusterRoleBinding"} and is_the_learners_lab_grant(
            api, kind, meta["name"], name
        ):
            continue
        found.append(f"{kind} {where}/{meta['name']}")
    return found


def outcome(labs: Labs, name: str) -> dict[str, Any] | None:
    """The Lab's Ready condition once the operator has handled it."""
    status = labs.get(name).get("status") or {}
    for condition in status.get("conditions") or []:
        if condition["type"] == "Ready":
            return dict(condition)
    return None


def try_lab(spec: dict[str, Any], labs: Labs, api: client.ApiClient, alive: Any) -> None:
    """Create a Lab from spec: refused by the API with a 4xx, or reported with a reason."""
    name = f"fuzz-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "roadlab.dev/v1alpha1", "kind": "Lab", "metadata": {"name": name},
            "spec": spec}  # fmt: skip
    try:
        labs.objects.create_cluster_custom_object("roadlab.dev", "v1alpha1", "labs", body)
    except client.ApiException as error:
        # Refused by the schema: a clear 4xx, never a server error.
        assert error.status in {400, 422}, (error.status, error.body)
        assert "Lab.roadlab.dev" in (error.body or "") or error.status == 400, error.body
        event(f"refused by the API server ({error.status})")
        return
    labs.created.append(name)
    try:
        ready = wait_until(lambda: outcome(labs, name), f"a Ready condition on {name}", timeout=60)
        assert ready["reason"] in KNOWN_REASONS, ready
        event(f"accepted: Ready={ready['status']} ({ready['reason']})")
        if ready["status"] != "True":
            assert ready["message"], ready
        assert alive(), "the operator process died"
        assert escaped(api, name) == []
    finally:
        labs.delete(name)


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@FUZZ_SETTINGS
@given(spec=specs)
def test_generated_specs_are_refused_or_reported(
    spec: dict[str, Any], labs: Labs, api: client.ApiClient, operator: OperatorProcess
) -> None:
    try_lab(spec, labs, api, operator.alive)


# Specs that pass the schema (a well-formed lab id, learner and ttl), so that the
# parameters and settings reach the operator, which must report what is wrong.
admitted_specs = st.fixed_dictionaries(
    {
        "lab": st.sampled_from([*CATALOG_LABS, "no-such-lab"]),
        "learner": st.sampled_from(["alice", "bob@example.com"]),
        "ttl": st.sampled_from(["5m", "1h", "7d", "8d", "1m", "2h30m"]),
        "parameters": st.dictionaries(parameter_names, values, max_size=4),
    }
)


@FUZZ_SETTINGS
@given(spec=admitted_specs)
def test_hostile_parameters_are_reported_as_conditions(
    spec: dict[str, Any], labs: Labs, api: client.ApiClient, operator: OperatorProcess
) -> None:
    try_lab(spec, labs, api, operator.alive)


def test_operator_survived_the_fuzzing(operator: OperatorProcess) -> None:
    if not operator.alive():
        pytest.fail(f"the operator died; see {operator.log_path}")
    assert "roadlab_reconciles_total" in operator.metrics()

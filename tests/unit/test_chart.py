"""The Helm chart: its RBAC against what the operator grants, its values schema and its
documentation (no cluster, no helm), and what it renders (with helm, when it is built;
skipped otherwise). Alert and dashboard metric names: tests/unit/test_metrics.py."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from roadlab.api import naming
from roadlab.catalog.schema import LabDefinition
from roadlab.controller.guardrails import learner_role, namespace_manifest
from roadlab.controller.settings import secret_names

CHART = Path(__file__).resolve().parents[2] / "charts" / "roadlab"
NAMESPACE = "roadlab-system"
# helm built by `go install` (cluster/build.sh) defaults to Kubernetes 1.20 without a
# cluster, below the chart's kubeVersion; render for the local cluster's minor.
KUBE_VERSION = "1.33.0"


def chart_documents(template: str) -> list[dict[str, Any]]:
    """The template's YAML documents with the Helm directives' lines left out."""
    text = (CHART / "templates" / template).read_text()
    plain = "\n".join(line for line in text.splitlines() if "{{" not in line)
    return [doc for doc in yaml.safe_load_all(plain) if doc]


def cluster_role(name: str) -> list[dict[str, Any]]:
    for doc in chart_documents("rbac.yaml"):
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == name:
            return list(doc["rules"])
    raise AssertionError(f"no ClusterRole {name} in the chart")


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
        and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        and not rule.get("resourceNames")
        for rule in rules
    )


def test_operator_holds_every_permission_it_grants_learners(
    catalog: dict[str, LabDefinition],
) -> None:
    # RBAC escalation prevention: the operator cannot grant what it does not hold.
    operator = cluster_role("roadlab-operator")
    for definition in catalog.values():
        role = learner_role(
            "x",
            "lab-x",
            definition.environment.learner_rules,
            may_label_namespace=bool(definition.environment.learner_namespace_labels),
        )
        missing = [
            (group, resource, verb)
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
            if not allows(operator, group, resource, verb)
        ]
        assert not missing, f"lab {definition.id}: the operator's ClusterRole lacks {missing}"


def test_checker_cannot_read_secrets_or_write_anything() -> None:
    checker = cluster_role("roadlab-checker")
    assert not allows(checker, "", "secrets", "get")
    for rule in checker:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_learner_namespace_policy_matches_the_operator() -> None:
    policy, binding = chart_documents("lab-policies.yaml")[:2]
    assert policy["kind"] == "ValidatingAdmissionPolicy"
    assert policy["metadata"]["name"] == naming.LEARNER_NAMESPACE_POLICY
    assert binding["metadata"]["name"] == naming.LEARNER_NAMESPACE_POLICY
    assert binding["spec"]["policyName"] == naming.LEARNER_NAMESPACE_POLICY
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    # It reads the annotation the operator writes, on Namespaces labelled as Roadlab's.
    editable = policy["spec"]["variables"][0]["expression"]
    assert f"'{naming.ANNOTATION_LEARNER_LABELS}'" in editable
    selector = policy["spec"]["matchConstraints"]["objectSelector"]["matchExpressions"]
    assert selector == [{"key": naming.LABEL_LAB, "operator": "Exists"}]
    # The operator may read the binding (its prerequisite check) and nothing else of it.
    rules = [
        rule
        for rule in cluster_role("roadlab-operator")
        if "admissionregistration.k8s.io" in rule["apiGroups"]
    ]
    assert rules == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingadmissionpolicybindings"],
            "verbs": ["get"],
            "resourceNames": [naming.LEARNER_NAMESPACE_POLICY],
        }
    ]


# --- values.schema.json ------------------------------------------------------------------


def default_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


@pytest.fixture(scope="module")
def schema_errors() -> Any:
    """errors(values): the schema's error messages for values (none: Helm accepts them)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((CHART / "values.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)

    def errors(values: dict[str, Any]) -> list[str]:
        return [error.message for error in validator.iter_errors(values)]

    return errors


def with_value(path: str, value: Any) -> dict[str, Any]:
    """The chart's default values with one value set, as `--set path=value` would."""
    values = copy.deepcopy(default_values())
    *parents, leaf = path.split(".")
    node = values
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return values


def test_default_values_match_the_schema(schema_errors: Any) -> None:
    assert schema_errors(default_values()) == []


# Numbers too: YAML's `cpu: 0.5` is a float, and Kubernetes takes it as the quantity 0.5.
QUANTITIES = [0.5, 1, 1e3, 0, "500m", "1Gi", "1e3", "1.5", ".5", "2E", "100Ki", "1e-3", "+1"]
NOT_QUANTITIES = ["abc", "-1", -1, -0.5, "1.5.5", "1K", "1 Gi", "", "1Gib", True, None]


@pytest.mark.parametrize("quantity", QUANTITIES)
@pytest.mark.parametrize("path", ["resources.requests.cpu", "resources.limits.memory"])
def test_schema_accepts_kubernetes_quantities(schema_errors: Any, path: str, quantity: Any) -> None:
    assert schema_errors(with_value(path, quantity)) == []


@pytest.mark.parametrize("quantity", NOT_QUANTITIES)
def test_schema_refuses_what_is_not_a_quantity(schema_errors: Any, quantity: Any) -> None:
    # Negative ones included: the API server refuses negative requests and limits.
    assert schema_errors(with_value("resources.requests.cpu", quantity))


@pytest.mark.parametrize("interval", ["30s", "1m30s", "1h", "500ms", "2m", "1d12h", ""])
def test_schema_accepts_prometheus_durations(schema_errors: Any, interval: str) -> None:
    assert schema_errors(with_value("serviceMonitor.interval", interval)) == []


@pytest.mark.parametrize("interval", ["1m30", "abc", "30 s", "30S", "1s1m", "-1s", 30, "1.5m"])
def test_schema_refuses_what_is_not_a_duration(schema_errors: Any, interval: Any) -> None:
    assert schema_errors(with_value("serviceMonitor.interval", interval))


VALID = [
    ("imagePullSecrets", [{"name": "regcred"}]),
    ("nodeSelector", {"kubernetes.io/os": "linux"}),
    ("tolerations", [{"operator": "Exists"}]),
    ("tolerations", [{"key": "a", "operator": "Equal", "value": "b", "effect": "NoSchedule"}]),
    ("affinity", {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}),
    ("priorityClassName", "system-cluster-critical"),
    ("podAnnotations", {"example.com/team": "labs"}),
    ("podLabels", {"team": "labs"}),
    ("podSecurityContext", {"runAsNonRoot": True, "fsGroup": 65532}),
    ("securityContext", {"readOnlyRootFilesystem": True}),
    ("serviceMonitor.labels", {"release": "kube-prometheus-stack"}),
    ("prometheusRule.labels", {"release": "kube-prometheus-stack"}),
]
INVALID = [
    ("imagePullSecrets", ["regcred"]),  # a name alone: Kubernetes wants {name: ...}
    ("imagePullSecrets", [{}]),
    ("nodeSelector", {"disk": 1}),
    ("tolerations", [{"operator": "Maybe"}]),
    ("tolerations", [{"effects": "NoSchedule"}]),
    ("affinity", {"nodeAfinity": {}}),
    ("priorityClassName", 1),
    ("podLabels", {"team": None}),
    ("serviceMonitor.labels", ["release"]),
    ("prometheusRule.labels", {"release": True}),
]


@pytest.mark.parametrize(("path", "value"), VALID)
def test_schema_accepts_the_usual_pod_values(schema_errors: Any, path: str, value: Any) -> None:
    assert schema_errors(with_value(path, value)) == []


@pytest.mark.parametrize(("path", "value"), INVALID)
def test_schema_refuses_malformed_pod_values(schema_errors: Any, path: str, value: Any) -> None:
    assert schema_errors(with_value(path, value))


# --- documentation -----------------------------------------------------------------------


def documented_values() -> list[tuple[str, bool]]:
    """(dotted path, documented) of every value (leaf key) in values.yaml: documented when
    a `# --` comment block is right above it or above one of its parents."""
    keys = list(values_yaml_keys())
    return [
        (path, documented)
        for path, documented in keys
        if not any(other.startswith(f"{path}.") for other, _ in keys)
    ]


def values_yaml_keys() -> Iterator[tuple[str, bool]]:
    parents: list[tuple[int, str, bool]] = []  # indent, key, documented
    comment: list[str] = []
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        match = re.match(r"( *)([A-Za-z][\w.-]*):", line)
        if match:
            indent = len(match[1])
            parents = [p for p in parents if p[0] < indent]
            documented = any(c.startswith("# --") for c in comment) or any(p[2] for p in parents)
            path = ".".join([*(p[1] for p in parents), match[2]])
            parents.append((indent, match[2], documented))
            yield path, documented
        comment = []


def test_every_value_is_documented_in_values_yaml() -> None:
    undocumented = [path for path, documented in documented_values() if not documented]
    assert not undocumented


def test_every_value_is_in_the_readme_table() -> None:
    # A value's row, or its parent's (`resources` covers resources.requests.cpu).
    readme = (CHART / "README.md").read_text()
    rows = set(re.findall(r"^\| `([\w.]+)` \|", readme, re.MULTILINE))
    missing = [
        path
        for path, _ in documented_values()
        if not any(path == row or path.startswith(f"{row}.") for row in rows)
    ]
    assert not missing


# --- rendered by helm --------------------------------------------------------------------


def helm_binary() -> str | None:
    cache = Path(os.environ.get("ROADLAB_CACHE", Path.home() / ".cache" / "roadlab"))
    return shutil.which("helm") or shutil.which("helm", path=str(cache / "bin"))


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """render(values): the chart's objects as `helm template` renders them with values."""
    helm = helm_binary()
    if helm is None:
        pytest.skip("helm is not built (cluster/build.sh)")
    directory = tmp_path_factory.mktemp("values")

    def rendered(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        file = directory / "values.json"  # JSON is YAML: typed values, as in a values file
        file.write_text(json.dumps(values or {}))
        done = subprocess.run(
            [helm, "template", "roadlab", str(CHART), "--namespace", NAMESPACE,
             "--kube-version", KUBE_VERSION, "--values", str(file)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]

    return rendered


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name} rendered")


def operator_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    template: dict[str, Any] = find(objects, "Deployment", "roadlab-operator")["spec"]["template"]
    return template


def test_default_pod_keeps_its_hardened_security_context(render: Any) -> None:
    pod = operator_pod(render())["spec"]
    defaults = default_values()
    assert pod["securityContext"] == defaults["podSecurityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    for absent in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity"):
        assert absent not in pod
    assert "ROADLAB_IMAGE_PULL_SECRETS" not in {e["name"] for e in container["env"]}


def test_pod_values_reach_the_operator_pod(render: Any) -> None:
    values = {
        "imagePullSecrets": [{"name": "regcred"}, {"name": "mirror"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"operator": "Exists"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "priorityClassName": "roadlab-critical",
        "podAnnotations": {"example.com/team": "labs", "prometheus.io/scrape": "false"},
        # The selector's label may not be replaced: the Deployment would select nothing.
        "podLabels": {"team": "labs", "app.kubernetes.io/name": "other"},
        "resources": {"requests": {"cpu": 0.5, "memory": "1Gi"}, "limits": {"cpu": 1e3}},
    }
    objects = render(values)
    template = operator_pod(objects)
    pod = template["spec"]
    for key in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity"):
        assert pod[key] == values[key]
    assert pod["priorityClassName"] == "roadlab-critical"
    assert template["metadata"]["annotations"] == {
        "example.com/team": "labs",
        "prometheus.io/scrape": "false",
        "prometheus.io/port": "9090",
    }
    labels = template["metadata"]["labels"]
    assert labels["team"] == "labs"
    assert labels["app.kubernetes.io/name"] == "roadlab"
    selector = find(objects, "Deployment", "roadlab-operator")["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    container = pod["containers"][0]
    # Numbers stay numbers (1e3 renders as 1000); Helm merges the rest from values.yaml.
    assert container["resources"]["requests"] == {"cpu": 0.5, "memory": "1Gi"}
    assert container["resources"]["limits"] == {"cpu": 1000, "memory": "512Mi"}
    # The check Jobs get the same secrets through the operator's settings.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert secret_names(env["ROADLAB_IMAGE_PULL_SECRETS"]) == ("regcred", "mirror")


def test_monitoring_objects_carry_their_selector_labels(render: Any) -> None:
    objects = render(
        {
            "serviceMonitor": {
                "enabled": True,
                "interval": "1m30s",
                "labels": {"release": "prom"},
            },
            "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
        }
    )
    monitor = find(objects, "ServiceMonitor", "roadlab-operator")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["interval"] == "1m30s"
    rule = find(objects, "PrometheusRule", "roadlab")
    assert rule["metadata"]["labels"]["release"] == "prom"
    alerts = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    # Whatever job label the scrape config gives, the operator's own gauge is there.
    assert alerts["RoadlabOperatorDown"] == f'absent(roadlab_build_info{{namespace="{NAMESPACE}"}})'
    assert "job=" not in "".join(alerts.values())
    # An empty interval leaves the ServiceMonitor to Prometheus's own.
    unset = render({"serviceMonitor": {"enabled": True, "interval": ""}})
    assert (
        "interval" not in find(unset, "ServiceMonitor", "roadlab-operator")["spec"]["endpoints"][0]
    )


def test_helm_test_pod_is_restricted_and_not_behind_the_service(render: Any) -> None:
    objects = render({"imagePullSecrets": [{"name": "regcred"}]})
    pod = find(objects, "Pod", "roadlab-test-connection")
    annotations = pod["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "test"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    # Pod Security "restricted": non-root, RuntimeDefault seccomp, no escalation, no caps.
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    # The operator's image, and its metrics through the Service the chart makes.
    deployment = operator_pod(objects)["spec"]["containers"][0]
    assert container["image"] == deployment["image"]
    service = find(objects, "Service", "roadlab-operator-metrics")
    assert f"http://roadlab-operator-metrics.{NAMESPACE}.svc:9090/metrics" in container["args"][0]
    # Were it selected, the Service would send scrapes to the test pod too.
    assert not service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_builtin_roadmaps_render_with_the_chart_labels(render: Any) -> None:
    files = {
        path.stem: yaml.safe_load(path.read_text())
        for path in sorted((CHART / "roadmaps").glob("*.yaml"))
    }
    objects = render({"commonLabels": {"team": "labs"}})
    roadmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Roadmap"}
    assert set(roadmaps) == set(files)
    for name, roadmap in roadmaps.items():
        assert roadmap["apiVersion"] == naming.API_VERSION
        assert roadmap["spec"] == files[name]["spec"]  # numbers stay numbers, order stays
        labels = roadmap["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "roadlab"
        assert labels["team"] == "labs"
    assert not [o for o in render({"roadmaps": {"builtin": False}}) if o["kind"] == "Roadmap"]


def test_enrollment_policy_and_public_keys_role_render(render: Any) -> None:
    objects = render()
    policy = find(objects, "ValidatingAdmissionPolicy", naming.LEARNER_ENROLLMENT_POLICY)
    condition = policy["spec"]["matchConditions"][0]["expression"]
    assert f"system:serviceaccount:{NAMESPACE}:{naming.enrollee_name('')}" in condition
    find(objects, "ValidatingAdmissionPolicyBinding", naming.LEARNER_ENROLLMENT_POLICY)
    role = find(objects, "Role", naming.PUBLIC_KEYS_CONFIGMAP)
    assert role["metadata"]["namespace"] == NAMESPACE
    binding = find(objects, "RoleBinding", naming.PUBLIC_KEYS_CONFIGMAP)
    assert binding["subjects"][0]["name"] == "system:authenticated"


def test_the_release_namespace_is_closed_to_lab_namespaces(render: Any) -> None:
    """Every pod of the release namespace, from every namespace that is not a lab's; lab
    namespaces are told apart by the label the operator gives them (and learners cannot
    remove)."""
    policy = find(render(), "NetworkPolicy", "roadlab-closed-to-labs")
    assert policy["metadata"]["namespace"] == NAMESPACE
    assert policy["spec"]["podSelector"] == {}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    not_a_lab = {"key": naming.LABEL_LAB, "operator": "DoesNotExist"}
    assert rule["from"] == [{"namespaceSelector": {"matchExpressions": [not_a_lab]}}]
    namespace = namespace_manifest("some-lab", "alice", "restricted")
    assert naming.LABEL_LAB in namespace["metadata"]["labels"]


def test_network_policy_values(render: Any) -> None:
    balancer = {"ipBlock": {"cidr": "203.0.113.0/24"}}
    policy = find(
        render({"networkPolicy": {"allowFrom": [balancer]}}),
        "NetworkPolicy",
        "roadlab-closed-to-labs",
    )
    assert policy["spec"]["ingress"][0]["from"][1:] == [balancer]
    disabled = render({"networkPolicy": {"enabled": False}})
    assert not [obj for obj in disabled if obj["kind"] == "NetworkPolicy"]


def test_lab_istio_routing_may_name_only_the_labs_own_services(render: Any) -> None:
    objects = render({})
    policy = find(objects, "ValidatingAdmissionPolicy", "roadlab-lab-mesh")
    binding = find(objects, "ValidatingAdmissionPolicyBinding", "roadlab-lab-mesh")
    assert binding["spec"] == {"policyName": "roadlab-lab-mesh", "validationActions": ["Deny"]}
    assert policy["spec"]["failurePolicy"] == "Fail"
    constraints = policy["spec"]["matchConstraints"]
    assert constraints["namespaceSelector"]["matchExpressions"] == [
        {"key": naming.LABEL_LAB, "operator": "Exists"}
    ]
    (rule,) = constraints["resourceRules"]
    assert rule["apiGroups"] == ["networking.istio.io"]
    assert rule["resources"] == ["virtualservices", "destinationrules"]
    # What the API server does with it is the istio lab's e2e test (a learner naming another
    # lab's Service is refused, their own FQDN is not).

"""The Helm chart's RBAC against what the operator grants (no cluster, no helm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from roadlab import naming
from roadlab.guardrails import learner_role
from roadlab.models import LabDefinition

CHART = Path(__file__).resolve().parents[2] / "charts" / "roadlab"


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

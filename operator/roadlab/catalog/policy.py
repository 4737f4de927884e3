"""Lab policy: which extra learner rules a lab.yaml may ask for without loosening the
guardrails. Pure; the controller's guardrails build the Role from rules that pass here.
"""

from __future__ import annotations

from collections.abc import Sequence

from roadlab.catalog.schema import PolicyRule

RBAC_GROUP = "rbac.authorization.k8s.io"

# Resources an extra learner rule may never touch: they are the guardrails.
_PROTECTED_RESOURCES = frozenset({"resourcequotas", "limitranges", "networkpolicies", "namespaces"})
_PROTECTED_VERBS = frozenset({"escalate", "bind", "impersonate"})


def check_learner_rules(rules: Sequence[PolicyRule]) -> None:
    """Refuse extra learner rules that could loosen the guardrails (ValueError)."""
    for index, rule in enumerate(rules):
        where = f"learnerRules[{index}]"
        values = [*rule.api_groups, *rule.resources, *rule.verbs, *(rule.resource_names or [])]
        if any("*" in value for value in values):
            raise ValueError(f"{where}: wildcards are not allowed")
        if RBAC_GROUP in rule.api_groups:
            raise ValueError(f"{where}: RBAC objects are not allowed")
        touched = {resource.split("/", 1)[0] for resource in rule.resources}
        if touched & _PROTECTED_RESOURCES:
            raise ValueError(
                f"{where}: {sorted(touched & _PROTECTED_RESOURCES)} are guardrails; "
                "learners may not change them"
            )
        if set(rule.verbs) & _PROTECTED_VERBS:
            raise ValueError(f"{where}: verbs {sorted(set(rule.verbs) & _PROTECTED_VERBS)}")

"""Deterministic names, labels and API coordinates shared by every Roadlab component."""

from __future__ import annotations

import hashlib
import re

GROUP = "roadlab.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Lab"
PLURAL = "labs"
SINGULAR = "lab"

# The CRD limits Lab names to this so that "lab-<name>" is a valid (63-char) namespace name.
MAX_LAB_NAME_LENGTH = 59
NAMESPACE_PREFIX = "lab-"

LABEL_LAB = f"{GROUP}/lab"
LABEL_COMPONENT = f"{GROUP}/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "roadlab"
# Learner ids may contain "@", which label values may not, so the learner goes in an annotation.
ANNOTATION_LEARNER = f"{GROUP}/learner"
# The namespace labels a lab lets its learner set (comma-separated), read by the admission
# policy below, which refuses every other change a learner makes to the lab Namespace.
ANNOTATION_LEARNER_LABELS = f"{GROUP}/learner-labels"
LEARNER_NAMESPACE_POLICY = "roadlab-learner-namespace-labels"

COMPONENT_NAMESPACE = "namespace"
COMPONENT_GUARDRAIL = "guardrail"
COMPONENT_LEARNER = "learner"
COMPONENT_CHECKER = "checker"
COMPONENT_ENVIRONMENT = "environment"
COMPONENT_CHECK = "check"
COMPONENT_PORTAL = "portal"  # a Lab's portal access token, in the operator's namespace
COMPONENTS = frozenset(
    {
        COMPONENT_NAMESPACE,
        COMPONENT_GUARDRAIL,
        COMPONENT_LEARNER,
        COMPONENT_CHECKER,
        COMPONENT_ENVIRONMENT,
        COMPONENT_CHECK,
        COMPONENT_PORTAL,
    }
)

DEFAULT_OPERATOR_NAMESPACE = "roadlab-system"
LEARNER_SERVICE_ACCOUNT = "learner"
LEARNER_ROLE = "roadlab-learner"
LEARNER_ROLE_BINDING = "roadlab-learner"
CHECKER_ROLE_BINDING = "roadlab-checker"
CHECKER_CLUSTER_ROLE = "roadlab-checker"
CHECKER_SERVICE_ACCOUNT = "roadlab-checker"
# In labs that list Helm releases: get on exactly those releases' Secrets, by name.
CHECKER_HELM_RELEASES_ROLE = "roadlab-checker-helm-releases"
# In labs whose probes make drift: get and patch on exactly the objects the lab names.
CHECKER_PATCH_ROLE = "roadlab-checker-patch"
# Binds a lab's delegate ServiceAccounts (a controller acting for the learner) to the
# learner's Role.
DELEGATE_ROLE_BINDING = "roadlab-learner-delegates"
# One per environment.ingressFrom entry, suffixed with its index.
NETPOL_FROM_PLATFORM_PREFIX = "roadlab-allow-from-platform-"
RESOURCE_QUOTA = "roadlab-quota"
LIMIT_RANGE = "roadlab-limits"
NETPOL_DEFAULT_DENY = "roadlab-default-deny-ingress"
NETPOL_SAME_NAMESPACE = "roadlab-allow-same-namespace"
NETPOL_FROM_OPERATOR = "roadlab-allow-from-operator"

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_JOB_PREFIX = "check-"
_HASH_LENGTH = 10


def is_dns1123_label(name: str) -> bool:
    """Namespace-style name: lowercase alphanumerics and '-', at most 63 characters."""
    return len(name) <= 63 and _DNS1123_LABEL.fullmatch(name) is not None


def is_dns1035_label(name: str) -> bool:
    """Service-style name: a DNS-1123 label that starts with a letter."""
    return len(name) <= 63 and _DNS1035_LABEL.fullmatch(name) is not None


def is_dns1123_subdomain(name: str) -> bool:
    """Most object names: dot-separated DNS-1123 labels, at most 253 characters."""
    return 0 < len(name) <= 253 and all(
        _DNS1123_LABEL.fullmatch(part) is not None for part in name.split(".")
    )


def namespace_for(lab_name: str) -> str:
    """The namespace a Lab owns: lab-<name>."""
    if len(lab_name) > MAX_LAB_NAME_LENGTH or not is_dns1123_label(lab_name):
        raise ValueError(
            f"Lab name {lab_name!r} must be a DNS-1123 label of at most "
            f"{MAX_LAB_NAME_LENGTH} characters"
        )
    return NAMESPACE_PREFIX + lab_name


def labels(lab_name: str, component: str) -> dict[str, str]:
    """The labels every object created for a Lab carries (used for selection and cleanup)."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}")
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_LAB: lab_name, LABEL_COMPONENT: component}


def check_job_name(lab_name: str, request_token: str) -> str:
    """A Job name unique per (lab, check request), stable across retries, at most 63 chars.

    The readable part is a truncated lab name; the hash over the full inputs keeps names
    distinct even when two long lab names share a prefix.
    """
    digest = hashlib.sha256(f"{lab_name}\0{request_token}".encode()).hexdigest()[:_HASH_LENGTH]
    room = 63 - len(_JOB_PREFIX) - 1 - _HASH_LENGTH
    stem = re.sub(r"[^a-z0-9-]", "-", lab_name[:room].lower()).strip("-")
    return f"{_JOB_PREFIX}{stem}-{digest}" if stem else f"{_JOB_PREFIX}{digest}"


# Setting this annotation (any new value, e.g. a timestamp) asks for a validation run.
ANNOTATION_CHECK_REQUESTED = f"{GROUP}/check-requested"
# Kopf's own annotations (progress, last handled configuration) on Labs.
KOPF_PREFIX = f"kopf.{GROUP}"
LEGACY_KOPF_ANNOTATIONS = (f"{GROUP}/kopf-managed", f"{GROUP}/last-handled-configuration")
# A learner asks for more time by setting this annotation to "<token>:<duration>" (a new
# token each time, e.g. milliseconds since the epoch): roadlab.api.extensions.
ANNOTATION_EXTEND_REQUESTED = f"{GROUP}/extend-requested"
# The learner's kubeconfig names its lab in the context's extensions, under this name.
KUBECONFIG_EXTENSION = f"{GROUP}/lab"
# The per-Lab ClusterRole (and its binding) that lets the learner read their own Lab and
# patch the two request annotations (pinned down by the LEARNER_LAB_POLICY admission policy).
LEARNER_LAB_POLICY = "roadlab-learner-lab-requests"


def learner_lab_role_name(lab_name: str) -> str:
    """The per-Lab ClusterRole and ClusterRoleBinding of the Lab's learner."""
    return f"roadlab-learner-{lab_name}"


# The learner portal (roadlab-portal). A Lab's access token: a Secret of the operator's
# namespace, owned by the Lab, whose PORTAL_ACCESS_KEY holds the token of the Lab's link;
# revoking the link is deleting the Secret (the operator makes a new one).
PORTAL_ACCESS_KEY = "token"
# The pod of the lab namespace whose shell the portal's terminal attaches to.
WORKSPACE_POD = "workspace"
WORKSPACE_CONTAINER = "shell"


def portal_access_secret(lab_name: str) -> str:
    """The Secret (in the operator's namespace) that holds a Lab's portal access token."""
    return f"roadlab-portal-{lab_name}"


# --- Roadmaps, Enrollments, Cohorts (roadlab.api.roadmap) -----------------------------------
LABEL_ENROLLMENT = f"{GROUP}/enrollment"
LABEL_MILESTONE = f"{GROUP}/milestone"
LABEL_ROADMAP = f"{GROUP}/roadmap"
LABEL_COHORT = f"{GROUP}/cohort"
# On a Lab started for an Enrollment: the operator records the Lab's result in the
# Enrollment before the Lab may go (so a Lab deleted while the operator is down loses nothing).
ENROLLMENT_RECORD_FINALIZER = f"{GROUP}/enrollment-record"
# The learner asks for a milestone's Lab: "<token>" (the next one) or "<token>/<milestone>".
ANNOTATION_START_REQUESTED = f"{GROUP}/start-requested"
LEARNER_ENROLLMENT_POLICY = "roadlab-learner-enrollment-requests"
# The kubeconfig of an enrolled learner names the Enrollment in the context's extensions.
KUBECONFIG_ENROLLMENT_EXTENSION = f"{GROUP}/enrollment"
# The certificates' signing key (a Secret) and its public half (a ConfigMap), in the
# operator's namespace.
SIGNING_KEY_SECRET = "roadlab-signing-key"
SIGNING_KEY_PRIVATE = "private.pem"
PUBLIC_KEYS_CONFIGMAP = "roadlab-public-keys"


def _stem_and_hash(stem: str, inputs: str, room: int) -> str:
    digest = hashlib.sha256(inputs.encode()).hexdigest()[:_HASH_LENGTH]
    cut = re.sub(r"[^a-z0-9-]", "-", stem.lower())[: room - 1 - _HASH_LENGTH].strip("-")
    return f"{cut}-{digest}" if cut else digest


def milestone_lab_name(enrollment: str, milestone: str) -> str:
    """The Lab of a milestone of an Enrollment: the same name on every attempt at creating
    it (so a retry finds it: 409), within a Lab name's limits."""
    plain = f"{enrollment}-{milestone}"
    if len(plain) <= MAX_LAB_NAME_LENGTH and is_dns1123_label(plain):
        return plain
    return _stem_and_hash(plain, f"{enrollment}\0{milestone}", MAX_LAB_NAME_LENGTH)


def cohort_enrollment_name(cohort: str, learner: str) -> str:
    """A Cohort's Enrollment of one learner. Learner names may hold capitals, dots, @ and _:
    when the plain name would change them, a hash of the exact name keeps two learners
    (Alice and alice) apart."""
    plain = f"{cohort}-{learner}"
    if len(plain) <= 63 and is_dns1123_label(plain):
        return plain
    return _stem_and_hash(plain, f"{cohort}\0{learner}", 63)


def enrollee_name(enrollment: str) -> str:
    """The enrolled learner's ServiceAccount (in the operator's namespace), ClusterRole and
    ClusterRoleBinding: their own Enrollment and its Labs, nothing else."""
    return f"roadlab-enrollee-{enrollment}"

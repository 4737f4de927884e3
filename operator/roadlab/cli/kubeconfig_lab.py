"""The lab (or Enrollment) a kubeconfig is for: so that a learner with only their lab's
kubeconfig can leave out the lab name (`kubectl lab status`), an enrolled learner the
Enrollment's (`kubectl lab roadmap`, `next`), and a refusal can say what they do reach.

`kubectl lab kubeconfig` names the lab in its context: an extension named
naming.KUBECONFIG_EXTENSION (`{lab: <name>}`), and the namespace lab-<name>;
`kubectl lab kubeconfig --enrollment` names the Enrollment: an extension named
naming.KUBECONFIG_ENROLLMENT_EXTENSION (`{enrollment: <name>}`). Reading them is pure
(`context_lab`, `context_enrollment`, `lab_in_kubeconfigs`); only `kubeconfig_documents`
reads files, and `lab_argument` asks the API for an enrolled learner's running lab.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from roadlab.api import naming
from roadlab.cli.common import EXIT_NOT_FOUND, EXIT_USAGE, CliError, Manifest
from roadlab.cli.session import App

KUBECONFIG_ENV = "KUBECONFIG"
DEFAULT_KUBECONFIG = Path(".kube") / "config"  # under the home directory
# The verbs a learner's kubeconfig allows on its own lab (the operator grants no more).
LEARNER_COMMANDS = ("status", "check", "hint", "guide", "watch", "extend")
# The verbs on an Enrollment that its learner may run (the enrollee's kubeconfig, or the
# kubeconfig of one of its Labs); the Enrollment's Labs also allow LEARNER_COMMANDS.
ENROLLEE_COMMANDS = ("roadmap", "next", "certificate")
# The verbs that read the certificates' public keys (a ConfigMap no learner may read).
PUBLIC_KEY_COMMANDS = ("public-key", "verify")
# The instructor's verbs on Roadmaps, Enrollments and Cohorts.
INSTRUCTOR_ROADMAP_COMMANDS = ("enroll", "cohort", "report")
ROADMAP_COMMANDS = (*ENROLLEE_COMMANDS, *PUBLIC_KEY_COMMANDS, *INSTRUCTOR_ROADMAP_COMMANDS)


def context_extension(lab: str) -> Manifest:
    """The entry of a kubeconfig context's `extensions` list that names the lab."""
    return {"name": naming.KUBECONFIG_EXTENSION, "extension": {"lab": lab}}


def enrollment_extension(enrollment: str) -> Manifest:
    """The entry of a kubeconfig context's `extensions` list that names the Enrollment."""
    return {"name": naming.KUBECONFIG_ENROLLMENT_EXTENSION, "extension": {"enrollment": enrollment}}


def _extension_value(context: Mapping[str, Any], name: str, key: str) -> str | None:
    for entry in context.get("extensions") or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            extension = entry.get("extension")
            value = extension.get(key) if isinstance(extension, Mapping) else None
            if isinstance(value, str) and value:
                return value
    return None


def context_enrollment(context: Mapping[str, Any]) -> str | None:
    """The Enrollment a kubeconfig context names (the roadlab.dev/enrollment extension)."""
    return _extension_value(context, naming.KUBECONFIG_ENROLLMENT_EXTENSION, "enrollment")


def context_lab(context: Mapping[str, Any]) -> str | None:
    """The lab a kubeconfig context (its `context` mapping) is for: the roadlab.dev/lab
    extension first, else a lab-<name> namespace; None when it names no lab."""
    lab = _extension_value(context, naming.KUBECONFIG_EXTENSION, "lab")
    if lab is not None:
        return lab
    namespace = context.get("namespace")
    if isinstance(namespace, str) and namespace.startswith(naming.NAMESPACE_PREFIX):
        lab = namespace.removeprefix(naming.NAMESPACE_PREFIX)
        return lab or None
    return None


@dataclass(frozen=True)
class KubeconfigLab:
    """What the kubeconfig in use says: its context (None: no current context), and the lab
    and the Enrollment that context names (None: none)."""

    context: str | None
    lab: str | None
    enrollment: str | None = None


def lab_in_kubeconfigs(
    documents: Sequence[Mapping[str, Any]], context_name: str | None
) -> KubeconfigLab:
    """The lab of the given context, else of the current one, over kubeconfig documents
    merged as kubectl merges $KUBECONFIG: the first file to set a value wins."""
    name = context_name or next(
        (str(doc["current-context"]) for doc in documents if doc.get("current-context")), None
    )
    if name is None:
        return KubeconfigLab(None, None)
    for document in documents:
        for entry in document.get("contexts") or []:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                context = entry.get("context") or {}
                return KubeconfigLab(name, context_lab(context), context_enrollment(context))
    return KubeconfigLab(name, None)


def kubeconfig_paths(explicit: str | None, env: Mapping[str, str]) -> list[Path]:
    """The files kubectl would read: --kubeconfig, else $KUBECONFIG's list, else
    ~/.kube/config."""
    if explicit:
        return [Path(explicit).expanduser()]
    listed = [part for part in env.get(KUBECONFIG_ENV, "").split(os.pathsep) if part]
    if listed:
        return [Path(part).expanduser() for part in listed]
    home = env.get("HOME")
    return [(Path(home) if home else Path.home()) / DEFAULT_KUBECONFIG]


def kubeconfig_documents(paths: Sequence[Path]) -> list[Manifest]:
    """The kubeconfig files that exist and parse as mappings (others are skipped: the API
    client reports a broken kubeconfig when it connects)."""
    documents = []
    for path in paths:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(loaded, dict):
            documents.append(loaded)
    return documents


def find_kubeconfig_lab(
    kubeconfig: str | None, context: str | None, env: Mapping[str, str]
) -> KubeconfigLab:
    return lab_in_kubeconfigs(kubeconfig_documents(kubeconfig_paths(kubeconfig, env)), context)


def no_lab_message(found: KubeconfigLab) -> str:
    if found.context is None:
        return "no lab name given and the kubeconfig has no current context; pass the lab name"
    return (
        f"no lab name given and the kubeconfig's context {found.context} names no lab; "
        "pass the lab name"
    )


def refusal_message(command: str, target: str | None, reachable: str | None) -> str | None:
    """One line for a 403 when the kubeconfig is a learner's for lab `reachable` and the
    command went beyond what a learner may do; None otherwise (the API's message stands)."""
    if reachable is None:
        return None
    reach = f"your kubeconfig's credentials reach only lab {reachable}"
    if target is not None and target != reachable:
        return f"{reach}, not lab {target}"
    if target is None:
        if command == "list":
            return f"{reach}, not the list of labs (see yours with: kubectl lab status)"
        return f"{reach}; kubectl lab {command} needs an instructor's kubeconfig"
    if command in LEARNER_COMMANDS:  # should be allowed: the API's own words say more
        return None
    allowed = ", ".join(LEARNER_COMMANDS)
    return f"{reach}, and kubectl lab {command} is not among what they allow there ({allowed})"


def roadmap_refusal_message(
    command: str, target_enrollment: str | None, found: KubeconfigLab
) -> str | None:
    """refusal_message for the verbs on Roadmaps, Enrollments, Cohorts and certificates
    (ROADMAP_COMMANDS), with a learner's kubeconfig: an Enrollment's (found.enrollment) or a
    lab's (found.lab); None otherwise (the API's message stands)."""
    if found.enrollment is not None:
        reach = f"your kubeconfig's credentials reach only enrollment {found.enrollment}"
        if target_enrollment is not None and target_enrollment != found.enrollment:
            return f"{reach}, not enrollment {target_enrollment}"
    elif found.lab is not None:
        reach = f"your kubeconfig's credentials reach only lab {found.lab}"
    else:
        return None
    if command in PUBLIC_KEY_COMMANDS:
        return (
            f"{reach}, not the certificates' public keys; verify offline with "
            "kubectl lab verify FILE --key KEY.pem (the keys: kubectl lab public-key, "
            "run by an instructor)"
        )
    if command in ENROLLEE_COMMANDS:
        if found.enrollment is not None:  # should be allowed: the API's own words say more
            return None
        return (
            f"{reach}; kubectl lab {command} needs the enrollment's kubeconfig "
            "(an instructor makes it: kubectl lab kubeconfig --enrollment NAME)"
        )
    return f"{reach}; kubectl lab {command} needs an instructor's kubeconfig"


def enrollee_lab_refusal(command: str, target: str | None, enrollment: str) -> str:
    """refusal_message for the lab verbs with an Enrollment's kubeconfig: it reaches the
    Enrollment and its own Labs."""
    reach = f"your kubeconfig's credentials reach only enrollment {enrollment} and its labs"
    if command in LEARNER_COMMANDS and target is not None:
        return f"{reach}, not lab {target} (see yours with: kubectl lab roadmap)"
    return f"{reach}; kubectl lab {command} needs an instructor's kubeconfig"


def positional_pair(first: str | None, second: str | None) -> tuple[str | None, str | None]:
    """`[LAB] X` from two optional positionals: one word is X, two are LAB then X."""
    return (None, first) if second is None else (first, second)


def lab_argument(app: App, args: argparse.Namespace) -> str:
    """args.name, else the lab of the kubeconfig in use (then written back to args.name, so
    that error messages name it); CliError (exit 2) when neither names one."""
    name: str | None = getattr(args, "name", None)
    if not name:
        found = find_kubeconfig_lab(app.kubeconfig, app.context, app.env)
        if found.lab is None and found.enrollment is not None:
            name = enrollment_lab_of(app, found.enrollment)
        elif found.lab is None:
            raise CliError(no_lab_message(found), EXIT_USAGE)
        else:
            name = found.lab
    args.name = name
    return name


def current_lab(enrollment: Mapping[str, Any]) -> str | None:
    """The Lab of the milestone an Enrollment works on (status.current), if it has one."""
    status = enrollment.get("status") or {}
    current = status.get("current")
    for record in status.get("milestones") or []:
        if isinstance(record, Mapping) and current and record.get("id") == current:
            lab = record.get("lab")
            return str(lab) if lab else None
    return None


def enrollment_lab_of(app: App, enrollment: str) -> str:
    """For an Enrollment's kubeconfig: the lab of its current milestone."""
    found = app.api.get_enrollment(enrollment)
    if found is None:
        raise CliError(f"enrollment {enrollment} not found", EXIT_NOT_FOUND)
    lab = current_lab(found)
    if lab is None:
        raise CliError(
            f"no lab name given and enrollment {enrollment} has no lab in progress; "
            "start the next milestone with: kubectl lab next",
            EXIT_USAGE,
        )
    return lab

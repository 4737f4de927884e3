"""The lab a kubeconfig is for: so that a learner with only their lab's kubeconfig can leave
out the lab name (`kubectl lab status`), and a refusal can say which lab they do reach.

`kubectl lab kubeconfig` names the lab in its context: an extension named
naming.KUBECONFIG_EXTENSION (`{lab: <name>}`), and the namespace lab-<name>. Reading them
is pure (`context_lab`, `lab_in_kubeconfigs`); only `kubeconfig_documents` reads files.
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
from roadlab.cli.common import EXIT_USAGE, CliError, Manifest
from roadlab.cli.session import App

KUBECONFIG_ENV = "KUBECONFIG"
DEFAULT_KUBECONFIG = Path(".kube") / "config"  # under the home directory
# The verbs a learner's kubeconfig allows on its own lab (the operator grants no more).
LEARNER_COMMANDS = ("status", "check", "hint", "guide", "watch", "extend")


def context_extension(lab: str) -> Manifest:
    """The entry of a kubeconfig context's `extensions` list that names the lab."""
    return {"name": naming.KUBECONFIG_EXTENSION, "extension": {"lab": lab}}


def context_lab(context: Mapping[str, Any]) -> str | None:
    """The lab a kubeconfig context (its `context` mapping) is for: the roadlab.dev/lab
    extension first, else a lab-<name> namespace; None when it names no lab."""
    for entry in context.get("extensions") or []:
        if isinstance(entry, Mapping) and entry.get("name") == naming.KUBECONFIG_EXTENSION:
            extension = entry.get("extension")
            lab = extension.get("lab") if isinstance(extension, Mapping) else None
            if isinstance(lab, str) and lab:
                return lab
    namespace = context.get("namespace")
    if isinstance(namespace, str) and namespace.startswith(naming.NAMESPACE_PREFIX):
        lab = namespace.removeprefix(naming.NAMESPACE_PREFIX)
        return lab or None
    return None


@dataclass(frozen=True)
class KubeconfigLab:
    """What the kubeconfig in use says: its context (None: no current context), and the lab
    that context names (None: none)."""

    context: str | None
    lab: str | None


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
                context = entry.get("context")
                return KubeconfigLab(name, context_lab(context or {}))
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


def positional_pair(first: str | None, second: str | None) -> tuple[str | None, str | None]:
    """`[LAB] X` from two optional positionals: one word is X, two are LAB then X."""
    return (None, first) if second is None else (first, second)


def lab_argument(app: App, args: argparse.Namespace) -> str:
    """args.name, else the lab of the kubeconfig in use (then written back to args.name, so
    that error messages name it); CliError (exit 2) when neither names one."""
    name: str | None = getattr(args, "name", None)
    if not name:
        found = find_kubeconfig_lab(app.kubeconfig, app.context, app.env)
        if found.lab is None:
            raise CliError(no_lab_message(found), EXIT_USAGE)
        name = found.lab
    args.name = name
    return name

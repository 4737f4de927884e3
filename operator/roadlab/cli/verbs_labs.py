"""Verbs on Labs in the cluster: start, list, status, kubeconfig (also an enrolled
learner's, for a whole roadmap: `kubeconfig --enrollment`), delete."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from roadlab.api import conditions as cond
from roadlab.api import naming
from roadlab.api.durations import format_duration
from roadlab.api.lab import LEARNER_PATTERN
from roadlab.catalog.loader import format_validation_error
from roadlab.catalog.schema import LabDefinition, ParameterError
from roadlab.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    MIN_TOKEN_SECONDS,
    CliError,
    Manifest,
)
from roadlab.cli.kubeconfig_lab import context_extension, enrollment_extension, lab_argument
from roadlab.cli.output import (
    clean_lab,
    condition_is_true,
    format_list,
    lab_list_json,
    lab_name,
    lab_spec,
    lab_status,
    optional_timestamp,
    resource_name,
    to_json,
    to_yaml,
)
from roadlab.cli.parameters import default_lab_name, lab_manifest, parse_parameters, valid_lab_name
from roadlab.cli.session import App, optional_catalog, show_status, wait_for
from roadlab.cli.waiting import delete_wait_step, start_wait_step


def token_lifetime(duration: timedelta, expires_at: str | None, now: datetime) -> int:
    """Seconds for the learner's token: the duration, cut at the lab's expiry, >= 10 minutes."""
    seconds = int(duration.total_seconds())
    expiry = optional_timestamp(expires_at)
    if expiry is not None:
        remaining = int((expiry - now).total_seconds())
        if remaining <= 0:
            raise CliError("the lab has expired")
        seconds = min(seconds, remaining)
    return max(seconds, MIN_TOKEN_SECONDS)


def build_kubeconfig(name: str, namespace: str, cluster: Mapping[str, Any], token: str) -> Manifest:
    """A kubeconfig for the lab's learner ServiceAccount, defaulting to the lab namespace;
    its context names the lab (an extension), so that `kubectl lab status` needs no name."""
    entry = f"roadlab-{name}"
    user = f"{entry}-{naming.LEARNER_SERVICE_ACCOUNT}"
    context = {
        "cluster": entry,
        "user": user,
        "namespace": namespace,
        "extensions": [context_extension(name)],
    }
    return _kubeconfig_document(entry, user, context, cluster, token)


def build_enrollment_kubeconfig(
    enrollment: str, cluster: Mapping[str, Any], token: str
) -> Manifest:
    """A kubeconfig for an enrolled learner's ServiceAccount (naming.enrollee_name): their
    Enrollment and its Labs. Its context names the Enrollment (an extension), so that
    `kubectl lab roadmap`, `next` and `certificate` need no name; no default namespace
    (each milestone's Lab has its own)."""
    entry = f"roadlab-enrollment-{enrollment}"
    user = naming.enrollee_name(enrollment)
    context = {"cluster": entry, "user": user, "extensions": [enrollment_extension(enrollment)]}
    return _kubeconfig_document(entry, user, context, cluster, token)


def _kubeconfig_document(
    entry: str, user: str, context: Mapping[str, Any], cluster: Mapping[str, Any], token: str
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": entry, "cluster": dict(cluster)}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": entry, "context": dict(context)}],
        "current-context": entry,
        "preferences": {},
    }


def cmd_start(app: App, args: argparse.Namespace) -> int:
    catalog = optional_catalog(app)
    definition: LabDefinition | None = None
    if catalog is None:
        app.note(
            f"note: no lab catalog at {app.catalog_dir} (set ROADLAB_CATALOG); "
            "parameter types are guessed and checked by the operator"
        )
    else:
        definition = catalog.get(args.lab)
        if definition is None:
            known = ", ".join(sorted(catalog)) or "none"
            raise CliError(f"catalog lab {args.lab} not found (known: {known})", EXIT_NOT_FOUND)
    learner = args.learner or app.env.get("USER") or "learner"
    if re.fullmatch(LEARNER_PATTERN, learner) is None:
        raise CliError(
            f"learner {learner!r} is not a valid learner id (letters, digits, -_.@); use --learner",
            EXIT_USAGE,
        )
    name = args.name or default_lab_name(learner, args.lab)
    if not valid_lab_name(name):
        raise CliError(
            f"lab name {name!r} must be lowercase letters, digits and '-', at most "
            f"{naming.MAX_LAB_NAME_LENGTH} characters, starting and ending with a letter or digit",
            EXIT_USAGE,
        )
    try:
        parameters = parse_parameters(args.param, definition)
        manifest = lab_manifest(name, args.lab, learner, args.ttl, parameters)
    except ParameterError as error:
        raise CliError(str(error), EXIT_USAGE) from error
    except ValidationError as error:
        raise CliError(f"invalid lab: {format_validation_error(error)}", EXIT_USAGE) from error
    try:
        created = app.api.create_lab(manifest)
    except ApiException as error:
        if error.status == 409:
            raise CliError(f"lab {name} already exists") from error
        raise
    if not args.wait:
        app.show_lab(
            created,
            lambda: (
                f"lab {name} created (lab {args.lab} for {learner}, ttl {args.ttl})\n"
                f"follow it with: kubectl lab status {name}"
            ),
        )
        return EXIT_OK
    step, lab = wait_for(app, name, start_wait_step, args.timeout, "to become ready")
    if app.structured and lab is not None:
        app.emit(clean_lab(lab))
    if step.exit_code != EXIT_OK:
        raise CliError(f"lab {name} failed: {step.reason}: {step.message}", step.exit_code)
    if app.output == "name":
        app.print(resource_name(name))
    elif not app.structured:
        namespace = lab_status(lab or {}).get("namespace") or naming.namespace_for(name)
        app.print(f"lab {name} is ready in namespace {namespace}")
        app.print(f"get a kubeconfig: kubectl lab kubeconfig {name} > {name}.kubeconfig")
    return EXIT_OK


def cmd_list(app: App, args: argparse.Namespace) -> int:
    labs = app.api.list_labs()
    if args.learner:
        labs = [lab for lab in labs if lab_spec(lab).get("learner") == args.learner]
    if app.structured:
        app.emit(lab_list_json(labs))
    elif not labs:
        app.note("no labs found")
    elif app.output == "name":
        app.out.write("".join(f"{resource_name(name)}\n" for name in sorted(map(lab_name, labs))))
    else:
        app.print(format_list(labs, app.now(), wide=app.output == "wide"))
    return EXIT_OK


def cmd_status(app: App, args: argparse.Namespace) -> int:
    show_status(app, app.get_lab(lab_argument(app, args)))
    return EXIT_OK


def cmd_kubeconfig(app: App, args: argparse.Namespace) -> int:
    enrollment: str | None = getattr(args, "enrollment", None)
    if enrollment is not None and args.name:
        raise CliError("kubeconfig: give a lab or --enrollment, not both", EXIT_USAGE)
    if enrollment is not None:
        return _enrollment_kubeconfig(app, args, enrollment)
    if not args.name:
        raise CliError(
            "kubeconfig: give a lab name (or --enrollment NAME for an enrolled learner)",
            EXIT_USAGE,
        )
    duration: timedelta = args.duration
    lab = app.get_lab(args.name)
    status = lab_status(lab)
    namespace = status.get("namespace")
    if not namespace or not condition_is_true(lab, cond.PROVISIONED):
        raise CliError(
            f"lab {args.name} is not provisioned yet (see: kubectl lab status {args.name})"
        )
    if condition_is_true(lab, cond.EXPIRED):
        raise CliError(f"lab {args.name} has expired")
    try:
        seconds = token_lifetime(duration, status.get("expiresAt"), app.now())
    except CliError as error:
        raise CliError(f"lab {args.name}: {error.message}") from error
    if seconds != int(duration.total_seconds()):
        app.note(f"note: token lifetime set to {format_duration(timedelta(seconds=seconds))}")
    token, expiry = service_account_token(app, namespace, naming.LEARNER_SERVICE_ACCOUNT, seconds)
    document = build_kubeconfig(args.name, namespace, app.api.kubeconfig_cluster(), token)
    app.print(to_json(document) if app.output == "json" else to_yaml(document))
    if expiry:
        app.note(f"token for {naming.LEARNER_SERVICE_ACCOUNT} in {namespace} expires at {expiry}")
    return EXIT_OK


def _enrollment_kubeconfig(app: App, args: argparse.Namespace, enrollment: str) -> int:
    if not naming.is_dns1123_label(enrollment):
        raise CliError(f"{enrollment!r} is not an Enrollment name", EXIT_USAGE)
    if app.api.get_enrollment(enrollment) is None:
        raise CliError(f"enrollment {enrollment} not found", EXIT_NOT_FOUND)
    namespace: str = args.operator_namespace
    account = naming.enrollee_name(enrollment)
    seconds = token_lifetime(args.duration, None, app.now())
    if seconds != int(args.duration.total_seconds()):
        app.note(f"note: token lifetime set to {format_duration(timedelta(seconds=seconds))}")
    token, expiry = service_account_token(
        app,
        namespace,
        account,
        seconds,
        missing=" (the operator makes it for each Enrollment: is it running, and installed "
        "there? see --operator-namespace)",
    )
    document = build_enrollment_kubeconfig(enrollment, app.api.kubeconfig_cluster(), token)
    app.print(to_json(document) if app.output == "json" else to_yaml(document))
    if expiry:
        app.note(f"token for {account} in {namespace} expires at {expiry}")
    app.note(
        "with it the learner runs: kubectl lab roadmap, kubectl lab next, "
        "kubectl lab certificate (no names needed)"
    )
    return EXIT_OK


def service_account_token(
    app: App, namespace: str, account: str, seconds: int, missing: str = ""
) -> tuple[str, str | None]:
    """A TokenRequest token for the ServiceAccount: (token, expiry); a missing account is
    CliError (exit 3), `missing` says why it may be."""
    try:
        return app.api.create_service_account_token(namespace, account, seconds)
    except RuntimeError as error:
        raise CliError(str(error)) from error
    except ApiException as error:
        if error.status == 404:
            raise CliError(
                f"service account {account} not found in namespace {namespace}{missing}",
                EXIT_NOT_FOUND,
            ) from error
        raise


def cmd_delete(app: App, args: argparse.Namespace) -> int:
    if not app.api.delete_lab(args.name):
        raise CliError(f"lab {args.name} not found", EXIT_NOT_FOUND)
    if args.wait:
        wait_for(app, args.name, delete_wait_step, args.timeout, "to be deleted")
    if app.output == "name":
        app.print(resource_name(args.name))
    else:
        app.print(f"lab {args.name} {'deleted' if args.wait else 'deletion requested'}")
    return EXIT_OK

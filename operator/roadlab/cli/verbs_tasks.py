"""Verbs on a Lab's tasks: check, hint (the lab name is optional with a learner's kubeconfig)."""

from __future__ import annotations

import argparse

from roadlab.api import conditions as cond
from roadlab.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    PERMANENT_REASONS,
    REASON_DELETED,
    CliError,
)
from roadlab.cli.kubeconfig_lab import lab_argument, positional_pair
from roadlab.cli.output import lab_spec, lab_status
from roadlab.cli.session import App, optional_catalog, show_status, wait_for
from roadlab.cli.waiting import check_patch, check_wait_step, new_check_token, permanent_failure


def cmd_check(app: App, args: argparse.Namespace) -> int:
    lab = app.get_lab(lab_argument(app, args))
    failure = permanent_failure(lab)
    if failure is not None:
        raise CliError(f"lab {args.name} cannot be checked: {failure.reason}: {failure.message}")
    token = new_check_token(app.now())
    patched = app.api.patch_lab(args.name, check_patch(token))
    if not args.wait:
        app.show_lab(
            patched,
            lambda: (
                f"check requested for lab {args.name} (token {token})\n"
                f"see the results with: kubectl lab status {args.name}"
            ),
        )
        return EXIT_OK
    step, final = wait_for(
        app, args.name, lambda lab: check_wait_step(lab, token), args.timeout, "to be checked"
    )
    ended = step.reason in (REASON_DELETED, cond.REASON_EXPIRED) or step.reason in PERMANENT_REASONS
    if final is None or ended:
        raise CliError(f"lab {args.name}: {step.reason}: {step.message}", step.exit_code)
    show_status(app, final)
    return step.exit_code


def cmd_hint(app: App, args: argparse.Namespace) -> int:
    args.name, args.task = positional_pair(args.name, args.task)
    if args.task is None:
        raise CliError("hint: give a task id: kubectl lab hint [LAB] TASK", EXIT_USAGE)
    lab = app.get_lab(lab_argument(app, args))
    task = next((t for t in lab_status(lab).get("tasks") or [] if t.get("id") == args.task), None)
    hint = str((task or {}).get("hint") or "")
    known = task is not None
    if not hint:
        catalog = optional_catalog(app) or {}
        definition = catalog.get(str(lab_spec(lab).get("lab")))
        entry = (
            next((t for t in definition.tasks if t.id == args.task), None) if definition else None
        )
        if entry is not None:
            known, hint = True, entry.hint
    if not known:
        raise CliError(f"task {args.task} not found in lab {args.name}", EXIT_NOT_FOUND)
    if not hint:
        raise CliError(f"task {args.task} has no hint")
    app.print(hint)
    return EXIT_OK

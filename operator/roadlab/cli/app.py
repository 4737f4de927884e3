# PYTHON_ARGCOMPLETE_OK (argcomplete's global completion looks for this marker)
"""`kubectl lab`: the learner's and instructor's command line for Roadlab.

Installed as the console script `kubectl-lab`, so `kubectl lab ...` finds it on PATH;
shell completion is in roadlab.cli.completion.

The package has three layers:
- pure functions: `parameters` (names, `--param`, the Lab manifest), `output` (tables, times,
  task marks, `-o` documents), `waiting` (wait decisions, exit codes), `board` (the task
  board of `watch`), `roadmap_view` (a learner's map, a Roadmap's milestones, the answer of
  `next`, a certificate's facts), `report` (the progress report as a table, CSV, JSON or
  JUnit XML), tested without a cluster; `common` holds what they all share.
  `kubeconfig_lab` (the lab or Enrollment a learner's kubeconfig is for, so that the
  learner's verbs need no name) and `guide` (a lab's README with the learner's values, for
  the terminal) add one file read, or the rendering, to pure parts;
- verbs (`verbs_catalog`, `verbs_labs`, `verbs_tasks`, `verbs_learner`, `verbs_portal`,
  `verbs_roadmap`), which take a `session.App` (streams, clock, catalog, a lazily connected
  `LabApi`) and return an exit code;
- this module: the parser, and `main`, which turns API and connection errors into one line
  on stderr and an exit code (a refusal of a learner's credentials says which lab or
  Enrollment they reach).

Only roadlab.kube talks to the API server; the verbs call the few `LabClient` methods listed
in `common.LabApi`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from roadlab.api import naming
from roadlab.api.durations import (
    DurationError,
    format_duration,
    parse_cli_duration,
    parse_duration,
)
from roadlab.api.lab import DEFAULT_TTL
from roadlab.catalog.location import default_catalog_dir
from roadlab.cli.common import (
    COHORT_METAVAR,
    CONTEXT_METAVAR,
    DEFAULT_EXTEND_WAIT_SECONDS,
    DEFAULT_TOKEN_DURATION,
    DEFAULT_WAIT_SECONDS,
    DOCUMENT_OUTPUTS,
    DURATION_METAVAR,
    ENROLLMENT_METAVAR,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    FILE_METAVAR,
    LAB_ID_METAVAR,
    LAB_METAVAR,
    LAB_OUTPUTS,
    LEARNER_METAVAR,
    MILESTONE_METAVAR,
    OUTPUT_FORMATS,
    PEM_METAVAR,
    REPORT_OUTPUTS,
    ROADMAP_METAVAR,
    ROADMAP_OUTPUTS,
    TASK_METAVAR,
    CliError,
    LabApi,
    api_error_message,
    connection_error_message,
)
from roadlab.cli.kubeconfig_lab import (
    ROADMAP_COMMANDS,
    enrollee_lab_refusal,
    find_kubeconfig_lab,
    refusal_message,
    roadmap_refusal_message,
)
from roadlab.cli.output import package_version, short_duration
from roadlab.cli.session import App
from roadlab.cli.verbs_catalog import cmd_catalog, cmd_completion, cmd_version
from roadlab.cli.verbs_labs import cmd_delete, cmd_kubeconfig, cmd_list, cmd_start, cmd_status
from roadlab.cli.verbs_learner import cmd_extend, cmd_guide, cmd_watch
from roadlab.cli.verbs_portal import DEFAULT_LOCAL_PORT, PORTAL_URL_ENV, cmd_open, cmd_url
from roadlab.cli.verbs_roadmap import (
    cmd_certificate,
    cmd_cohort,
    cmd_enroll,
    cmd_next,
    cmd_public_key,
    cmd_report,
    cmd_roadmap,
    cmd_verify,
)
from roadlab.cli.verbs_tasks import cmd_check, cmd_hint
from roadlab.kube.lab_client import LabClient


def positive_duration(text: str) -> timedelta:
    """A duration flag's value: "90s", "5m", "1h30m", "2h", "7d", or plain seconds."""
    try:
        duration = parse_cli_duration(text)
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    if duration <= timedelta(0):
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return duration


def wait_seconds(text: str) -> float:
    return positive_duration(text).total_seconds()


def ttl_text(text: str) -> str:
    """--ttl as the Lab's spec.ttl: a duration as given, or plain seconds as one ("1h30m")."""
    duration = positive_duration(text)
    try:
        parse_duration(text)
    except DurationError:
        try:
            return format_duration(duration)
        except DurationError as error:
            raise argparse.ArgumentTypeError(f"a TTL is whole seconds, got {text!r}") from error
    return text


def _global_options(
    parser: argparse.ArgumentParser, *, defaults: bool, output: bool = True
) -> None:
    # Without defaults (SUPPRESS), a subcommand's copy never overrides a value given first.
    # Without output, the subcommand has a -o of its own (other formats, or a file).
    unset: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--kubeconfig",
        metavar=FILE_METAVAR,
        help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)",
        **unset,
    )
    parser.add_argument(
        "--context",
        metavar=CONTEXT_METAVAR,
        help="kubeconfig context (default: the current context)",
        **unset,
    )
    if not output:
        return
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        help="output format: text (default), json, yaml, name (lab.roadlab.dev/NAME) or wide; "
        "each command takes those that fit it (report also csv and junit; certificate and "
        "public-key take -o FILE)",
        **({"default": "text"} if defaults else unset),
    )


def _subparser(
    common: argparse.ArgumentParser, without_output: argparse.ArgumentParser
) -> type[argparse.ArgumentParser]:
    class Subcommand(argparse.ArgumentParser):
        def __init__(self, *args: Any, own_output: bool = False, **kwargs: Any) -> None:
            shared = without_output if own_output else common
            kwargs["parents"] = [*kwargs.get("parents", []), shared]
            super().__init__(*args, **kwargs)

    return Subcommand


def _wait_options(
    parser: argparse.ArgumentParser,
    what: str,
    *,
    by_default: bool = False,
    timeout: int = DEFAULT_WAIT_SECONDS,
) -> None:
    if by_default:
        parser.add_argument(
            "--wait",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=f"wait {what} (default; --no-wait to only ask)",
        )
    else:
        parser.add_argument("--wait", action="store_true", help=f"wait {what}")
    parser.add_argument(
        "--timeout",
        type=wait_seconds,
        default=timeout,
        help=f"how long to wait, e.g. 90s, 5m, 1h (default {short_duration(timeout)})",
    )


# The lab argument of the verbs a learner uses: optional with a learner's kubeconfig.
LAB_FROM_KUBECONFIG = "the lab (default: the one your kubeconfig's context names)"


def _lab_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar=LAB_METAVAR, help=LAB_FROM_KUBECONFIG)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl lab",
        description="Start, follow and check Roadlab labs.",
        epilog="durations: 90s, 5m, 1h30m, 2h, 7d (or seconds); "
        "exit codes: 0 ok, 1 failure, 2 usage error, 3 not found, 4 timeout, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    _global_options(parser, defaults=True)
    # Like kubectl, the global flags may also follow the command: `kubectl lab list -o json`.
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    without_output = argparse.ArgumentParser(add_help=False)
    _global_options(without_output, defaults=False, output=False)
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        parser_class=_subparser(common, without_output),
    )

    def command(
        name: str,
        handler: Callable[[App, argparse.Namespace], int],
        help_: str,
        outputs: Sequence[str],
        *,
        own_output: bool = False,
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_, own_output=own_output)
        sub.set_defaults(handler=handler, outputs=outputs)
        return sub

    catalog = command("catalog", cmd_catalog, "list the catalog labs, or show one", OUTPUT_FORMATS)
    catalog.add_argument("id", nargs="?", metavar=LAB_ID_METAVAR, help="catalog lab id")

    start = command("start", cmd_start, "start a lab", LAB_OUTPUTS)
    start.add_argument("lab", metavar=LAB_ID_METAVAR, help="catalog lab id")
    start.add_argument("--name", help="Lab name (default: <learner>-<lab>)")
    start.add_argument("--learner", help="learner id (default: $USER)")
    start.add_argument(
        "--ttl",
        type=ttl_text,
        default=DEFAULT_TTL,
        help=f"lifetime, e.g. 90m, 2h, 1d (default {DEFAULT_TTL})",
    )
    start.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a lab parameter"
    )
    _wait_options(start, "until the lab is ready")

    listing = command("list", cmd_list, "list labs", OUTPUT_FORMATS)
    listing.add_argument("--learner", help="only this learner's labs")

    status = command("status", cmd_status, "a lab's state and tasks", LAB_OUTPUTS)
    _lab_argument(status)

    check = command("check", cmd_check, "ask for a check of the lab's tasks", LAB_OUTPUTS)
    _lab_argument(check)
    _wait_options(check, "for the results")

    hint = command("hint", cmd_hint, "the hint of one task", ("text",))
    # `hint TASK` or `hint LAB TASK`: two optional positionals, told apart by their count.
    hint.usage = "%(prog)s [-h] [options] [LAB] TASK"
    _lab_argument(hint)
    hint.add_argument("task", nargs="?", metavar=TASK_METAVAR, help="task id")

    guide = command("guide", cmd_guide, "the lab's guide, with your values filled in", ("text",))
    _lab_argument(guide)
    guide.add_argument(
        "--raw",
        action="store_true",
        help="print the filled-in Markdown, also on a terminal (a pipe or a file always gets it)",
    )

    watch = command(
        "watch",
        cmd_watch,
        "a live board of the lab's tasks, until it is completed (exit 0) or expired",
        ("text",),
    )
    _lab_argument(watch)

    extend = command("extend", cmd_extend, "ask for more time before the lab expires", LAB_OUTPUTS)
    # `extend DURATION` or `extend LAB DURATION`, as for hint.
    extend.usage = "%(prog)s [-h] [options] [LAB] DURATION"
    _lab_argument(extend)
    extend.add_argument(
        "duration", nargs="?", metavar=DURATION_METAVAR, help="how much more, e.g. 30m, 1h"
    )
    _wait_options(
        extend, "for the operator's answer", by_default=True, timeout=DEFAULT_EXTEND_WAIT_SECONDS
    )

    _kubeconfig_command(command)
    _portal_commands(command)
    _roadmap_commands(command)

    delete = command("delete", cmd_delete, "delete a lab", ("text", "name"))
    delete.add_argument("name", metavar=LAB_METAVAR)
    _wait_options(delete, "until it is gone")

    command("version", cmd_version, "the version of kubectl lab", DOCUMENT_OUTPUTS)
    completion = command(
        "completion", cmd_completion, "a shell completion script for kubectl-lab", ("text",)
    )
    completion.add_argument("shell", choices=("bash", "zsh"))
    return parser


def _kubeconfig_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    kubeconfig = command(
        "kubeconfig",
        cmd_kubeconfig,
        "a kubeconfig for the lab's learner, or (--enrollment) for an enrolled learner",
        DOCUMENT_OUTPUTS,
    )
    kubeconfig.usage = "%(prog)s [-h] [options] (LAB | --enrollment ENROLLMENT)"
    kubeconfig.add_argument("name", nargs="?", metavar=LAB_METAVAR)
    kubeconfig.add_argument(
        "--enrollment",
        metavar=ENROLLMENT_METAVAR,
        help="the enrolled learner's kubeconfig instead: their Enrollment and its labs, for "
        "kubectl lab roadmap, next and certificate",
    )
    kubeconfig.add_argument(
        "--duration",
        type=positive_duration,
        default=DEFAULT_TOKEN_DURATION,
        help=f"token lifetime, e.g. 30m, 8h (default {DEFAULT_TOKEN_DURATION})",
    )
    _operator_namespace_option(kubeconfig, "where the enrolled learners' ServiceAccounts are")


def _portal_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    url = command("url", cmd_url, "the lab's portal link, for its learner", ("text",))
    url.add_argument("name", metavar=LAB_METAVAR)
    url.add_argument("--portal-url", help=f"the portal's address (default: ${PORTAL_URL_ENV})")
    _operator_namespace_option(url)

    open_ = command("open", cmd_open, "open the lab's portal page in the browser", ("text",))
    open_.add_argument("name", metavar=LAB_METAVAR)
    open_.add_argument(
        "--port", type=int, default=DEFAULT_LOCAL_PORT, help="local port of the port-forward"
    )
    open_.add_argument("--no-browser", action="store_true", help="only print the link")
    _operator_namespace_option(open_)


def _operator_namespace_option(
    parser: argparse.ArgumentParser, what: str = "where Roadlab is installed"
) -> None:
    parser.add_argument(
        "--operator-namespace",
        default=naming.DEFAULT_OPERATOR_NAMESPACE,
        help=f"{what} (default {naming.DEFAULT_OPERATOR_NAMESPACE})",
    )


ENROLLMENT_IN_VIEW = (
    "the Enrollment (default: the one your kubeconfig's context names, or its lab's)"
)
ADVANCES = ("OnRequest", "Automatic")


def _enrollment_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--enrollment", metavar=ENROLLMENT_METAVAR, help=ENROLLMENT_IN_VIEW)


def _enrollment_spec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--advance",
        choices=ADVANCES,
        default="OnRequest",
        help="OnRequest (default): a milestone's lab starts when the learner runs kubectl lab "
        "next; Automatic: as soon as the one before is completed",
    )
    parser.add_argument(
        "--lab-ttl",
        type=ttl_text,
        metavar=DURATION_METAVAR,
        help="lifetime of each milestone's lab, e.g. 2h (default: the milestone's, or the "
        f"lab default {DEFAULT_TTL})",
    )


def _file_output_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-o",
        "--output-file",
        metavar=FILE_METAVAR,
        help=f"write {what} to this file (default: print it)",
    )


def _roadmap_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    roadmap = command(
        "roadmap",
        cmd_roadmap,
        "your roadmap's map (or a roadmap's milestones, or the list of roadmaps)",
        ("text", *ROADMAP_OUTPUTS),
        own_output=True,
    )
    roadmap.add_argument(
        "roadmap",
        nargs="?",
        metavar=ROADMAP_METAVAR,
        help="a roadmap: its milestones (default: the map of the enrollment in view, else "
        "the list of roadmaps)",
    )
    _enrollment_option(roadmap)
    roadmap.add_argument(
        "-o",
        "--output",
        choices=ROADMAP_OUTPUTS,
        default=argparse.SUPPRESS,
        help="output format: table (default), json or yaml",
    )

    next_ = command(
        "next",
        cmd_next,
        "start the lab of your next milestone (or of the one given)",
        ("text", "json", "yaml", "name"),
    )
    next_.add_argument(
        "milestone",
        nargs="?",
        metavar=MILESTONE_METAVAR,
        help="the milestone (default: the next one, as the roadmap orders them)",
    )
    _enrollment_option(next_)
    next_.add_argument(
        "--wait",
        type=wait_seconds,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long to wait for the operator's answer, e.g. 90s, 5m "
        f"(default {short_duration(DEFAULT_WAIT_SECONDS)})",
    )
    next_.add_argument("--no-wait", dest="wait", action="store_const", const=0.0, help="only ask")

    enroll = command(
        "enroll", cmd_enroll, "enroll a learner on a roadmap", ("text", "json", "yaml", "name")
    )
    enroll.add_argument("learner", metavar=LEARNER_METAVAR, help="learner id")
    enroll.add_argument("--roadmap", required=True, metavar=ROADMAP_METAVAR, help="the roadmap")
    enroll.add_argument(
        "--name",
        dest="enrollment_name",
        metavar="NAME",
        help="Enrollment name (default: <roadmap>-<learner>, made a valid name)",
    )
    _enrollment_spec_options(enroll)

    cohort = command(
        "cohort",
        cmd_cohort,
        "enroll the learners of a CSV file on a roadmap (creates or updates the Cohort)",
        ("text", "json", "yaml", "name"),
    )
    cohort.add_argument("cohort", metavar=COHORT_METAVAR, help="Cohort name")
    cohort.add_argument("--roadmap", required=True, metavar=ROADMAP_METAVAR, help="the roadmap")
    cohort.add_argument(
        "--csv",
        required=True,
        metavar=FILE_METAVAR,
        help="the learners: a `learner` column (or the first one); # comments and blank "
        "lines are skipped; - reads stdin",
    )
    _enrollment_spec_options(cohort)
    cohort.add_argument(
        "--dry-run", action="store_true", help="print the Cohort (YAML) instead of applying it"
    )

    report = command(
        "report",
        cmd_report,
        "every learner's milestones: a table, CSV, JSON or JUnit XML (for CI)",
        ("text", *REPORT_OUTPUTS),
        own_output=True,
    )
    which = report.add_mutually_exclusive_group()
    which.add_argument("--cohort", metavar=COHORT_METAVAR, help="only this cohort's learners")
    which.add_argument("--roadmap", metavar=ROADMAP_METAVAR, help="only this roadmap's learners")
    report.add_argument(
        "-o",
        "--output",
        choices=REPORT_OUTPUTS,
        default=argparse.SUPPRESS,
        help="output format: table (default), csv, json or junit (one test suite per "
        "learner, one test case per milestone)",
    )

    certificate = command(
        "certificate",
        cmd_certificate,
        "the certificate of a completed milestone (or of the whole roadmap), a signed JWS",
        ("text",),
        own_output=True,
    )
    certificate.add_argument(
        "milestone",
        nargs="?",
        metavar=MILESTONE_METAVAR,
        help="the milestone (default: the latest completed one)",
    )
    certificate.add_argument(
        "--roadmap-certificate",
        action="store_true",
        help="the whole roadmap's certificate (once every required milestone is completed)",
    )
    _enrollment_option(certificate)
    _file_output_option(certificate, "the certificate")

    public_key = command(
        "public-key",
        cmd_public_key,
        "the public keys that certificates are signed with (PEM)",
        ("text",),
        own_output=True,
    )
    _file_output_option(public_key, "the keys")
    _operator_namespace_option(public_key)

    verify = command(
        "verify",
        cmd_verify,
        "check a certificate's signature and show what it states (offline with --key)",
        DOCUMENT_OUTPUTS,
    )
    verify.add_argument("file", metavar=FILE_METAVAR, help="the certificate (- reads stdin)")
    verify.add_argument(
        "--key",
        action="append",
        default=[],
        metavar=PEM_METAVAR,
        help="a public key file (PEM; kubectl lab public-key): no cluster is asked; may be "
        "repeated (default: the cluster's published keys)",
    )
    _operator_namespace_option(verify)


def run(app: App, argv: Sequence[str]) -> int:
    """Parse argv and run the command; every expected failure becomes (stderr line, code)."""
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(app.out):  # --help and --version print to stdout
            args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # argparse has printed the usage error
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if args.output not in args.outputs:
        app.note(
            f"error: {args.command} has no -o {args.output} (it takes: {', '.join(args.outputs)})"
        )
        return EXIT_USAGE
    app.output, app.kubeconfig, app.context = args.output, args.kubeconfig, args.context
    handler: Callable[[App, argparse.Namespace], int] = args.handler
    try:
        return handler(app, args)
    except CliError as error:
        message, code = error.message, error.code
    except ApiException as error:
        message, code = api_error_message(error.status, error.body, getattr(args, "name", None))
        if error.status == 403:
            message = learner_refusal(app, args) or message
    except ConfigException as error:
        message, code = f"kubeconfig: {error}", EXIT_FAILURE
    except (urllib3.exceptions.HTTPError, ConnectionError) as error:
        message, code = connection_error_message(error, app.server), EXIT_FAILURE
    except KeyboardInterrupt:
        message, code = "interrupted", EXIT_INTERRUPTED
    app.note(f"error: {message}")
    return code


def learner_refusal(app: App, args: argparse.Namespace) -> str | None:
    """For a 403 with a learner's kubeconfig: which lab (or Enrollment) these credentials
    do reach."""
    found = find_kubeconfig_lab(app.kubeconfig, app.context, app.env)
    if args.command in ROADMAP_COMMANDS:
        return roadmap_refusal_message(args.command, getattr(args, "enrollment", None), found)
    target = getattr(args, "name", None) if args.command != "start" else None
    if found.lab is None and found.enrollment is not None:
        return enrollee_lab_refusal(args.command, target, found.enrollment)
    return refusal_message(args.command, target, found.lab)


def connect_lab_api(kubeconfig: str | None, context: str | None) -> LabApi:
    return LabClient.from_kubeconfig(kubeconfig, context)


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point (`kubectl-lab`)."""
    app = App(connect=connect_lab_api, catalog_dir=default_catalog_dir())
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (`kubectl lab completion`)
        from roadlab.cli import completion  # noqa: PLC0415 - it imports this module

        completion.answer_shell(app)  # prints them and exits
    return run(app, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())

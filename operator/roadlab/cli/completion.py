"""Shell completion for `kubectl lab`, through argcomplete over the CLI's own parser.

Two ways in:
- `kubectl lab completion bash|zsh` prints argcomplete's script for the `kubectl-lab`
  command; the shell then runs kubectl-lab with argcomplete's variables set (_ARGCOMPLETE,
  COMP_LINE, ...) and cli.main hands over to answer_shell.
- kubectl (>= 1.26) completes `kubectl lab ARGS... PARTIAL` by running the console script
  `kubectl_complete-lab ARGS... PARTIAL` and reading cobra's __complete output: one
  candidate per line ("candidate<TAB>description"), then ":<directive>" (kubectl_complete).

Either way argcomplete walks the parser (commands, flags, -o choices) and asks
`candidates` for the arguments it cannot know: Labs, Roadmaps, Enrollments and Cohorts in
the cluster, catalog labs, tasks, milestones and kubeconfig contexts. The cluster is asked
with a short deadline; a failure or a slow server completes nothing rather than hang the
shell or print errors into it. With a learner's kubeconfig, which may not list Labs, the
Lab its context names stands in for the list, and `hint <TAB>` also offers that Lab's tasks
(`hint TASK` needs no lab name); with an enrolled learner's, which may not list
Enrollments, the Enrollment its context names stands in for theirs, and its milestones are
offered to `next` and `certificate`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import argcomplete
from argcomplete.completers import BaseCompleter, FilesCompleter
from argcomplete.finders import CompletionFinder
from argcomplete.shell_integration import shellcode
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from roadlab.catalog.loader import CatalogError
from roadlab.catalog.location import default_catalog_dir
from roadlab.catalog.schema import LabDefinition
from roadlab.cli import app as cli
from roadlab.cli import common, kubeconfig_lab, output, session

PROGRAM = "kubectl-lab"
SHELLS = ("bash", "zsh")
CLUSTER_DEADLINE_SECONDS = 2.0  # a completion that waits longer feels broken

# cobra's ShellCompDirective values, which kubectl reads from the last output line.
DIRECTIVE_DEFAULT = 0  # the shell may complete file names
DIRECTIVE_NO_FILE_COMP = 4

Manifest = dict[str, Any]
T = TypeVar("T")


def _no_lab(parsed_args: argparse.Namespace) -> str | None:
    return None


def _no_objects(parsed_args: argparse.Namespace) -> Sequence[Manifest]:
    return []


@dataclass(frozen=True)
class CompletionSources:
    """Where the candidates come from; each is called only when its kind is completed."""

    labs: Callable[[argparse.Namespace], Sequence[Manifest]]  # args so far (--context, ...)
    catalog: Callable[[], Mapping[str, LabDefinition]]
    contexts: Callable[[argparse.Namespace], Sequence[str]]
    # The Lab the kubeconfig's context names (a learner's), if any.
    kubeconfig_lab: Callable[[argparse.Namespace], str | None] = _no_lab
    roadmaps: Callable[[argparse.Namespace], Sequence[Manifest]] = _no_objects
    enrollments: Callable[[argparse.Namespace], Sequence[Manifest]] = _no_objects
    cohorts: Callable[[argparse.Namespace], Sequence[Manifest]] = _no_objects
    # The Enrollment the kubeconfig's context names (an enrolled learner's), if any.
    kubeconfig_enrollment: Callable[[argparse.Namespace], str | None] = _no_lab


def _lab_description(lab: Mapping[str, Any]) -> str:
    spec = lab.get("spec") or {}
    return f"{spec.get('lab', common.NO_VALUE)} for {spec.get('learner', common.NO_VALUE)}"


def task_candidates(
    lab: Mapping[str, Any] | None, catalog: Mapping[str, LabDefinition]
) -> dict[str, str]:
    """The Lab's task ids and titles: from its status, else from its catalog lab."""
    if lab is None:
        return {}
    reported = (lab.get("status") or {}).get("tasks") or []
    if reported:
        return {str(task.get("id")): str(task.get("title") or "") for task in reported}
    definition = catalog.get(str((lab.get("spec") or {}).get("lab")))
    return {task.id: task.title for task in definition.tasks} if definition else {}


def _tasks_of(
    name: str | None, parsed_args: argparse.Namespace, sources: CompletionSources
) -> dict[str, str]:
    if name is None:
        return {}
    lab = next((x for x in sources.labs(parsed_args) if output.lab_name(x) == name), None)
    return task_candidates(lab, sources.catalog() if lab is not None else {})


def _enrollment_description(enrollment: Mapping[str, Any]) -> str:
    spec = enrollment.get("spec") or {}
    progress = (enrollment.get("status") or {}).get("progress")
    about = f"{spec.get('learner', common.NO_VALUE)} on {spec.get('roadmap', common.NO_VALUE)}"
    return f"{about} ({progress})" if progress else about


def _cohort_description(cohort: Mapping[str, Any]) -> str:
    spec = cohort.get("spec") or {}
    count = len(spec.get("learners") or [])
    return f"{count} learners on {spec.get('roadmap', common.NO_VALUE)}"


def milestone_candidates(
    parsed_args: argparse.Namespace, sources: CompletionSources
) -> dict[str, str]:
    """The milestones (with their state) of the Enrollment in view: --enrollment, else the
    kubeconfig's."""
    name = getattr(parsed_args, "enrollment", None) or sources.kubeconfig_enrollment(parsed_args)
    if not name:
        return {}
    enrollment = next(
        (e for e in sources.enrollments(parsed_args) if output.lab_name(e) == name), None
    )
    records = ((enrollment or {}).get("status") or {}).get("milestones") or []
    return {str(r.get("id")): str(r.get("state") or "") for r in records if isinstance(r, dict)}


def candidates(
    metavar: str | None, prefix: str, parsed_args: argparse.Namespace, sources: CompletionSources
) -> dict[str, str]:
    """Candidates (with descriptions) for one argument, known by its metavar in the parser."""
    found: dict[str, str] = {}
    objects = _roadmap_candidates(metavar, parsed_args, sources)
    if objects is not None:
        found = objects
    elif metavar == common.LAB_METAVAR:
        found = {output.lab_name(lab): _lab_description(lab) for lab in sources.labs(parsed_args)}
        if getattr(parsed_args, "command", None) == "hint":  # `hint TASK`: the kubeconfig's lab
            found |= _tasks_of(sources.kubeconfig_lab(parsed_args), parsed_args, sources)
    elif metavar == common.LAB_ID_METAVAR:
        found = {lab_id: definition.title for lab_id, definition in sources.catalog().items()}
    elif metavar == common.TASK_METAVAR:
        found = _tasks_of(getattr(parsed_args, "name", None), parsed_args, sources)
    elif metavar == common.CONTEXT_METAVAR:
        found = dict.fromkeys(sources.contexts(parsed_args), "")
    return {key: found[key] for key in sorted(found) if key and key.startswith(prefix)}


def _roadmap_candidates(
    metavar: str | None, parsed_args: argparse.Namespace, sources: CompletionSources
) -> dict[str, str] | None:
    """Candidates for the roadmap verbs' arguments; None for a metavar of another kind."""
    if metavar == common.ROADMAP_METAVAR:
        return {
            output.lab_name(r): str((r.get("spec") or {}).get("title") or "")
            for r in sources.roadmaps(parsed_args)
        }
    if metavar == common.ENROLLMENT_METAVAR:
        return {
            output.lab_name(e): _enrollment_description(e) for e in sources.enrollments(parsed_args)
        }
    if metavar == common.COHORT_METAVAR:
        return {output.lab_name(c): _cohort_description(c) for c in sources.cohorts(parsed_args)}
    if metavar == common.MILESTONE_METAVAR:
        return milestone_candidates(parsed_args, sources)
    return None


class ArgumentCompleter(BaseCompleter):
    """argcomplete's completer for every argument without choices of its own."""

    def __init__(self, sources: CompletionSources, *, list_files: bool) -> None:
        self.sources = sources
        self.list_files = list_files  # else the caller lets the shell complete file names
        self.wants_files = False

    def __call__(
        self,
        *,
        prefix: str,
        action: argparse.Action,
        parser: argparse.ArgumentParser,
        parsed_args: argparse.Namespace,
    ) -> Iterable[str] | Mapping[str, str]:
        metavar = action.metavar if isinstance(action.metavar, str) else None
        if metavar in common.FILE_METAVARS:
            self.wants_files = True
            return FilesCompleter()(prefix=prefix) if self.list_files else []
        return candidates(metavar, prefix, parsed_args, self.sources)


class _PlainFinder(CompletionFinder):
    """Completions as they are: kubectl's shell script quotes them and adds the space."""

    def quote_completions(
        self, completions: list[str], cword_prequote: str, last_wordbreak_pos: int | None
    ) -> list[str]:
        return completions


def complete_words(
    parser: argparse.ArgumentParser, words: Sequence[str], sources: CompletionSources
) -> tuple[dict[str, str], int]:
    """(candidates with descriptions, cobra directive) for the last of words, the one being
    typed ("" for a new word); the words before it are the arguments so far."""
    *typed, partial = list(words) or [""]
    flag_prefix = ""
    if partial.startswith("-") and "=" in partial:  # --output=ya: complete the value
        flag, _, partial = partial.partition("=")
        typed, flag_prefix = [*typed, flag], f"{flag}="
    completer = ArgumentCompleter(sources, list_files=False)
    finder = _PlainFinder(
        parser, always_complete_options=False, default_completer=completer, append_space=False
    )
    # rl_complete (argcomplete's readline entry point) takes the line up to the cursor.
    line = " ".join([*(_shell_word(word) for word in typed), partial])
    matches: list[str] = []
    while (match := finder.rl_complete(line, len(matches))) is not None:
        matches.append(partial + match[len(line) :])
    descriptions = finder.get_display_completions()
    found = {f"{flag_prefix}{match}": descriptions.get(match) or "" for match in matches}
    return found, DIRECTIVE_DEFAULT if completer.wants_files else DIRECTIVE_NO_FILE_COMP


def _shell_word(word: str) -> str:
    # Quoted only when needed, so that argcomplete's lexer gives back the same word.
    safe = word and all(c.isalnum() or c in "-_=.,/:@+%" for c in word)
    return word if safe else "'" + word.replace("'", "'\\''") + "'"


def cobra_output(found: Mapping[str, str], directive: int) -> str:
    """kubectl's plugin completion format: candidates, then the directive line."""
    # Choices of one flag all carry the flag's help, which describes none of them.
    shared = len(found) > 1 and len(set(found.values())) == 1
    lines = [f"{word}\t{about}" if about and not shared else word for word, about in found.items()]
    return "".join(f"{line}\n" for line in [*lines, f":{directive}"])


def shell_script(shell: str) -> str:
    """The script that `kubectl lab completion SHELL` prints, for `kubectl-lab ...`."""
    if shell not in SHELLS:
        raise ValueError(f"no completion script for {shell!r} (only {', '.join(SHELLS)})")
    # At the end: zsh wants "#compdef" on the first line of a completion function file.
    note = (
        f"# {shell} completion for {PROGRAM}: source <({PROGRAM} completion {shell}).\n"
        "# `kubectl lab ...` completes through kubectl's own completion (kubectl completion\n"
        "# bash|zsh), which runs kubectl_complete-lab, installed alongside kubectl-lab.\n"
    )
    return shellcode([PROGRAM], shell=shell).rstrip("\n") + "\n" + note


# --- sources from a real App and cluster ----------------------------------------------------


def within_deadline(seconds: float, call: Callable[[], T], fallback: T) -> T:
    """call()'s result, or fallback when it fails or has not returned after seconds."""
    result: list[T] = []

    def attempt() -> None:
        with contextlib.suppress(Exception):  # any failure completes nothing, silently
            result.append(call())

    # A daemon thread: a hung connection is abandoned, and does not keep the process alive.
    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(seconds)
    return result[0] if result else fallback


def app_sources(app: session.App, deadline: float = CLUSTER_DEADLINE_SECONDS) -> CompletionSources:
    """Sources over the CLI's App: Labs through its LabApi, the catalog it would use."""
    labs_by_target: dict[tuple[str | None, str | None], Sequence[Manifest]] = {}

    def own_lab(parsed_args: argparse.Namespace) -> str | None:
        return kubeconfig_lab.find_kubeconfig_lab(
            getattr(parsed_args, "kubeconfig", None),
            getattr(parsed_args, "context", None),
            app.env,
        ).lab

    def listed_labs(parsed_args: argparse.Namespace) -> list[Manifest]:
        try:
            return app.api.list_labs()  # connecting (reading the kubeconfig) is in the deadline
        except ApiException as error:
            own = own_lab(parsed_args)
            if error.status != 403 or own is None:
                raise
            lab = app.api.get_lab(own)  # a learner may not list Labs, but may get theirs
            return [lab] if lab is not None else []

    def labs(parsed_args: argparse.Namespace) -> Sequence[Manifest]:
        target = (getattr(parsed_args, "kubeconfig", None), getattr(parsed_args, "context", None))
        if target not in labs_by_target:  # one request, however many arguments ask
            app.kubeconfig, app.context = target
            labs_by_target[target] = within_deadline(deadline, lambda: listed_labs(parsed_args), [])
        return labs_by_target[target]

    def own_enrollment(parsed_args: argparse.Namespace) -> str | None:
        return kubeconfig_lab.find_kubeconfig_lab(
            getattr(parsed_args, "kubeconfig", None),
            getattr(parsed_args, "context", None),
            app.env,
        ).enrollment

    def listed_enrollments(parsed_args: argparse.Namespace) -> list[Manifest]:
        try:
            return app.api.list_enrollments()
        except ApiException as error:
            own = own_enrollment(parsed_args)
            if error.status != 403 or own is None:
                raise
            enrollment = app.api.get_enrollment(own)  # an enrolled learner may get theirs
            return [enrollment] if enrollment is not None else []

    objects_by_target: dict[tuple[str, str | None, str | None], Sequence[Manifest]] = {}

    def cached(
        kind: str, listed: Callable[[argparse.Namespace], Sequence[Manifest]]
    ) -> Callable[[argparse.Namespace], Sequence[Manifest]]:
        def objects(parsed_args: argparse.Namespace) -> Sequence[Manifest]:
            kubeconfig = getattr(parsed_args, "kubeconfig", None)
            context = getattr(parsed_args, "context", None)
            key = (kind, kubeconfig, context)
            if key not in objects_by_target:
                app.kubeconfig, app.context = kubeconfig, context
                objects_by_target[key] = within_deadline(
                    deadline, lambda: list(listed(parsed_args)), []
                )
            return objects_by_target[key]

        return objects

    def catalog() -> Mapping[str, LabDefinition]:
        try:
            return app.catalog()
        except CatalogError:
            return {}

    def contexts(parsed_args: argparse.Namespace) -> Sequence[str]:
        def listed() -> list[str]:
            found, _active = kube_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=getattr(parsed_args, "kubeconfig", None)
            )
            return [str(context["name"]) for context in found or []]

        return within_deadline(deadline, listed, [])

    return CompletionSources(
        labs=labs,
        catalog=catalog,
        contexts=contexts,
        kubeconfig_lab=own_lab,
        roadmaps=cached("roadmaps", lambda _: app.api.list_roadmaps()),
        enrollments=cached("enrollments", listed_enrollments),
        cohorts=cached("cohorts", lambda _: app.api.list_cohorts()),
        kubeconfig_enrollment=own_enrollment,
    )


def _quiet_app() -> session.App:
    # Warnings (a broken catalog entry) would land in the middle of the command line.
    return session.App(
        connect=cli.connect_lab_api, catalog_dir=default_catalog_dir(), err=io.StringIO()
    )


def answer_shell(app: session.App) -> None:
    """Answer argcomplete's request from the shell script (prints, then exits the process)."""
    app.err = io.StringIO()
    completer = ArgumentCompleter(app_sources(app), list_files=True)
    argcomplete.autocomplete(
        cli.build_parser(), always_complete_options=False, default_completer=completer
    )


def kubectl_complete(argv: Sequence[str] | None = None) -> int:
    """Console script `kubectl_complete-lab`: kubectl runs it with the words after `lab`."""
    words = sys.argv[1:] if argv is None else argv
    found, directive = complete_words(cli.build_parser(), words, app_sources(_quiet_app()))
    sys.stdout.write(cobra_output(found, directive))
    return 0

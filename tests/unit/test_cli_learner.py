"""kubectl lab with only a learner's kubeconfig: the lab from its context, `hint TASK`,
`extend`, and refusals that say which lab the credentials reach."""

from __future__ import annotations

import argparse
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from test_cli import (
    NOW,
    FakeApi,
    Harness,
    Manifest,
    api_error,
    catalog_dir,
    cond,
    make_lab,
    ready_status,
    ts,
    with_conditions,
)

from roadlab.api import naming
from roadlab.cli import common, kubeconfig_lab, verbs_labs, verbs_learner, waiting

__all__ = ["catalog_dir"]  # the autouse fixture of test_cli: a catalog of the smoke lab

CLUSTER = {"server": "https://10.200.0.1:6443", "insecure-skip-tls-verify": True}
EXTEND_ANN = naming.ANNOTATION_EXTEND_REQUESTED
EXTEND_TOKEN = str(int(NOW.timestamp() * 1000))


def write_kubeconfig(path: Path, document: Manifest) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def learner_kubeconfig(tmp_path: Path, lab: str = "alice-smoke") -> Path:
    document = verbs_labs.build_kubeconfig(lab, f"lab-{lab}", CLUSTER, "tok")
    return write_kubeconfig(tmp_path / f"{lab}.kubeconfig", document)


def admin_kubeconfig(tmp_path: Path, namespace: str | None = None) -> Path:
    context: Manifest = {"cluster": "c", "user": "admin"}
    if namespace:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": CLUSTER}],
        "users": [{"name": "admin", "user": {"token": "admin"}}],
        "contexts": [{"name": "admin@c", "context": context}],
        "current-context": "admin@c",
    }
    return write_kubeconfig(tmp_path / "admin.kubeconfig", document)


def learner_harness(api: FakeApi, kubeconfig: Path) -> Harness:
    harness = Harness(api)
    harness.app.env = {**harness.app.env, "KUBECONFIG": str(kubeconfig)}
    return harness


# --- which lab a kubeconfig is for ----------------------------------------------------------


def test_the_context_extension_names_the_lab_before_the_namespace() -> None:
    extension = kubeconfig_lab.context_extension("alice-smoke")
    assert extension == {"name": "roadlab.dev/lab", "extension": {"lab": "alice-smoke"}}
    assert kubeconfig_lab.context_lab({"extensions": [extension], "namespace": "lab-x"}) == (
        "alice-smoke"
    )
    assert kubeconfig_lab.context_lab({"namespace": "lab-bob-hpa"}) == "bob-hpa"
    assert kubeconfig_lab.context_lab({"namespace": "default"}) is None
    assert kubeconfig_lab.context_lab({"namespace": "lab-"}) is None
    other = {"name": "example.com/x", "extension": {"lab": "nope"}}
    assert kubeconfig_lab.context_lab({"extensions": [other, "junk"]}) is None
    broken = {"name": "roadlab.dev/lab", "extension": "alice"}
    assert kubeconfig_lab.context_lab({"extensions": [broken], "namespace": "lab-y"}) == "y"


def test_kubeconfigs_merge_as_kubectl_merges_them() -> None:
    first = {"current-context": "learner", "contexts": []}
    second = {
        "current-context": "ignored",
        "contexts": [
            {"name": "learner", "context": {"namespace": "lab-alice-smoke"}},
            {"name": "other", "context": {"namespace": "lab-bob-hpa"}},
        ],
    }
    found = kubeconfig_lab.lab_in_kubeconfigs([first, second], None)
    assert found == kubeconfig_lab.KubeconfigLab("learner", "alice-smoke")
    assert kubeconfig_lab.lab_in_kubeconfigs([first, second], "other").lab == "bob-hpa"
    assert kubeconfig_lab.lab_in_kubeconfigs([first, second], "missing") == (
        kubeconfig_lab.KubeconfigLab("missing", None)
    )
    assert kubeconfig_lab.lab_in_kubeconfigs([], None) == kubeconfig_lab.KubeconfigLab(None, None)


def test_kubeconfig_paths_follow_kubectl() -> None:
    env = {"KUBECONFIG": f"/a{os.pathsep}{os.pathsep}/b", "HOME": "/home/x"}
    assert kubeconfig_lab.kubeconfig_paths("/given", env) == [Path("/given")]
    assert kubeconfig_lab.kubeconfig_paths(None, env) == [Path("/a"), Path("/b")]
    assert kubeconfig_lab.kubeconfig_paths(None, {"HOME": "/home/x"}) == [
        Path("/home/x/.kube/config")
    ]


def test_unreadable_kubeconfigs_name_no_lab(tmp_path: Path) -> None:
    (tmp_path / "broken").write_text("{{ not yaml")
    (tmp_path / "list").write_text("[1, 2]")
    paths = [tmp_path / "missing", tmp_path / "broken", tmp_path / "list"]
    assert kubeconfig_lab.kubeconfig_documents(paths) == []


def test_positional_pair_tells_lab_and_value_apart_by_count() -> None:
    assert kubeconfig_lab.positional_pair("scale-web", None) == (None, "scale-web")
    assert kubeconfig_lab.positional_pair("alice-smoke", "scale-web") == (
        "alice-smoke",
        "scale-web",
    )
    assert kubeconfig_lab.positional_pair(None, None) == (None, None)


# --- the verbs without a lab name -----------------------------------------------------------


def test_the_learner_kubeconfig_names_its_lab_in_the_context(tmp_path: Path) -> None:
    path = learner_kubeconfig(tmp_path)
    found = kubeconfig_lab.find_kubeconfig_lab(str(path), None, {})
    assert found == kubeconfig_lab.KubeconfigLab("roadlab-alice-smoke", "alice-smoke")


@pytest.mark.parametrize("how", ["env", "flag"])
def test_status_takes_the_lab_from_the_kubeconfig(tmp_path: Path, how: str) -> None:
    path = learner_kubeconfig(tmp_path)
    api = FakeApi(make_lab(status=ready_status()))
    if how == "env":
        harness = learner_harness(api, path)
        assert harness.run("status") == 0
    else:
        harness = Harness(api)
        assert harness.run("status", "--kubeconfig", str(path)) == 0
    assert harness.out.startswith("Lab:         alice-smoke\n")


def test_a_context_namespace_names_the_lab_too(tmp_path: Path) -> None:
    path = admin_kubeconfig(tmp_path, namespace="lab-alice-smoke")
    harness = learner_harness(FakeApi(make_lab(status=ready_status())), path)
    assert harness.run("-o", "name", "status") == 0
    assert harness.out == "lab.roadlab.dev/alice-smoke\n"


def test_without_a_lab_anywhere_the_error_says_to_pass_one(tmp_path: Path) -> None:
    harness = learner_harness(FakeApi(), admin_kubeconfig(tmp_path))
    assert harness.run("status") == 2
    assert harness.err == (
        "error: no lab name given and the kubeconfig's context admin@c names no lab; "
        "pass the lab name\n"
    )
    assert harness.connected == []  # decided before connecting
    harness = Harness(FakeApi())  # no kubeconfig at all
    assert harness.run("check") == 2
    assert harness.err == (
        "error: no lab name given and the kubeconfig has no current context; pass the lab name\n"
    )


def test_check_and_hint_without_a_lab_name(tmp_path: Path) -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = learner_harness(api, learner_kubeconfig(tmp_path))
    assert harness.run("check") == 0
    assert api.patches[0][0] == "alice-smoke"
    assert "see the results with: kubectl lab status alice-smoke" in harness.out
    harness = learner_harness(api, learner_kubeconfig(tmp_path))
    assert harness.run("hint", "scale-web") == 0
    assert harness.out == "kubectl scale deployment web --replicas=2\n"
    harness = learner_harness(api, learner_kubeconfig(tmp_path))
    assert harness.run("hint", "alice-smoke", "scale-web") == 0  # both still work
    harness = learner_harness(api, learner_kubeconfig(tmp_path))
    assert harness.run("hint", "nope") == 3
    assert harness.err == "error: task nope not found in lab alice-smoke\n"


def test_hint_needs_a_task(tmp_path: Path) -> None:
    harness = learner_harness(FakeApi(make_lab()), learner_kubeconfig(tmp_path))
    assert harness.run("hint") == 2
    assert harness.err == "error: hint: give a task id: kubectl lab hint [LAB] TASK\n"
    assert harness.connected == []


def test_a_name_given_wins_over_the_kubeconfig(tmp_path: Path) -> None:
    api = FakeApi(make_lab(), make_lab("bob-smoke", "bob"))
    harness = learner_harness(api, learner_kubeconfig(tmp_path))
    assert harness.run("-o", "name", "status", "bob-smoke") == 0
    assert harness.out == "lab.roadlab.dev/bob-smoke\n"


def test_a_missing_lab_of_the_kubeconfig_is_named(tmp_path: Path) -> None:
    harness = learner_harness(FakeApi(), learner_kubeconfig(tmp_path))
    assert harness.run("status") == 3
    assert harness.err == "error: lab alice-smoke not found\n"


# --- refusals -------------------------------------------------------------------------------

FORBIDDEN_LIST = (
    'labs.roadlab.dev is forbidden: User "system:serviceaccount:lab-alice-smoke:learner"'
)


class LearnerApi(FakeApi):
    """What RBAC lets a learner do: get (and patch) their own Lab, nothing else."""

    def __init__(self, own: str, *labs: Manifest) -> None:
        super().__init__(*labs)
        self.own = own

    def _refuse(self, name: str | None) -> None:
        if name != self.own:
            raise api_error(403, f"{FORBIDDEN_LIST} cannot get resource labs")

    def get_lab(self, name: str) -> Manifest | None:
        self._refuse(name)
        return super().get_lab(name)

    def list_labs(self) -> list[Manifest]:
        self._refuse(None)
        return []

    def create_lab(self, manifest: Manifest) -> Manifest:
        self._refuse(None)
        return {}

    def delete_lab(self, name: str) -> bool:
        self._refuse(None)
        return False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["list"],
            "your kubeconfig's credentials reach only lab alice-smoke, not the list of labs "
            "(see yours with: kubectl lab status)",
        ),
        (
            ["status", "bob-smoke"],
            "your kubeconfig's credentials reach only lab alice-smoke, not lab bob-smoke",
        ),
        (
            ["hint", "bob-smoke", "scale-web"],
            "your kubeconfig's credentials reach only lab alice-smoke, not lab bob-smoke",
        ),
        (
            ["start", "smoke"],
            "your kubeconfig's credentials reach only lab alice-smoke; "
            "kubectl lab start needs an instructor's kubeconfig",
        ),
        (
            ["delete", "alice-smoke"],
            "your kubeconfig's credentials reach only lab alice-smoke, and kubectl lab delete "
            "is not among what they allow there (status, check, hint, guide, watch, extend)",
        ),
    ],
)
def test_a_learners_refusals_are_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    api = LearnerApi("alice-smoke", make_lab(), make_lab("bob-smoke", "bob"))
    harness = learner_harness(api, learner_kubeconfig(tmp_path))
    assert harness.run(*argv) == 1
    assert harness.err == f"error: {message}\n"


def test_other_refusals_keep_the_api_message(tmp_path: Path) -> None:
    api = FakeApi()
    api.fail_with = api_error(403, "labs.roadlab.dev is forbidden")
    harness = learner_harness(api, admin_kubeconfig(tmp_path))
    assert harness.run("list") == 1
    assert harness.err == "error: not allowed: labs.roadlab.dev is forbidden\n"


def test_refusal_message() -> None:
    assert kubeconfig_lab.refusal_message("list", None, None) is None
    # A learner's own verb on their own lab that is refused: something else is wrong.
    assert kubeconfig_lab.refusal_message("status", "a", "a") is None
    assert kubeconfig_lab.refusal_message("kubeconfig", "a", "a") == (
        "your kubeconfig's credentials reach only lab a, and kubectl lab kubeconfig is not "
        "among what they allow there (status, check, hint, guide, watch, extend)"
    )


# --- kubeconfig: the context names the lab ---------------------------------------------------


def test_the_learner_kubeconfig_from_the_command_names_its_lab(tmp_path: Path) -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = Harness(api)
    assert harness.run("kubeconfig", "alice-smoke") == 0
    document = yaml.safe_load(harness.out)
    [context] = document["contexts"]
    assert context["name"] == document["current-context"] == "roadlab-alice-smoke"
    assert context["context"]["namespace"] == "lab-alice-smoke"
    assert context["context"]["extensions"] == [
        {"name": "roadlab.dev/lab", "extension": {"lab": "alice-smoke"}}
    ]
    path = write_kubeconfig(tmp_path / "k", document)
    assert kubeconfig_lab.find_kubeconfig_lab(str(path), None, {}).lab == "alice-smoke"


# --- extend ---------------------------------------------------------------------------------


def extended_lab(state: str, message: str, token: str = EXTEND_TOKEN) -> Manifest:
    status = ready_status()
    if state == "Accepted":
        status["expiresAt"] = ts(timedelta(hours=2, minutes=22))
        status |= {"extendedBy": "30m", "extensionsUsed": 1}
    status["lastExtension"] = {
        "token": token,
        "requested": "30m",
        "state": state,
        "message": message,
        "at": ts(timedelta(0)),
    }
    return make_lab(status=status)


def answer_extension(api: FakeApi, lab: Manifest) -> None:
    def after_patch(name: str) -> None:
        annotations = api.labs[name]["metadata"]["annotations"]
        lab["metadata"]["annotations"] = dict(annotations)
        api.script[name] = [copy_of(api.labs[name]), lab]

    api.after_patch = after_patch


def copy_of(lab: Manifest) -> Manifest:
    return json.loads(json.dumps(lab))  # type: ignore[no-any-return]


def test_the_extension_token_and_patch() -> None:
    assert waiting.new_extension_token(NOW) == EXTEND_TOKEN
    assert ":" not in EXTEND_TOKEN  # the request is "<token>:<duration>"
    assert waiting.extension_patch("17", timedelta(minutes=90)) == {
        "metadata": {"annotations": {EXTEND_ANN: "17:1h30m"}}
    }


def test_extension_wait_step() -> None:
    pending = make_lab(status=ready_status())
    assert not waiting.extension_wait_step(pending, "t").done
    assert waiting.extension_wait_step(None, "t").exit_code == common.EXIT_NOT_FOUND
    accepted = extended_lab("Accepted", "extended by 30m; 1 extension left", token="t")
    assert waiting.extension_wait_step(accepted, "t") == waiting.WaitStep(
        True, 0, "Accepted", "extended by 30m; 1 extension left"
    )
    refused = extended_lab("Refused", "no extensions left", token="t")
    assert waiting.extension_wait_step(refused, "t").exit_code == common.EXIT_FAILURE
    newer = extended_lab("Accepted", "extended", token="u")
    assert not waiting.extension_wait_step(newer, "t").done  # an older answer: not ours
    newer["metadata"]["annotations"] = {EXTEND_ANN: "u:30m"}
    assert waiting.extension_wait_step(newer, "t").reason == "Superseded"
    expired = make_lab(
        status=with_conditions(ready_status(), cond("Expired", "True", "Expired", "gone"))
    )
    assert waiting.extension_wait_step(expired, "t").reason == "Expired"


def test_extend_waits_for_the_answer(tmp_path: Path) -> None:
    api = FakeApi(make_lab(status=ready_status()))
    answer_extension(api, extended_lab("Accepted", "extended by 30m; 1 extension left"))
    harness = learner_harness(api, learner_kubeconfig(tmp_path))
    assert harness.run("extend", "30m") == 0
    assert api.patches == [
        ("alice-smoke", {"metadata": {"annotations": {EXTEND_ANN: f"{EXTEND_TOKEN}:30m"}}})
    ]
    assert harness.out == (
        "Accepted: extended by 30m; 1 extension left\n"
        "lab alice-smoke now expires at 2026-11-21T12:22:00Z (in 2h22m)\n"
    )
    assert harness.err == ("[   0s] alice-smoke Requested: waiting for the operator to answer\n")


def test_a_refused_extension_exits_1(tmp_path: Path) -> None:
    api = FakeApi(make_lab(status=ready_status()))
    answer_extension(api, extended_lab("Refused", "no extensions left: this lab allows 2"))
    harness = Harness(api)
    assert harness.run("extend", "alice-smoke", "1h") == common.EXIT_FAILURE
    assert harness.out == (
        "Refused: no extensions left: this lab allows 2\n"
        "lab alice-smoke still expires at 2026-11-21T11:52:00Z (in 1h52m)\n"
    )


def test_extend_without_waiting_and_as_json() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = Harness(api)
    assert harness.run("extend", "alice-smoke", "45m", "--no-wait") == 0
    assert harness.out == (
        f"extension by 45m requested for lab alice-smoke (token {EXTEND_TOKEN})\n"
        "see the answer with: kubectl lab status alice-smoke\n"
    )
    assert api.gets == 1
    api = FakeApi(make_lab(status=ready_status()))
    answer_extension(api, extended_lab("Accepted", "extended by 30m"))
    harness = Harness(api)
    assert harness.run("-o", "json", "extend", "alice-smoke", "1800") == 0
    assert json.loads(harness.out)["status"]["lastExtension"]["state"] == "Accepted"


def test_extend_times_out_when_nobody_answers() -> None:
    api = FakeApi(make_lab(status=ready_status()))
    harness = Harness(api)
    assert harness.run("extend", "alice-smoke", "30m", "--timeout", "5s") == common.EXIT_TIMEOUT
    assert "timed out after 5s waiting for lab alice-smoke to answer the extension" in harness.err


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["extend"], "extend: give a duration, e.g. kubectl lab extend 30m"),
        (["extend", "soon"], "extend: "),
        (["extend", "30s"], "extend: an extension is at least 1m, not '30s'"),
        (["extend", "alice-smoke", "90.5"], "extend: an extension is whole seconds"),
    ],
)
def test_extend_usage_errors(argv: list[str], error: str) -> None:
    harness = Harness(FakeApi(make_lab(status=ready_status())))
    assert harness.run(*argv) == 2
    assert harness.err.startswith(f"error: {error}")
    assert harness.connected == []


def test_an_expired_lab_is_not_extended() -> None:
    status = with_conditions(ready_status(), cond("Expired", "True", "Expired", "expired"))
    api = FakeApi(make_lab(status=status))
    harness = Harness(api)
    assert harness.run("extend", "alice-smoke", "30m") == 1
    assert harness.err == "error: lab alice-smoke has expired; it can no longer be extended\n"
    assert api.patches == []


def test_extension_outcome_without_an_expiry() -> None:
    lab = make_lab()
    step = waiting.WaitStep(True, 1, "Superseded", "a newer extension request replaced this one")
    assert verbs_learner.extension_outcome(lab, step, NOW) == (
        "Superseded: a newer extension request replaced this one"
    )


def test_status_shows_the_extensions() -> None:
    harness = Harness(FakeApi(extended_lab("Accepted", "extended by 30m; 1 extension left")))
    assert harness.run("status", "alice-smoke") == 0
    assert (
        "Extended:    30m in 1 extension; last request 30m: Accepted "
        "(extended by 30m; 1 extension left)\n"
    ) in harness.out


def test_lab_argument_writes_the_name_back(tmp_path: Path) -> None:
    harness = learner_harness(FakeApi(), learner_kubeconfig(tmp_path))
    args = argparse.Namespace(name=None, context=None)
    assert kubeconfig_lab.lab_argument(harness.app, args) == "alice-smoke"
    assert args.name == "alice-smoke"

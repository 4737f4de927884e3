"""The flux and gitops_drift probes: Flux objects as kustomize-controller writes them, the
ref list from a real git (its own advertisement, served over real HTTP), and drift made
through the context's merge patch with a stand-in for Flux's reconcile."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from probe_support import NS, FakeClock, FakeContext, local_server

from roadlab.catalog.schema import LabDefinition
from roadlab.checker.probe_context import http_request
from roadlab.probes import HttpResponse, run_check, validate_check
from roadlab.probes.flux import (
    RECONCILE_REQUESTED,
    AdvertisementError,
    field_managers,
    merge_patch_for,
    parse_ref_advertisement,
    revision_commit,
)

KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "shop")
DEPLOY = ("apps/v1", "Deployment", "shop")


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A bare repository as the lab's Git server holds it: main moved one commit past the
    tag start, plus an annotated tag; and git's own smart-HTTP advertisement of it."""
    work = tmp_path_factory.mktemp("work")
    git(work, "init", "-q", "-b", "main")
    (work / "deployment.yaml").write_text("replicas: 1\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "start")
    git(work, "tag", "start")
    start = git(work, "rev-parse", "HEAD")
    (work / "deployment.yaml").write_text("replicas: 3\n")
    git(work, "commit", "-q", "-am", "three")
    git(work, "tag", "-a", "-m", "release", "v1")
    head = git(work, "rev-parse", "HEAD")
    advertised = subprocess.run(
        ["git", "upload-pack", "--stateless-rpc", "--advertise-refs", str(work / ".git")],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(work)},
    ).stdout
    body = b"001e# service=git-upload-pack\n0000" + advertised
    return {"start": start, "head": head, "body": body, "work": work}


@pytest.fixture
def git_server(repository: dict[str, Any]) -> Iterator[dict[str, Any]]:
    state = {"body": repository["body"], "status": 200}

    def route(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if path == "/lab.git/info/refs" and query.get("service") == "git-upload-pack":
            return int(state["status"]), state["body"]
        return 404, "no such repository"

    with local_server(route) as server:
        state["port"] = server.port
        yield state


def test_the_ref_list_of_real_git_is_read(repository: dict[str, Any]) -> None:
    refs = parse_ref_advertisement(repository["body"])
    assert refs["refs/heads/main"] == repository["head"]
    assert refs["refs/tags/start"] == repository["start"]
    # An annotated tag is its own object; its peeled line names the commit.
    assert refs["refs/tags/v1^{}"] == repository["head"]
    assert refs["refs/tags/v1"] != repository["head"]


@pytest.mark.parametrize("body", [b"zzzz", b"0032" + b"x" * 10, b"0010not a ref li\n"])
def test_what_is_not_a_ref_list_is_refused(body: bytes) -> None:
    with pytest.raises(AdvertisementError):
        parse_ref_advertisement(body)


def test_revisions_of_both_flux_formats() -> None:
    commit = "a" * 40
    assert revision_commit(f"main@sha1:{commit}") == commit
    assert revision_commit(f"main/{commit}") == commit
    assert revision_commit("main") is None
    assert revision_commit(None) is None


def kustomization(
    revision: str,
    *,
    ready: str = "True",
    message: str = "Applied revision",
    prune: bool = True,
    inventory: tuple[str, ...] = (f"{NS}_shop_apps_Deployment", f"{NS}_shop__Service"),
    generation: int = 2,
    observed: int = 2,
) -> dict[str, Any]:
    return {
        "apiVersion": KS[0],
        "kind": "Kustomization",
        "metadata": {"name": "shop", "namespace": NS, "generation": generation},
        "spec": {
            "prune": prune,
            "path": "./apps/shop",
            "sourceRef": {"kind": "GitRepository", "name": "lab"},
        },
        "status": {
            "observedGeneration": observed,
            "lastAppliedRevision": revision,
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "ReconciliationSucceeded"
                    if ready == "True"
                    else "ReconciliationFailed",
                    "message": message,
                }
            ],
            "inventory": {"entries": [{"id": i, "v": "v1"} for i in inventory]},
        },
    }


def shop_deployment(replicas: int = 3, replicas_by: str = "kustomize-controller") -> dict[str, Any]:
    flux_fields: dict[str, Any] = {"f:metadata": {"f:labels": {}}, "f:spec": {"f:template": {}}}
    managed = [{"manager": "kustomize-controller", "operation": "Apply", "fieldsV1": flux_fields}]
    if replicas_by == "kustomize-controller":
        flux_fields["f:spec"]["f:replicas"] = {}
    else:
        managed.append(
            {
                "manager": replicas_by,
                "operation": "Update",
                "subresource": "scale",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            }
        )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "shop",
            "namespace": NS,
            "resourceVersion": "100",
            "labels": {
                "kustomize.toolkit.fluxcd.io/name": "shop",
                "kustomize.toolkit.fluxcd.io/namespace": NS,
            },
            "managedFields": managed,
        },
        "spec": {"replicas": replicas},
    }


FLUX_ARGS: dict[str, Any] = {
    "kind": "Kustomization",
    "name": "shop",
    "fieldEquals": {"spec.prune": True},
    "git": {"service": "git", "repository": "lab", "branch": "main", "pastTag": "start"},
    "applied": [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "shop",
            "fieldEquals": {"spec.replicas": 3},
        }
    ],
    "withinSeconds": 10,
}


def context(git_server: Mapping[str, Any], *objects: dict[str, Any]) -> FakeContext:
    ctx = FakeContext(services={"git": int(git_server["port"])}, clock=FakeClock())
    for obj in objects:
        ctx.add(obj)
    return ctx


def test_a_kustomization_at_the_pushed_head_with_fields_from_git_passes(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    head = repository["head"]
    ctx = context(git_server, kustomization(f"main@sha1:{head}"), shop_deployment())
    result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Passed", result.message
    assert f'Ready at "main@sha1:{head}", the head of main' in result.message
    assert "Deployment shop: spec.replicas is 3" in result.message
    assert result.evidence["gitHead"] == head[:7]


def test_a_head_still_at_the_start_tag_asks_for_a_push(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    start = repository["start"]
    ctx = context(git_server, kustomization(f"main@sha1:{start}"), shop_deployment())
    args = {**FLUX_ARGS, "git": {**FLUX_ARGS["git"], "branch": "start-only"}}
    # A branch that is not there is said at once.
    result = run_check(ctx, "flux", args)
    assert result.state == "Failed"
    assert "has no branch start-only" in result.message
    # The lab's first commit as the head: nothing was pushed.
    with local_server(
        lambda *_: (200, git_server["body"].replace(repository["head"].encode(), start.encode()))
    ) as first_commit_only:
        ctx.services["git"] = first_commit_only.port
        result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Failed"
    assert "still at its first commit (tag start" in result.message
    assert ctx.clock.sleeps == []  # waiting cannot help


def test_a_revision_behind_the_head_is_waited_for_then_said(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    ctx = context(git_server, kustomization(f"main@sha1:{repository['start']}"), shop_deployment())
    result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Failed"
    assert "Flux has not fetched and applied the push yet" in result.message
    assert repository["head"][:7] in result.message
    assert "(waited 10 s)" in result.message


def test_flux_catching_up_within_the_window_passes(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    ctx = context(git_server, shop_deployment())
    clock = ctx.clock
    ctx.objects[KS] = lambda: kustomization(
        f"main@sha1:{repository['head'] if clock.now >= 1004 else repository['start']}"
    )
    result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Passed", result.message
    assert result.evidence["seconds"] == 4


def test_not_ready_shows_flux_s_own_message(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    forbidden = (
        'Deployment/lab-x/shop dry-run failed: deployments.apps "shop" is forbidden: User '
        '"system:serviceaccount:lab-x:default" cannot patch resource "deployments"'
    )
    ctx = context(
        git_server,
        kustomization(f"main@sha1:{repository['head']}", ready="False", message=forbidden),
        shop_deployment(),
    )
    result = run_check(ctx, "flux", {**FLUX_ARGS, "withinSeconds": 0})
    assert result.state == "Failed"
    assert "is not Ready (ReconciliationFailed: Deployment/lab-x/shop dry-run failed" in (
        result.message
    )
    assert "system:serviceaccount:lab-x:default" in result.message


def test_a_field_of_the_kustomization_is_said_at_once(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    ctx = context(
        git_server, kustomization(f"main@sha1:{repository['head']}", prune=False), shop_deployment()
    )
    result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Failed"
    assert result.message == "Kustomization shop: spec.prune is false, expected true"


def test_a_field_set_with_kubectl_is_not_from_git(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    ctx = context(
        git_server,
        kustomization(f"main@sha1:{repository['head']}"),
        shop_deployment(replicas_by="kubectl"),
    )
    result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Failed"
    assert "spec.replicas is as asked, but was set by kubectl, not by Flux from Git" in (
        result.message
    )


ARTIFACT_HOST = "http://source-controller.flux-system.svc.cluster.local."


def artifact(deployment_yaml: str, filler: int = 0) -> bytes:
    """A tar.gz of the repository, as source-controller serves it (a file of `filler` zero
    bytes first, as a learner could push)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, text in {
            "apps/shop/a-large-file.yaml": "\0" * filler,
            "apps/shop/deployment.yaml": deployment_yaml,
            "apps/shop/kustomization.yaml": "resources: [deployment.yaml]\n",
            "README.md": "not a manifest",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@contextmanager
def with_artifact(
    git_server: Mapping[str, Any], revision: str, deployment_yaml: str | None, filler: int = 0
) -> Iterator[FakeContext]:
    """A context whose GitRepository lab has an artifact at `revision` (None: unreadable),
    source-controller's address sent to a local server."""

    def route(method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if deployment_yaml is None:
            return 404, "gone"
        return 200, artifact(deployment_yaml, filler)

    with local_server(route) as storage:

        def http(method: str, url: str, **kwargs: Any) -> HttpResponse:
            url = url.replace(ARTIFACT_HOST, f"http://127.0.0.1:{storage.port}")
            return http_request(method, url, **kwargs)

        ctx = FakeContext(services={"git": int(git_server["port"])}, clock=FakeClock(), http=http)
        ctx.add(
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "lab"},
                "status": {
                    "artifact": {
                        "revision": revision,
                        "url": f"{ARTIFACT_HOST}/gitrepository/{NS}/lab/x.tar.gz",
                    }
                },
            }
        )
        yield ctx


SHOP_IN_GIT = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop}\nspec:\n"


@pytest.mark.parametrize("manager", ["roadlab-checker", None])
def test_a_field_set_by_hand_that_git_declares_too_passes(
    git_server: dict[str, Any], repository: dict[str, Any], manager: str | None
) -> None:
    # Flux applies only what differs: a value scaled by hand that Git then declares stays
    # the hand's (kubectl scale records no manager; a drift check's restore, the checker).
    revision = f"main@sha1:{repository['head']}"
    deployment = shop_deployment(replicas_by=manager or "none")
    if manager is None:
        deployment["metadata"]["managedFields"].pop()
    with with_artifact(git_server, revision, SHOP_IN_GIT + "  replicas: 3\n") as ctx:
        ctx.add(kustomization(revision)).add(deployment)
        result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Passed", result.message
    assert (
        f"Deployment shop: spec.replicas as Git declares it (apps/shop/deployment.yaml at "
        f"{revision})" in result.message
    )


def test_a_field_set_by_hand_that_git_leaves_out_fails(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    revision = f"main@sha1:{repository['head']}"
    deployment = shop_deployment(replicas_by="none")
    deployment["metadata"]["managedFields"].pop()
    with with_artifact(git_server, revision, SHOP_IN_GIT + "  paused: false\n") as ctx:
        ctx.add(kustomization(revision)).add(deployment)
        result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Failed"
    assert (
        f"Deployment shop: spec.replicas is 3, but Git (apps/shop/deployment.yaml at {revision}) "
        "does not set it: it was set by hand (kubectl scale records no field manager); a change "
        "made with kubectl is not GitOps: change it in Git and push"
    ) in result.message
    assert ctx.clock.sleeps == []  # waiting cannot make it Git's


def test_without_the_artifact_the_field_managers_decide(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    revision = f"main@sha1:{repository['head']}"
    with with_artifact(git_server, revision, None) as ctx:
        ctx.add(kustomization(revision)).add(shop_deployment(replicas_by="kubectl-edit"))
        result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Failed"
    assert (
        "spec.replicas is as asked, but was set by kubectl-edit, not by Flux from Git "
        "(source-controller answered 404 for the artifact)" in result.message
    )


def test_an_object_outside_the_inventory_was_not_applied_by_flux(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    ctx = context(
        git_server,
        kustomization(f"main@sha1:{repository['head']}", inventory=()),
        shop_deployment(),
    )
    result = run_check(ctx, "flux", {**FLUX_ARGS, "withinSeconds": 0})
    assert result.state == "Failed"
    assert "is not one of the objects Kustomization shop applied" in result.message


def test_a_change_not_yet_reconciled_is_not_judged_ready(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    ctx = context(
        git_server,
        kustomization(f"main@sha1:{repository['head']}", generation=3, observed=2),
        shop_deployment(),
    )
    result = run_check(ctx, "flux", {**FLUX_ARGS, "withinSeconds": 0})
    assert result.state == "Failed"
    assert "has not been reconciled since its last change (generation 3, observed 2)" in (
        result.message
    )


def test_an_unreachable_git_server_is_an_error(repository: dict[str, Any]) -> None:
    with local_server(lambda *_: (503, "starting")) as down:
        ctx = FakeContext(services={"git": down.port}, clock=FakeClock())
        ctx.add(kustomization(f"main@sha1:{repository['head']}"))
        result = run_check(ctx, "flux", {**FLUX_ARGS, "withinSeconds": 4})
    assert result.state == "Error"
    assert "the lab's Git server answered 503" in result.message


def test_a_git_repository_is_judged_by_its_artifact(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "lab", "generation": 1},
        "spec": {"ref": {"branch": "main"}},
        "status": {
            "observedGeneration": 1,
            "artifact": {"revision": f"main@sha1:{repository['head']}"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    ctx = context(git_server, source)
    args = {
        "kind": "GitRepository",
        "name": "lab",
        "fieldEquals": {"spec.ref.branch": "main"},
        "git": {"service": "git", "repository": "lab"},
    }
    result = run_check(ctx, "flux", args)
    assert result.state == "Passed", result.message


def test_managed_fields_name_who_set_a_field() -> None:
    obj = shop_deployment(replicas_by="kubectl")
    assert field_managers(obj, "spec.replicas") == ["kubectl"]
    assert field_managers(obj, "spec.template") == ["kustomize-controller"]
    assert field_managers(obj, "spec.containers[0].image") is None
    keyed = {
        "metadata": {
            "managedFields": [
                {
                    "manager": "m",
                    "fieldsV1": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}},
                }
            ]
        }
    }
    assert field_managers(keyed, "spec.containers[name=web].image") == ["m"]


# --- drift ----------------------------------------------------------------------------------


class FluxStandIn(FakeContext):
    """Merge patches as the API server does; an annotated Kustomization reconciles at the
    next read, as kustomize-controller does: the fields Git declares go back, the request
    is recorded as handled."""

    def __init__(self, git_declares_replicas: bool = True, **kwargs: Any) -> None:
        super().__init__(clock=FakeClock(), **kwargs)
        self.git_declares_replicas = git_declares_replicas

    def get_object(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        ks = self.objects.get(KS)
        requested = (ks or {}).get("metadata", {}).get("annotations", {}).get(RECONCILE_REQUESTED)
        handled = (ks or {}).get("status", {}).get("lastHandledReconcileAt")
        if ks is not None and requested and handled != requested and self.clock.now >= 1002:
            # Two seconds in, the controller has reconciled.
            ks["status"]["lastHandledReconcileAt"] = requested
            if self.git_declares_replicas:
                self.objects[DEPLOY]["spec"]["replicas"] = 3
        return super().get_object(api_version, kind, name)


DRIFT_ARGS = {
    "kustomization": "shop",
    "target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"},
    "field": "spec.replicas",
    "driftTo": 1,
    "withinSeconds": 30,
}


def test_drift_put_back_by_flux_passes() -> None:
    ctx = FluxStandIn()
    ctx.add(kustomization("main@sha1:" + "a" * 40)).add(shop_deployment())
    result = run_check(ctx, "gitops_drift", DRIFT_ARGS)
    assert result.state == "Passed", result.message
    assert result.message.startswith(
        "Flux put Deployment shop's spec.replicas back to 3 after the check set it to 1"
    )
    assert result.evidence["seconds"] == 2
    drift, request = ctx.patches
    assert drift == ("apps/v1", "Deployment", "shop", {"spec": {"replicas": 1}})
    assert request[:3] == KS
    assert request[3]["metadata"]["annotations"][RECONCILE_REQUESTED].startswith("roadlab-drift-")


def test_drift_of_a_field_git_does_not_declare_is_said_and_undone_by_the_check() -> None:
    ctx = FluxStandIn(git_declares_replicas=False)
    ctx.add(kustomization("main@sha1:" + "a" * 40)).add(shop_deployment(replicas_by="kubectl"))
    result = run_check(ctx, "gitops_drift", DRIFT_ARGS)
    assert result.state == "Failed"
    assert (
        "reconciled after the check set Deployment shop's spec.replicas to 1, and left it so"
        in (result.message)
    )
    assert "Flux restores only the fields Git declares" in result.message
    assert result.message.endswith("the check put spec.replicas back to 3 itself")
    assert ctx.objects[DEPLOY]["spec"]["replicas"] == 3
    # Put back as kubectl, who had set it: the field's owner is as before the check.
    assert ctx.patch_managers[-1] == "kubectl"
    assert ctx.patch_managers[0] is None  # the drift itself: the checker's own
    assert ctx.clock.now < 1010  # said once Flux had reconciled, not at the window's end


def test_drift_needs_a_ready_unsuspended_kustomization_that_applied_the_target() -> None:
    ctx = FluxStandIn()
    suspended = kustomization("main@sha1:" + "a" * 40)
    suspended["spec"]["suspend"] = True
    ctx.add(suspended).add(shop_deployment())
    assert "is suspended" in run_check(ctx, "gitops_drift", DRIFT_ARGS).message
    ctx.add(kustomization("x", ready="False"))
    assert "is not Ready" in run_check(ctx, "gitops_drift", DRIFT_ARGS).message
    ctx.add(kustomization("main@sha1:" + "a" * 40))
    by_hand = shop_deployment()
    by_hand["metadata"]["labels"] = {}
    ctx.add(by_hand)
    result = run_check(ctx, "gitops_drift", DRIFT_ARGS)
    assert "was not applied by Kustomization shop" in result.message
    assert ctx.patches == []  # nothing was changed


def test_merge_patches_name_map_keys() -> None:
    assert merge_patch_for("spec.replicas", 1) == {"spec": {"replicas": 1}}
    assert merge_patch_for('metadata.labels["a.b/c"]', None) == {
        "metadata": {"labels": {"a.b/c": None}}
    }


@pytest.mark.parametrize(
    ("probe", "args", "problem"),
    [
        ("gitops_drift", {**DRIFT_ARGS, "field": "spec.containers[name=web].image"}, "map keys"),
        ("flux", {**FLUX_ARGS, "kind": "GitRepository"}, "only a Kustomization applies"),
        ("flux", {**FLUX_ARGS, "git": {"service": "git", "repository": "../etc"}}, "repository"),
        ("flux", {"kind": "HelmRelease", "name": "x"}, "kind"),
    ],
)
def test_bad_arguments_are_refused(probe: str, args: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_check(probe, args)


def test_a_lab_must_grant_what_its_drift_check_patches() -> None:
    lab = {
        "id": "gitops-x",
        "title": "t",
        "difficulty": "beginner",
        "duration": 10,
        "tasks": [
            {"id": "drift", "title": "t", "check": {"probe": "gitops_drift", "args": DRIFT_ARGS}}
        ],
    }
    with pytest.raises(ValueError, match="patches deployments shop \\(apps\\)"):
        LabDefinition.model_validate(lab)
    lab["environment"] = {
        "checkerMayPatch": [
            {"apiGroup": "apps", "resource": "deployments", "name": "shop"},
            {
                "apiGroup": "kustomize.toolkit.fluxcd.io",
                "resource": "kustomizations",
                "name": "shop",
            },
        ]
    }
    LabDefinition.model_validate(lab)


def test_an_artifact_filled_with_large_files_is_not_inflated_past_its_cap(
    git_server: dict[str, Any], repository: dict[str, Any]
) -> None:
    revision = f"main@sha1:{repository['head']}"
    deployment = shop_deployment(replicas_by="none")
    deployment["metadata"]["managedFields"].pop()
    big = 17 * 1024 * 1024  # compresses to a few KB; above MAX_ARTIFACT_BYTES inflated
    with with_artifact(git_server, revision, SHOP_IN_GIT + "  replicas: 3\n", big) as ctx:
        ctx.add(kustomization(revision)).add(deployment)
        result = run_check(ctx, "flux", FLUX_ARGS)
    assert result.state == "Failed"
    assert "no manifest of Deployment shop under apps/shop" in result.message

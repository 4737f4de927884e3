"""The mlflow probe against a local server speaking MLflow REST API 2.0 shapes.

Shapes follow mlflow/protos (service.proto, model_registry.proto) as the tracking server
serialises them: empty repeated fields are left out, ids and versions are strings, a
missing resource is 404 RESOURCE_DOES_NOT_EXIST, an unset alias 400 INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from probe_support import FakeContext, LocalServer, closed_port, local_server

from roadlab.probes import run_check


def not_found(message: str) -> tuple[int, Any]:
    return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": message}


@dataclass
class Mlflow:
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    page_size: int = 1000
    broken: bool = False

    def __call__(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        if self.broken:
            return 500, {"error_code": "INTERNAL_ERROR", "message": "database is locked"}
        if path == "/api/2.0/mlflow/experiments/get-by-name" and method == "GET":
            name = query["experiment_name"]
            if name not in self.experiments:
                return not_found(f"Could not find experiment with name '{name}'")
            return 200, {"experiment": self.experiments[name]}
        if path == "/api/2.0/mlflow/runs/search" and method == "POST":
            request = json.loads(body)
            (experiment_id,) = request["experiment_ids"]
            runs = self.runs.get(experiment_id, [])
            start = int(request.get("page_token") or 0)
            size = min(self.page_size, request["max_results"])
            page: dict[str, Any] = {}
            if runs[start : start + size]:
                page["runs"] = runs[start : start + size]
            if start + size < len(runs):
                page["next_page_token"] = str(start + size)
            return 200, page
        if path == "/api/2.0/mlflow/registered-models/get":
            name = query["name"]
            if name not in self.models:
                return not_found(f"Registered Model with name={name} not found")
            return 200, {"registered_model": self.models[name]}
        if path == "/api/2.0/mlflow/registered-models/alias" and method == "GET":
            key = (query["name"], query["alias"])
            if key not in self.aliases:
                return 400, {
                    "error_code": "INVALID_PARAMETER_VALUE",
                    "message": f"Registered model alias {query['alias']} not found.",
                }
            return 200, {"model_version": self.aliases[key]}
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "no such endpoint"}


def make_run(run_id: str, experiment_id: str = "7", **metrics: float) -> dict[str, Any]:
    data: dict[str, Any] = {"params": [{"key": "alpha", "value": "0.5"}]}
    if metrics:
        data["metrics"] = [
            {"key": k, "value": v, "timestamp": 1732183200000, "step": 0}
            for k, v in metrics.items()
        ]
    return {
        "info": {
            "run_id": run_id,
            "run_uuid": run_id,
            "experiment_id": experiment_id,
            "run_name": f"run-{run_id}",
            "status": "FINISHED",
            "start_time": 1732183100000,
            "end_time": 1732183200000,
            "lifecycle_stage": "active",
            "artifact_uri": f"mlflow-artifacts:/7/{run_id}/artifacts",
        },
        "data": data,
        "inputs": {},
    }


def model_version(
    version: str, run_id: str | None, aliases: list[str] | None = None
) -> dict[str, Any]:
    mv: dict[str, Any] = {
        "name": "churn-model",
        "version": version,
        "creation_timestamp": 1732183300000,
        "last_updated_timestamp": 1732183300000,
        "current_stage": "None",
        "source": f"models:/m-{version}",
        "status": "READY",
    }
    if run_id is not None:
        mv["run_id"] = run_id
    if aliases:
        mv["aliases"] = aliases
    return mv


def populated() -> Mlflow:
    app = Mlflow()
    app.experiments["churn"] = {
        "experiment_id": "7",
        "name": "churn",
        "artifact_location": "mlflow-artifacts:/7",
        "lifecycle_stage": "active",
        "last_update_time": 1732183000000,
        "creation_time": 1732183000000,
    }
    app.runs["7"] = [
        make_run("aaa", rmse=0.52, mae=0.4),
        make_run("bbb", rmse=0.41, mae=0.3),
        make_run("ccc", rmse=0.47),
    ]
    app.models["churn-model"] = {
        "name": "churn-model",
        "creation_timestamp": 1732183300000,
        "last_updated_timestamp": 1732183400000,
        "latest_versions": [model_version("2", "bbb")],
        "aliases": [{"alias": "champion", "version": "2"}],
    }
    app.aliases[("churn-model", "champion")] = model_version("2", "bbb", ["champion"])
    return app


@pytest.fixture
def mlflow() -> Any:
    app = populated()
    with local_server(app) as server:
        yield app, server


def check(server: LocalServer, **args: Any) -> Any:
    ctx = FakeContext(services={"mlflow": server.port})
    return run_check(ctx, "mlflow", {"service": "mlflow", **args})


FULL = {
    "experiment": "churn",
    "minRuns": 3,
    "metric": "rmse",
    "registeredModel": "churn-model",
    "alias": "champion",
    "bestBy": {"metric": "rmse", "mode": "min"},
}


def test_mlflow_everything_passes(mlflow: tuple[Mlflow, LocalServer]) -> None:
    _, server = mlflow
    result = check(server, **FULL)
    assert result.state == "Passed", result.message
    assert result.message == (
        'MLflow: experiment "churn" has 3 runs; registered model "churn-model" has versions; '
        'alias "champion" points to version 2, the best run by rmse (rmse=0.41)'
    )
    assert result.evidence == {
        "runs": 3,
        "runsWithMetric": 3,
        "latestVersion": "2",
        "aliasVersion": "2",
        "bestValue": 0.41,
        "aliasValue": 0.41,
    }
    assert server.paths() == [
        "/api/2.0/mlflow/experiments/get-by-name",
        "/api/2.0/mlflow/runs/search",
        "/api/2.0/mlflow/registered-models/get",
        "/api/2.0/mlflow/registered-models/alias",
    ]
    search = json.loads(server.requests[1].body)
    assert search == {"experiment_ids": ["7"], "max_results": 1000}
    assert server.requests[3].query == {"name": "churn-model", "alias": "champion"}


def test_mlflow_alias_not_on_best_run_word_for_word(mlflow: tuple[Mlflow, LocalServer]) -> None:
    app, server = mlflow
    app.aliases[("churn-model", "champion")] = model_version("1", "aaa", ["champion"])
    result = check(server, **FULL)
    assert result.state == "Failed"
    assert result.message == (
        'alias "champion" points to version 1 (run aaa, rmse=0.52), but the best run of '
        'experiment "churn" by rmse (min) is bbb (rmse=0.41)'
    )
    as_max = check(server, **{**FULL, "bestBy": {"metric": "rmse", "mode": "max"}})
    assert as_max.state == "Passed"


def test_mlflow_experiment_missing(mlflow: tuple[Mlflow, LocalServer]) -> None:
    _, server = mlflow
    result = check(server, experiment="fraud")
    assert result.state == "Failed"
    assert result.message == (
        'MLflow experiment "fraud" not found: create it by calling mlflow.set_experiment("fraud") '
        "before logging runs"
    )


def test_mlflow_deleted_experiment(mlflow: tuple[Mlflow, LocalServer]) -> None:
    app, server = mlflow
    app.experiments["churn"]["lifecycle_stage"] = "deleted"
    assert "is deleted" in check(server, experiment="churn").message


def test_mlflow_too_few_runs_and_metric(mlflow: tuple[Mlflow, LocalServer]) -> None:
    _, server = mlflow
    few = check(server, experiment="churn", minRuns=5)
    assert few.message == 'experiment "churn" has 3 runs, expected at least 5'
    metric = check(server, experiment="churn", minRuns=3, metric="mae")
    assert metric.state == "Failed"
    assert metric.message == (
        'experiment "churn" has 3 runs but 2 log metric "mae", expected at least 3 (log it '
        'with mlflow.log_metric("mae", value))'
    )
    assert check(server, experiment="churn", minRuns=2, metric="mae").passed


def test_mlflow_empty_experiment(mlflow: tuple[Mlflow, LocalServer]) -> None:
    app, server = mlflow
    app.runs["7"] = []
    result = check(server, experiment="churn")
    assert result.message == 'experiment "churn" has 0 runs, expected at least 1'
    assert check(server, experiment="churn", minRuns=0).passed


def test_mlflow_paginates(mlflow: tuple[Mlflow, LocalServer]) -> None:
    app, server = mlflow
    app.page_size = 2
    result = check(server, experiment="churn", minRuns=3)
    assert result.passed, result.message
    bodies = [json.loads(r.body) for r in server.requests if r.path.endswith("runs/search")]
    assert bodies[1]["page_token"] == "2"


def test_mlflow_model_missing_or_without_versions(mlflow: tuple[Mlflow, LocalServer]) -> None:
    app, server = mlflow
    missing = check(server, registeredModel="fraud-model")
    assert missing.state == "Failed"
    assert missing.message.startswith('registered model "fraud-model" not found: register one')
    del app.models["churn-model"]["latest_versions"]  # as MLflow serialises an empty list
    empty = check(server, registeredModel="churn-model")
    assert empty.message == (
        'registered model "churn-model" has no versions: register a model version'
    )


def test_mlflow_latest_version_is_numeric(mlflow: tuple[Mlflow, LocalServer]) -> None:
    app, server = mlflow
    app.models["churn-model"]["latest_versions"] = [
        model_version("9", "aaa"),
        model_version("10", "bbb"),
    ]
    assert check(server, registeredModel="churn-model").evidence["latestVersion"] == "10"


def test_mlflow_alias_unset(mlflow: tuple[Mlflow, LocalServer]) -> None:
    _, server = mlflow
    result = check(server, registeredModel="churn-model", alias="challenger")
    assert result.state == "Failed"
    assert result.message == (
        'alias "challenger" is not set on registered model "churn-model": set it with '
        'MlflowClient().set_registered_model_alias("churn-model", "challenger", <version>)'
    )
    plain = check(server, registeredModel="churn-model", alias="champion")
    assert plain.passed
    assert plain.message.endswith('alias "champion" points to version 2')


def test_mlflow_alias_version_from_elsewhere(mlflow: tuple[Mlflow, LocalServer]) -> None:
    app, server = mlflow
    app.aliases[("churn-model", "champion")] = model_version("3", "zzz")
    outside = check(server, **FULL)
    assert "from run zzz, which is not in experiment" in outside.message
    app.aliases[("churn-model", "champion")] = model_version("4", None)
    no_run = check(server, **FULL)
    assert "which was not logged from a run (no run_id)" in no_run.message


def test_mlflow_best_by_metric_nobody_logs(mlflow: tuple[Mlflow, LocalServer]) -> None:
    _, server = mlflow
    result = check(server, **{**FULL, "bestBy": {"metric": "auc", "mode": "max"}})
    assert result.message == (
        'no run in experiment "churn" logs metric "auc", so the best run cannot be determined'
    )


def test_mlflow_server_error_and_unreachable(mlflow: tuple[Mlflow, LocalServer]) -> None:
    app, server = mlflow
    app.broken = True
    result = check(server, experiment="churn")
    assert result.state == "Error"
    assert result.message.endswith('with 500 INTERNAL_ERROR: "database is locked"')
    port = closed_port()
    ctx = FakeContext(services={"mlflow": port})
    down = run_check(ctx, "mlflow", {"service": "mlflow", "experiment": "churn"})
    assert down.state == "Error"
    assert down.message.startswith("could not reach Service mlflow port 5000 (GET ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give at least one of experiment or registeredModel"),
        ({"registeredModel": "m", "minRuns": 2}, "minRuns and metric need experiment"),
        ({"experiment": "e", "alias": "champion"}, "alias needs registeredModel"),
        (
            {"experiment": "e", "registeredModel": "m", "bestBy": {"metric": "rmse"}},
            "bestBy needs alias and experiment",
        ),
        ({"experiment": "e", "bestBy": {"metric": "x", "mode": "median"}}, "mode: Input should be"),
        ({"registeredModel": "m", "alias": "has space"}, "alias: String should match pattern"),
    ],
)
def test_mlflow_bad_args(args: dict[str, Any], message: str) -> None:
    result = run_check(FakeContext(), "mlflow", {"service": "mlflow", **args})
    assert result.state == "Error"
    assert message in result.message

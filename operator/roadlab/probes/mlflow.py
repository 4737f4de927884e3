"""`mlflow`: experiments, runs, registered models and aliases on an MLflow tracking server.

    check:
      probe: mlflow
      args:
        service: mlflow
        experiment: churn
        minRuns: 3
        metric: rmse
        registeredModel: churn-model
        alias: champion
        bestBy: {metric: rmse, mode: min}

Uses the REST API 2.0: experiments/get-by-name, runs/search, registered-models/get and
registered-models/alias (GetModelVersionByAlias). Every sub-check is optional, but at
least one of experiment / registeredModel is required.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, Field, StringConstraints, model_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    HttpResponse,
    Probe,
    ProbeArgs,
    ProbeContext,
    ProbeHttpError,
    plural,
    show,
)
from roadlab.probes.http_args import Port, ServiceName, snippet, unreachable

API = "/api/2.0/mlflow"
MAX_RESULTS = 1000
MAX_PAGES = 5
Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class BestBy(ProbeArgs):
    metric: Text
    mode: Literal["max", "min"] = "max"


class MlflowArgs(ProbeArgs):
    service: ServiceName
    port: Port = 5000
    experiment: Text | None = None
    min_runs: Annotated[int, Field(ge=0, le=MAX_RESULTS)] | None = None
    metric: Text | None = None
    registered_model: Text | None = None
    alias: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,255}$")] | None = None
    best_by: BestBy | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10

    @model_validator(mode="after")
    def _consistent(self) -> MlflowArgs:
        if self.experiment is None and self.registered_model is None:
            raise ValueError("give at least one of experiment or registeredModel")
        if self.experiment is None and (self.min_runs is not None or self.metric is not None):
            raise ValueError("minRuns and metric need experiment")
        if self.alias is not None and self.registered_model is None:
            raise ValueError("alias needs registeredModel")
        if self.best_by is not None and (self.alias is None or self.experiment is None):
            raise ValueError("bestBy needs alias and experiment")
        return self


class _LearnerError(Exception):
    """A sub-check failed (message for the learner)."""


class _ServerError(Exception):
    """The tracking server could not answer (an Error, not the learner's fault)."""


class _Run(BaseModel):
    run_id: str
    metrics: dict[str, float]


def _error_code(response: HttpResponse) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", snippet(response)
    if isinstance(body, dict):
        return str(body.get("error_code", "")), show(str(body.get("message", "")), 160)
    return "", snippet(response)


class _Client:
    def __init__(self, ctx: ProbeContext, args: MlflowArgs) -> None:
        self.ctx = ctx
        self.args = args

    def call(
        self, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        url = self.ctx.service_url(self.args.service, self.args.port, API + path)
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.ctx.http(
                method, url, body=body, headers=headers, timeout=self.args.timeout_seconds
            )
        except ProbeHttpError as exc:
            raise _ServerError(
                unreachable(self.args.service, self.args.port, f"{method} {url}", exc)
            ) from exc
        if response.status == 200:
            try:
                return 200, response.json()
            except ValueError as exc:
                raise _ServerError(
                    f"MLflow answered {method} {url} with a body that is not JSON: "
                    f"{snippet(response)}"
                ) from exc
        code, message = _error_code(response)
        if response.status >= 500 or response.status in (401, 403):
            raise _ServerError(
                f"MLflow answered {method} {url} with {response.status} {code}: {message}"
            )
        return response.status, {"error_code": code, "message": message}


def _runs(client: _Client, experiment_id: str) -> list[_Run]:
    runs: list[_Run] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        payload: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": MAX_RESULTS}
        if token:
            payload["page_token"] = token
        status, body = client.call("POST", "/runs/search", payload)
        if status != 200:
            raise _ServerError(f"MLflow runs/search failed: {body.get('message', status)}")
        for raw in body.get("runs") or []:
            info = raw.get("info") or {}
            data = raw.get("data") or {}
            metrics = {
                str(m.get("key")): float(m["value"])
                for m in data.get("metrics") or []
                if isinstance(m, dict) and isinstance(m.get("value"), int | float)
            }
            runs.append(
                _Run(run_id=str(info.get("run_id") or info.get("run_uuid")), metrics=metrics)
            )
        token = body.get("next_page_token")
        if not token:
            break
    return runs


def _check_experiment(
    client: _Client, args: MlflowArgs, evidence: Evidence
) -> tuple[str, list[_Run]]:
    name = args.experiment or ""
    status, body = client.call(
        "GET", "/experiments/get-by-name?" + urlencode({"experiment_name": name})
    )
    if status != 200:
        raise _LearnerError(
            f"MLflow experiment {show(name)} not found: create it by calling "
            f"mlflow.set_experiment({show(name)}) before logging runs"
        )
    experiment = body.get("experiment") or {}
    if experiment.get("lifecycle_stage") == "deleted":
        raise _LearnerError(
            f"MLflow experiment {show(name)} is deleted: restore it "
            "(`mlflow experiments restore`) or log runs to a new one"
        )
    runs = _runs(client, str(experiment.get("experiment_id")))
    evidence["runs"] = len(runs)
    wanted = 1 if args.min_runs is None else args.min_runs
    if len(runs) < wanted:
        raise _LearnerError(
            f"experiment {show(name)} has {plural(len(runs), 'run')}, expected at least {wanted}"
        )
    if args.metric is not None:
        with_metric = [r for r in runs if args.metric in r.metrics]
        evidence["runsWithMetric"] = len(with_metric)
        if len(with_metric) < max(wanted, 1):
            raise _LearnerError(
                f"experiment {show(name)} has {plural(len(runs), 'run')} but "
                f"{len(with_metric)} log metric {show(args.metric)}, expected at least "
                f"{max(wanted, 1)} (log it with mlflow.log_metric({show(args.metric)}, value))"
            )
    return name, runs


def _check_model(client: _Client, args: MlflowArgs, evidence: Evidence) -> None:
    name = args.registered_model or ""
    status, body = client.call("GET", "/registered-models/get?" + urlencode({"name": name}))
    if status != 200:
        raise _LearnerError(
            f"registered model {show(name)} not found: register one with "
            f"mlflow.register_model(...) or log_model(..., registered_model_name={show(name)})"
        )
    model = body.get("registered_model") or {}
    versions = [v for v in model.get("latest_versions") or [] if isinstance(v, dict)]
    if not versions:
        raise _LearnerError(
            f"registered model {show(name)} has no versions: register a model version"
        )
    numbers = [str(v.get("version")) for v in versions]
    evidence["latestVersion"] = max(
        numbers, key=lambda n: (n.isdigit(), int(n) if n.isdigit() else 0)
    )


def _check_alias(
    client: _Client, args: MlflowArgs, evidence: Evidence, experiment: tuple[str, list[_Run]] | None
) -> str:
    name, alias = args.registered_model or "", args.alias or ""
    status, body = client.call(
        "GET", "/registered-models/alias?" + urlencode({"name": name, "alias": alias})
    )
    if status != 200:
        raise _LearnerError(
            f"alias {show(alias)} is not set on registered model {show(name)}: set it with "
            f"MlflowClient().set_registered_model_alias({show(name)}, {show(alias)}, <version>)"
        )
    version = body.get("model_version") or {}
    number = str(version.get("version"))
    evidence["aliasVersion"] = number
    if args.best_by is None or experiment is None:
        return f"alias {show(alias)} points to version {number}"
    metric, mode = args.best_by.metric, args.best_by.mode
    experiment_name, runs = experiment
    scored = [r for r in runs if metric in r.metrics]
    if not scored:
        raise _LearnerError(
            f"no run in experiment {show(experiment_name)} logs metric {show(metric)}, so the "
            f"best run cannot be determined"
        )
    best = (max if mode == "max" else min)(scored, key=lambda r: r.metrics[metric])
    best_value = best.metrics[metric]
    evidence["bestValue"] = best_value
    run_id = version.get("run_id")
    if not run_id:
        raise _LearnerError(
            f"alias {show(alias)} points to version {number}, which was not logged from a run "
            f"(no run_id), expected the best run of experiment {show(experiment_name)}"
        )
    own = next((r for r in runs if r.run_id == run_id), None)
    if own is None:
        raise _LearnerError(
            f"alias {show(alias)} points to version {number} from run {run_id}, which is not "
            f"in experiment {show(experiment_name)}"
        )
    value = own.metrics.get(metric)
    if value is not None:
        evidence["aliasValue"] = value
    if value is None or value != best_value:
        shown = "no value" if value is None else f"{metric}={value:g}"
        raise _LearnerError(
            f"alias {show(alias)} points to version {number} (run {run_id}, {shown}), but the "
            f"best run of experiment {show(experiment_name)} by {metric} ({mode}) is "
            f"{best.run_id} ({metric}={best_value:g})"
        )
    return (
        f"alias {show(alias)} points to version {number}, the best run by {metric} "
        f"({metric}={best_value:g})"
    )


def run(ctx: ProbeContext, args: MlflowArgs) -> CheckResult:
    client = _Client(ctx, args)
    evidence: Evidence = {}
    notes: list[str] = []
    try:
        experiment = None
        if args.experiment is not None:
            experiment = _check_experiment(client, args, evidence)
            notes.append(
                f"experiment {show(args.experiment)} has {plural(len(experiment[1]), 'run')}"
            )
        if args.registered_model is not None:
            _check_model(client, args, evidence)
            notes.append(f"registered model {show(args.registered_model)} has versions")
            if args.alias is not None:
                notes.append(_check_alias(client, args, evidence, experiment))
    except _LearnerError as failure:
        return CheckResult.fail(str(failure), evidence)
    except _ServerError as unavailable:
        return CheckResult.err(str(unavailable), evidence)
    return CheckResult.ok("MLflow: " + "; ".join(notes), evidence)


PROBE = Probe(
    name="mlflow",
    args_model=MlflowArgs,
    run=run,
    summary="MLflow experiments have runs/metrics; a registered model and its alias are right",
)

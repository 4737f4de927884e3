"""Point the alias "champion" at the registered model version of the best run.

The best run is the one of the experiment with the lowest rmse (validation error); the
version is the one registered from that run (the newest, if the run was registered twice).
The previous champion, if any, is printed, so it can be restored (a rollback) with
MlflowClient().set_registered_model_alias(MODEL, "champion", PREVIOUS_VERSION).
Configuration: MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME, MODEL_NAME, METRIC (rmse).
"""

import os
import sys

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

experiment_name = os.environ["MLFLOW_EXPERIMENT_NAME"]
model_name = os.environ["MODEL_NAME"]
metric = os.environ.get("METRIC", "rmse")
alias = "champion"
client = MlflowClient()

experiment = client.get_experiment_by_name(experiment_name)
if experiment is None:
    sys.exit(f"experiment {experiment_name!r} does not exist: train first")
runs = client.search_runs(
    [experiment.experiment_id], order_by=[f"metrics.{metric} ASC"], max_results=1000
)
scored = [run for run in runs if metric in run.data.metrics]
if not scored:
    sys.exit(f"no run of experiment {experiment_name!r} logs {metric!r}")
best = min(scored, key=lambda run: run.data.metrics[metric])
best_value = best.data.metrics[metric]
print(f"best run: {best.info.run_id} ({best.info.run_name}), {metric}={best_value:g}")

versions = client.search_model_versions(f"name = '{model_name}' and run_id = '{best.info.run_id}'")
if not versions:
    sys.exit(f"the best run has no version of {model_name!r}: register its model first")
version = max(versions, key=lambda v: int(v.version))

try:
    previous = client.get_model_version_by_alias(model_name, alias).version
except MlflowException:
    previous = None
client.set_registered_model_alias(model_name, alias, version.version)
print(f"{model_name}@{alias}: version {previous} -> {version.version}")

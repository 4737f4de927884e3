"""Leaks: create/validate/delete cycles leave nothing behind (bench/leaks.py runs 100)."""

from __future__ import annotations

import os
import uuid

from kubernetes import client

from .lifecycle import leftovers, operator_jobs, run_cycles
from .operator_fixtures import Labs

CYCLES = int(os.environ.get("ROADLAB_LEAK_CYCLES", "4"))


def test_create_validate_delete_cycles_leave_nothing(
    labs: Labs, api: client.ApiClient, core: client.CoreV1Api, batch: client.BatchV1Api
) -> None:
    prefix = f"leak{uuid.uuid4().hex[:5]}"
    seconds = run_cycles(labs, core, prefix, CYCLES, parallel=2)
    assert len(seconds) == CYCLES
    assert leftovers(api, prefix) == {}
    assert operator_jobs(batch, prefix) == []

#!/usr/bin/env python3
"""Benchmark: 100 create/validate/delete cycles; what is left, and the operator's memory.

Each cycle creates a Lab of the `smoke` lab, waits for its first validation run (a check
Job), deletes the Lab and waits until it and its namespace are gone. Four cycles run at a
time. Afterwards every kind a Lab may create is counted cluster-wide (goal: zero), and the
operator's RSS over the cycles is compared (goal: flat). Prints figures; asserts nothing.

    python3 bench/leaks.py [--cycles 100] [--parallel 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from kubernetes import client  # noqa: E402
from provisioning import kubeconfig  # noqa: E402
from scale import Sampler  # noqa: E402
from tests.e2e.lifecycle import leftovers, operator_jobs, run_cycles  # noqa: E402
from tests.e2e.operator_fixtures import Labs, OperatorProcess, install_crd_and_prereqs  # noqa: E402

from roadlab.kube.client import load_api_client  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    path = kubeconfig()
    install_crd_and_prereqs(path)
    api = load_api_client(path)
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    operator = OperatorProcess(path, Path(tempfile.mkdtemp()), ROADLAB_CATALOG=str(REPO / "labs"))
    operator.start()
    assert operator.process is not None
    sampler = Sampler(operator.process.pid)
    rss: list[float] = []

    def after_each(done: int, seconds: float) -> None:
        rss.append(sampler.read()[1])
        if done % 10 == 0:
            print(f"  {done:>4} cycles; last {seconds:.1f} s; operator RSS {rss[-1]:.0f} MB",
                  flush=True)  # fmt: skip

    prefix = f"leak{uuid.uuid4().hex[:5]}"
    started = time.monotonic()
    try:
        seconds = run_cycles(
            Labs(api), core, prefix, args.cycles, parallel=args.parallel, after_each=after_each
        )
    finally:
        sampler.stop()
        operator.stop()
    total = time.monotonic() - started
    left = leftovers(api, prefix)
    jobs = operator_jobs(batch, prefix)
    window = max(1, min(10, len(rss) // 2))
    first, last = statistics.mean(rss[:window]), statistics.mean(rss[-window:])
    print(f"\n[leaks] {args.cycles} cycles in {total:.0f} s ({args.parallel} at a time); "
          f"cycle median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s")  # fmt: skip
    print(f"[leaks] left behind: {sum(len(v) for v in left.values())} objects {left or ''}; "
          f"check Jobs: {len(jobs)} (goal 0)")  # fmt: skip
    growth = (last / first - 1) * 100
    print(f"[leaks] operator RSS: first {window} cycles {first:.0f} MB, last {window} "
          f"{last:.0f} MB, growth {last - first:+.1f} MB ({growth:+.1f} %)")  # fmt: skip


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: a burst of Labs at once, then many Labs held by one operator.

1. Burst: --burst Labs (default 200) of the `light` test lab created at once (8 client
   threads); time until every one is Ready, against applying the same objects directly with
   one client in the same run (goal: within 2x). Operator RSS and CPU during and after.
2. Scale: Labs added up to --hold (default 1,000); the operator's RSS (goal < 300 MB) and
   idle CPU once the events of the Labs' creation are worked off, over --idle more
   seconds (goal < 2 %), Kubernetes API requests per provisioned Lab
   (goal: the Lab's objects + 3 or fewer), and the reconcile latency of one new Lab (created,
   until Ready) while they all exist.
3. Restart: the operator stopped and started with them all present; RSS and CPU while it
   lists and resumes them.

API requests are counted from the operator's own roadlab_kube_api_requests_total, plus
Kopf's patches of Labs from the API server's apiserver_request_total (Lab patches that are
not roadlab's own); Kopf's long-lived watch streams are not per Lab and are not counted.
The operator runs from source with the e2e catalog, as in the e2e suite. Prints figures and
ratios; asserts nothing.

    python3 bench/scale.py [--burst 200] [--hold 1000] [--idle 60]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from kubernetes import client  # noqa: E402
from provisioning import direct_floor, kubeconfig, wait_all_ready, wait_namespaces_gone  # noqa: E402
from tests.e2e.operator_fixtures import (  # noqa: E402
    Labs,
    OperatorProcess,
    install_crd_and_prereqs,
    metric_sum,
)

from roadlab.catalog.loader import load_catalog  # noqa: E402
from roadlab.controller.plan import plan_lab  # noqa: E402
from roadlab.kube.client import load_api_client  # noqa: E402
from roadlab.kube.operator_api import KubeApi  # noqa: E402

CLK_TCK = 100  # os.sysconf("SC_CLK_TCK") on Linux


class Sampler:
    """RSS and CPU of one process, sampled every second in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []  # (time, rss MB, cpu seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self) -> tuple[float, float, float]:
        status = Path(f"/proc/{self.pid}/status").read_text()
        rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
        return time.monotonic(), rss_kb / 1024, cpu

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.samples.append(self.read())
            except (OSError, AttributeError):  # the process ended (a zombie has no VmRSS)
                return

    def window(self, start: float, end: float) -> tuple[float, float]:
        """(peak RSS MB, mean CPU %) between two monotonic times."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return (inside[0][1] if inside else 0.0), 0.0
        cpu = (inside[-1][2] - inside[0][2]) / (inside[-1][0] - inside[0][0]) * 100
        return max(s[1] for s in inside), cpu

    def stop(self) -> None:
        self._stop.set()


def request_counts(
    operator: OperatorProcess, raw_metrics: Callable[[], str]
) -> tuple[float, float]:
    """(roadlab's own requests, Kopf's Lab patches) so far."""
    own_text = operator.metrics()
    own = metric_sum(own_text, "roadlab_kube_api_requests_total")
    own_lab_patches = metric_sum(
        own_text, "roadlab_kube_api_requests_total", method="PATCH", resource="labs"
    ) + metric_sum(
        own_text, "roadlab_kube_api_requests_total", method="PATCH", resource="labs/status"
    )
    server_text = raw_metrics()
    lab_patches = metric_sum(
        server_text, "apiserver_request_total", resource="labs", verb="PATCH", group="roadlab.dev"
    )
    return own, lab_patches - own_lab_patches


def create_many(labs: Labs, names: list[str]) -> None:
    create = partial(labs.create, lab="light", learner="bench")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, names))


@dataclass
class Bench:
    path: str
    kube: KubeApi
    labs: Labs
    operator: OperatorProcess
    sampler: Sampler
    run: str
    objects_per_lab: int

    def server_metrics(self) -> str:
        return subprocess.run(
            ["kubectl", "--kubeconfig", self.path, "get", "--raw", "/metrics"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip


def burst(bench: Bench, count: int, settle: int) -> list[str]:
    own0, kopf0 = request_counts(bench.operator, bench.server_metrics)
    names = [f"{bench.run}-{i}" for i in range(count)]
    started = time.monotonic()
    create_many(bench.labs, names)
    wait_all_ready(bench.labs, names)
    ready = time.monotonic() - started
    burst_end = time.monotonic()
    own1, kopf1 = request_counts(bench.operator, bench.server_metrics)
    peak, cpu = bench.sampler.window(started, burst_end)
    time.sleep(settle)
    after_rss, after_cpu = bench.sampler.window(burst_end + 5, time.monotonic())
    direct = direct_floor(bench.kube, count, bench.run)
    print(f"\n[burst] {count} Labs at once -> all Ready: {ready:.1f} s "
          f"({ready / count * 1000:.0f} ms per Lab)")  # fmt: skip
    print(f"[burst] the same objects applied directly by one client: {direct:.1f} s; "
          f"ratio {ready / direct:.2f} (goal <= 2)")  # fmt: skip
    print(f"[burst] operator during: peak RSS {peak:.0f} MB, CPU {cpu:.0f} %; "
          f"after: RSS {after_rss:.0f} MB, CPU {after_cpu:.1f} %")  # fmt: skip
    own, kopf = (own1 - own0) / count, (kopf1 - kopf0) / count
    print(f"[burst] API requests per Lab: {own:.1f} roadlab + {kopf:.1f} Kopf patches = "
          f"{own + kopf:.1f} (goal <= objects + 3 = {bench.objects_per_lab + 3})")  # fmt: skip
    for i in range(count):
        bench.kube.delete("v1", "Namespace", f"lab-{bench.run}-d{i}")
    return names


def hold(bench: Bench, present: list[str], total: int, idle: int) -> None:
    more = [f"{bench.run}-{i}" for i in range(len(present), total)]
    started = time.monotonic()
    for chunk in range(0, len(more), 100):
        create_many(bench.labs, more[chunk : chunk + 100])
    wait_all_ready(bench.labs, present + more, timeout=3600)
    print(f"\n[scale] {total} Labs Ready ({len(more)} added in "
          f"{time.monotonic() - started:.0f} s)")  # fmt: skip
    # The operator first works off the watch events of the Labs just made (their own
    # status writes, quota usage); idle is what follows. Each minute is printed, so the
    # settling time shows too.
    settled_at, minute, rss, idle_cpu = None, 0, 0.0, 100.0
    ready_at = time.monotonic()
    while settled_at is None or minute < settled_at + idle // 60:
        start = time.monotonic()
        time.sleep(60)
        rss, idle_cpu = bench.sampler.window(start, time.monotonic())
        minute += 1
        print(f"[scale] minute {minute} after Ready: RSS {rss:.0f} MB, CPU {idle_cpu:.2f} %")
        if settled_at is None and idle_cpu < 2:
            settled_at = minute
        if minute >= 20:
            break
    settling = f"{settled_at - 1} min" if settled_at else "more than 20 min"
    print(f"[scale] operator holding {total} Labs: RSS {rss:.0f} MB (goal < 300), idle CPU "
          f"{idle_cpu:.2f} % (goal < 2), {settling} after all were Ready "
          f"({time.monotonic() - ready_at:.0f} s measured)")  # fmt: skip
    latencies = []
    for i in range(5):
        name = f"{bench.run}-new{i}"
        began = time.monotonic()
        bench.labs.create(name, lab="light", learner="bench")
        wait_all_ready(bench.labs, [name])
        latencies.append(time.monotonic() - began)
    print(f"[scale] one new Lab to Ready with {total} present: median "
          f"{statistics.median(latencies):.2f} s (min {min(latencies):.2f}, "
          f"max {max(latencies):.2f})")  # fmt: skip


def restart(bench: Bench, total: int, seconds: int = 120) -> None:
    """The operator stopped and started again with every Lab present: Kopf lists them all
    and every guardrail object, and resumes each Lab. RSS and CPU while it does."""
    bench.operator.stop()
    bench.sampler.stop()
    bench.operator.start()
    assert bench.operator.process is not None
    bench.sampler = Sampler(bench.operator.process.pid)
    started = time.monotonic()
    time.sleep(seconds)
    peak, cpu = bench.sampler.window(started, time.monotonic())
    last, last_cpu = bench.sampler.window(time.monotonic() - 30, time.monotonic())
    print(f"[restart] operator restarted with {total} Labs: peak RSS {peak:.0f} MB, CPU "
          f"{cpu:.0f} % over {seconds} s; its last 30 s: RSS {last:.0f} MB, CPU "
          f"{last_cpu:.1f} %")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--hold", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=60, help="seconds of idle measurement")
    args = parser.parse_args()
    path = kubeconfig()
    install_crd_and_prereqs(path)
    api_client = load_api_client(path)
    catalog = load_catalog(REPO / "tests" / "e2e" / "labs")
    objects_per_lab = len(
        plan_lab("x", "u", 1, {"lab": "light", "learner": "b", "ttl": "1h"}, None, catalog,
                 datetime.now(UTC), set()).objects
    )  # fmt: skip
    operator = OperatorProcess(
        path, Path(tempfile.mkdtemp()), ROADLAB_CATALOG=str(REPO / "tests" / "e2e" / "labs")
    )
    operator.start()
    assert operator.process is not None
    bench = Bench(
        path, KubeApi(api_client), Labs(api_client), operator, Sampler(operator.process.pid),
        f"scale{uuid.uuid4().hex[:4]}", objects_per_lab,
    )  # fmt: skip
    try:
        time.sleep(3)
        rss0, _ = bench.sampler.window(0, time.monotonic())
        print(f"operator started: RSS {rss0:.0f} MB; the light lab is {objects_per_lab} objects")
        names = burst(bench, args.burst, settle=min(30, args.idle))
        if args.hold > args.burst:
            hold(bench, names, args.hold, args.idle)
            restart(bench, len(bench.labs.created))
    finally:
        bench.sampler.stop()
        started = time.monotonic()
        bench.labs.cleanup()
        operator.stop()
        wait_namespaces_gone(client.CoreV1Api(api_client), f"lab-{bench.run}", timeout=3600)
        print(f"cleanup: every lab namespace gone after {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()

"""The warm checker as the operator calls it: sign the check spec, post it through the API
server's service proxy, and say what came back (a result document, a timeout, or that the
checker is not there, in which case the caller runs a Job instead)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Literal

import urllib3

from roadlab.api import checker_wire
from roadlab.controller.settings import CheckSettings
from roadlab.kube.operator_api import OperatorApi

log = logging.getLogger(__name__)
KEY_SECRET = "roadlab-checker-key"

WarmOutcome = Literal["answered", "timed-out", "unavailable"]


@dataclass(frozen=True)
class WarmRun:
    outcome: WarmOutcome
    document: str = ""  # "answered": the result document, as a Job's termination log
    reason: str = ""  # "unavailable": why, for the log


class _KeyCache:
    """The signing key: the chart's env var, else the Secret (an operator run from source),
    read once and again after the checker refuses it (the Secret was replaced)."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, api: OperatorApi, settings: CheckSettings) -> bytes:
        if settings.checker_key:
            return checker_wire.load_key(settings.checker_key)
        with self._lock:
            namespace = settings.operator_namespace
            if namespace not in self._keys:
                text = api.secret_value(namespace, KEY_SECRET, "key")
                self._keys[namespace] = checker_wire.load_key(text)
            return self._keys[namespace]

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()


_key_cache = _KeyCache()


def run_warm(api: OperatorApi, settings: CheckSettings, spec_json: str, timeout: int) -> WarmRun:
    """One check run on the warm checker, bounded by the run's `timeout` (seconds)."""
    try:
        key = _key_cache.get(api, settings)
    except ValueError as error:
        return WarmRun("unavailable", reason=f"no usable checker key: {error}")
    body = spec_json.encode()
    headers = {checker_wire.SIGNATURE_HEADER: checker_wire.sign(key, body)}
    try:
        status, answer = api.post_through_service_proxy(
            checker_wire.proxy_path(settings.operator_namespace), body, headers, timeout
        )
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
        return WarmRun("timed-out")
    except urllib3.exceptions.HTTPError as error:
        return WarmRun("unavailable", reason=f"could not reach the checker: {error}")
    if status == 200:
        return WarmRun("answered", document=answer.decode("utf-8", errors="replace"))
    if status == 401:
        _key_cache.forget()
    return WarmRun("unavailable", reason=f"the checker answered {status}: {answer[:200]!r}")


_running: set[str] = set()
_running_lock = threading.Lock()


def claim(lab_name: str) -> bool:
    """Hold the Lab's one warm-run slot (the Job path has its running Job for this);
    False when another run of it (a request, the ticker, a re-check) holds it."""
    with _running_lock:
        if lab_name in _running:
            return False
        _running.add(lab_name)
        return True


def release(lab_name: str) -> None:
    with _running_lock:
        _running.discard(lab_name)

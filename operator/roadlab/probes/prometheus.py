"""`prometheus`: what a lab's Prometheus really scrapes, records and alerts on.

    check:
      probe: prometheus
      args:
        service: prometheus            # the lab's Prometheus (HTTP API, port 9090)
        targets: {job: shop, up: 2, scrapeInterval: 5s}
      # or
        recordingRule:
          record: job:web_requests:rate1m
          equivalentTo: sum by (job) (rate(web_requests_total{job="shop"}[1m]))
          labels: {job: shop}
        traffic: {service: shop, path: /}
      # or
        alert:
          name: ShopHighErrorRate
          labels: {severity: page}
          alertmanager: alertmanager   # the Service of the Alertmanager it must reach
        traffic: {service: shop, path: /, errorPath: /fail, errorPercent: 20}
        withinSeconds: 150

Exactly one of targets, recordingRule and alert. The probe polls (every pollSeconds,
within withinSeconds) until its condition holds, with `traffic` sent to the app meanwhile;
it stops early when waiting cannot help (a rule not loaded, a rule whose series have the
wrong labels, an alert whose `for` outlasts the window):

- targets: the job's active targets (targets API) number exactly `up`, all healthy,
  scraped at scrapeInterval.
- recordingRule: the rule is loaded and healthy (rules API), its series number `series`
  and carry `labels`, and the value it recorded equals equivalentTo evaluated at the same
  instant (within tolerancePercent): the rule is judged by what it computes, not its text.
- alert: the alerting rule is loaded, and the alert is active in Alertmanager (its API v2)
  with `labels`; when it is not, the message says how far it got (inactive, pending or
  firing in Prometheus; Alertmanagers Prometheus knows of).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import Field, StringConstraints, model_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    Probe,
    ProbeArgs,
    ProbeContext,
    ProbeHttpError,
    plural,
    show,
)
from roadlab.probes.http_args import Port, ServiceName, UrlPath, snippet, unreachable
from roadlab.probes.polling import Outcome, Unavailable, evidence_with_seconds, poll, result
from roadlab.probes.traffic import Traffic

MAX_SHOWN_ITEMS = 4

LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$")]
LabelValue = Annotated[str, StringConstraints(max_length=256)]
MetricName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$")]
PromQL = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
# Prometheus's own duration syntax, as its targets API shows scrape intervals: 5s, 1m30s.
PromDuration = Annotated[str, StringConstraints(pattern=r"^(\d+(ms|s|m|h))+$", max_length=32)]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=16)]


class TargetsCheck(ProbeArgs):
    job: LabelValue
    up: Annotated[int, Field(ge=1, le=1000)]
    scrape_interval: PromDuration | None = None


class RecordingRuleCheck(ProbeArgs):
    record: MetricName
    equivalent_to: PromQL
    series: Annotated[int, Field(ge=1, le=100)] = 1
    labels: Labels = Field(default_factory=dict)
    tolerance_percent: Annotated[float, Field(ge=0, le=100)] = 10


class AlertCheck(ProbeArgs):
    name: LabelName
    labels: Labels = Field(default_factory=dict)
    alertmanager: ServiceName
    alertmanager_port: Port = 9093


class TrafficArgs(ProbeArgs):
    service: ServiceName
    port: Port = 80
    path: UrlPath = "/"
    error_path: UrlPath | None = None
    error_percent: Annotated[float, Field(ge=0, le=100)] = 0
    concurrency: Annotated[int, Field(ge=1, le=16)] = 2
    # Steady, modest traffic: enough for rates and ratios, not a load test of the app.
    requests_per_second: Annotated[float, Field(gt=0, le=500)] = 20
    request_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5

    @model_validator(mode="after")
    def _errors_need_a_path(self) -> TrafficArgs:
        if (self.error_percent > 0) != (self.error_path is not None):
            raise ValueError("errorPercent and errorPath go together")
        return self


class PrometheusArgs(ProbeArgs):
    service: ServiceName = "prometheus"
    port: Port = 9090
    targets: TargetsCheck | None = None
    recording_rule: RecordingRuleCheck | None = None
    alert: AlertCheck | None = None
    traffic: TrafficArgs | None = None
    within_seconds: Annotated[int, Field(ge=0, le=600)] = 60
    poll_seconds: Annotated[float, Field(ge=0.5, le=60)] = 5
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10

    @model_validator(mode="after")
    def _one_check(self) -> PrometheusArgs:
        given = [c for c in (self.targets, self.recording_rule, self.alert) if c is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of targets, recordingRule or alert")
        return self


class _Api:
    """GETs against the lab's Prometheus and Alertmanager, JSON in, Unavailable out."""

    def __init__(self, ctx: ProbeContext, args: PrometheusArgs) -> None:
        self.ctx = ctx
        self.args = args

    def get(self, service: str, port: int, path: str, query: Mapping[str, str]) -> Any:
        url = self.ctx.service_url(service, port, path)
        if query:
            url += "?" + urlencode(query)
        try:
            response = self.ctx.http(
                "GET",
                url,
                headers={"Accept": "application/json"},
                timeout=self.args.timeout_seconds,
            )
        except ProbeHttpError as exc:
            raise Unavailable(unreachable(service, port, f"GET {path}", exc)) from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise Unavailable(
                f"{service} answered GET {path} with {response.status} and a body that is not "
                f"JSON: {snippet(response)}"
            ) from exc
        if response.status != 200:
            detail = body.get("error") if isinstance(body, dict) else None
            raise Unavailable(
                f"{service} answered GET {path} with {response.status}: "
                f"{show(detail) if detail else snippet(response)}"
            )
        return body

    def prometheus(self, path: str, **query: str) -> Any:
        body = self.get(self.args.service, self.args.port, path, query)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise Unavailable(f"Prometheus answered GET {path} without success: {show(body)}")
        return body.get("data")

    def vector(self, expr: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """An instant query's samples: (labels, value); a scalar reads as one sample."""
        query = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.prometheus("/api/v1/query", **query) or {}
        result = data.get("result")
        if data.get("resultType") == "scalar" and isinstance(result, list):
            return [({}, float(result[1]))]
        samples = []
        for item in result if isinstance(result, list) else []:
            if isinstance(item, dict) and isinstance(item.get("value"), list):
                samples.append((dict(item.get("metric") or {}), float(item["value"][1])))
        return samples

    def rules(self, kind: str) -> list[dict[str, Any]]:
        data = self.prometheus("/api/v1/rules", type=kind) or {}
        return [
            rule
            for group in data.get("groups") or []
            for rule in (group.get("rules") or [] if isinstance(group, dict) else [])
            if isinstance(rule, dict)
        ]


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_SHOWN_ITEMS])
    return shown + (
        f" and {len(items) - MAX_SHOWN_ITEMS} more" if len(items) > MAX_SHOWN_ITEMS else ""
    )


def _labels_text(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _missing_labels(have: Mapping[str, Any], want: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in want.items() if have.get(k) != v}


def _check_targets(api: _Api, check: TargetsCheck) -> Outcome:
    data = api.prometheus("/api/v1/targets", state="active") or {}
    every = [t for t in data.get("activeTargets") or [] if isinstance(t, dict)]
    ours = [t for t in every if (t.get("labels") or {}).get("job") == check.job]
    instances = sorted(str((t.get("labels") or {}).get("instance", "?")) for t in ours)
    healthy = [t for t in ours if t.get("health") == "up"]
    evidence: Evidence = {"targets": len(ours), "up": len(healthy)}
    if instances:
        evidence["instances"] = _listed(instances)
    if not ours:
        jobs = sorted({str((t.get("labels") or {}).get("job")) for t in every})
        return Outcome(
            False,
            f"Prometheus has no active target of job {show(check.job)} (targets API; jobs it "
            f"scrapes: {_listed(jobs) or 'none'}): add a scrape job {show(check.job)} to its "
            "configuration, and let Prometheus re-read it",
            evidence,
        )
    if len(ours) != check.up:
        return Outcome(
            False,
            f"job {show(check.job)} has {plural(len(ours), 'target')} ({_listed(instances)}), "
            f"expected {check.up}: one per pod, each scraped on its own",
            evidence,
        )
    if len(healthy) < len(ours):
        down = [t for t in ours if t.get("health") != "up"]
        reasons = _listed(
            [
                f"{(t.get('labels') or {}).get('instance')}: "
                f"{t.get('health')} {show(t.get('lastError') or '')}"
                for t in down
            ]
        )
        return Outcome(
            False,
            f"{len(healthy)} of the {len(ours)} targets of job {show(check.job)} are up "
            f"({reasons})",
            evidence,
        )
    intervals = sorted({str(t.get("scrapeInterval")) for t in ours})
    evidence["scrapeInterval"] = ", ".join(intervals)
    if check.scrape_interval is not None and intervals != [check.scrape_interval]:
        return Outcome(
            False,
            f"job {show(check.job)} is scraped every {' and '.join(intervals)}, expected "
            f"{check.scrape_interval} (scrape_interval of the job, or the global one)",
            evidence,
        )
    return Outcome(
        True,
        f"job {show(check.job)}: {plural(len(ours), 'target')} up ({_listed(instances)}), "
        f"scraped every {', '.join(intervals)}",
        evidence,
    )


def _rule_problem(rules: list[dict[str, Any]], name: str, kind: str) -> str | None:
    """Why the rule named `name` is not usable, or None when it is loaded and healthy."""
    found = [r for r in rules if r.get("name") == name]
    if not found:
        names = sorted({str(r.get("name")) for r in rules})
        return (
            f"Prometheus has no {kind} rule {show(name)} loaded (rules API; loaded: "
            f"{_listed(names) or 'none'}): list its rule file under rule_files, and let "
            "Prometheus re-read its configuration"
        )
    broken = [r for r in found if r.get("health") not in ("ok", "unknown")]
    if broken:
        return (
            f"{kind} rule {show(name)} fails to evaluate: "
            f"{show(broken[0].get('lastError') or broken[0].get('health'), 200)}"
        )
    return None


def _check_recording_rule(api: _Api, check: RecordingRuleCheck, sent: int | None) -> Outcome:
    problem = _rule_problem(api.rules("record"), check.record, "recording")
    if problem:
        # The rules Prometheus has loaded change only when it re-reads its configuration:
        # say so now (the message says how) rather than after the whole window.
        return Outcome(False, problem, {}, final=True)
    recorded = api.vector(f"timestamp({check.record})")
    evidence: Evidence = {"series": len(recorded)}
    if not recorded:
        return Outcome(
            False,
            f"recording rule {show(check.record)} is loaded but has recorded no sample yet "
            "(its expression returned nothing: are its source metrics scraped?)",
            evidence,
        )
    if len(recorded) != check.series:
        shown = _listed([_labels_text(labels) for labels, _ in recorded])
        return Outcome(
            False,
            f"{check.record} has {plural(len(recorded), 'series', '')} ({shown}), expected "
            f"{check.series}: aggregate what the task says (sum by the labels it keeps)",
            evidence,
            final=True,  # what the rule's expression keeps, not a matter of time
        )
    for labels, _ in recorded:
        missing = _missing_labels(labels, check.labels)
        if missing:
            return Outcome(
                False,
                f"{check.record} is recorded as {_labels_text(labels)}, without "
                f"{_labels_text(missing)}",
                evidence,
                final=True,
            )
    # The instant the rule last wrote, and the definition evaluated at that same instant.
    at = max(stamp for _, stamp in recorded)
    values = api.vector(check.record, at)
    expected = api.vector(check.equivalent_to, at)
    if len(values) != check.series or len(expected) != check.series:
        return Outcome(False, f"{check.record} has no sample at its own last evaluation", evidence)
    got = sum(v for _, v in values)
    want = sum(v for _, v in expected)
    evidence.update({"recorded": round(got, 6), "expected": round(want, 6), "at": round(at, 3)})
    if sent is not None and want <= 0:
        return Outcome(
            False,
            f"the check sent {sent} requests, but {check.equivalent_to} is {want:g}: the "
            "requests are not in Prometheus yet (is the app scraped?)",
            evidence,
        )
    tolerance = check.tolerance_percent / 100 * abs(want)
    if not (math.isfinite(got) and abs(got - want) <= tolerance):
        return Outcome(
            False,
            f"{check.record} recorded {got:.4g}, but {check.equivalent_to} is {want:.4g} at the "
            f"same instant (off by more than {check.tolerance_percent:g}%): the rule computes "
            "something else",
            evidence,
        )
    return Outcome(
        True,
        f"{check.record} recorded {got:.4g}, as {check.equivalent_to} computes ({want:.4g})",
        evidence,
    )


def _alert_states(rules: list[dict[str, Any]], name: str) -> str:
    states = sorted({str(r.get("state")) for r in rules if r.get("name") == name})
    return " and ".join(states) or "unknown"


def _check_alert(api: _Api, check: AlertCheck, load: str, window: float) -> Outcome:
    rules = api.rules("alert")
    problem = _rule_problem(rules, check.name, "alerting")
    if problem:
        return Outcome(False, problem, {}, final=True)
    alerts = api.get(
        check.alertmanager,
        check.alertmanager_port,
        "/api/v2/alerts",
        {"active": "true", "silenced": "false", "filter": f'alertname="{check.name}"'},
    )
    active = [a for a in alerts if isinstance(a, dict)] if isinstance(alerts, list) else []
    state = _alert_states(rules, check.name)
    evidence: Evidence = {"prometheusState": state, "inAlertmanager": len(active)}
    matching = [a for a in active if not _missing_labels(a.get("labels") or {}, check.labels)]
    if matching:
        evidence["startsAt"] = str(matching[0].get("startsAt"))
        return Outcome(
            True,
            f"alert {check.name} is active in Alertmanager {check.alertmanager} "
            f"({_labels_text(dict(matching[0].get('labels') or {}))})",
            evidence,
        )
    if active:
        labels = dict(active[0].get("labels") or {})
        return Outcome(
            False,
            f"alert {check.name} is active in Alertmanager, but as {_labels_text(labels)}, "
            f"without {_labels_text(_missing_labels(labels, check.labels))}",
            evidence,
        )
    if "firing" in state:
        known = api.vector("sum(prometheus_notifications_alertmanagers_discovered)")
        count = int(known[0][1]) if known else 0
        evidence["alertmanagersKnown"] = count
        where = (
            "Prometheus knows no Alertmanager (alerting.alertmanagers in its configuration)"
            if count == 0
            else f"Prometheus sends to {plural(count, 'Alertmanager')}, none of them "
            f"{check.alertmanager}:{check.alertmanager_port}?"
        )
        return Outcome(
            False,
            f"alert {check.name} fires in Prometheus but is not in Alertmanager: {where}",
            evidence,
        )
    holds_for = max(
        (float(r.get("duration") or 0) for r in rules if r.get("name") == check.name), default=0
    )
    if state == "pending" and holds_for > window:
        evidence["forSeconds"] = holds_for
        return Outcome(
            False,
            f"alert {check.name} is pending in Prometheus{load}: its expression holds, but its "
            f"`for` of {holds_for:g} s is longer than the {window:.0f} s the check sends errors "
            "for, so a burst like this one never fires it",
            evidence,
            final=True,
        )
    return Outcome(
        False,
        f"alert {check.name} is {state} in Prometheus{load}: its expression did not hold "
        "(long enough, with its `for`)",
        evidence,
    )


def _traffic_text(args: TrafficArgs | None, traffic: Traffic | None) -> str:
    if args is None or traffic is None:
        return ""
    errors = f", {traffic.to_error_path} of them to {args.error_path}" if args.error_path else ""
    return f" after {traffic.sent} requests to Service {args.service}{errors}"


def _evaluate(api: _Api, args: PrometheusArgs, traffic: Traffic | None, window: float) -> Outcome:
    if args.targets is not None:
        return _check_targets(api, args.targets)
    if args.recording_rule is not None:
        return _check_recording_rule(
            api, args.recording_rule, traffic.sent if traffic is not None else None
        )
    assert args.alert is not None  # one of the three, by validation
    return _check_alert(api, args.alert, _traffic_text(args.traffic, traffic), window)


def _open_traffic(ctx: ProbeContext, args: TrafficArgs) -> Traffic:
    urls = [ctx.service_url(args.service, args.port, args.path)]
    if args.error_path is not None:
        urls.append(ctx.service_url(args.service, args.port, args.error_path))
    return Traffic(
        ctx,
        urls,
        concurrency=args.concurrency,
        timeout=args.request_timeout_seconds,
        error_percent=args.error_percent,
        requests_per_second=args.requests_per_second,
    )


def _poll(
    ctx: ProbeContext, args: PrometheusArgs, traffic: Traffic | None
) -> tuple[Outcome, float]:
    api = _Api(ctx, args)
    # With traffic, the first judgement is made once it has run for a poll interval: what is
    # found then (a pending alert, a rate) comes with requests the check really sent. A
    # Prometheus just restarted (Recreate: the learner's rollout restart) is waited for.
    return poll(
        ctx,
        float(args.within_seconds),
        args.poll_seconds,
        lambda window: _evaluate(api, args, traffic, window),
        first_after=args.poll_seconds if traffic is not None else 0.0,
    )


def run(ctx: ProbeContext, args: PrometheusArgs) -> CheckResult:
    traffic = _open_traffic(ctx, args.traffic) if args.traffic is not None else None
    try:
        with ExitStack() as running:
            if traffic is not None:
                running.enter_context(traffic)
            outcome, elapsed = _poll(ctx, args, traffic)
    except Unavailable as unavailable:
        return CheckResult.err(str(unavailable))
    evidence = evidence_with_seconds(outcome, elapsed)
    if traffic is not None and args.traffic is not None:
        evidence.update({"requests": traffic.sent, "errorResponses": traffic.errors})
        if traffic.sent > 0 and traffic.unanswered == traffic.sent:
            return CheckResult.err(
                f"the traffic could not be sent: all {traffic.sent} requests got no answer "
                f"(last: {traffic.last_error}); check the Service {args.traffic.service}",
                evidence,
            )
    return result(outcome, elapsed, evidence)


PROBE = Probe(
    name="prometheus",
    args_model=PrometheusArgs,
    run=run,
    summary="Prometheus scrapes a job's pods, a recording rule computes its definition, "
    "an alert reaches Alertmanager",
)

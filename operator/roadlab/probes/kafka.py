"""`kafka`: a lab's Kafka topic, the consumer group that reads it, and what the group's
program makes of the stream.

    check:
      probe: kafka
      args:
        service: kafka                 # the lab's bootstrap Service (port 9092)
        topic: {name: orders, partitions: 3, configs: {retention.ms: "86400000"}}
      # or
        consumerGroup: {group: order-counter, topic: orders, members: 3}
      # or
        counts:
          topic: orders
          group: order-counter
          messages: 300                # orders the check produces
          products: 6                  # over that many products of its own
          redis: {service: redis, hash: order-counts}
        withinSeconds: 60

Exactly one of topic, consumerGroup and counts. The probe polls (every pollSeconds, within
withinSeconds) until its condition holds. A Kafka or Redis that does not answer (still
starting, restarted) is waited for, an Error only if it never answers in the window:

- topic: the topic exists with exactly `partitions` partitions, `replicationFactor` when
  given, and each of `configs` set to its value (read as the broker reports it).
- consumerGroup: the group is Stable with exactly `members` members (at least one when not
  given), every partition of the topic is assigned, and every member owns one at least.
- counts: the check produces `messages` orders, keyed by product, over `products` product
  ids of its run (check-<run>-p<i>, new for every run: earlier runs, the learner's own tests
  and concurrent checks never add to them), value {"order", "product", "quantity"} with a
  quantity of 1 to 5. Then the group's committed offsets must reach the topic's end offsets
  as they were right after the check produced, and HMGET of the products in the Redis hash
  must give the sum of each product's quantities.

A missing topic fails at once in every mode (counts produces nothing then), and so does a
topic that is not as asked in topic mode: waiting does not make or change one. The window
is for a broker that is starting, a rebalance and consumers catching up.

The probe reads topics only from the metadata of all topics: a request for one topic by
name would create it on a broker with auto.create.topics.enable (see KafkaConnection).
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from roadlab.probes.base import (
    CheckResult,
    Evidence,
    KafkaConnection,
    KafkaGroup,
    KafkaMessage,
    KafkaTopic,
    Probe,
    ProbeArgs,
    ProbeContext,
    ProbeKafkaError,
    ProbeRedisError,
    RedisConnection,
    plural,
)
from roadlab.probes.http_args import Port, ServiceName
from roadlab.probes.polling import Outcome, Unavailable, evidence_with_seconds, poll, result
from roadlab.probes.traffic import DEADLINE_MARGIN_SECONDS

MAX_SHOWN_ITEMS = 4
MAX_QUANTITY = 5
MIN_CALL_SECONDS = 1.0  # the shortest timeout a call is given, however close the deadline


def _config_text(value: Any) -> Any:
    """A config value as Kafka shows it: retention.ms: 86400000 in YAML means "86400000"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


# Kafka's legal topic names; group ids are free text to Kafka, kept to the same characters.
TopicName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9._-]{1,249}$")]
GroupId = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9._-]{1,255}$")]
ConfigName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9._-]{0,127}$")]
ConfigValue = Annotated[str, BeforeValidator(_config_text), StringConstraints(max_length=1024)]
RedisKey = Annotated[str, StringConstraints(pattern=r"^\S{1,256}$")]


class TopicCheck(ProbeArgs):
    name: TopicName
    partitions: Annotated[int, Field(ge=1, le=1000)] | None = None
    replication_factor: Annotated[int, Field(ge=1, le=16)] | None = None
    configs: Annotated[dict[ConfigName, ConfigValue], Field(max_length=16)] = Field(
        default_factory=dict
    )


class ConsumerGroupCheck(ProbeArgs):
    group: GroupId
    topic: TopicName
    members: Annotated[int, Field(ge=1, le=100)] | None = None


class RedisHash(ProbeArgs):
    service: ServiceName = "redis"
    port: Port = 6379
    hash: RedisKey


class CountsCheck(ProbeArgs):
    topic: TopicName
    group: GroupId
    messages: Annotated[int, Field(ge=1, le=10000)] = 300
    products: Annotated[int, Field(ge=1, le=100)] = 6
    redis: RedisHash

    @model_validator(mode="after")
    def _every_product_ordered(self) -> CountsCheck:
        if self.messages < self.products:
            raise ValueError("messages must be at least products (each product gets an order)")
        return self


class KafkaArgs(ProbeArgs):
    service: ServiceName = "kafka"
    port: Port = 9092
    topic: TopicCheck | None = None
    consumer_group: ConsumerGroupCheck | None = None
    counts: CountsCheck | None = None
    within_seconds: Annotated[int, Field(ge=0, le=600)] = 60
    poll_seconds: Annotated[float, Field(ge=0.5, le=60)] = 2
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10

    @model_validator(mode="after")
    def _one_check(self) -> KafkaArgs:
        given = [c for c in (self.topic, self.consumer_group, self.counts) if c is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of topic, consumerGroup or counts")
        return self


def _listed(items: Sequence[str], separator: str = ", ") -> str:
    shown = separator.join(items[:MAX_SHOWN_ITEMS])
    more = len(items) - MAX_SHOWN_ITEMS
    return shown + (f" and {more} more" if more > 0 else "")


def _numbers(partitions: Sequence[int]) -> str:
    return _listed([str(p) for p in partitions])


T = TypeVar("T")


class _Streams:
    """The connections of one probe run: each call's timeout fitted within the deadline,
    ProbeKafkaError and ProbeRedisError turned into Unavailable with what to look at."""

    def __init__(self, ctx: ProbeContext, args: KafkaArgs, kafka: KafkaConnection) -> None:
        self.ctx = ctx
        self.args = args
        self.kafka = kafka
        self.address = f"{args.service}:{args.port}"

    def timeout(self) -> float:
        left = self.ctx.time_left()
        if left is None:
            return self.args.timeout_seconds
        return max(MIN_CALL_SECONDS, min(self.args.timeout_seconds, left - DEADLINE_MARGIN_SECONDS))

    def call(self, request: Callable[[float], T]) -> T:
        try:
            return request(self.timeout())
        except ProbeKafkaError as exc:
            raise Unavailable(
                f"cannot reach Kafka at {self.address}: {exc}; check that the broker's pod is "
                f"ready (`kubectl get pods`, its log) and that the Service {self.args.service} "
                f"selects it (`kubectl get endpoints {self.args.service}`)"
            ) from exc

    def topic(self, name: str) -> KafkaTopic | None:
        return self.call(lambda timeout: self.kafka.describe_topic(name, timeout=timeout))

    def hmget(
        self, redis: RedisConnection, where: RedisHash, fields: Sequence[str]
    ) -> list[str | None] | ProbeRedisError:
        """The values, or the ProbeRedisError of a key that is no hash (the learner's doing)."""
        try:
            return redis.hmget(where.hash, fields, timeout=self.timeout())
        except ProbeRedisError as exc:
            if exc.wrong_type:
                return exc
            raise Unavailable(
                f"cannot reach Redis at {where.service}:{where.port}: {exc}; check that its pod "
                f"is ready and that the Service {where.service} selects it"
            ) from exc


# --- topic ----------------------------------------------------------------------------------


def _tool(args: KafkaArgs, command: str) -> str:
    return f"`{command} --bootstrap-server {args.service}:{args.port}"


def missing_topic_message(args: KafkaArgs, topic: str, names: Sequence[str], create: str) -> str:
    """Topic `topic` is not among `names` (the broker's topics, internal ones left out)."""
    theirs = [n for n in names if not n.startswith("__")]
    found = f"topics: {_listed(theirs)}" if theirs else "the broker has no topic of yours yet"
    return (
        f"topic {topic} does not exist ({found}): create it with "
        f"{_tool(args, 'kafka-topics')} --create --topic {topic}{create}`"
    )


def _create_options(check: TopicCheck) -> str:
    options = ""
    if check.partitions is not None:
        options += f" --partitions {check.partitions}"
    if check.replication_factor is not None:
        options += f" --replication-factor {check.replication_factor}"
    for name, value in check.configs.items():
        options += f" --config {name}={value}"
    return options


def partitions_problem(args: KafkaArgs, topic: str, have: int, want: int) -> str | None:
    if have == want:
        return None
    said = f"topic {topic} has {plural(have, 'partition')}, expected {want}"
    alter = (
        f"{_tool(args, 'kafka-topics')} --alter --topic {topic} --partitions {want}` "
        "(keys then map to other partitions)"
    )
    if have == 1:
        return (
            f"{said}: a topic created automatically (auto.create.topics.enable, "
            "num.partitions=1) by a producer or consumer that used it before it was created "
            f"gets 1; add partitions with {alter}, or delete it and create it with "
            f"--partitions {want}"
        )
    if have < want:
        return f"{said}: add partitions with {alter}"
    return (
        f"{said}: partitions cannot be removed; delete the topic and create it again with "
        f"--partitions {want}"
    )


def config_problems(args: KafkaArgs, topic: KafkaTopic, wanted: Mapping[str, str]) -> list[str]:
    problems = []
    for name, want in wanted.items():
        entry = topic.configs.get(name)
        if entry is None:
            problems.append(f"topic {topic.name} has no config {name} (is the name right?)")
            continue
        if entry.value == want:
            continue
        origin = {"broker": " (set on the broker)", "default": " (the broker's default)"}.get(
            entry.source, ""
        )
        problems.append(
            f"{name} is {entry.value}{origin}, expected {want}: set it with "
            f"{_tool(args, 'kafka-configs')} --alter --entity-type topics --entity-name "
            f"{topic.name} --add-config {name}={want}`"
        )
    return problems


def _check_topic(streams: _Streams, check: TopicCheck) -> Outcome:
    args = streams.args
    topic = streams.topic(check.name)
    if topic is None:
        names = streams.call(lambda timeout: streams.kafka.topic_names(timeout=timeout))
        # Final: a topic appears when someone makes it, not by waiting (a check would
        # otherwise take its whole window to say so).
        return Outcome(
            False,
            missing_topic_message(args, check.name, names, _create_options(check)),
            {},
            final=True,
        )
    evidence: Evidence = {
        "partitions": topic.partitions,
        "replicationFactor": topic.replication_factor,
    }
    for name in check.configs:
        entry = topic.configs.get(name)
        if entry is not None and entry.value is not None:
            evidence[name] = entry.value
    problems = []
    if check.partitions is not None:
        problems.append(partitions_problem(args, check.name, topic.partitions, check.partitions))
    if check.replication_factor not in (None, topic.replication_factor):
        problems.append(
            f"topic {check.name} has replication factor {topic.replication_factor}, expected "
            f"{check.replication_factor}: it is set when the topic is created "
            "(--replication-factor)"
        )
    problems.extend(config_problems(args, topic, check.configs))
    said = [p for p in problems if p]
    if said:
        # Final as well: partitions and configs change when someone changes them.
        return Outcome(False, "; ".join(said), evidence, final=True)
    configs = "".join(f", {name}={value}" for name, value in check.configs.items())
    return Outcome(
        True,
        f"topic {check.name}: {plural(topic.partitions, 'partition')}, replication factor "
        f"{topic.replication_factor}{configs}",
        evidence,
    )


# --- consumer group -------------------------------------------------------------------------


def _member_text(member_client: str, host: str, partitions: Sequence[int]) -> str:
    owns = _numbers(partitions) if partitions else "nothing"
    return f"{member_client} on {host.lstrip('/')}: {owns}"


def group_problem(
    group: KafkaGroup | None, check: ConsumerGroupCheck, partitions: int
) -> str | None:
    """What is wrong with the group for `check` (the topic has `partitions`), or None."""
    name, topic = check.group, check.topic
    if group is None:
        return (
            f"no consumer has joined group {name}: is group.id set to {name} in the consumer's "
            "configuration, and is the consumer running?"
        )
    members = len(group.members)
    if group.state in ("PreparingRebalance", "CompletingRebalance"):
        return (
            f"group {name} is rebalancing ({group.state}, {plural(members, 'member')}): "
            "consumers are joining or leaving it; a consumer that keeps restarting keeps it "
            "rebalancing"
        )
    if group.state == "Empty" or members == 0:
        return (
            f"group {name} has no members (Empty: its consumers have stopped or lost it): "
            "start the consumers"
        )
    if group.state != "Stable":
        return f"group {name} is in state {group.state}, expected Stable"
    if check.members is not None and members != check.members:
        per = " (one per partition)" if check.members == partitions else ""
        return f"group {name} has {plural(members, 'member')}, expected {check.members}{per}"
    owning = [m for m in group.members if any(t == topic for t, _ in m.assignment)]
    idle = members - len(owning)
    if idle:
        if members > partitions:
            return (
                f"{idle} of {plural(members, 'member')} own no partition of {topic}: a group "
                f"gets at most as many busy consumers as the topic has partitions ({topic} has "
                f"{partitions})"
            )
        return (
            f"{idle} of {plural(members, 'member')} own no partition of {topic}: are they "
            f"subscribed to {topic}?"
        )
    assigned = {p for m in group.members for t, p in m.assignment if t == topic}
    unassigned = [p for p in range(partitions) if p not in assigned]
    if unassigned:
        return (
            f"{plural(len(unassigned), 'partition')} of {topic} ({_numbers(unassigned)}) "
            f"{'is' if len(unassigned) == 1 else 'are'} assigned to no member of group {name}"
        )
    return None


def _check_group(streams: _Streams, check: ConsumerGroupCheck) -> Outcome:
    topic = streams.topic(check.topic)
    if topic is None:
        names = streams.call(lambda timeout: streams.kafka.topic_names(timeout=timeout))
        return Outcome(
            False, missing_topic_message(streams.args, check.topic, names, ""), {}, final=True
        )
    group = streams.call(lambda timeout: streams.kafka.describe_group(check.group, timeout=timeout))
    evidence: Evidence = {"partitions": topic.partitions}
    if group is not None:
        evidence.update({"state": group.state, "members": len(group.members)})
        shown = [
            _member_text(m.client_id, m.host, [p for t, p in m.assignment if t == check.topic])
            for m in sorted(group.members, key=lambda m: (m.client_id, m.member_id))
        ]
        if shown:
            evidence["assignment"] = _listed(shown, "; ")
    problem = group_problem(group, check, topic.partitions)
    if problem is not None:
        return Outcome(False, problem, evidence)
    assert group is not None  # group_problem says so otherwise
    return Outcome(
        True,
        f"group {check.group} is Stable with {plural(len(group.members), 'member')}, each "
        f"owning partitions of {check.topic} ({evidence.get('assignment', '')})",
        evidence,
    )


# --- counts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    order: str
    product: str
    product_index: int
    quantity: int

    def message(self, partitions: int) -> KafkaMessage:
        """Keyed by product, a product's orders on one partition: product i on partition
        i mod partitions, so that with as many products as partitions every partition gets
        orders of the check (the key hash might leave one without any)."""
        value = {"order": self.order, "product": self.product, "quantity": self.quantity}
        return KafkaMessage(
            self.product.encode(), json.dumps(value).encode(), self.product_index % partitions
        )


def new_run_id() -> str:
    """Eight hex digits: the products of two runs collide once in four billion."""
    return secrets.token_hex(4)


def plan_orders(run_id: str, messages: int, products: int) -> list[Order]:
    """The orders of a run: products in turn (each gets one at least), quantities 1 to 5 from
    a generator seeded by the run id (the same run id, the same orders)."""
    rng = random.Random(f"roadlab-kafka-{run_id}")
    return [
        Order(
            f"check-{run_id}-o{n}",
            f"check-{run_id}-p{n % products}",
            n % products,
            rng.randint(1, MAX_QUANTITY),
        )
        for n in range(messages)
    ]


def expected_units(orders: Sequence[Order]) -> dict[str, int]:
    units: dict[str, int] = {}
    for order in orders:
        units[order.product] = units.get(order.product, 0) + order.quantity
    return units


@dataclass(frozen=True)
class Lag:
    """How far the group is from the end offsets the check recorded after producing."""

    behind: dict[int, int]  # partitions with a commit short of the end: messages behind
    uncommitted: dict[int, int]  # partitions with no commit: the check's messages there
    any_commit: bool

    @property
    def total(self) -> int:
        return sum(self.behind.values()) + sum(self.uncommitted.values())

    @property
    def caught_up(self) -> bool:
        return self.any_commit and self.total == 0 and not self.uncommitted


def group_lag(
    before: Mapping[int, int], end: Mapping[int, int], committed: Mapping[int, int | None]
) -> Lag:
    """before/end: the end offsets before and right after the check produced."""
    behind: dict[int, int] = {}
    uncommitted: dict[int, int] = {}
    for partition, last in sorted(end.items()):
        offset = committed.get(partition)
        if offset is None:
            produced = last - before.get(partition, 0)
            if produced > 0:
                uncommitted[partition] = produced
        elif offset < last:
            behind[partition] = last - offset
    any_commit = any(offset is not None for offset in committed.values())
    return Lag(behind, uncommitted, any_commit)


def lag_message(group: str, topic: str, lag: Lag, seconds: float) -> str | None:
    if not lag.any_commit:
        return (
            f"no consumer in group {group} has committed an offset on {topic}: is the consumer "
            f"running with group.id {group}, and does it commit (enable.auto.commit, or "
            "commit() after each message)?"
        )
    if lag.caught_up:
        return None
    parts = [f"partition {p}: {n}" for p, n in lag.behind.items()] + [
        f"partition {p}: {n}, nothing committed" for p, n in lag.uncommitted.items()
    ]
    return (
        f"group {group} is {plural(lag.total, 'message')} behind on {topic} "
        f"({_listed(parts)}) after {seconds:.0f} s"
    )


@dataclass(frozen=True)
class Counts:
    expected: dict[str, int]
    found: dict[str, str | None]
    wrong: list[str] = field(default_factory=list)  # products whose value is not expected
    missing: list[str] = field(default_factory=list)  # products not in the hash

    @property
    def right(self) -> bool:
        return not self.wrong

    def multiple(self) -> int | None:
        """k when every product holds k times its units (k > 1): every order counted k times."""
        ratios = set()
        for product, want in self.expected.items():
            value = self.found.get(product)
            got = _integer(value)
            if got is None or want <= 0 or got % want:
                return None
            ratios.add(got // want)
        return ratios.pop() if len(ratios) == 1 and min(ratios) > 1 else None


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def compare_counts(expected: Mapping[str, int], found: Mapping[str, str | None]) -> Counts:
    wrong = [p for p, want in expected.items() if _integer(found.get(p)) != want]
    missing = [p for p in wrong if found.get(p) is None]
    return Counts(dict(expected), dict(found), wrong, missing)


def counts_message(where: RedisHash, counts: Counts) -> str | None:
    if counts.right:
        return None
    total = len(counts.expected)
    if len(counts.missing) == total:
        return (
            f"none of the check's {plural(total, 'product')} is in hash {where.hash}: does the "
            f"consumer add each order's quantity there (HINCRBY {where.hash} <product> "
            "<quantity>)?"
        )
    shown = []
    for product in counts.wrong:
        value = counts.found.get(product)
        have = (
            "missing" if value is None else value if _integer(value) is not None else f'"{value}"'
        )
        shown.append(f"{product} is {have}, expected {counts.expected[product]}")
    message = (
        f"{len(counts.wrong)} of {plural(total, 'product')} have wrong units in Redis hash "
        f"{where.hash}: {_listed(shown, '; ')}"
    )
    k = counts.multiple()
    if k is not None:
        message += (
            f"; every count is {k} times what was produced: is each consumer in a group of its "
            "own, so every one of them reads every order?"
        )
    return message


class _Counting:
    """The counts check across polls: produce once (again, as a new run, if that failed),
    then judge the group's offsets and the Redis hash."""

    def __init__(
        self,
        streams: _Streams,
        check: CountsCheck,
        redis: RedisConnection,
        run_ids: Callable[[], str],
    ) -> None:
        self.streams = streams
        self.check = check
        self.redis = redis
        self.run_ids = run_ids
        self._plan(run_ids())
        self.before: dict[int, int] | None = None
        self.end: dict[int, int] | None = None
        self.partitions: list[int] = []
        self.produced_at: float | None = None

    def _plan(self, run_id: str) -> None:
        self.run_id = run_id
        self.orders = plan_orders(run_id, self.check.messages, self.check.products)
        self.expected = expected_units(self.orders)

    def _produce(self) -> Outcome | None:
        """Produce the orders and record the end offsets; an outcome when that cannot be."""
        streams, check = self.streams, self.check
        kafka = streams.kafka
        topic = streams.topic(check.topic)
        if topic is None:
            names = streams.call(lambda timeout: kafka.topic_names(timeout=timeout))
            return Outcome(
                False,
                missing_topic_message(streams.args, check.topic, names, "")
                + " (the check produced nothing)",
                {},
                final=True,
            )
        self.partitions = list(range(topic.partitions))
        self.before = streams.call(
            lambda timeout: kafka.end_offsets(check.topic, self.partitions, timeout=timeout)
        )
        messages = [order.message(topic.partitions) for order in self.orders]
        try:
            streams.call(lambda timeout: kafka.produce(check.topic, messages, timeout=timeout))
        except Unavailable:
            # Some may have been delivered: the next attempt is a run of its own.
            self._plan(self.run_ids())
            raise
        self.produced_at = streams.ctx.monotonic()
        return None

    def evaluate(self) -> Outcome:
        streams, check = self.streams, self.check
        if self.produced_at is None:
            stopped = self._produce()
            if stopped is not None:
                return stopped
        if self.end is None:
            self.end = streams.call(
                lambda timeout: streams.kafka.end_offsets(
                    check.topic, self.partitions, timeout=timeout
                )
            )
        assert self.produced_at is not None and self.before is not None
        committed = streams.call(
            lambda timeout: streams.kafka.committed_offsets(
                check.group, check.topic, self.partitions, timeout=timeout
            )
        )
        products = list(self.expected)
        values = streams.hmget(self.redis, check.redis, products)
        seconds = streams.ctx.monotonic() - self.produced_at
        lag = group_lag(self.before, self.end, committed)
        evidence: Evidence = {
            "runId": self.run_id,
            "messages": check.messages,
            "products": check.products,
            "units": sum(self.expected.values()),
            "partitions": len(self.partitions),
            "behind": lag.total,
        }
        said = [lag_message(check.group, check.topic, lag, seconds)]
        if isinstance(values, ProbeRedisError):
            said.append(
                f"Redis key {check.redis.hash} is not a hash ({values}): the consumer must add "
                f"to a hash (HINCRBY {check.redis.hash} <product> <quantity>)"
            )
        else:
            counts = compare_counts(self.expected, dict(zip(products, values, strict=True)))
            evidence.update(
                {"wrongProducts": len(counts.wrong), "missingProducts": len(counts.missing)}
            )
            said.append(counts_message(check.redis, counts))
        problems = [s for s in said if s]
        if not problems:
            return Outcome(
                True,
                f"group {check.group} consumed the check's {check.messages} orders of "
                f"{plural(check.products, 'product')} on {check.topic}, and Redis hash "
                f"{check.redis.hash} holds their units ({evidence['units']} in all) "
                f"{seconds:.1f} s after they were produced",
                evidence,
            )
        timed = lag.any_commit and not lag.caught_up  # the lag's clause says for how long
        return Outcome(False, "; ".join(problems), evidence, timed=timed)


# --- running --------------------------------------------------------------------------------


def _poll(
    ctx: ProbeContext, args: KafkaArgs, evaluate: Callable[[], Outcome]
) -> tuple[Outcome, float]:
    # A broker or Redis still starting (or restarted) answers within seconds: waited for.
    return poll(ctx, float(args.within_seconds), args.poll_seconds, lambda _window: evaluate())


def run(ctx: ProbeContext, args: KafkaArgs) -> CheckResult:
    try:
        with closing(ctx.kafka(args.service, args.port)) as kafka:
            streams = _Streams(ctx, args, kafka)
            if args.topic is not None:
                topic = args.topic
                outcome, elapsed = _poll(ctx, args, lambda: _check_topic(streams, topic))
            elif args.consumer_group is not None:
                group = args.consumer_group
                outcome, elapsed = _poll(ctx, args, lambda: _check_group(streams, group))
            else:
                assert args.counts is not None  # one of the three, by validation
                counts = args.counts
                with closing(ctx.redis(counts.redis.service, counts.redis.port)) as redis:
                    counting = _Counting(streams, counts, redis, new_run_id)
                    outcome, elapsed = _poll(ctx, args, counting.evaluate)
    except Unavailable as unavailable:
        return CheckResult.err(str(unavailable))
    return result(outcome, elapsed, evidence_with_seconds(outcome, elapsed))


PROBE = Probe(
    name="kafka",
    args_model=KafkaArgs,
    run=run,
    summary="a Kafka topic's partitions and configs, a consumer group's members and "
    "assignment, and a stream the check produces counted into Redis",
)

"""The kafka probe on an in-memory Kafka and Redis (probe_support's FakeKafka, FakeRedis and
FakeConsumer, the learner's program in a few lines) and a fake clock; its decisions (orders,
lag, counts, messages) on plain data. The real adapters (roadlab.checker.streams) are
exercised against a real broker and Redis by the streaming lab's e2e test."""

from __future__ import annotations

import json
from typing import Any

import pytest
from probe_support import FakeClock, FakeConsumer, FakeContext, FakeKafka, FakeRedis, group

from roadlab.checker import probe_context
from roadlab.checker.streams import KafkaAdapter, RedisAdapter
from roadlab.probes import kafka as kafka_probe
from roadlab.probes import run_check, validate_check
from roadlab.probes.kafka import (
    Lag,
    RedisHash,
    compare_counts,
    counts_message,
    expected_units,
    group_lag,
    lag_message,
    plan_orders,
)

RUN = "0badcafe"
P = f"check-{RUN}-p"  # the check's products are P0 .. P5


def lab(clock: FakeClock | None = None) -> tuple[FakeContext, FakeKafka, FakeRedis]:
    kafka, redis = FakeKafka(), FakeRedis()
    ctx = FakeContext(clock=clock or FakeClock())
    ctx.kafka_services["kafka"] = kafka
    ctx.redis_services["redis"] = redis
    return ctx, kafka, redis


@pytest.fixture(autouse=True)
def _run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_probe, "new_run_id", lambda: RUN)


# --- topic ----------------------------------------------------------------------------------

TOPIC: dict[str, Any] = {
    "topic": {"name": "orders", "partitions": 3, "configs": {"retention.ms": "86400000"}},
    "withinSeconds": 0,
}


def test_a_topic_as_asked_passes() -> None:
    ctx, kafka, _ = lab()
    kafka.topic("orders", 3, **{"retention.ms": "86400000"})
    result = run_check(ctx, "kafka", TOPIC)
    assert result.state == "Passed", result.message
    assert (
        result.message == "topic orders: 3 partitions, replication factor 1, retention.ms=86400000"
    )
    assert result.evidence == {
        "partitions": 3,
        "replicationFactor": 1,
        "retention.ms": "86400000",
        "seconds": 0.0,
    }
    assert ctx.opened == [("kafka", "kafka", 9092)]
    assert kafka.closed


CREATE = "`kafka-topics --bootstrap-server kafka:9092"


@pytest.mark.parametrize(
    ("partitions", "configs", "message"),
    [
        (
            1,
            {},
            "topic orders has 1 partition, expected 3: a topic created automatically "
            "(auto.create.topics.enable, num.partitions=1) by a producer or consumer that used "
            f"it before it was created gets 1; add partitions with {CREATE} --alter --topic "
            "orders --partitions 3` (keys then map to other partitions), or delete it and create "
            "it with --partitions 3; retention.ms is 604800000 (the broker's default), expected "
            "86400000: set it with `kafka-configs --bootstrap-server kafka:9092 --alter "
            "--entity-type topics --entity-name orders --add-config retention.ms=86400000`",
        ),
        (
            2,
            {"retention.ms": "86400000"},
            f"topic orders has 2 partitions, expected 3: add partitions with {CREATE} --alter "
            "--topic orders --partitions 3` (keys then map to other partitions)",
        ),
        (
            6,
            {"retention.ms": "86400000"},
            "topic orders has 6 partitions, expected 3: partitions cannot be removed; delete the "
            "topic and create it again with --partitions 3",
        ),
        (
            3,
            {"retention.ms": "3600000"},
            "retention.ms is 3600000, expected 86400000: set it with `kafka-configs "
            "--bootstrap-server kafka:9092 --alter --entity-type topics --entity-name orders "
            "--add-config retention.ms=86400000`",
        ),
    ],
    ids=["auto-created", "too-few", "too-many", "retention-set-otherwise"],
)
def test_a_topic_not_as_asked_fails_with_what_the_broker_describes(
    partitions: int, configs: dict[str, str], message: str
) -> None:
    ctx, kafka, _ = lab()
    kafka.topic("orders", partitions, **configs)
    result = run_check(ctx, "kafka", TOPIC)
    assert result.state == "Failed"
    assert result.message == message
    assert result.evidence["partitions"] == partitions


def test_a_missing_topic_names_the_topics_there_are() -> None:
    ctx, kafka, _ = lab()
    none = run_check(ctx, "kafka", TOPIC)
    kafka.topic("order")
    other = run_check(ctx, "kafka", TOPIC)
    assert none.message == (
        "topic orders does not exist (the broker has no topic of yours yet): create it with "
        f"{CREATE} --create --topic orders --partitions 3 --config retention.ms=86400000`"
    )
    assert other.message.startswith("topic orders does not exist (topics: order): create it")
    assert "describe_topic" in kafka.calls and "topic_names" in kafka.calls


def test_replication_factor_and_unknown_configs() -> None:
    ctx, kafka, _ = lab()
    kafka.topic("orders", 3)
    args = {"topic": {"name": "orders", "replicationFactor": 3, "configs": {"retention.msec": 1}}}
    result = run_check(ctx, "kafka", {**args, "withinSeconds": 0})
    assert result.message == (
        "topic orders has replication factor 1, expected 3: it is set when the topic is created "
        "(--replication-factor); topic orders has no config retention.msec (is the name right?)"
    )


def test_a_missing_topic_is_said_at_once() -> None:
    # Waiting does not make a topic: the check says so without spending its window.
    clock = FakeClock()
    ctx, _, _ = lab(clock)
    for args in (TOPIC, {"consumerGroup": {"group": "order-counter", "topic": "orders"}}):
        result = run_check(ctx, "kafka", {**args, "withinSeconds": 30})
        assert result.state == "Failed", result.message
        assert result.message.startswith("topic orders does not exist"), result.message
        assert "waited" not in result.message
    assert clock.sleeps == []


def test_a_wrong_topic_is_said_at_once() -> None:
    clock = FakeClock()
    ctx, kafka, _ = lab(clock)
    kafka.topic("orders", 1, **{"retention.ms": "86400000"})
    result = run_check(ctx, "kafka", {**TOPIC, "withinSeconds": 10, "pollSeconds": 5})
    assert result.state == "Failed"
    assert result.message.endswith("or delete it and create it with --partitions 3")
    assert clock.sleeps == []


def test_a_broker_that_is_starting_is_waited_for_and_one_that_never_answers_is_an_error() -> None:
    clock = FakeClock()
    ctx, kafka, _ = lab(clock)
    kafka.topic("orders", 3, **{"retention.ms": "86400000"})
    kafka.fail_next = 2
    started = run_check(ctx, "kafka", {**TOPIC, "withinSeconds": 30})
    kafka.down = "Connect to ipv4#10.96.0.9:9092 failed: Connection refused"
    never = run_check(ctx, "kafka", {**TOPIC, "withinSeconds": 30})
    assert started.state == "Passed", started.message
    assert started.evidence["seconds"] == 4
    assert never.state == "Error"
    assert never.message == (
        "cannot reach Kafka at kafka:9092: listing topics: Local: Broker transport failure "
        "(Connect to ipv4#10.96.0.9:9092 failed: Connection refused); check that the broker's "
        "pod is ready (`kubectl get pods`, its log) and that the Service kafka selects it "
        "(`kubectl get endpoints kafka`)"
    )
    assert sum(clock.sleeps) == 4 + 30


def test_calls_fit_the_check_deadline() -> None:
    clock = FakeClock()
    ctx, kafka, _ = lab(clock)
    kafka.topic("orders", 3, **{"retention.ms": "86400000"})
    run_check(ctx, "kafka", TOPIC)
    ctx.deadline = clock.now + 15
    run_check(ctx, "kafka", TOPIC)
    ctx.deadline = clock.now + 3
    run_check(ctx, "kafka", TOPIC)
    assert kafka.timeouts == [10, 5, 1]  # timeoutSeconds; then 10 s kept for the report


# --- consumer group -------------------------------------------------------------------------

GROUP: dict[str, Any] = {
    "consumerGroup": {"group": "order-counter", "topic": "orders", "members": 3},
    "withinSeconds": 0,
}


def test_a_stable_group_with_a_partition_per_member_passes() -> None:
    ctx, kafka, _ = lab()
    kafka.topic("orders", 3)
    kafka.groups["order-counter"] = group("Stable", [0], [1], [2])
    result = run_check(ctx, "kafka", GROUP)
    assert result.state == "Passed", result.message
    assert result.message == (
        "group order-counter is Stable with 3 members, each owning partitions of orders "
        "(consumer-1 on 10.244.0.11: 0; consumer-2 on 10.244.0.12: 1; consumer-3 on "
        "10.244.0.13: 2)"
    )
    assert result.evidence["state"] == "Stable" and result.evidence["members"] == 3


@pytest.mark.parametrize(
    ("partitions", "described", "message"),
    [
        (
            3,
            None,
            "no consumer has joined group order-counter: is group.id set to order-counter in "
            "the consumer's configuration, and is the consumer running?",
        ),
        (
            3,
            group("Stable", [0, 1, 2]),
            "group order-counter has 1 member, expected 3 (one per partition)",
        ),
        (
            1,
            group("Stable", [0], [], []),
            "2 of 3 members own no partition of orders: a group gets at most as many busy "
            "consumers as the topic has partitions (orders has 1)",
        ),
        (
            3,
            group("Stable", [0, 1, 2], [], []),
            "2 of 3 members own no partition of orders: are they subscribed to orders?",
        ),
        (
            4,
            group("Stable", [0], [1], [2]),
            "1 partition of orders (3) is assigned to no member of group order-counter",
        ),
        (
            3,
            group("PreparingRebalance", [0], [1]),
            "group order-counter is rebalancing (PreparingRebalance, 2 members): consumers are "
            "joining or leaving it; a consumer that keeps restarting keeps it rebalancing",
        ),
        (
            3,
            group("Empty"),
            "group order-counter has no members (Empty: its consumers have stopped or lost it): "
            "start the consumers",
        ),
    ],
    ids=[
        "no-group",
        "one-member",
        "more-members-than-partitions",
        "idle",
        "unassigned",
        "rebalancing",
        "empty",
    ],
)
def test_group_failures(partitions: int, described: Any, message: str) -> None:
    ctx, kafka, _ = lab()
    kafka.topic("orders", partitions)
    if described is not None:
        kafka.groups["order-counter"] = described
    result = run_check(ctx, "kafka", GROUP)
    assert result.state == "Failed"
    assert result.message == message


def test_a_rebalance_is_waited_for() -> None:
    clock = FakeClock()
    ctx, kafka, _ = lab(clock)
    kafka.topic("orders", 3)
    answers = iter([group("PreparingRebalance", [0, 1, 2]), group("CompletingRebalance")])
    kafka.groups["order-counter"] = lambda: next(answers, group("Stable", [0], [1], [2]))
    result = run_check(ctx, "kafka", {**GROUP, "withinSeconds": 45})
    assert result.state == "Passed", result.message
    assert clock.sleeps == [2, 2]


def test_a_group_needs_its_topic() -> None:
    ctx, _, _ = lab()
    result = run_check(ctx, "kafka", GROUP)
    assert result.message == (
        "topic orders does not exist (the broker has no topic of yours yet): create it with "
        f"{CREATE} --create --topic orders`"
    )


# --- counts ---------------------------------------------------------------------------------

COUNTS: dict[str, Any] = {
    "counts": {
        "topic": "orders",
        "group": "order-counter",
        "messages": 300,
        "products": 6,
        "redis": {"service": "redis", "hash": "order-counts"},
    },
    "withinSeconds": 60,
}


def counting_lab(**consumer: Any) -> tuple[FakeContext, FakeKafka, FakeRedis, FakeClock]:
    clock = FakeClock()
    ctx, kafka, redis = lab(clock)
    kafka.topic("orders", 3)
    program = FakeConsumer(kafka, redis, **consumer)
    clock.on_sleep = program.step
    return ctx, kafka, redis, clock


def test_counts_pass_when_the_group_has_counted_every_order() -> None:
    ctx, kafka, redis, clock = counting_lab(batch=75)  # 75 of a partition every 2 s
    units = sum(expected_units(plan_orders(RUN, 300, 6)).values())
    result = run_check(ctx, "kafka", COUNTS)
    assert result.state == "Passed", result.message
    assert result.message == (
        "group order-counter consumed the check's 300 orders of 6 products on orders, and "
        f"Redis hash order-counts holds their units ({units} in all) 4.0 s after they were "
        "produced"
    )
    assert result.evidence["runId"] == RUN
    assert result.evidence["behind"] == 0 and result.evidence["wrongProducts"] == 0
    produced = [json.loads(v) for log in kafka.topics["orders"].log for _, v in log]
    assert len(produced) == 300
    assert {o["product"] for o in produced} == {f"{P}{i}" for i in range(6)}
    assert all(1 <= o["quantity"] <= 5 for o in produced)
    # Keyed by product, a product's orders on one partition, every partition with orders.
    for partition, log in enumerate(kafka.topics["orders"].log):
        assert {key.decode() for key, _ in log} == {f"{P}{partition}", f"{P}{partition + 3}"}
        for key, value in log:
            assert json.loads(value)["product"] == key.decode()
    assert redis.closed and kafka.closed
    assert ("redis", "redis", 6379) in ctx.opened
    assert clock.sleeps == [2, 2]


def test_counts_of_earlier_runs_and_other_products_do_not_count() -> None:
    ctx, _, redis, _ = counting_lab()
    redis.hashes["order-counts"] = {"check-11111111-p0": "999", "keyboard": "7"}
    assert run_check(ctx, "kafka", COUNTS).state == "Passed"


def test_a_missing_topic_fails_at_once_without_producing() -> None:
    clock = FakeClock()
    ctx, kafka, _ = lab(clock)
    result = run_check(ctx, "kafka", COUNTS)
    assert result.state == "Failed"
    assert result.message == (
        "topic orders does not exist (the broker has no topic of yours yet): create it with "
        f"{CREATE} --create --topic orders` (the check produced nothing)"
    )
    assert "produce" not in kafka.calls
    assert clock.sleeps == []


def test_a_consumer_that_does_not_commit() -> None:
    ctx, _, _, _ = counting_lab(commit=False)
    result = run_check(ctx, "kafka", COUNTS)
    assert result.message == (
        "no consumer in group order-counter has committed an offset on orders: is the consumer "
        "running with group.id order-counter, and does it commit (enable.auto.commit, or "
        "commit() after each message)? (waited 60 s)"
    )


def test_a_consumer_that_stops_leaves_lag_and_wrong_counts() -> None:
    ctx, kafka, redis, _ = counting_lab(partitions=[0, 2])  # nobody reads partition 1
    kafka.committed[("order-counter", "orders", 1)] = 0
    result = run_check(ctx, "kafka", COUNTS)
    on_1 = len(kafka.topics["orders"].log[1])
    products_on_1 = sorted({k.decode() for k, _ in kafka.topics["orders"].log[1]})
    expected = expected_units(plan_orders(RUN, 300, 6))
    assert result.state == "Failed"
    wrong = "; ".join(f"{p} is missing, expected {expected[p]}" for p in products_on_1)
    assert result.message == (
        f"group order-counter is {on_1} messages behind on orders (partition 1: {on_1}) after "
        f"60 s; {len(products_on_1)} of 6 products have wrong units in Redis hash "
        f"order-counts: {wrong}"
    )
    assert result.evidence["behind"] == on_1
    assert result.evidence["missingProducts"] == len(products_on_1)
    assert redis.hashes["order-counts"]


def test_every_order_counted_twice_points_at_groups_of_their_own() -> None:
    ctx, _, _, _ = counting_lab(times=2)
    result = run_check(ctx, "kafka", COUNTS)
    assert result.state == "Failed"
    assert result.message.startswith("6 of 6 products have wrong units in Redis hash order-counts:")
    assert result.message.endswith(
        "and 2 more; every count is 2 times what was produced: is each consumer in a group of "
        "its own, so every one of them reads every order? (waited 60 s)"
    )


def test_counts_written_elsewhere_or_not_as_a_hash() -> None:
    ctx, _, redis, _ = counting_lab(hash="counts")
    elsewhere = run_check(ctx, "kafka", COUNTS)
    redis.strings["order-counts"] = "0"
    not_a_hash = run_check(ctx, "kafka", COUNTS)
    assert elsewhere.message == (
        "none of the check's 6 products is in hash order-counts: does the consumer add each "
        "order's quantity there (HINCRBY order-counts <product> <quantity>)? (waited 60 s)"
    )
    assert not_a_hash.state == "Failed"
    assert not_a_hash.message == (
        "Redis key order-counts is not a hash (HMGET order-counts: WRONGTYPE Operation against a "
        "key holding the wrong kind of value): the consumer must add to a hash (HINCRBY "
        "order-counts <product> <quantity>) (waited 60 s)"
    )


def test_a_failed_produce_is_tried_again_as_a_new_run(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(kafka_probe, "new_run_id", lambda: next(ids))
    ctx, kafka, redis, _ = counting_lab()
    kafka.fail_produce = 1
    result = run_check(ctx, "kafka", COUNTS)
    assert result.state == "Passed", result.message
    assert result.evidence["runId"] == "bbbbbbbb"
    assert kafka.calls.count("produce") == 2
    # The half the failed attempt delivered was counted too, under products of its own.
    assert any(p.startswith("check-aaaaaaaa-") for p in redis.hashes["order-counts"])


def test_an_unreachable_redis_is_an_error() -> None:
    ctx, _, _, _ = counting_lab()
    ctx.redis_services.clear()
    result = run_check(ctx, "kafka", COUNTS)
    assert result.state == "Error"
    assert result.message == (
        "cannot reach Redis at redis:6379: HMGET order-counts: Error 111 connecting: redis does "
        "not resolve; check that its pod is ready and that the Service redis selects it"
    )


# --- the decisions, on data -----------------------------------------------------------------


def test_orders_are_the_same_for_a_run_and_spread_over_its_products() -> None:
    orders = plan_orders("ab12cd34", 300, 6)
    assert orders == plan_orders("ab12cd34", 300, 6)
    assert orders != plan_orders("ab12cd35", 300, 6)
    assert [o.product for o in orders[:7]] == [
        f"check-ab12cd34-p{i}" for i in [0, 1, 2, 3, 4, 5, 0]
    ]
    assert len({o.order for o in orders}) == 300
    assert {o.quantity for o in orders} == {1, 2, 3, 4, 5}
    units = expected_units(orders)
    assert sum(units.values()) == sum(o.quantity for o in orders)
    first = orders[0].message(4)
    assert (first.key, first.partition) == (b"check-ab12cd34-p0", 0)
    assert json.loads(first.value) == {
        "order": "check-ab12cd34-o0",
        "product": "check-ab12cd34-p0",
        "quantity": orders[0].quantity,
    }
    # Product i on partition i mod partitions: every partition gets orders of the check.
    assert [o.message(4).partition for o in orders[:6]] == [0, 1, 2, 3, 0, 1]


def test_lag_against_the_end_offsets_after_producing() -> None:
    before, end = {0: 10, 1: 0, 2: 5}, {0: 110, 1: 100, 2: 105}
    caught_up = group_lag(before, end, {0: 110, 1: 100, 2: 105})
    behind = group_lag(before, end, {0: 110, 1: 80, 2: None})
    nothing = group_lag(before, end, {0: None, 1: None, 2: None})
    assert caught_up.caught_up and caught_up.total == 0
    assert behind == Lag(behind={1: 20}, uncommitted={2: 100}, any_commit=True)
    assert not behind.caught_up and behind.total == 120
    assert not nothing.any_commit and not nothing.caught_up
    assert lag_message("g", "t", behind, 60.4) == (
        "group g is 120 messages behind on t (partition 1: 20, partition 2: 100, nothing "
        "committed) after 60 s"
    )
    assert lag_message("g", "t", caught_up, 1) is None
    assert (lag_message("g", "t", nothing, 1) or "").startswith("no consumer in group g")
    # A partition the check produced nothing to needs no commit.
    assert group_lag({0: 5, 1: 7}, {0: 5, 1: 9}, {0: None, 1: 9}).caught_up


def test_counts_compared_with_what_was_produced() -> None:
    where = RedisHash(hash="h")
    expected = {f"p{i}": 10 * (i + 1) for i in range(6)}
    right = compare_counts(expected, {p: str(v) for p, v in expected.items()})
    tripled = compare_counts(expected, {p: str(3 * v) for p, v in expected.items()})
    mixed = compare_counts(expected, {"p0": "10", "p1": "40", "p2": "abc", "p3": None})
    assert right.right and counts_message(where, right) is None
    assert tripled.multiple() == 3
    assert mixed.multiple() is None
    assert counts_message(where, mixed) == (
        '5 of 6 products have wrong units in Redis hash h: p1 is 40, expected 20; p2 is "abc", '
        "expected 30; p3 is missing, expected 40; p4 is missing, expected 50 and 1 more"
    )
    doubled_but_one = {p: str(2 * v) for p, v in expected.items()} | {"p5": "60"}
    assert compare_counts(expected, doubled_but_one).multiple() is None


# --- arguments and the context --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({}, "give exactly one of topic, consumerGroup or counts"),
        ({**TOPIC, **GROUP}, "give exactly one of"),
        ({"topic": {"name": "orders topic"}}, "topic.name"),
        ({"topic": {"name": "orders", "partition": 3}}, "partition: Extra inputs"),
        (
            {"counts": {**COUNTS["counts"], "messages": 3}},
            "messages must be at least products",
        ),
        ({"counts": {**COUNTS["counts"], "redis": {"service": "redis"}}}, "counts.redis.hash"),
    ],
)
def test_bad_args_are_refused_at_catalog_load(args: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_check("kafka", args)


def test_config_values_may_be_written_as_yaml_numbers() -> None:
    parsed = kafka_probe.KafkaArgs.model_validate(
        {"topic": {"name": "orders", "configs": {"retention.ms": 86400000, "x.enable": True}}}
    )
    assert parsed.topic is not None
    assert parsed.topic.configs == {"retention.ms": "86400000", "x.enable": "true"}


def test_the_checker_context_opens_the_lab_services_and_the_deadline_passes_them_on() -> None:
    context = probe_context.KubeProbeContext(None, "lab-a")  # type: ignore[arg-type]
    kafka = context.kafka("kafka", 9092)
    redis = context.redis("redis", 6379)
    try:
        assert isinstance(kafka, KafkaAdapter)
        assert kafka.bootstrap == "kafka.lab-a.svc.cluster.local:9092"
        assert isinstance(redis, RedisAdapter)
        assert (redis.host, redis.port) == ("redis.lab-a.svc.cluster.local", 6379)
    finally:
        kafka.close()
        redis.close()
    inner = FakeContext()
    bounded = probe_context.DeadlineContext(inner, 100.0, lambda: 0.0)
    bounded.kafka("kafka", 9092)
    bounded.redis("redis", 6379)
    assert inner.opened == [("kafka", "kafka", 9092), ("redis", "redis", 6379)]

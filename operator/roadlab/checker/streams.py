"""The real KafkaConnection and RedisConnection of a probe context (see roadlab.probes.base):
a lab's Kafka through confluent-kafka (librdkafka, bundled in its wheel), its Redis through
redis-py. The probes see only the Protocols, typed results and the two probe error types.

Kafka: one AdminClient per connection for the reads (metadata, configs, groups, end
offsets), a Consumer that never subscribes for a group's committed offsets, a Producer per
produce() call. Topics are only ever read from the metadata of all topics:
a metadata request naming a topic would make a broker with auto.create.topics.enable
create it, and the producer runs with allow.auto.create.topics=false. librdkafka's log
goes to a logger of the connection's own (not to the check's output); its last lines say
why a broker cannot be reached, and go into the error.

Every call is bounded by the timeout it is given (librdkafka's request timeout, and the
same plus a second for the future), so a broker that does not answer costs at most that.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, TypeVar

import redis
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    ConfigSource,
    ConsumerGroupDescription,
    OffsetSpec,
    ResourceType,
)
from redis.backoff import NoBackoff
from redis.retry import Retry

from roadlab.probes.base import (
    ConfigSource as TopicConfigSource,
)
from roadlab.probes.base import (
    GroupState,
    KafkaGroup,
    KafkaGroupMember,
    KafkaMessage,
    KafkaTopic,
    KafkaTopicConfig,
    ProbeKafkaError,
    ProbeRedisError,
)

CLIENT_ID = "roadlab-check"
LOG_LINES_KEPT = 4
FUTURE_SLACK_SECONDS = 1.0  # past the request timeout, before a future is given up on
# librdkafka retries a connection quickly at first: a broker that is starting is found as
# soon as it listens, within the call's timeout.
RECONNECT = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000}

_CONFIG_SOURCES: dict[ConfigSource, TopicConfigSource] = {
    ConfigSource.DYNAMIC_TOPIC_CONFIG: "topic",
    ConfigSource.DYNAMIC_BROKER_CONFIG: "broker",
    ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG: "broker",
    ConfigSource.STATIC_BROKER_CONFIG: "broker",
    ConfigSource.DEFAULT_CONFIG: "default",
}
_GROUP_STATES: dict[ConsumerGroupState, GroupState] = {
    ConsumerGroupState.STABLE: "Stable",
    ConsumerGroupState.EMPTY: "Empty",
    ConsumerGroupState.PREPARING_REBALANCING: "PreparingRebalance",
    ConsumerGroupState.COMPLETING_REBALANCING: "CompletingRebalance",
}
# "FAIL [rdkafka#producer-1] [thrd:kafka:9092/bootstrap]: kafka:9092/bootstrap: Connect to
# ipv4#10.96.0.5:9092 failed: Connection refused (after 0ms in state CONNECT)"
_LOG_PREFIX = re.compile(r"^\S+ \[[^\]]*\] \[[^\]]*\]: (?:\S+/(?:bootstrap|\d+): )?")
_LOG_SUFFIX = re.compile(r" \(after \d+ms in state \w+[^)]*\)$")

T = TypeVar("T")


class _LastLines(logging.Handler):
    """The last few lines librdkafka logged, for the error of a failed call."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = _LOG_SUFFIX.sub("", _LOG_PREFIX.sub("", record.getMessage()))
        with self._lines_lock:
            self.lines.append(line)

    def last(self) -> str | None:
        with self._lines_lock:
            return self.lines[-1] if self.lines else None


def _kafka_error(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


class KafkaAdapter:
    """A KafkaConnection through confluent-kafka, bootstrapped from `bootstrap` (host:port)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._log = _LastLines()
        # A logger of this connection's own, in no registry: nothing else sees its lines,
        # and it goes when the connection does.
        self._logger = logging.Logger(f"roadlab.checker.kafka[{bootstrap}]", logging.WARNING)
        self._logger.addHandler(self._log)
        self._admin: AdminClient | None = AdminClient(self._config(), logger=self._logger)
        self._readers: dict[str, Consumer] = {}  # by group: see committed_offsets

    def _config(
        self, extra: dict[str, str | int | float | bool] | None = None
    ) -> dict[str, str | int | float | bool]:
        return {
            "bootstrap.servers": self.bootstrap,
            "client.id": CLIENT_ID,
            "log_level": 4,  # warnings and errors: why a broker cannot be reached
            **RECONNECT,
            **(extra or {}),
        }

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise ProbeKafkaError("the connection is closed")
        return self._admin

    def _failure(self, doing: str, exc: BaseException | str) -> ProbeKafkaError:
        if self._admin is not None:
            self._admin.poll(0)  # serves the log lines queued meanwhile
        error = None if isinstance(exc, str) else _kafka_error(exc)
        if isinstance(exc, str):
            reason = exc
        elif error is not None:
            # "Failed to get metadata: Local: Broker transport failure"; some carry only the
            # request's name ("ConsumerGroupDescribe: "): the code's name then says what.
            reason = error.str().strip()
            if not reason or reason.endswith(":"):
                reason = f"{reason} {error.name()}".strip()
        elif isinstance(exc, FutureTimeoutError):
            reason = "no answer in time"
        else:  # pragma: no cover - _call catches only the two above
            reason = f"{type(exc).__name__}: {exc}"
        detail = self._log.last()
        return ProbeKafkaError(f"{doing}: {reason}" + (f" ({detail})" if detail else ""))

    def _call(self, doing: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except (KafkaException, FutureTimeoutError) as exc:
            raise self._failure(doing, exc) from exc

    @staticmethod
    def _result(future: Future[Any], timeout: float) -> Any:
        return future.result(timeout=timeout + FUTURE_SLACK_SECONDS)

    def topic_names(self, *, timeout: float) -> list[str]:
        metadata = self._call("listing topics", lambda: self.admin.list_topics(timeout=timeout))
        return sorted(str(name) for name in metadata.topics)

    def describe_topic(self, topic: str, *, timeout: float) -> KafkaTopic | None:
        # The metadata of all topics, never of this one by name (see the module docstring).
        metadata = self._call("listing topics", lambda: self.admin.list_topics(timeout=timeout))
        found = metadata.topics.get(topic)
        if found is None:
            return None
        if found.error is not None:
            raise ProbeKafkaError(f"reading topic {topic}: {found.error.str()}")
        partitions = list(found.partitions.values())
        resource = ConfigResource(ResourceType.TOPIC, topic)

        def configs() -> dict[str, KafkaTopicConfig]:
            futures = self.admin.describe_configs([resource], request_timeout=timeout)
            entries = self._result(futures[resource], timeout)
            return {
                str(name): KafkaTopicConfig(
                    value=None if entry.value is None else str(entry.value),
                    source=_CONFIG_SOURCES.get(ConfigSource(entry.source), "unknown"),
                )
                for name, entry in entries.items()
            }

        return KafkaTopic(
            name=topic,
            partitions=len(partitions),
            replication_factor=min((len(p.replicas) for p in partitions), default=0),
            configs=self._call(f"describing the configs of topic {topic}", configs),
        )

    def describe_group(self, group: str, *, timeout: float) -> KafkaGroup | None:
        def describe() -> ConsumerGroupDescription | None:
            futures = self.admin.describe_consumer_groups([group], request_timeout=timeout)
            try:
                description: ConsumerGroupDescription = self._result(futures[group], timeout)
            except KafkaException as exc:
                error = _kafka_error(exc)
                if error is not None and error.code() == KafkaError.GROUP_ID_NOT_FOUND:
                    return None  # how a broker with the new group coordinator may say so
                raise
            return description

        found = self._call(f"describing consumer group {group}", describe)
        state = getattr(found, "state", None)
        if found is None or state == ConsumerGroupState.DEAD:
            return None  # Kafka 4.1's answer for a group nobody joined (no error)
        if state == ConsumerGroupState.UNKNOWN and not found.members:
            return None  # how an older broker or client may say the same
        members = tuple(
            KafkaGroupMember(
                member_id=str(member.member_id),
                client_id=str(member.client_id),
                host=str(member.host),
                assignment=tuple(
                    sorted(
                        (str(tp.topic), int(tp.partition))
                        for tp in (member.assignment.topic_partitions if member.assignment else [])
                    )
                ),
            )
            for member in found.members or []
        )
        return KafkaGroup(
            group_id=group,
            state=_GROUP_STATES.get(state, "Unknown")
            if isinstance(state, ConsumerGroupState)
            else "Unknown",
            members=members,
        )

    def _group_reader(self, group: str) -> Consumer:
        """A consumer with the group's id that never subscribes: it reads the group's
        committed offsets without joining the group (no member, no rebalance), commits
        nothing, and creates no topic."""
        reader = self._readers.get(group)
        if reader is None:
            reader = Consumer(
                self._config(
                    {
                        "group.id": group,
                        "enable.auto.commit": False,
                        "enable.auto.offset.store": False,
                        "allow.auto.create.topics": False,
                    }
                ),
                logger=self._logger,
            )
            self._readers[group] = reader
        return reader

    def committed_offsets(
        self, group: str, topic: str, partitions: Sequence[int], *, timeout: float
    ) -> dict[int, int | None]:
        # Not AdminClient.list_consumer_group_offsets: librdkafka (2.16 still) dereferences
        # the admin client's missing consumer group when the coordinator answers
        # NOT_COORDINATOR (a new group, a broker still loading its offsets), and the whole
        # checker process dies of a segmentation fault (librdkafka issue 5040).
        def read() -> dict[int, int | None]:
            asked = [TopicPartition(topic, partition) for partition in partitions]
            committed: dict[int, int | None] = {}
            for tp in self._group_reader(group).committed(asked, timeout=timeout):
                if tp.error is not None:
                    raise KafkaException(tp.error)
                offset = int(tp.offset)
                committed[int(tp.partition)] = offset if offset >= 0 else None
            return committed

        return self._call(f"reading the offsets group {group} committed on {topic}", read)

    def end_offsets(
        self, topic: str, partitions: Sequence[int], *, timeout: float
    ) -> dict[int, int]:
        request = {
            TopicPartition(topic, partition): OffsetSpec.latest() for partition in partitions
        }

        def read() -> dict[int, int]:
            futures = self.admin.list_offsets(request, request_timeout=timeout)
            return {
                int(tp.partition): int(self._result(future, timeout).offset)
                for tp, future in futures.items()
            }

        return self._call(f"reading the end offsets of {topic}", read)

    def produce(self, topic: str, messages: Sequence[KafkaMessage], *, timeout: float) -> None:
        failures: list[str] = []

        def delivered(error: KafkaError | None, _message: object) -> None:
            if error is not None:
                failures.append(error.str() or error.name())

        def send() -> int:
            producer = Producer(
                self._config(
                    {
                        "allow.auto.create.topics": False,
                        "acks": "all",
                        "linger.ms": 5,
                        # A message not acknowledged within the call's time is reported
                        # failed (on_delivery) rather than retried past it.
                        "message.timeout.ms": max(1000, int(timeout * 1000)),
                    }
                ),
                logger=self._logger,
            )
            for message in messages:
                partition = -1 if message.partition is None else message.partition  # -1: any
                while True:
                    try:
                        producer.produce(
                            topic,
                            value=message.value,
                            key=message.key,
                            partition=partition,
                            on_delivery=delivered,
                        )
                        break
                    except BufferError:  # the local queue is full: let it drain
                        producer.poll(0.1)
                producer.poll(0)
            return producer.flush(timeout)

        waiting = self._call(f"producing to {topic}", send)
        if failures or waiting:
            undelivered = len(failures) + waiting
            first = failures[0] if failures else f"no acknowledgement within {timeout:g} s"
            raise self._failure(
                f"producing to {topic}",
                f"{undelivered} of {len(messages)} messages not delivered: {first}",
            )

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        self._admin = None  # librdkafka's handle is destroyed with the last reference
        self._logger.removeHandler(self._log)


class RedisAdapter:
    """A RedisConnection through redis-py: a new connection per call, no retries past it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def hmget(self, key: str, fields: Sequence[str], *, timeout: float) -> list[str | None]:
        client = redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            values = client.hmget(key, list(fields))
        except redis.exceptions.ResponseError as exc:
            raise ProbeRedisError(
                f"HMGET {key}: {exc}", wrong_type=str(exc).startswith("WRONGTYPE")
            ) from exc
        except redis.exceptions.RedisError as exc:
            raise ProbeRedisError(f"HMGET {key}: {str(exc).rstrip('.')}") from exc
        finally:
            client.close()
        if not isinstance(values, list):  # pragma: no cover - the synchronous client's answer
            raise ProbeRedisError(f"HMGET {key}: unexpected answer {values!r}")
        return [
            value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
            for value in values
        ]

    def close(self) -> None:
        pass  # every call closed its own connection

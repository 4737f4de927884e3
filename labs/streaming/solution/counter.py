"""The streaming lab's reference consumer: orders from Kafka into units per product in Redis.

Runs on localhost/roadlab/stream-worker:0.1.0 (Python 3, confluent-kafka, redis-py), from
the ConfigMap counter mounted at /app. Its settings come from the environment, with the
lab's names as defaults. Offsets are committed after Redis has the batch's counts, so an
order is never lost; a consumer killed between the two counts its last batch again (at
least once).
"""

import json
import logging
import os
import signal
import threading

import redis
from confluent_kafka import Consumer, KafkaError

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("counter")

TOPIC = os.environ.get("TOPIC", "orders")
HASH = os.environ.get("HASH", "order-counts")

consumer = Consumer(
    {
        "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP", "kafka:9092"),
        "group.id": os.environ.get("GROUP_ID", "order-counter"),
        "client.id": os.environ.get("HOSTNAME", "counter"),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
)
counts = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"), port=6379)
stopping = threading.Event()  # set by SIGTERM: finish the batch, commit, leave the group
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
consumer.subscribe([TOPIC], on_assign=lambda _, parts: log.info("assigned %s", parts))
log.info("counting %s into %s", TOPIC, HASH)
while not stopping.is_set():
    messages = consumer.consume(num_messages=100, timeout=1.0)
    batch = counts.pipeline(transaction=True)
    counted = 0
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", error)
            continue
        try:
            order = json.loads(message.value())
            batch.hincrby(HASH, str(order["product"]), int(order["quantity"]))
            counted += 1
        except (ValueError, KeyError, TypeError) as exc:  # a malformed order: skipped, said
            log.warning("skipped %r: %s", message.value(), exc)
    if messages:
        batch.execute()
        consumer.commit(asynchronous=False)
        log.info("counted %d orders", counted)
consumer.close()  # leaves the group now, so the others get its partitions without waiting

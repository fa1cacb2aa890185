"""Bad input: the client gets the error Kafka would give or its connection
is closed, the broker says why in its log, and everyone else carries on."""

import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import wire
from conftest import unique

CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35
INVALID_RECORD = 87


@pytest.fixture
def broker(gregor_factory):
    return gregor_factory(props={"socket.request.max.bytes": "1048576", "message.max.bytes": "10000"})


class Bystander:
    """A well-behaved producer that keeps writing while the bad input
    arrives; every one of its records must be acknowledged."""

    def __init__(self, bootstrap, topic):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1})
        self.topic = topic
        self.errors = []
        self.acked = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def report(self, err, _msg):
        if err is None:
            self.acked += 1
        else:
            self.errors.append(err)

    def run(self):
        i = 0
        while not self.stop.is_set():
            self.producer.produce(self.topic, value=f"ok-{i}", on_delivery=self.report)
            i += 1
            self.producer.poll(0.01)
        self.producer.flush(30)

    def finish(self):
        self.stop.set()
        self.thread.join()
        assert self.errors == []
        assert self.acked > 0
        return self.acked


def create(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


CLOSING_CASES = {
    "negative size": struct.pack(">i", -5),
    "over socket.request.max.bytes": struct.pack(">i", 50 * 1024 * 1024) + b"\0" * 100,
    "shorter than a header": wire.frame(b"\0\x03"),
    "unknown api key": wire.frame(wire.header(999, 0)),
    "unsupported version": wire.frame(wire.header(3, 99) + b"\0" * 8),
    "truncated body": wire.frame(wire.header(3, 1) + struct.pack(">i", 5) + b"\0\x04ab"),
    "garbage": wire.frame(b"\x7f\x01" * 50),
    # An array claiming two billion elements in a few bytes (found by fuzzing).
    "huge array length": wire.frame(wire.header(3, 0) + struct.pack(">i", 0x7FFFFFFF)),
}

LOG_REASONS = {
    "negative size": "size",
    "over socket.request.max.bytes": "socket.request.max.bytes",
    "shorter than a header": "too short",
    "unknown api key": "unknown API key 999",
    "unsupported version": "version 99 is not supported",
    "truncated body": "malformed Metadata v1",
    "garbage": "unknown API key",
    "huge array length": "Array length 2147483647 exceeds",
}


@pytest.mark.parametrize("case", sorted(CLOSING_CASES))
def test_bad_frames_close_only_their_connection(broker, case):
    topic = unique("bystander")
    create(broker.bootstrap, topic)
    bystander = Bystander(broker.bootstrap, topic)
    time.sleep(0.2)
    conn = wire.Connection(broker.bootstrap)
    conn.send(CLOSING_CASES[case])
    assert conn.closed_by_peer(), f"{case}: connection stayed open"
    conn.close()
    time.sleep(0.2)
    acked = bystander.finish()
    assert broker.alive()
    assert LOG_REASONS[case] in broker.log_text()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("c")})
    assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1] == acked
    consumer.close()


def test_api_versions_newer_than_ours_gets_the_v0_fallback(broker):
    conn = wire.Connection(broker.bootstrap)
    conn.send(wire.frame(wire.header(18, 99) + b"\0"))  # flexible header: no tags
    response = conn.response()
    assert wire.api_versions_error(response) == UNSUPPORTED_VERSION
    conn.close()


def test_corrupt_and_oversized_batches_get_kafkas_error_codes(broker):
    topic = unique("batches")
    create(broker.bootstrap, topic)
    conn = wire.Connection(broker.bootstrap)

    good = wire.batch([b"one", b"two"])
    conn.send(wire.produce_v3(topic, 0, good))
    assert wire.produce_v3_error(conn.response()) == (0, 0)

    flipped = bytearray(good)
    flipped[-1] ^= 0xFF
    conn.send(wire.produce_v3(topic, 0, bytes(flipped)))
    assert wire.produce_v3_error(conn.response())[0] == CORRUPT_MESSAGE

    big = wire.batch([b"x" * 20000])
    conn.send(wire.produce_v3(topic, 0, big))
    assert wire.produce_v3_error(conn.response())[0] == MESSAGE_TOO_LARGE

    truncated = good[: len(good) - 7]
    conn.send(wire.produce_v3(topic, 0, truncated))
    assert wire.produce_v3_error(conn.response())[0] == INVALID_RECORD

    old_format = wire.batch([b"legacy"], magic=1)
    conn.send(wire.produce_v3(topic, 0, old_format))
    assert wire.produce_v3_error(conn.response())[0] == INVALID_RECORD

    # The same connection still works, and only the good batch was stored.
    conn.send(wire.produce_v3(topic, 0, wire.batch([b"three"])))
    assert wire.produce_v3_error(conn.response()) == (0, 2)
    conn.close()


def test_a_client_that_vanishes_mid_frame_costs_nothing(broker):
    topic = unique("vanish")
    create(broker.bootstrap, topic)
    for _ in range(20):
        conn = wire.Connection(broker.bootstrap)
        whole = wire.produce_v3(topic, 0, wire.batch([b"half"]))
        conn.send(whole[: len(whole) // 2])
        conn.close()
    conn = wire.Connection(broker.bootstrap)
    conn.send(wire.produce_v3(topic, 0, wire.batch([b"whole"])))
    assert wire.produce_v3_error(conn.response()) == (0, 0)
    conn.close()

"""Fetch long-polling and size limits."""

import signal
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

import wire
from conftest import unique


def create(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


def test_fetch_waits_up_to_max_wait_and_wakes_on_new_data(gregor):
    topic = unique("poll")
    create(gregor.bootstrap, topic)
    conn = wire.Connection(gregor.bootstrap, timeout=30)

    started = time.monotonic()
    conn.send(wire.fetch_v4(topic, {0: 0}, max_wait_ms=1500, min_bytes=1))
    error, hw, records = wire.fetch_v4_partition(conn.response())
    waited = time.monotonic() - started
    assert (error, hw, records) == (0, 0, b"")
    assert waited >= 1.4, f"an empty fetch returned after {waited:.2f}s, before max_wait_ms"

    # A waiting fetch returns as soon as a record arrives, not at max_wait.
    writer = wire.Connection(gregor.bootstrap)
    timer = threading.Timer(0.5, lambda: writer.send(wire.produce_v3(topic, 0, wire.batch([b"wake"]))))
    started = time.monotonic()
    timer.start()
    conn.send(wire.fetch_v4(topic, {0: 0}, max_wait_ms=20000, min_bytes=1))
    error, hw, records = wire.fetch_v4_partition(conn.response())
    waited = time.monotonic() - started
    timer.join()
    assert error == 0 and hw == 1 and b"wake" in records
    assert waited < 10, f"fetch slept {waited:.1f}s past the arrival of data"
    writer.close()
    conn.close()


def test_fetch_waits_for_min_bytes(gregor):
    topic = unique("minbytes")
    create(gregor.bootstrap, topic)
    conn = wire.Connection(gregor.bootstrap, timeout=30)
    writer = wire.Connection(gregor.bootstrap)

    def produce(size):
        writer.send(wire.produce_v3(topic, 0, wire.batch([b"z" * size])))
        assert wire.produce_v3_error(writer.response())[0] == 0

    # One small batch does not reach min_bytes: the fetch holds until max_wait.
    timer = threading.Timer(0.3, produce, args=(100,))
    started = time.monotonic()
    timer.start()
    conn.send(wire.fetch_v4(topic, {0: 0}, max_wait_ms=2000, min_bytes=5000))
    error, hw, records = wire.fetch_v4_partition(conn.response())
    waited = time.monotonic() - started
    timer.join()
    assert error == 0 and hw == 1 and wire.batch_count(records) == 1
    assert waited >= 1.9, f"returned after {waited:.2f}s with less than min_bytes"

    # Enough bytes arriving ends the wait early.
    timer = threading.Timer(0.3, produce, args=(6000,))
    started = time.monotonic()
    timer.start()
    conn.send(wire.fetch_v4(topic, {0: 0}, max_wait_ms=20000, min_bytes=5000))
    error, hw, records = wire.fetch_v4_partition(conn.response())
    waited = time.monotonic() - started
    timer.join()
    assert error == 0 and hw == 2 and wire.batch_count(records) == 2
    assert waited < 10, f"fetch slept {waited:.1f}s after min_bytes arrived"
    writer.close()
    conn.close()


def test_fetch_respects_partition_max_bytes_but_returns_one_batch(gregor):
    topic = unique("limits")
    create(gregor.bootstrap, topic)
    conn = wire.Connection(gregor.bootstrap)
    for i in range(5):
        conn.send(wire.produce_v3(topic, 0, wire.batch([bytes([65 + i]) * 1000])))
        assert wire.produce_v3_error(conn.response()) == (0, i)

    def fetch(offset, partition_max):
        conn.send(wire.fetch_v4(topic, {0: offset}, max_wait_ms=0, min_bytes=1, partition_max_bytes=partition_max))
        return wire.fetch_v4_partition(conn.response())

    _, _, records = fetch(0, 100)  # smaller than one batch: still one batch (KIP-74)
    assert wire.batch_count(records) == 1
    _, _, records = fetch(0, 2500)
    assert wire.batch_count(records) == 2
    _, _, records = fetch(3, 1 << 20)
    assert wire.batch_count(records) == 2
    error, _, _ = fetch(99, 1 << 20)
    assert error == 1  # OFFSET_OUT_OF_RANGE
    conn.close()


def test_fetch_max_bytes_caps_the_whole_response(gregor):
    topic = unique("maxbytes")
    admin = AdminClient({"bootstrap.servers": gregor.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    conn = wire.Connection(gregor.bootstrap)
    for p in (0, 1):
        for i in range(3):
            conn.send(wire.produce_v3(topic, p, wire.batch([b"y" * 1000])))
            assert wire.produce_v3_error(conn.response()) == (0, i)

    def fetch_both(max_bytes):
        conn.send(wire.fetch_v4(topic, {0: 0, 1: 0}, max_wait_ms=0, min_bytes=1, max_bytes=max_bytes))
        return wire.fetch_v4_batches(conn.response())

    # Room for about two batches in all: the first partition fills it; a
    # first batch is always returned even when it alone is over the limit.
    assert fetch_both(2500) == {0: 2, 1: 0}
    assert fetch_both(10) == {0: 1, 1: 0}
    assert fetch_both(1 << 20) == {0: 3, 1: 3}
    conn.close()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def test_consumers_waiting_on_an_idle_topic_cost_almost_no_cpu(gregor):
    topic = unique("idle")
    create(gregor.bootstrap, topic)
    consumers = []
    for _ in range(5):
        c = Consumer({"bootstrap.servers": gregor.bootstrap, "group.id": unique("idle"),
                      "fetch.wait.max.ms": 500})
        c.subscribe([topic])
        consumers.append(c)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # let them join and start polling
        for c in consumers:
            c.poll(0.05)
    before = cpu_seconds(gregor.proc.pid)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for c in consumers:
            assert c.poll(0.1) is None
    used = cpu_seconds(gregor.proc.pid) - before
    for c in consumers:
        c.close()
    # A busy-waiting fetch would burn a whole core (5 s here).
    assert used < 0.5, f"broker used {used:.2f}s of CPU in 5s with idle consumers"


def test_an_answer_is_sent_while_the_next_request_on_the_connection_waits(gregor):
    """Requests on one connection are answered in order, and an answer that
    is ready goes out even while the request after it is parked (here a
    long-polling fetch; in the field, a commit or produce waiting for
    replicas kept a group's heartbeat answers until its session ran out)."""
    topic = unique("parked")
    create(gregor.bootstrap, topic)
    conn = wire.Connection(gregor.bootstrap, timeout=20)
    conn.send(wire.frame(wire.header(18, 0, correlation_id=7))
              + wire.fetch_v4(topic, {0: 0}, max_wait_ms=60000, min_bytes=1))
    # Read before the fetch's 60 s are up, or the socket times out.
    assert wire.api_versions_error(conn.response()) == 0
    writer = wire.Connection(gregor.bootstrap)
    writer.send(wire.produce_v3(topic, 0, wire.batch([b"wake"]), acks=1))
    assert wire.produce_v3_error(writer.response())[0] == 0
    error, hw, records = wire.fetch_v4_partition(conn.response())
    assert (error, hw) == (0, 1) and b"wake" in records


def test_a_stopping_broker_answers_its_parked_requests(gregor):
    """SIGTERM: the broker's controlled shutdown takes its leaderships away
    (a lone broker's partitions are left without a leader, as in Kafka),
    which answers a parked long poll at once with NOT_LEADER_OR_FOLLOWER
    instead of leaving it to its max_wait; then the broker stops accepting,
    closes its connections once they have answered what they read, and
    exits cleanly."""
    topic = unique("draining")
    create(gregor.bootstrap, topic)
    conn = wire.Connection(gregor.bootstrap, timeout=30)
    conn.send(wire.frame(wire.header(18, 0, correlation_id=7))
              + wire.fetch_v4(topic, {0: 0}, max_wait_ms=20000, min_bytes=1))
    # Answered in order: once this is out, the fetch behind it is parked.
    assert wire.api_versions_error(conn.response()) == 0
    gregor.proc.send_signal(signal.SIGTERM)
    error, _, records = wire.fetch_v4_partition(conn.response())
    assert (error, records) == (6, b"")
    assert conn.closed_by_peer()
    assert gregor.proc.wait(timeout=30) == 0


def test_consumers_and_followers_fetch_in_incremental_sessions(metered_cluster):
    """KIP-227: every broker's followers fetch from it in sessions, and the
    Java consumer (which asks for one) reads every record of a topic of
    twelve partitions through its session; acks=all writes keep being
    acknowledged, so the followers' incremental fetches keep the ISR."""
    from confluent_kafka import Producer

    from conftest import kafka_tool, wait_until

    cluster = metered_cluster
    topic = unique("sessions")
    kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create", "--topic", topic,
               "--partitions", "12", "--replication-factor", "3", "--config", "min.insync.replicas=3")

    def produce(values):
        p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
        failed = []
        for v in values:
            p.produce(topic, key=v, value=v, on_delivery=lambda err, _: err and failed.append(err))
        assert p.flush(60) == 0 and not failed, failed

    first = [f"first-{i}" for i in range(3000)]
    produce(first)

    def sessions():
        return [(b.metrics()["gregor_fetch_sessions"], b.metrics()["gregor_fetch_session_partitions"])
                for b in cluster.brokers]

    # Each broker leads four partitions, each followed by the other two.
    wait_until(lambda: all(s >= 2 and p >= 8 for s, p in sessions()), 30, "the followers' fetch sessions")
    # The consumer waits for one record more than there are, so its
    # sessions (one with each broker) are seen while it runs.
    read = {}
    consumer = threading.Thread(target=lambda: read.update(out=kafka_tool(
        "kafka-console-consumer", "--bootstrap-server", cluster.bootstrap, "--topic", topic, "--from-beginning",
        "--max-messages", str(len(first) + 1), "--timeout-ms", "10000", check=False).stdout))
    consumer.start()
    try:
        wait_until(lambda: sum(s for s, _ in sessions()) >= 9, 60, "the consumer's fetch sessions")
    finally:
        consumer.join()
    assert sorted(read["out"].split()) == sorted(first)
    # Every replica still in sync: acks=all with min.insync.replicas=3.
    produce([f"second-{i}" for i in range(1000)])

"""Monitoring from the brokers' own /metrics, scraped from real broker
processes after real clients produced, consumed and committed: consumer
lag per group and partition (the group's coordinator reports it, reading
the high watermarks of partitions led elsewhere from their leaders), the
per-topic traffic counters, request latency, and ISR shrinks and expands.
The dashboard and alerts built on these are evaluated by a real Prometheus
in tests/test_operator.py."""

import re
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition
from kafka.structs import OffsetAndMetadata

from conftest import GregorCluster, unique, wait_until

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series(samples, name):
    """The samples of metric `name` as [(labels, value)]."""
    out = []
    for key, value in samples.items():
        m = SAMPLE.match(key)
        if m and m.group(1) == name:
            out.append((dict(LABEL.findall(m.group(2) or "")), value))
    return out


def group_figures(cluster, group):
    """What the brokers report of `group`: {node id: {metric: {(topic,
    partition) or (): value}}} for every broker that reports it."""
    found = {}
    for node_id, samples in ((b.node_id, b.metrics()) for b in cluster.brokers):
        figures = {}
        for name in ["gregor_consumer_group_lag", "gregor_consumer_group_committed_offset"]:
            got = {(l["topic"], int(l["partition"])): v for l, v in series(samples, name) if l["group"] == group}
            if got:
                figures[name] = got
        for name in ["gregor_consumer_group_total_lag", "gregor_consumer_group_members"]:
            got = [v for l, v in series(samples, name) if l["group"] == group]
            if got:
                figures[name] = got[0]
        states = [l["state"] for l, v in series(samples, "gregor_consumer_group_state") if l["group"] == group and v == 1]
        if states:
            figures["state"] = states
        if figures:
            found[node_id] = figures
    return found


def test_consumer_lag_per_group_is_exact_from_the_coordinators_own_metrics(metered_cluster):
    cluster = metered_cluster
    topic = unique("lag")
    partitions = 6
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 2)])[topic].result(30)
    wait_until(lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == partitions
               and all(p.leader >= 0 for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()),
               30, "the topic's leaders")

    # Partition p gets 5 + 3p records, acknowledged by every in-sync
    # replica: the high watermarks are where the records end.
    produced = {p: 5 + 3 * p for p in range(partitions)}
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
    for p, n in produced.items():
        for i in range(n):
            producer.produce(topic, f"{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0

    # "steady": a librdkafka member that stays in the group and commits
    # offsets of its choosing; "idle": kafka-python commits and leaves.
    steady_group, idle_group = unique("steady"), unique("idle")
    steady = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": steady_group,
                       "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    steady.subscribe([topic])
    deadline = time.monotonic() + 60
    while len(steady.assignment()) < partitions:
        assert time.monotonic() < deadline, "the steady consumer got no assignment"
        steady.poll(0.2)
    steady_committed = {p: p for p in range(partitions)}
    steady.commit(offsets=[TopicPartition(topic, p, o) for p, o in steady_committed.items()], asynchronous=False)

    idle_committed = {p: produced[p] - 1 for p in range(0, partitions, 2)}
    idle = KafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=idle_group, enable_auto_commit=False)
    idle.assign([KTopicPartition(topic, p) for p in idle_committed])
    idle.commit({KTopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in idle_committed.items()})
    idle.close()

    def reported(group, committed):
        """The one broker reporting `group`, once it reports `committed`
        with the lag the produced records give."""
        found = group_figures(cluster, group)
        if len(found) != 1:
            return None
        [(node, figures)] = found.items()
        want_lag = {(topic, p): float(produced[p] - o) for p, o in committed.items()}
        want_committed = {(topic, p): float(o) for p, o in committed.items()}
        if figures.get("gregor_consumer_group_lag") != want_lag \
                or figures.get("gregor_consumer_group_committed_offset") != want_committed:
            return None
        return node, figures

    for group, committed, members, state in [(steady_group, steady_committed, 1, "Stable"),
                                              (idle_group, idle_committed, 0, "Empty")]:
        got = None

        def check():
            nonlocal got
            got = reported(group, committed)
            return got is not None
        wait_until(check, 30, f"{group}'s lag on exactly one broker; last saw {group_figures(cluster, group)}")
        coordinator, figures = got
        assert figures["gregor_consumer_group_total_lag"] == sum(produced[p] - o for p, o in committed.items())
        assert figures["gregor_consumer_group_members"] == members
        assert figures["state"] == [state]
        # The coordinator read some high watermarks from other leaders.
        leaders = {p: m.leader for p, m in admin.list_topics(topic, timeout=10).topics[topic].partitions.items()}
        assert {leaders[p] for p in committed} - {coordinator}, (coordinator, leaders)

    # New records raise the lag of both groups by exactly their count.
    for i in range(7):
        producer.produce(topic, f"more-{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    produced[0] += 7
    for group, committed in [(steady_group, steady_committed), (idle_group, idle_committed)]:
        wait_until(lambda: reported(group, committed) is not None, 30, f"{group}'s lag to grow by 7")

    # Per-topic traffic, counted by the leaders: every record produced,
    # and what the steady consumer fetched.
    while steady.poll(1.0) is not None:
        pass
    steady.close()
    samples = [b.metrics() for b in cluster.brokers]

    def total(name, **labels):
        return sum(v for s in samples for l, v in series(s, name) if all(l.get(k) == w for k, w in labels.items()))
    assert total("gregor_topic_messages_in_total", topic=topic) == sum(produced.values())
    assert total("gregor_topic_bytes_in_total", topic=topic) > 0
    assert total("gregor_topic_bytes_out_total", topic=topic) > 0
    assert total("gregor_request_duration_seconds_count", api="Produce") >= 1
    assert total("gregor_request_duration_seconds_count", api="OffsetCommit") >= 2
    # Every log directory's file system is reported, with room left.
    for s in samples:
        [(capacity_labels, capacity)] = series(s, "gregor_log_dir_capacity_bytes")
        [(free_labels, free)] = series(s, "gregor_log_dir_free_bytes")
        assert capacity_labels == free_labels and 0 < free <= capacity
    assert total("gregor_consumer_lag_lookup_failures_total") == 0


def test_isr_shrinks_and_expands_are_counted_by_the_leader(tmp_path):
    """A frozen follower leaves the ISR of every partition it follows on
    the leader, and rejoins them once thawed: the leader counts one shrink
    and one expansion for each. (Its session outlasts the freeze, so the
    controller neither fences it nor moves leaderships meanwhile.)"""
    cluster = GregorCluster(tmp_path / "cluster", http=True,
                            props={"broker.session.timeout.ms": "60000"}).start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        topic = unique("isr")
        admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(30)
        leader, follower = cluster.broker(1), cluster.broker(2)

        def counted(name):
            return sum(v for _, v in series(leader.metrics(), name))

        def followed_on_leader():
            """Partitions led by `leader` with `follower` in their ISR, once
            every ISR is whole."""
            topics = admin.list_topics(timeout=10).topics.values()
            parts = [p for t in topics for p in t.partitions.values()]
            if any(sorted(p.isrs) != sorted(p.replicas) for p in parts):
                return None
            return sum(1 for p in parts if p.leader == leader.node_id and follower.node_id in p.isrs)
        wait_until(lambda: followed_on_leader() is not None, 60, "every ISR to be whole")
        expected = followed_on_leader()
        shrinks, expands = counted("gregor_isr_shrinks_total"), counted("gregor_isr_expands_total")
        follower.freeze()
        try:
            # replica.lag.time.max.ms is 5 s here.
            wait_until(lambda: counted("gregor_isr_shrinks_total") - shrinks == expected, 30,
                       f"{expected} ISR shrinks")
            assert counted("gregor_under_replicated_partitions") == expected
        finally:
            follower.thaw()
        wait_until(lambda: counted("gregor_isr_expands_total") - expands == expected, 30,
                   f"{expected} ISR expansions")
        assert counted("gregor_under_replicated_partitions") == 0
        assert counted("gregor_isr_shrinks_total") - shrinks == expected
    finally:
        cluster.stop()

"""A network partition: three brokers in their own network namespaces, the
leader's link dropped while producers write with acks=all and
min.insync.replicas=2. The cut-off leader acknowledges nothing, the
majority elects a new leader and keeps serving, and after the link heals
every replica holds the same log, which holds every acknowledged record."""

import json
import subprocess
import sys
import time

import pytest

from conftest import GregorCluster, kafka_tool
from netns import Network
from test_cluster import describe, read_back, stored_log, wait_until

# Produces `prefix-<i>` with acks=all forever and records each delivery
# report as [time, value, partition, offset, error].
PRODUCER = r"""
import json, sys, time
from confluent_kafka import Producer
bootstrap, topic, prefix, out = sys.argv[1:5]
log = open(out, "a", buffering=1)
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
              "enable.idempotence": True, "message.timeout.ms": 6000,
              "reconnect.backoff.max.ms": 300})
def report(err, msg):
    log.write(json.dumps([time.time(), msg.value().decode(), msg.partition(), msg.offset(),
                          None if err is None else str(err)]) + "\n")
i = 0
while True:
    try:
        p.produce(topic, value=f"{prefix}-{i}", partition=0, on_delivery=report)
        i += 1
    except BufferError:
        pass
    p.poll(0.005)
"""


def reports(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("]")]


@pytest.fixture
def network():
    net = Network(3)
    yield net
    net.close()


@pytest.fixture
def cluster(network, tmp_path):
    """Three brokers, broker n in namespace n."""
    c = GregorCluster(tmp_path / "cluster", network=network, props={
        "broker.session.timeout.ms": "3000",
        "replica.lag.time.max.ms": "3000",
    })
    try:
        yield c.start()
    finally:
        c.stop()


def test_a_partitioned_leader_acknowledges_nothing_and_heals(network, cluster, tmp_path):
    producers = []
    try:
        topic = "split"
        kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
                   "--topic", topic, "--replica-assignment", "1:2:3")
        assert describe(cluster.bootstrap, topic)[0][0] == 1

        # One producer lives beside the leader (it keeps reaching it when
        # the link drops), one beside the majority.
        script = tmp_path / "producer.py"
        script.write_text(PRODUCER)
        near, far = tmp_path / "near.jsonl", tmp_path / "far.jsonl"
        for n, prefix, out in ((1, "near", near), (2, "far", far)):
            producers.append(subprocess.Popen(
                network.wrap(n, [sys.executable, str(script), cluster.bootstrap, topic, prefix,
                                 str(out)]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        acked = lambda path: [r for r in reports(path) if r[4] is None]  # noqa: E731
        wait_until(lambda: len(acked(near)) >= 300 and len(acked(far)) >= 300, 60,
                   "both producers to be acknowledged")

        cut_at = time.time()
        network.cut(1)
        majority = ",".join(b.bootstrap for b in cluster.brokers[1:])
        wait_until(lambda: describe(majority, topic)[0][0] in (2, 3), 60,
                   "the majority to elect a new leader")
        far_at_election = len(acked(far))
        wait_until(lambda: len(acked(far)) >= far_at_election + 300, 60,
                   "the majority to keep acknowledging writes")
        # The near producer's writes went to the cut-off leader; none may be
        # acknowledged while the link is down (a little slack for acks
        # already on their way when it dropped).
        time.sleep(8)
        late = [r for r in acked(near) if r[0] > cut_at + 1.0]
        assert late == [], f"the isolated leader acknowledged {len(late)} writes: {late[:3]}"
        failed = [r for r in reports(near) if r[4] is not None]
        assert failed, "the near producer saw no failed write while cut off"

        network.heal(1)
        wait_until(lambda: sorted(describe(cluster.bootstrap, topic)[0][2]) == [1, 2, 3], 90,
                   "the healed broker to rejoin the ISR")
    finally:
        for p in producers:
            p.kill()
            p.wait()
    wait_until(lambda: len({stored_log(b, topic, 0) for b in cluster.brokers}) == 1, 60,
               "every replica to hold the same log")

    # The checker: every acknowledged write is in the log, where its ack
    # said, exactly once.
    stored = read_back(cluster.bootstrap, topic, 1)[0]
    where = {}
    for offset, value in stored:
        assert value not in where, f"{value} stored twice"
        where[value] = offset
    for path in (near, far):
        for _, value, partition, offset, _ in acked(path):
            assert where.get(value) == offset, f"acknowledged {value}@{offset} is not in the log"

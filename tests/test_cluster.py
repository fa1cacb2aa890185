"""A three-broker Gregor cluster driven by Apache Kafka's Java tools and
librdkafka: replicated topics, consumption in a group, and a leader killed
with -9 while an idempotent acks=all producer writes."""

import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

import wire
from group_member import Member

from conftest import (DURABLE_PRODUCER, GREGOR_BIN, GregorCluster, java_command, kafka_tool, offsets_partition,
                      producer_events, report_measure, unique, wait_until)


def describe(bootstrap, topic):
    """kafka-topics --describe as {partition: (leader, replicas, isr)}."""
    out = kafka_tool("kafka-topics", "--bootstrap-server", bootstrap,
                     "--describe", "--topic", topic).stdout
    parts = {}
    for line in out.splitlines():
        fields = dict(
            f.split(": ", 1) for f in line.strip().split("\t") if ": " in f
        )
        if "Partition" in fields:
            ids = lambda v: [int(x) for x in v.split(",") if x.strip()]  # noqa: E731
            parts[int(fields["Partition"])] = (
                int(fields["Leader"]), ids(fields["Replicas"]), ids(fields["Isr"])
            )
    return parts


def create(bootstrap, topic, partitions, rf=3):
    kafka_tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", topic,
               "--partitions", partitions, "--replication-factor", rf)


def stored_log(broker, topic, partition):
    """The bytes of one replica's log, segment by segment."""
    d = Path(broker.data) / f"{topic}-{partition}"
    return b"".join(p.read_bytes() for p in sorted(d.glob("*.log")))


def read_back(bootstrap, topic, partitions, only=None):
    """Every record of every partition (or of those in `only`), as
    {partition: [(offset, value)]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("check"),
                  "enable.auto.commit": False})
    wanted = list(range(partitions) if only is None else only)
    ends = {}
    for p in wanted:
        _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        ends[p] = high
    c.assign([TopicPartition(topic, p, 0) for p in wanted])
    got = {p: [] for p in wanted}
    deadline = time.monotonic() + 90
    while any(len(got[p]) < ends[p] for p in got) and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        got[m.partition()].append((m.offset(), m.value().decode()))
    c.close()
    return got


def test_java_tools_against_three_brokers(cluster):
    topic = unique("demo")
    create(cluster.bootstrap, topic, 6)
    parts = describe(cluster.bootstrap, topic)
    assert sorted(parts) == list(range(6))
    assert {leader for leader, _, _ in parts.values()} == {1, 2, 3}, parts
    for leader, replicas, isr in parts.values():
        assert sorted(replicas) == [1, 2, 3] and sorted(isr) == [1, 2, 3], parts
        assert leader == replicas[0]

    values = [f"v{i}" for i in range(3000)]
    kafka_tool("kafka-console-producer", "--bootstrap-server", cluster.bootstrap,
               "--topic", topic, "--command-property", "acks=all",
               "--command-property", "batch.size=2000",
               input="\n".join(values) + "\n")
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", cluster.bootstrap,
                     "--topic", topic, "--from-beginning", "--max-messages", len(values),
                     "--timeout-ms", 60000).stdout
    assert sorted(out.split()) == sorted(values)

    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", cluster.bootstrap,
                     "--topic", topic, "--group", "zero", "--from-beginning",
                     "--max-messages", len(values), "--timeout-ms", 60000).stdout
    assert sorted(out.split()) == sorted(values)
    groups = kafka_tool("kafka-consumer-groups", "--bootstrap-server", cluster.bootstrap,
                        "--describe", "--group", "zero").stdout
    lags = [line.split() for line in groups.splitlines() if line.startswith("zero ")]
    assert len(lags) == 6 and all(row[5] == "0" for row in lags), groups

    # Every replica holds the same bytes as its leader.
    for p in range(6):
        wait_until(lambda: len({stored_log(b, topic, p) for b in cluster.brokers}) == 1, 30,
                   f"the replicas of partition {p} to match")


def test_killing_a_leader_loses_no_acknowledged_record(cluster, tmp_path):
    topic = unique("failover")
    create(cluster.bootstrap, topic, 3)
    config = tmp_path / "producer.properties"
    config.write_text(DURABLE_PRODUCER)
    out = tmp_path / "producer.out"
    producer = subprocess.Popen(
        java_command("kafka-verifiable-producer", "--bootstrap-server", cluster.bootstrap,
                     "--topic", topic, "--max-messages", 12000, "--throughput", 600,
                     "--producer.config", config),
        stdout=open(out, "w"), stderr=subprocess.DEVNULL)

    def events(name):
        return producer_events(out, name)

    try:
        wait_until(lambda: len(events("producer_send_success")) >= 1500, 90, "the producer to get going")
        victim = describe(cluster.bootstrap, topic)[0][0]
        acked_before = len(events("producer_send_success"))
        cluster.broker(victim).kill()

        # Another in-sync replica leads within the session timeout, and the
        # producer goes on.
        wait_until(lambda: all(leader not in (victim, -1) for leader, _, _ in
                               describe(cluster.bootstrap, topic).values()), 60,
                   "new leaders for the killed broker's partitions")
        wait_until(lambda: len(events("producer_send_success")) >= acked_before + 1500, 90,
                   "the producer to continue after the kill")

        # The killed broker comes back, catches up and rejoins every ISR.
        cluster.broker(victim).start()
        wait_until(lambda: all(sorted(isr) == [1, 2, 3] for _, _, isr in
                               describe(cluster.bootstrap, topic).values()), 90,
                   "the restarted broker to rejoin the ISR")
        assert producer.wait(timeout=180) == 0
    finally:
        if producer.poll() is None:
            producer.send_signal(signal.SIGKILL)
            producer.wait()

    acked = events("producer_send_success")
    assert len(acked) == 12000, f"{len(events('producer_send_error'))} send errors"
    stored = read_back(cluster.bootstrap, topic, 3)
    by_value = {}
    for p, records in stored.items():
        for offset, value in records:
            assert value not in by_value, f"{value} stored twice"
            by_value[value] = (p, offset)
    for e in acked:
        assert by_value.get(e["value"]) == (e["partition"], e["offset"]), e
    # All replicas hold the same log once the restarted one caught up.
    for p in range(3):
        wait_until(lambda: len({stored_log(b, topic, p) for b in cluster.brokers}) == 1, 60,
                   f"the replicas of partition {p} to match")


def test_bad_requests_to_a_cluster_get_clear_errors(cluster, tmp_path):
    # More replicas than live brokers.
    out = kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
                     "--topic", unique("toomany"), "--partitions", 1,
                     "--replication-factor", 4, check=False)
    assert out.returncode != 0
    assert "InvalidReplicationFactorException" in out.stderr
    assert "larger than the 3 available broker(s)" in out.stderr

    # A second process with a node id that is taken: a clear error, and the
    # cluster keeps serving. One on the same ports cannot bind them.
    from conftest import Gregor, free_port
    twin = Gregor(tmp_path / "twin", node_id=2, props=dict(cluster.broker(2).props))
    twin.props["log.dirs"] = str(tmp_path / "twin" / "data")
    twin.start(wait=False)
    assert twin.proc.wait(timeout=60) != 0
    assert "cannot bind listener" in twin.log_text()
    # One on its own ports, with the id of the active controller (the
    # hardest case: the leader it must ask has its own id): the controller
    # refuses its registration while the real broker heartbeats, and it
    # gives up with a clear message.
    taken = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(timeout=10).controller_id
    voters = cluster.broker(1).props["controller.quorum.voters"].split(",")
    impostor = Gregor(tmp_path / "impostor", node_id=taken)
    cport = free_port()
    impostor.props["listeners"] += f",CONTROLLER://127.0.0.1:{cport}"
    impostor.props.update({
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": ",".join(
            f"{taken}@127.0.0.1:{cport}" if v.startswith(f"{taken}@") else v for v in voters),
    })
    impostor.start(wait=False)
    try:
        assert impostor.proc.wait(timeout=90) != 0
    finally:
        impostor.stop()
    assert f"broker id {taken} is already registered by another running broker" in impostor.log_text()
    topic = unique("still")
    create(cluster.bootstrap, topic, 3)
    kafka_tool("kafka-console-producer", "--bootstrap-server", cluster.bootstrap,
               "--topic", topic, "--command-property", "acks=all", input="a\nb\nc\n")


def test_a_corrupt_replica_is_repaired_from_the_others(cluster):
    topic = unique("corrupt")
    create(cluster.bootstrap, topic, 1)
    values = [f"r{i}" for i in range(2000)]
    kafka_tool("kafka-console-producer", "--bootstrap-server", cluster.bootstrap,
               "--topic", topic, "--command-property", "acks=all",
               "--command-property", "batch.size=1000", input="\n".join(values) + "\n")
    leader, replicas, _ = describe(cluster.bootstrap, topic)[0]
    victim = cluster.broker(next(r for r in replicas if r != leader))
    wait_until(lambda: len({stored_log(b, topic, 0) for b in cluster.brokers}) == 1, 30,
               "the replicas to match")
    victim.stop()
    segment = sorted((Path(victim.data) / f"{topic}-0").glob("*.log"))[-1]
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = b"\xde\xad\xbe\xef" * 4
    segment.write_bytes(bytes(data))
    victim.start()
    assert "recovery truncated a torn or corrupt tail of the log" in victim.log_text()
    # It fetches what it lost from the leader; nothing is lost anywhere.
    wait_until(lambda: len({stored_log(b, topic, 0) for b in cluster.brokers}) == 1, 60,
               "the damaged replica to be repaired")
    got = read_back(cluster.bootstrap, topic, 1)
    assert [v for _, v in got[0]] == values


def test_controlled_shutdown_and_preferred_leader_election(cluster):
    topic = unique("pref")
    create(cluster.bootstrap, topic, 6)
    kafka_tool("kafka-console-producer", "--bootstrap-server", cluster.bootstrap,
               "--topic", topic, "--command-property", "acks=all", input="a\nb\nc\n")
    # SIGTERM: the broker hands its leaderships over before it exits.
    cluster.broker(1).stop()
    parts = describe(cluster.brokers[1].bootstrap, topic)
    assert all(leader in (2, 3) for leader, _, _ in parts.values()), parts
    assert all(1 not in isr for _, _, isr in parts.values()), parts

    cluster.broker(1).start()
    wait_until(lambda: all(sorted(isr) == [1, 2, 3] for _, _, isr in
                           describe(cluster.bootstrap, topic).values()), 60,
               "broker 1 to rejoin every ISR")
    out = kafka_tool("kafka-leader-election", "--bootstrap-server", cluster.bootstrap,
                     "--election-type", "preferred", "--all-topic-partitions").stdout
    assert "Successfully completed leader election" in out, out
    parts = describe(cluster.bootstrap, topic)
    assert all(leader == replicas[0] for leader, replicas, _ in parts.values()), parts
    out = kafka_tool("kafka-leader-election", "--bootstrap-server", cluster.bootstrap,
                     "--election-type", "preferred", "--topic", topic, "--partition", 0,
                     check=False)
    assert "Valid replica already elected" in out.stdout + out.stderr, out


def test_reassigning_a_partition_moves_its_data(cluster, tmp_path):
    topic = unique("moving")
    kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
               "--topic", topic, "--replica-assignment", "1:2")
    values = [f"m{i}" for i in range(500)]
    kafka_tool("kafka-console-producer", "--bootstrap-server", cluster.bootstrap,
               "--topic", topic, "--command-property", "acks=all", input="\n".join(values) + "\n")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [2, 3]}]}))
    out = kafka_tool("kafka-reassign-partitions", "--bootstrap-server", cluster.bootstrap,
                     "--reassignment-json-file", plan, "--execute").stdout
    assert "Successfully started partition reassignment" in out, out

    def done():
        out = kafka_tool("kafka-reassign-partitions", "--bootstrap-server", cluster.bootstrap,
                         "--reassignment-json-file", plan, "--verify").stdout
        return f"Reassignment of partition {topic}-0 is completed" in out

    wait_until(done, 60, "the reassignment to complete")
    leader, replicas, isr = describe(cluster.bootstrap, topic)[0]
    assert replicas == [2, 3] and sorted(isr) == [2, 3] and leader == 2
    assert stored_log(cluster.broker(3), topic, 0) == stored_log(cluster.broker(2), topic, 0)
    wait_until(lambda: not (Path(cluster.broker(1).data) / f"{topic}-0").exists(), 30,
               "the old replica's data to be removed")
    got = read_back(cluster.bootstrap, topic, 1)
    assert [v for _, v in got[0]] == values


def configs(bootstrap, entity_type, *entity):
    """kafka-configs --describe of one entity, as its lines of settings."""
    out = kafka_tool("kafka-configs", "--bootstrap-server", bootstrap, "--describe",
                     "--entity-type", entity_type, *entity).stdout
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


def test_a_throttled_reassignment_is_held_to_its_rate_and_loses_nothing(metered_cluster, tmp_path):
    """kafka-reassign-partitions --throttle moves a partition as Kafka's
    replication quotas do (KIP-73): it sets the brokers' rates and the
    topic's throttled replicas, the new replica copies no faster than the
    rate allows, an acks=all producer writing meanwhile is neither refused
    nor slowed (in-sync replicas are never throttled), and --verify clears
    the throttle once the move is done."""
    from confluent_kafka import Producer
    cluster = metered_cluster
    topic = unique("throttled")
    kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
               "--topic", topic, "--replica-assignment", "1:2")
    count, size = 12_000, 1000
    written = [f"{i:08d}".ljust(size, "x") for i in range(count)]
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5,
                  "batch.size": 65536})
    failed = []
    for value in written:
        p.produce(topic, value=value, on_delivery=lambda err, _: err and failed.append(err))
        p.poll(0)
    assert p.flush(60) == 0 and not failed, failed
    stored = count * size  # bytes broker 3 must copy, at least

    # Broker 1's replica moves to broker 3; broker 1 leads meanwhile.
    rate = 300_000
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [3, 2]}]}))
    reassign = ("kafka-reassign-partitions", "--bootstrap-server", cluster.bootstrap,
                "--reassignment-json-file", plan)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})

    def replicas():
        return admin.list_topics(topic, timeout=10).topics[topic].partitions[0].replicas

    # An acks=all producer writes throughout the move.
    during, errors, stop = [], [], threading.Event()

    def produce():
        # Idempotent: a retry when leadership moves at the end keeps the order.
        q = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 0,
                      "enable.idempotence": True})
        i = 0
        while not stop.is_set():
            value = f"during-{i}"
            q.produce(topic, value=value,
                      on_delivery=lambda err, msg: errors.append(err) if err else during.append(msg.value()))
            q.poll(0)
            # About 20 writes a second: far below the throttle, which
            # counts them too.
            time.sleep(0.05)
            i += 1
        errors.extend(["unflushed"] * q.flush(60))

    writer = threading.Thread(target=produce)
    started = time.monotonic()
    writer.start()
    try:
        out = kafka_tool(*reassign, "--execute", "--throttle", rate).stdout
        assert "Successfully started partition reassignment" in out, out
        assert f"The inter-broker throttle limit was set to {rate} B/s" in out, out
        assert replicas() != [3, 2], "the move was over before it could be throttled"
        wait_until(lambda: replicas() == [3, 2], 180, "the throttled move to complete")
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        writer.join(90)
    # The lower bound the throttle guarantees. A rate is measured over 11
    # windows of 1 s, and a broker serves a throttled partition only while
    # the bytes of the last 10 s (and at most 11 s) are within the rate:
    # every 10 s it sends at most 11 s worth of the rate plus one fetch of
    # replica.fetch.max.bytes (1 MiB). Slowness only adds to the time.
    most_per_10s = 11 * rate + 1_048_576
    floor = 10 * (stored / most_per_10s - 1)
    assert elapsed > floor, f"{stored} bytes moved in {elapsed:.1f}s: faster than {rate} B/s allows"
    report_measure(f"throttled move of {stored} bytes at {rate} B/s (s)", round(elapsed, 1))

    # The throttle was at work on both sides, and counted what it carried.
    leader, follower = cluster.broker(1).metrics(), cluster.broker(3).metrics()
    assert leader['gregor_replication_throttled_bytes_total{side="leader"}'] >= stored, leader
    assert follower['gregor_replication_throttled_bytes_total{side="follower"}'] >= stored, follower
    assert (leader['gregor_replication_held_back_total{side="leader"}']
            + follower['gregor_replication_held_back_total{side="follower"}']) > 0

    # The producer was never refused and every write was acknowledged.
    assert errors == [] and len(during) > 0, errors[:5]

    # What the tool set stays until --verify, as kafka-configs shows it.
    for broker in (1, 2, 3):
        assert configs(cluster.bootstrap, "brokers", "--entity-name", broker) == [
            f"follower.replication.throttled.rate={rate} sensitive=false "
            f"synonyms={{DYNAMIC_BROKER_CONFIG:follower.replication.throttled.rate={rate}}}",
            f"leader.replication.throttled.rate={rate} sensitive=false "
            f"synonyms={{DYNAMIC_BROKER_CONFIG:leader.replication.throttled.rate={rate}}}",
        ]
    throttled = configs(cluster.bootstrap, "topics", "--entity-name", topic)
    assert ("leader.replication.throttled.replicas=0:1,0:2 sensitive=false synonyms="
            "{DYNAMIC_TOPIC_CONFIG:leader.replication.throttled.replicas=0:1,0:2}") in throttled, throttled
    assert ("follower.replication.throttled.replicas=0:3 sensitive=false synonyms="
            "{DYNAMIC_TOPIC_CONFIG:follower.replication.throttled.replicas=0:3}") in throttled, throttled

    # --verify reports the move done and clears every throttle.
    out = kafka_tool(*reassign, "--verify").stdout
    assert f"Reassignment of partition {topic}-0 is completed" in out, out
    assert "Clearing broker-level throttles on brokers 1,2,3" in out, out
    assert f"Clearing topic-level throttles on topic {topic}" in out, out
    for broker in (1, 2, 3):
        assert configs(cluster.bootstrap, "brokers", "--entity-name", broker) == []
    assert not any("throttled" in line for line in configs(cluster.bootstrap, "topics", "--entity-name", topic))

    # Every record is there, from the new replicas, which agree.
    got = [v for _, v in read_back(cluster.bootstrap, topic, 1)[0]]
    assert got == written + [v.decode() for v in during]
    wait_until(lambda: stored_log(cluster.broker(3), topic, 0) == stored_log(cluster.broker(2), topic, 0), 30,
               "the new replica to hold what the other holds")
    wait_until(lambda: not (Path(cluster.broker(1).data) / f"{topic}-0").exists(), 30,
               "the old replica's data to be removed")


def test_acks_all_needs_min_insync_replicas(cluster):
    from confluent_kafka import KafkaError, Producer
    topic = unique("strict")
    kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
               "--topic", topic, "--replica-assignment", "1:2:3",
               "--config", "min.insync.replicas=3")
    cluster.broker(3).stop()
    wait_until(lambda: sorted(describe(cluster.bootstrap, topic)[0][2]) == [1, 2], 30,
               "broker 3 to leave the ISR")
    errors = []
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                  "message.timeout.ms": 5000, "retries": 0})
    p.produce(topic, value=b"x", on_delivery=lambda err, _: errors.append(err))
    p.flush(30)
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, errors[0]
    # acks=1 does not need the ISR.
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": 1})
    p.produce(topic, value=b"y", on_delivery=lambda err, _: errors.append(err))
    p.flush(30)
    assert errors[1] is None
    # A topic of fewer replicas than the cluster's min.insync.replicas (2)
    # takes acks=all writes, the Java producer's default, as on Kafka: the
    # minimum counts as at most the replication factor.
    single = unique("single")
    kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
               "--topic", single, "--replica-assignment", "1")
    values = [f"one-{i}" for i in range(20)]
    kafka_tool("kafka-console-producer", "--bootstrap-server", cluster.bootstrap, "--topic", single,
               input="\n".join(values) + "\n")
    assert [v for _, v in read_back(cluster.bootstrap, single, 1)[0]] == values


def test_leadership_returns_to_preferred_replicas_by_itself(tmp_path):
    cluster = GregorCluster(tmp_path / "cluster",
                            props={"leader.imbalance.check.interval.seconds": "2"}).start()
    try:
        topic = unique("balance")
        create(cluster.bootstrap, topic, 6)
        cluster.broker(2).stop()
        assert all(leader != 2 for leader, _, _ in describe(cluster.bootstrap, topic).values())
        cluster.broker(2).start()
        wait_until(lambda: all(leader == replicas[0] for leader, replicas, _ in
                               describe(cluster.bootstrap, topic).values()), 60,
                   "every partition to be led by its preferred replica again")
    finally:
        cluster.stop()


def test_committed_offsets_survive_the_loss_of_the_group_coordinator(cluster):
    from confluent_kafka.admin import AdminClient
    topic, group = unique("resume"), unique("group")
    create(cluster.bootstrap, topic, 3)
    values = [f"c{i}" for i in range(300)]
    kafka_tool("kafka-console-producer", "--bootstrap-server", cluster.bootstrap,
               "--topic", topic, "--command-property", "acks=all", input="\n".join(values) + "\n")

    def consume(n):
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and not m.error():
                got.append(m.value().decode())
                c.commit(message=m, asynchronous=False)
        c.close()
        return got

    first = consume(120)
    assert len(first) == 120
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    coordinator = admin.describe_consumer_groups([group])[group].result(30).coordinator.id
    cluster.broker(coordinator).kill()
    # Another broker leads the group's offsets partition and knows every
    # commit: the group goes on where it stopped, nothing read twice.
    rest = consume(len(values) - len(first))
    assert sorted(first + rest) == sorted(values)
    assert not set(first) & set(rest)


def test_groups_keep_their_members_when_their_coordinator_dies(cluster, tmp_path):
    """kill -9 of the broker that coordinates two groups of three librdkafka
    consumers each, one of the classic protocol (10 s sessions) and one of
    the consumer protocol (KIP-848), a commit after every record, while
    records keep coming: the next coordinator loads both groups with their
    members and restarts their sessions, so nobody joins again, no
    partition moves and no record is read twice."""
    from confluent_kafka.admin import AdminClient
    topic = unique("steady")
    create(cluster.bootstrap, topic, 6)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    # Both groups' records in one offsets partition: one coordinator.
    classic, kip848 = unique("classic"), None
    while kip848 is None or offsets_partition(kip848) != offsets_partition(classic):
        kip848 = unique("kip848")
    groups = {
        classic: [Member(cluster.bootstrap, classic, topic, tmp_path, f"classic-{n}", session_timeout_ms=10000,
                         heartbeat_interval_ms=1000) for n in "abc"],
        kip848: [Member(cluster.bootstrap, kip848, topic, tmp_path, f"kip848-{n}", group_protocol="consumer")
                 for n in "abc"],
    }

    def described():
        """Each group's coordinator, state and member ids."""
        out = {}
        for group, d in admin.describe_consumer_groups(list(groups)).items():
            try:
                d = d.result(30)
            except TimeoutError:
                # Seen once under a full run's load: which protocol's
                # describe hung says where to look.
                kind = "classic" if group == classic else "consumer-protocol"
                raise AssertionError(f"describing the {kind} group {group} took over 30 s") from None
            out[group] = d.coordinator.id, str(d.state).split(".")[-1], sorted(m.member_id for m in d.members)
        return out

    def settled():
        return all(sum(len(m.owned()) for m in members) == 6 and all(m.owned() for m in members)
                   for members in groups.values()) and all(
            state == "STABLE" for _, state, _ in described().values())

    config, out = tmp_path / "producer.properties", tmp_path / "producer.out"
    config.write_text(DURABLE_PRODUCER)
    producer = subprocess.Popen(
        java_command("kafka-verifiable-producer", "--bootstrap-server", cluster.bootstrap,
                     "--topic", topic, "--max-messages", 6000, "--throughput", 300,
                     "--producer.config", config),
        stdout=open(out, "w"), stderr=subprocess.DEVNULL)
    every = [m for members in groups.values() for m in members]

    def rebalances():
        return [[e for e in m.events() if e["event"] in ("assigned", "revoked")] for m in every]

    try:
        wait_until(settled, 90, "each group's three members to share six partitions")
        wait_until(lambda: len(producer_events(out, "producer_send_success")) >= 1000, 90,
                   "the producer to get going")
        before = described()
        history = rebalances()
        coordinator = before[classic][0]
        cluster.broker(coordinator).kill()

        wait_until(lambda: len(producer_events(out, "producer_send_success")) >= 4000, 120,
                   "the producer to go on after the kill")
        after = described()
        for group in groups:
            assert after[group][0] != coordinator
            assert after[group][2] == before[group][2], (group, before, after)
        assert producer.wait(timeout=180) == 0
        acked = {e["value"] for e in producer_events(out, "producer_send_success")}
        assert len(acked) == 6000
        for group, members in groups.items():
            wait_until(lambda: acked <= {e["value"] for m in members for e in m.events("record")}, 90,
                       f"every acknowledged record to be read in {group}")
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
        for m in every:
            if m.proc.poll() is None:
                m.kill()
    # No rebalance: each member still has the assignment it had.
    assert rebalances() == history
    for members in groups.values():
        read = [e["value"] for m in members for e in m.events("record")]
        assert len(read) == len(set(read)), "records read twice"


def test_a_group_commits_offsets_of_partitions_its_coordinator_does_not_store(cluster):
    from confluent_kafka.admin import AdminClient
    group = unique("elsewhere")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    coordinator = admin.describe_consumer_groups([group])[group].result(30).coordinator.id
    # The topic's only replica lives on another broker.
    elsewhere = next(b.node_id for b in cluster.brokers if b.node_id != coordinator)
    topic = unique("remote")
    kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
               "--topic", topic, "--replica-assignment", str(elsewhere))
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False})
    committed = c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    assert [(tp.partition, tp.offset, tp.error) for tp in committed] == [(0, 5, None)]
    assert [tp.offset for tp in c.committed([TopicPartition(topic, 0)], timeout=30)] == [5]
    # A partition that does not exist anywhere is still refused.
    with pytest.raises(KafkaException) as refused:
        c.commit(offsets=[TopicPartition(topic, 7, 5)], asynchronous=False)
    assert refused.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, refused.value
    c.close()


def test_a_frozen_leader_answers_its_held_produce_requests_when_it_wakes(cluster):
    """A leader frozen (SIGSTOP) while producers wait on it loses its
    leadership; once it runs again, every acks=all produce it holds or
    still has to read is answered NOT_LEADER_OR_FOLLOWER as soon as it
    learns of the new leader, not when the request's timeout runs out."""
    topic = unique("frozen")
    kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
               "--topic", topic, "--replica-assignment", "1:2:3")
    leader = cluster.broker(1)
    conns = [wire.Connection(leader.bootstrap, timeout=120) for _ in range(3)]
    conns[0].send(wire.produce_v3(topic, 0, wire.batch([b"before"]), timeout_ms=60000))
    assert wire.produce_v3_error(conns[0].response())[0] == 0
    leader.freeze()
    try:
        # Sent to the frozen leader: read only when it wakes.
        for i, conn in enumerate(conns):
            conn.send(wire.produce_v3(topic, 0, wire.batch([f"held-{i}".encode()]), timeout_ms=60000,
                                      correlation_id=10 + i))
        others = ",".join(b.bootstrap for b in cluster.brokers[1:])
        wait_until(lambda: describe(others, topic)[0][0] in (2, 3), 60, "a new leader")
    finally:
        leader.thaw()
    answers = [wire.produce_v3_error(conn.response())[0] for conn in conns]
    for conn in conns:
        conn.close()
    assert answers == [wire.NOT_LEADER_OR_FOLLOWER] * 3, answers



def test_a_broker_that_does_not_lead_names_the_leader(cluster):
    """KIP-951: a Produce refused with NOT_LEADER_OR_FOLLOWER names the
    partition's leader and epoch and carries its address on the request's
    listener, so a client (Kafka's own from 3.7, librdkafka from 2.4) sends
    the retry there without a Metadata round trip first."""
    topic = unique("hint")
    kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
               "--topic", topic, "--replica-assignment", "1:2:3")
    wait_until(lambda: describe(cluster.bootstrap, topic)[0][0] == 1, 30, "broker 1 to lead")
    conn = wire.Connection(cluster.broker(2).bootstrap, timeout=30)
    conn.send(wire.produce_v10(topic, 0, wire.batch([b"elsewhere"])))
    error, leader, endpoints = wire.produce_v10_result(conn.response())
    conn.close()
    advertised = AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(timeout=10).brokers[1]
    assert error == wire.NOT_LEADER_OR_FOLLOWER
    # A new topic's first leaders lead in epoch 0.
    assert leader == (1, 0), leader
    assert endpoints == {1: (advertised.host, advertised.port)}, endpoints

def test_a_voter_that_wakes_up_leaves_the_active_controller_in_place(metered_cluster):
    """A controller voter frozen (SIGSTOP) for several election timeouts
    wakes with its election timer long expired. As in Kafka (KIP-996), it
    first asks the others whether they would vote for it; they still follow
    the active controller, so it does not raise the quorum's epoch and the
    active controller stays in place."""
    cluster = metered_cluster
    timeout = 1.0  # controller.quorum.election.timeout.ms (default): Raft waits 1-2 of these
    views = {}

    def agreed():
        """All brokers name the same active controller in the same epoch."""
        seen = {(m["gregor_active_controller"], m["gregor_metadata_quorum_epoch"])
                for m in (b.metrics() for b in cluster.brokers)}
        views["now"] = seen
        return len(seen) == 1 and next(iter(seen))[0] > 0

    wait_until(agreed, 30, "the brokers to agree on an active controller")
    (controller, epoch), = views["now"]
    voter = next(b for b in cluster.brokers if b.node_id != controller)
    voter.freeze()
    try:
        # The fault itself: frozen past its election timeout several times over.
        time.sleep(5 * timeout)
    finally:
        voter.thaw()
    active = cluster.broker(int(controller))
    # Written while it was frozen (it was fenced, at least).
    written = active.metrics()["gregor_metadata_applied_index"]
    # Back in sync: it has applied that and agrees with the others.
    wait_until(lambda: voter.metrics()["gregor_metadata_applied_index"] >= written and agreed(), 30,
               f"broker {voter.node_id} to catch up and agree with the others")
    assert views["now"] == {(controller, epoch)}, (
        f"broker {voter.node_id} woke up and the quorum moved from controller {controller:.0f} "
        f"in epoch {epoch:.0f} to {views['now']}")
    # A woken voter that raised the term would have done so at once (its
    # timer had expired); watching three of the longest election timeouts
    # more makes sure no later election slips by either.
    deadline = time.monotonic() + 3 * 2 * timeout
    while time.monotonic() < deadline:
        m = active.metrics()
        assert (m["gregor_active_controller"], m["gregor_metadata_quorum_epoch"]) == (controller, epoch), m
        time.sleep(0.1)


def test_a_restarted_broker_registers_at_once_and_its_directory_serves_one_process(tmp_path):
    """kill -9 and restart: the new process, on the same log directories,
    replaces its old registration at once instead of waiting out the old
    session (30 s here); a second process on directories in use is refused
    with a message that says so."""
    cluster = GregorCluster(tmp_path / "cluster", props={"broker.session.timeout.ms": "30000"}).start()
    try:
        broker = cluster.broker(2)
        twin = subprocess.run([str(GREGOR_BIN), "broker", str(broker.config)], capture_output=True,
                              text=True, timeout=60)
        assert twin.returncode != 0
        assert "is in use by another running process" in twin.stderr, twin.stderr
        broker.kill()
        # Serving (its listeners open) means registered.
        broker.start()
        log = broker.log_text()
        assert log.count("registered with the controller") == 2, log
        assert "still registered by an earlier process" not in log, log
    finally:
        cluster.stop()


def test_dedicated_controllers_and_broker_only_nodes(tmp_path):
    from conftest import Gregor, free_port, wait_for_port
    cports = {n: free_port() for n in range(1, 7)}
    voters = ",".join(f"{n}@127.0.0.1:{cports[n]}" for n in (1, 2, 3))
    nodes = []
    for n in range(1, 7):
        g = Gregor(tmp_path / f"node-{n}", node_id=n)
        if n <= 3:
            g.props = {"node.id": str(n), "process.roles": "controller",
                       "listeners": f"CONTROLLER://127.0.0.1:{cports[n]}",
                       "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
                       "controller.listener.names": "CONTROLLER",
                       "controller.quorum.voters": voters, "log.dirs": str(g.data),
                       "broker.session.timeout.ms": "3000"}
        else:
            g.props["listeners"] += f",CONTROLLER://127.0.0.1:{cports[n]}"
            g.props["listener.security.protocol.map"] += ",CONTROLLER:PLAINTEXT"
            g.props.update({"process.roles": "broker", "controller.listener.names": "CONTROLLER",
                            "controller.quorum.voters": voters,
                            "default.replication.factor": "3", "min.insync.replicas": "2"})
        nodes.append(g)
    try:
        for g in nodes:
            g.start(wait=False)
        for g in nodes[:3]:
            wait_for_port(cports[g.node_id], g.proc, g.log)
        for g in nodes[3:]:
            g.wait(timeout=90)
        bootstrap = ",".join(g.bootstrap for g in nodes[3:])
        topic = unique("dedicated")
        create(bootstrap, topic, 3)
        parts = describe(bootstrap, topic)
        assert {leader for leader, _, _ in parts.values()} == {4, 5, 6}, parts
        values = [f"d{i}" for i in range(1000)]
        kafka_tool("kafka-console-producer", "--bootstrap-server", bootstrap, "--topic", topic,
                   "--command-property", "acks=all", input="\n".join(values) + "\n")
        got = read_back(bootstrap, topic, 3)
        assert sorted(v for records in got.values() for _, v in records) == sorted(values)
        # Losing one of three controllers leaves a majority: metadata
        # changes still go through.
        nodes[0].kill()
        create(bootstrap, unique("after"), 3)
    finally:
        for g in nodes:
            if g.alive():
                g.proc.send_signal(signal.SIGTERM)
        for g in nodes:
            g.stop()


def partition_states(bootstrap, topic):
    """{partition: (leader, sorted isr)} as the brokers' metadata says (-1:
    no leader), or None while no broker answers; quicker to poll than
    kafka-topics."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        desc = admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic].result()
    except KafkaException:
        return None
    return {p.id: (p.leader.id if p.leader else -1, sorted(n.id for n in p.isr))
            for p in desc.partitions}


def with_broker_only_nodes(workdir, ids, props=None):
    """A GregorCluster of three combined voters (1-3) and broker-only nodes
    `ids` (process.roles=broker, not voters), not started."""
    from conftest import Gregor, free_port
    cluster = GregorCluster(workdir, props=props)
    voters = cluster.broker(1).props["controller.quorum.voters"]
    for n in ids:
        g = Gregor(Path(workdir) / f"broker-{n}", node_id=n)
        g.props["listeners"] += f",CONTROLLER://127.0.0.1:{free_port()}"
        g.props["listener.security.protocol.map"] += ",CONTROLLER:PLAINTEXT"
        g.props.update({"process.roles": "broker", "controller.listener.names": "CONTROLLER",
                        "controller.quorum.voters": voters, "min.insync.replicas": "2",
                        "replica.lag.time.max.ms": "5000", **(props or {})})
        cluster.brokers.append(g)
    return cluster


def lose_disk_and_restart(broker):
    """The node is lost with its local volume; the pod comes back at once on
    an empty one: kill -9, the data directory (log dirs, meta.properties
    and the metadata log) gone, start (returns once it serves, which means
    registered)."""
    broker.kill()
    shutil.rmtree(broker.data)
    broker.start()


def test_a_broker_back_on_an_empty_disk_never_leads_before_it_has_caught_up(tmp_path):
    """A broker-only node lost with its disk and restarted on an empty one
    at once, within its old session: its registration (new storage id) is
    refused until the old session ends and then takes it out of every ISR;
    it fetches everything again and counts in an ISR only once caught up, so
    killing the other replicas one by one right after it rejoins leaves the
    partitions on it or offline, never on a gap. Then the worst case: it is
    the last in-sync replica when its disk is lost; it does not lead on an
    empty log, the replica that left the ISR last (which holds every
    acknowledged record) does. Nothing acknowledged (acks=all,
    min.insync.replicas=2, RF 3) is lost."""
    cluster = with_broker_only_nodes(tmp_path / "cluster", (4, 5)).start()
    try:
        topic = unique("lost-disk")
        kafka_tool("kafka-topics", "--bootstrap-server", cluster.bootstrap, "--create",
                   "--topic", topic, "--replica-assignment", "4:5:3,5:3:4")
        empty, b3, b5 = cluster.broker(4), cluster.broker(3), cluster.broker(5)
        config, out = tmp_path / "producer.properties", tmp_path / "producer.out"
        config.write_text(DURABLE_PRODUCER)
        producer = subprocess.Popen(
            java_command("kafka-verifiable-producer", "--bootstrap-server", cluster.bootstrap,
                         "--topic", topic, "--max-messages", 3000, "--throughput", 1000,
                         "--producer.config", config),
            stdout=open(out, "w"), stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: len(producer_events(out, "producer_send_success")) >= 1000, 90,
                       "the producer to get going")
            lose_disk_and_restart(empty)
            assert "still registered by an earlier process" in empty.log_text()
            # Right after it rejoins, the other replicas die one by one.
            states = {}

            def settled(gone):
                states["now"] = partition_states(cluster.bootstrap, topic)
                return states["now"] is not None and all(
                    leader not in gone and not set(isr) & (set(gone) - {3})
                    for leader, isr in states["now"].values())

            b5.kill()
            wait_until(lambda: settled({5}), 30, "broker 5 to leave the ISRs")
            acked = producer_events(out, "producer_send_success")
            b3.kill()
            wait_until(lambda: settled({5, 3}), 30, "broker 3's leaderships to end")
            # Led by the emptied broker only where it is in sync: then it
            # serves every record acknowledged so far on its own.
            led = [p for p, (leader, _) in states["now"].items() if leader == 4]
            assert all(states["now"][p] in ((4, [4]),) for p in led), states
            assert all(states["now"][p] == (-1, [3]) for p in states["now"] if p not in led), states
            stored = read_back(empty.bootstrap, topic, 2, only=led)
            for e in acked:
                if e["partition"] in led:
                    assert (e["offset"], e["value"]) in stored[e["partition"]], e
            b3.start()
            b5.start()
            assert producer.wait(timeout=180) == 0
        finally:
            if producer.poll() is None:
                producer.send_signal(signal.SIGKILL)
                producer.wait()
        acked = producer_events(out, "producer_send_success")
        assert len(acked) == 3000, f"{len(producer_events(out, 'producer_send_error'))} send errors"
        wait_until(lambda: all(isr == [3, 4, 5] for _, isr in
                               (partition_states(cluster.bootstrap, topic) or {0: (0, [])}).values()),
                   60, "every replica back in sync")

        # The emptied broker is the last in-sync replica when its disk goes.
        b5.kill()
        wait_until(lambda: settled({5}), 30, "broker 5 to leave the ISRs")
        b3.kill()
        wait_until(lambda: all(isr == [4] for _, isr in partition_states(cluster.bootstrap, topic).values()),
                   30, "broker 3 to leave the ISRs")
        lose_disk_and_restart(empty)
        wait_until(lambda: 4 in AdminClient({"bootstrap.servers": cluster.bootstrap})
                   .list_topics(timeout=10).brokers, 30, "broker 4 to be unfenced")
        now = partition_states(cluster.bootstrap, topic)
        assert all(leader != 4 for leader, _ in now.values()), (
            f"broker 4 leads on an empty log after losing its disk as the last in-sync replica: {now}")
        b3.start()
        b5.start()
        wait_until(lambda: all(isr == [3, 4, 5] for _, isr in
                               (partition_states(cluster.bootstrap, topic) or {0: (0, [])}).values()),
                   60, "every replica back in sync")
        stored = read_back(cluster.bootstrap, topic, 2)
        by_value = {value: (p, offset) for p, records in stored.items() for offset, value in records}
        assert len(by_value) == sum(len(r) for r in stored.values()), "a record stored twice"
        for e in acked:
            assert by_value.get(e["value"]) == (e["partition"], e["offset"]), e
        for p in range(2):
            wait_until(lambda: len({stored_log(cluster.broker(n), topic, p) for n in (3, 4, 5)}) == 1,
                       60, f"the replicas of partition {p} to match")
    finally:
        cluster.stop()


def test_a_voter_back_on_an_empty_disk_takes_no_part_until_it_has_the_metadata_log(tmp_path):
    """Three combined voters A, B, C. Topics are created while C is down, so
    only A and B hold them; then B is lost with its disk and comes back on
    an empty one, C comes back, and A is down. B and C are a majority, but C's
    log misses the topics: a B that forgot its log and voted for C would
    elect a controller without them, and A's copy would be overwritten when
    it returns. B must take no part in elections until it has copied the
    metadata log from a controller; once it has, it is a voter again."""
    cluster = GregorCluster(tmp_path / "cluster").start()
    a, b, c = cluster.brokers
    try:
        c.kill()
        topics = [unique("meta") for _ in range(3)]
        for t in topics:
            kafka_tool("kafka-topics", "--bootstrap-server", a.bootstrap, "--create",
                       "--topic", t, "--replica-assignment", "1:2")
        b.kill()
        shutil.rmtree(b.data)
        a.kill()
        # B's log file goes on across restarts: only what the process on
        # the empty disk says counts (a voter slower to start than the
        # others may well have copied the log at the cluster's formation).
        before = len(b.log_text())
        b.start(wait=False)
        c.start(wait=False)
        # Several election timeouts (1-2 s here) for B and C to get it wrong.
        time.sleep(6)
        assert "it lost its log" in b.log_text()[before:]
        assert "copied the metadata log it lost" not in b.log_text()[before:], "B took C's stale log for the cluster's"
        a.start(wait=False)
        for g in (a, b, c):
            g.wait(timeout=90)

        def listed():
            return set(AdminClient({"bootstrap.servers": cluster.bootstrap}).list_topics(timeout=10).topics)

        assert set(topics) <= listed(), f"committed topics lost: {sorted(set(topics) - listed())}"
        wait_until(lambda: "copied the metadata log it lost" in b.log_text()[before:], 30,
                   "B to copy the log from A and vote again")
        # B holds the log now and votes again: without A, B and C elect a
        # controller that has every topic.
        a.kill()
        later = unique("meta")
        kafka_tool("kafka-topics", "--bootstrap-server", c.bootstrap, "--create",
                   "--topic", later, "--replica-assignment", "2:3")
        assert set(topics) | {later} <= listed()
    finally:
        cluster.stop()

"""Consumer groups with real consumers in their own processes: partitions
shared exclusively, rebalances on join, leave and kill -9, commits that hold
across consumer and broker restarts, cooperative and static members."""

import json
import signal
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import KAFKA_CLIENT_VERSIONS, java_command, kafka_tool, offsets_partition, unique
from group_member import Member
import wire


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def exclusive_cover(members, partitions):
    owned = [m.owned() for m in members]
    return sum(len(o) for o in owned) == partitions and set().union(*owned) == set(range(partitions))


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def produce(bootstrap, topic, values, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % partitions)
    assert p.flush(30) == 0


def all_records(members):
    seen = {}
    for m in members:
        seen.update(m.records())
    return seen


@pytest.fixture
def members(tmp_path):
    started = []

    def start(broker, group, topic, name, **conf):
        m = Member(broker.bootstrap, group, topic, tmp_path, name, **conf)
        started.append(m)
        return m

    yield start
    for m in started:
        if m.proc.poll() is None:
            m.kill()


def test_three_members_share_six_partitions_through_joins_leaves_and_kill_9(gregor, members):
    topic, group = unique("share6"), unique("zero")
    create(gregor.bootstrap, topic, 6)
    a, b, c = (members(gregor, group, topic, n) for n in "abc")
    wait_until(lambda: exclusive_cover([a, b, c], 6) and all(len(m.owned()) == 2 for m in (a, b, c)),
               60, "three members with two partitions each")

    produce(gregor.bootstrap, topic, [f"first-{i}" for i in range(600)], 6)
    wait_until(lambda: len(all_records([a, b, c])) == 600, 60, "600 records consumed")

    # kill -9: no LeaveGroup; the session timeout (6 s) must expire it.
    a.kill()
    killed = time.monotonic()
    healed = wait_until(lambda: exclusive_cover([b, c], 6), 60, "b and c to own all six partitions")
    assert healed - killed < 6 + 10, f"rebalance took {healed - killed:.1f}s after the kill"

    produce(gregor.bootstrap, topic, [f"second-{i}" for i in range(300)], 6)
    wait_until(lambda: sum(v.startswith("second-") for v in all_records([b, c]).values()) == 300,
               60, "300 more records consumed by b and c")

    # A clean leave rebalances at once; a new member joins.
    b.stop()
    wait_until(lambda: exclusive_cover([c], 6), 30, "c to own everything after b left")
    d = members(gregor, group, topic, "d")
    wait_until(lambda: exclusive_cover([c, d], 6) and len(d.owned()) == 3, 60, "c and d to share")

    seen = all_records([a, b, c, d])
    assert sorted(v for v in seen.values()) == sorted([f"first-{i}" for i in range(600)]
                                                       + [f"second-{i}" for i in range(300)])
    c.stop()
    d.stop()

    # Everything was committed: restarted members read only what is new.
    e, f = members(gregor, group, topic, "e"), members(gregor, group, topic, "f")
    wait_until(lambda: exclusive_cover([e, f], 6), 60, "e and f to share")
    produce(gregor.bootstrap, topic, [f"third-{i}" for i in range(60)], 6)
    wait_until(lambda: len(all_records([e, f])) >= 60, 60, "60 new records")
    time.sleep(1)
    assert sorted(all_records([e, f]).values()) == sorted(f"third-{i}" for i in range(60))


def test_two_groups_each_get_the_whole_stream(gregor, members):
    topic = unique("fanout")
    create(gregor.bootstrap, topic, 3)
    g1 = [members(gregor, "g-one", topic, f"one{i}") for i in range(2)]
    g2 = [members(gregor, "g-two", topic, f"two{i}") for i in range(1)]
    produce(gregor.bootstrap, topic, [f"v{i}" for i in range(300)], 3)
    wait_until(lambda: len(all_records(g1)) == 300 and len(all_records(g2)) == 300, 60, "both groups")
    assert sorted(all_records(g1).values()) == sorted(all_records(g2).values())


def test_cooperative_sticky_moves_only_what_it_must(gregor, members):
    topic, group = unique("coop"), unique("coop")
    create(gregor.bootstrap, topic, 4)
    conf = {"partition_assignment_strategy": "cooperative-sticky"}
    a = members(gregor, group, topic, "a", **conf)
    wait_until(lambda: a.owned() == {0, 1, 2, 3}, 60, "a to own all four")
    b = members(gregor, group, topic, "b", **conf)
    wait_until(lambda: exclusive_cover([a, b], 4) and len(b.owned()) == 2, 60, "a and b to share")
    # a gave up two partitions and kept two the whole time.
    revokes = a.events("revoked")
    assert revokes and all(len(r["kept"]) >= 2 for r in revokes), revokes


def test_a_static_member_comes_back_without_moving_the_others(gregor, members):
    topic, group = unique("static"), unique("static")
    create(gregor.bootstrap, topic, 4)
    a = members(gregor, group, topic, "a", group_instance_id="member-a")
    b = members(gregor, group, topic, "b", group_instance_id="member-b")
    wait_until(lambda: exclusive_cover([a, b], 4) and len(a.owned()) == 2, 60, "a and b to share")
    before = a.owned()
    b_history = len(b.events("assigned")), len(b.events("revoked"))
    a.kill()
    a2 = members(gregor, group, topic, "a2", group_instance_id="member-a")
    wait_until(lambda: a2.owned() == before, 60, "the static member to get its partitions back")
    time.sleep(2)
    assert b.owned() == {0, 1, 2, 3} - before
    assert (len(b.events("assigned")), len(b.events("revoked"))) == b_history


def test_consumer_groups_tool_deletes_offsets_of_an_idle_group(gregor):
    topic, group = unique("deloff"), unique("deloff")
    create(gregor.bootstrap, topic, 2)
    produce(gregor.bootstrap, topic, [f"v{i}" for i in range(10)], 2)
    consumer = Consumer({"bootstrap.servers": gregor.bootstrap, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 5)], asynchronous=False)
    consumer.close()
    out = kafka_tool("kafka-consumer-groups", "--bootstrap-server", gregor.bootstrap, "--delete-offsets",
                     "--group", group, "--topic", topic).stdout
    assert out.count("Successful") == 2, out
    consumer = Consumer({"bootstrap.servers": gregor.bootstrap, "group.id": group})
    committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert [tp.offset for tp in committed] == [-1001, -1001]  # librdkafka's "no commit"
    consumer.close()


def test_java_consumers_with_the_consumer_group_protocol(gregor_factory):
    broker = gregor_factory(props={"group.consumer.heartbeat.interval.ms": "500"})
    topic, group = unique("kip848"), unique("next")
    create(broker.bootstrap, topic, 4)
    produce(broker.bootstrap, topic, [f"v{i}" for i in range(400)], 4)

    def consumer(max_messages, version):
        return subprocess.Popen(
            java_command("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                         "--group", group, "--from-beginning", "--max-messages", max_messages,
                         "--timeout-ms", "20000", "--consumer-property", "group.protocol=consumer",
                         "--formatter-property", "print.partition=true", version=version),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # The newest and the oldest client version in one group, as while its
    # consumers are upgraded one at a time.
    first, second = consumer(200, KAFKA_CLIENT_VERSIONS[0]), consumer(200, KAFKA_CLIENT_VERSIONS[-1])
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    lines = out1.split("\n") + out2.split("\n")
    values = sorted(line.split("\t")[-1] for line in lines if "\t" in line)
    assert values == sorted(f"v{i}" for i in range(400)), (err1[-2000:], err2[-2000:])
    # Each consumer owned partitions the other did not.
    parts1 = {line.split("\t")[0] for line in out1.split("\n") if "\t" in line}
    parts2 = {line.split("\t")[0] for line in out2.split("\n") if "\t" in line}
    assert parts1 and parts2 and not parts1 & parts2, (parts1, parts2)

    desc = kafka_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap,
                      "--describe", "--group", group).stdout
    rows = [line.split() for line in desc.splitlines() if line.startswith(group)]
    assert len(rows) == 4 and sum(int(r[3]) for r in rows) == 400, desc
    listed = kafka_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--list",
                        "--type").stdout
    assert any(group in line and "Consumer" in line for line in listed.splitlines()), listed


def test_commits_are_kafka_records_in_consumer_offsets_and_survive_restarts(gregor_factory):
    broker = gregor_factory(props={"offsets.topic.num.partitions": "3"})
    topic, group = unique("stored"), unique("stored")
    create(broker.bootstrap, topic, 2)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 9)], asynchronous=False)
    consumer.commit(offsets=[TopicPartition(topic, 0, 6)], asynchronous=False)
    consumer.close()

    # Kafka's own formatter reads the records Gregor wrote. Reading the
    # group's partition directly keeps the tool's own group out of it.
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap,
                     "--topic", "__consumer_offsets", "--partition", offsets_partition(group, 3),
                     "--offset", "earliest", "--max-messages", "3", "--timeout-ms", "20000",
                     "--formatter", "org.apache.kafka.tools.consumer.OffsetsMessageFormatter").stdout
    # The formatter writes records back to back, with no newline.
    records, pos, decoder = [], out.find("{"), json.JSONDecoder()
    while pos != -1:
        record, end = decoder.raw_decode(out, pos)
        records.append(record)
        pos = out.find("{", end)
    seen = [(r["key"]["data"]["group"], r["key"]["data"]["partition"], r["value"]["data"]["offset"])
            for r in records]
    assert seen == [(group, 0, 5), (group, 1, 9), (group, 0, 6)], out

    broker.kill()
    broker.start()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert [tp.offset for tp in committed] == [6, 9]
    consumer.close()


def test_a_broker_restart_does_not_rebalance_a_stable_group(gregor_factory, members):
    broker = gregor_factory()
    topic, group = unique("resume"), unique("resume")
    create(broker.bootstrap, topic, 4)
    a, b = members(broker, group, topic, "a"), members(broker, group, topic, "b")
    wait_until(lambda: exclusive_cover([a, b], 4) and len(a.owned()) == 2, 60, "a and b to share")
    time.sleep(1)
    history = [(len(m.events("assigned")), len(m.events("revoked"))) for m in (a, b)]

    # The group's membership is stored in __consumer_offsets and restored.
    broker.restart()
    produce(broker.bootstrap, topic, [f"after-{i}" for i in range(40)], 4)
    wait_until(lambda: len(all_records([a, b])) == 40, 60, "records produced after the restart")
    assert [(len(m.events("assigned")), len(m.events("revoked"))) for m in (a, b)] == history


def test_an_epoch_older_than_the_log_ends_where_the_log_begins(gregor_factory):
    """A consumer that read an empty partition in leader epoch 0 checks its
    position after the broker restarted and the epoch moved on: epoch 0 ends
    at offset 0, as Kafka answers. "No such epoch" would make librdkafka
    report a truncation and reset the position (auto.offset.reset)."""
    broker = gregor_factory()
    topic = unique("epochs")
    create(broker.bootstrap, topic, 1)
    broker.restart()
    conn = wire.Connection(broker.bootstrap)
    answers = []

    def answered():
        conn.send(wire.offset_for_leader_epoch_v3(topic, 0, leader_epoch=0))
        answers.append(wire.offset_for_leader_epoch_v3_result(conn.response()))
        return answers[-1][0] == 0

    wait_until(answered, 30, "the restarted broker to lead the partition")
    assert answers[-1] == (0, 0, 0)
    conn.close()


def test_a_killed_consumer_protocol_member_is_expired_and_its_partitions_move(gregor_factory, tmp_path):
    broker = gregor_factory(props={"group.consumer.heartbeat.interval.ms": "500",
                                   "group.consumer.session.timeout.ms": "6000"})
    topic, group = unique("kip848kill"), unique("next")
    create(broker.bootstrap, topic, 4)

    def consumer(name):
        out = open(tmp_path / f"{name}.out", "w")
        proc = subprocess.Popen(
            java_command("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                         "--group", group, "--from-beginning", "--timeout-ms", "60000",
                         "--command-property", "group.protocol=consumer"),
            stdout=out, stderr=subprocess.DEVNULL)
        return proc, tmp_path / f"{name}.out"

    def partitions_per_member():
        out = kafka_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap,
                         "--describe", "--group", group, "--members", check=False).stdout
        return sorted(int(line.split()[-1]) for line in out.splitlines() if line.startswith(group))

    (a, a_out), (b, _) = consumer("a"), consumer("b")
    try:
        wait_until(lambda: partitions_per_member() == [2, 2], 90, "two members with two partitions each")
        b.kill()
        b.wait()
        produce(broker.bootstrap, topic, [f"after-{i}" for i in range(40)], 4)
        # b's partitions come to a once b's session (6 s) runs out.
        wanted = {f"after-{i}" for i in range(40)}
        wait_until(lambda: wanted <= set(a_out.read_text().split()), 60,
                   "a to read every record produced after b died")
        assert partitions_per_member() == [4]
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_consumer_protocol_group_survives_a_restart_of_its_coordinator(gregor_factory, tmp_path):
    """KIP-848 members keep their epochs and assignments through a kill -9
    and restart of the coordinator: the group is stored in
    __consumer_offsets as Kafka stores it (Kafka's own log dump decodes it)
    and resumed with fresh sessions, so nobody is fenced and rejoins."""
    broker = gregor_factory(props={"group.consumer.heartbeat.interval.ms": "500",
                                   "offsets.topic.num.partitions": "3"})
    topic, group = unique("kip848restart"), unique("kept")
    create(broker.bootstrap, topic, 4)
    outputs = {}

    def consumer(name):
        outputs[name] = tmp_path / f"{name}.out"
        return subprocess.Popen(
            java_command("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                         "--group", group, "--timeout-ms", "120000",
                         "--consumer-property", "group.protocol=consumer"),
            stdout=open(outputs[name], "w"), stderr=subprocess.DEVNULL)

    def members():
        """(member id, epoch, partition count) of each member, and the tool's output."""
        out = kafka_tool("kafka-consumer-groups", "--bootstrap-server", broker.bootstrap, "--describe",
                         "--group", group, "--members", "--verbose", check=False).stdout
        lines = out.splitlines()
        header = next((line.split() for line in lines if line.startswith("GROUP")), None)
        if header is None:
            return [], out
        rows = [dict(zip(header, line.split())) for line in lines if line.startswith(group)]
        return sorted((r["CONSUMER-ID"], r["CURRENT-EPOCH"], r["#PARTITIONS"]) for r in rows), out

    procs = [consumer("a"), consumer("b")]
    try:
        # A third member comes and goes, so the group's epoch is well past
        # what a group formed afresh by a and b would reach.
        wait_until(lambda: [m[2] for m in members()[0]] == ["2", "2"], 90, "a and b to share four partitions")
        procs.append(consumer("c"))
        wait_until(lambda: len(members()[0]) == 3, 90, "c to join")
        procs[2].send_signal(signal.SIGTERM)
        procs[2].wait(timeout=30)
        wait_until(lambda: [m[2] for m in members()[0]] == ["2", "2"]
                   and len({m[1] for m in members()[0]}) == 1, 90, "a and b to settle again")
        before, described = members()
        assert int(before[0][1]) > 2, described

        broker.kill()
        broker.start()
        values = [f"after-{i}" for i in range(40)]
        produce(broker.bootstrap, topic, values, 4)
        wait_until(lambda: set(values) <= set(outputs["a"].read_text().split() + outputs["b"].read_text().split()),
                   90, "a and b to read what was produced after the restart")
        after, described_after = members()
        assert after == before, (described, described_after)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    # Kafka's own log dump decodes the group's records (types 3 to 8), and
    # the last group epoch is the one the members have.
    segments = sorted((broker.data / f"__consumer_offsets-{offsets_partition(group, 3)}").glob("*.log"))
    dump = kafka_tool("kafka-dump-log", "--offsets-decoder", "--files", ",".join(map(str, segments))).stdout
    keys = [json.loads(line.split(" key: ")[1].split(" payload: ")[0])
            for line in dump.splitlines() if " key: " in line]
    assert {k["type"] for k in keys if k["data"].get("groupId") == group} == {"3", "5", "6", "7", "8"}, dump
    epochs = [line.split('"epoch":')[1].split("}")[0] for line in dump.splitlines()
              if '"type":"3"' in line and group in line]
    assert epochs[-1] == before[0][1], dump

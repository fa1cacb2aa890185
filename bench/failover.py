"""Unavailability after faults: Gregor side by side with Apache Kafka (the
tests' reference version, KAFKA_VERSION in tests/conftest.py), the same
cluster, clients and faults, one broker kind after the other. Writes the
median of the runs, their spread and Gregor/Kafka ratios to
bench/results/failover.md and .json (--quick: failover-quick.*). These are
measures, never assertions.

Every run starts a fresh cluster of three nodes, each a broker and a voter
of the metadata quorum, with SETTINGS on both kinds (each product's defaults
otherwise). The broker the fault hits (the victim) is one that is not the
active controller, unless the scenario says otherwise. A topic of six
partitions, replication factor 3, min.insync.replicas=2, is laid out so that
the victim leads partitions 0 and 3 and each other broker two more. One
idempotent acks=all librdkafka producer (confluent-kafka) writes RATE
records/s, record i to partition i % 6; a group of three librdkafka
consumers (classic protocol, 10 s sessions, offsets auto-committed every
second) reads them. The group's coordinator is another broker than the
victim, except when it is the victim. After a warm-up, the fault:

- leader kill: kill -9 of the victim;
- leader kill (active controller): the same, the victim being the active
  controller;
- frozen leader: SIGSTOP of the victim, SIGCONT `freeze` seconds later;
- coordinator kill: kill -9 of the victim, the group's coordinator;
- broker restart: kill -9 of the victim, started again 5 s later.

Measures, all from the clients' side (times are the driver's monotonic
clock when a client reported something; the metadata is polled every
0.2 s):

- write gap, per partition: the longest interval with no acknowledged
  write (delivery report) to the partition, from 1 s before the fault to the
  end of the observation window;
- p0 new leader: from the fault to the first Metadata answer (of a broker
  the fault does not hit) that names another leader for partition 0;
- held Produce answered (frozen leader): from SIGCONT to the answer to a
  Produce request (acks=all, 60 s timeout, one record to partition 0) sent
  on a connection of its own to the victim just after SIGSTOP, which the
  victim reads only when it runs again; its error code is in the .json;
- victim's partitions written again (frozen leader): from SIGCONT to the
  first acknowledged write to partition 0 or 3 of the records handed to
  the producer after SIGSTOP (negative: before SIGCONT);
- answers Metadata / in every ISR (broker restart): from the restart to
  the first Metadata answer of the restarted broker itself that lists it
  as a live broker, and to the first Metadata answer of another broker that
  has it in the ISR of every partition (again, or still: back within its
  session, it may never have left one);
- read gap: the longest interval in which the group read no record of a
  partition, the worst partition, over the same window as the write gaps;
- rebalances: the assignments a member received after the fault (the most
  any of the three received);
- records read twice: records the group read again after the fault;
- acknowledged records lost: acknowledged records not at their
  acknowledged partition and offset when the topic is read back at the end;
  delivery errors: records the producer gave up on.
"""

import argparse
import datetime
import logging
import re
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import GREGOR_BIN, Cluster, java, run, shared_properties
from report import compare, header, spread, write

import wire  # noqa: E402 - tests/ is on the path cluster.py sets
from conftest import offsets_partition  # noqa: E402

RATE = 1200  # records/s, over all partitions
TOPIC = "failover"
PARTITIONS = 6
OFFSETS = "__consumer_offsets"
VICTIM_PARTITIONS = (0, 3)
NODES = (1, 2, 3)
# Equal on both kinds; these are also both products' defaults, written out
# so that the report states them.
SETTINGS = {
    "broker.session.timeout.ms": 9000,
    "broker.heartbeat.interval.ms": 2000,
    "controller.quorum.election.timeout.ms": 1000,
    "replica.lag.time.max.ms": 30000,
    "leader.imbalance.check.interval.seconds": 300,
}
TOPIC_CONFIG = {"min.insync.replicas": "2"}
PRODUCER = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}
CONSUMER = {"group.protocol": "classic", "session.timeout.ms": 10000, "heartbeat.interval.ms": 3000,
            "enable.auto.commit": True, "auto.commit.interval.ms": 1000, "auto.offset.reset": "earliest"}
# Seconds: steady writing and reading before the fault, observation after
# it, how long a leader stays frozen and a killed broker stays down, how
# long a restarted broker may take to rejoin.
TIMES = {
    "full": {"runs": 3, "warmup": 5, "observe": 35, "freeze": 20, "down": 5, "rejoin": 120},
    "quick": {"runs": 1, "warmup": 2, "observe": 15, "freeze": 10, "down": 5, "rejoin": 90},
}
POLL = 0.2

LEADER_KILL = "leader kill"
CONTROLLER_KILL = "leader kill (active controller)"
FROZEN = "frozen leader"
COORDINATOR_KILL = "coordinator kill"
RESTART = "broker restart"
SCENARIOS = {
    LEADER_KILL: "kill -9 of the leader of partitions 0 and 3, not the active controller.",
    CONTROLLER_KILL: "kill -9 of the leader of partitions 0 and 3, the active controller.",
    FROZEN: "SIGSTOP of the leader of partitions 0 and 3 (not the active controller), SIGCONT {freeze} s later.",
    COORDINATOR_KILL: "kill -9 of the group's coordinator (not the active controller), "
                      "which also leads partitions 0 and 3.",
    RESTART: "kill -9 of the leader of partitions 0 and 3 (not the active controller), "
             "started again {down} s later.",
}


def slug(scenario):
    return re.sub(r"[^a-z]+", "-", scenario).strip("-")


class Writer(threading.Thread):
    """The producer: RATE records/s, record i (its value) to partition
    i % PARTITIONS, and when each one's delivery report arrived."""

    def __init__(self, bootstrap, topic, logger):
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "logger": logger, **PRODUCER})
        self.topic = topic
        self.sent = []    # i -> when record i was handed to the producer
        self.acked = {}   # i -> (when, partition, offset)
        self.errors = {}  # i -> (when, error)
        self.unacked = 0  # records still undelivered when it stopped
        self.stopping = threading.Event()

    def run(self):
        started = time.monotonic()
        i = 0
        while not self.stopping.is_set():
            # Send on schedule: record i leaves at i / RATE seconds.
            while (ahead := started + i / RATE - time.monotonic()) > 0:
                self.producer.poll(ahead)
            self.sent.append(time.monotonic())
            self.producer.produce(self.topic, str(i).encode(), partition=i % PARTITIONS,
                                  on_delivery=self.delivered)
            self.producer.poll(0)
            i += 1
        self.unacked = self.producer.flush(60)

    def delivered(self, err, msg):
        i = int(msg.value())
        if err is None:
            self.acked[i] = (time.monotonic(), msg.partition(), msg.offset())
        else:
            self.errors[i] = (time.monotonic(), str(err))

    def stop(self):
        self.stopping.set()
        self.join()


class Member(threading.Thread):
    """One consumer of the group: its assignments and every record it read."""

    def __init__(self, bootstrap, group, topic, logger):
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "logger": logger,
                                  **CONSUMER})
        self.topic = topic
        self.assignments = []  # (when, [partition]) at every assignment
        self.reads = []        # (when, partition, value)
        self.stopping = threading.Event()

    def run(self):
        self.consumer.subscribe([self.topic], on_assign=self.assigned)
        while not self.stopping.is_set():
            for m in self.consumer.consume(500, 0.1):
                if m.error() is None:
                    self.reads.append((time.monotonic(), m.partition(), int(m.value())))
        self.consumer.close()

    def assigned(self, _consumer, partitions):
        self.assignments.append((time.monotonic(), sorted(p.partition for p in partitions)))

    def owned(self):
        return set(self.assignments[-1][1]) if self.assignments else set()

    def stop(self):
        self.stopping.set()
        self.join()


def active_controller(cluster, admin):
    """The node id of the active controller. Kafka's DescribeCluster names a
    random broker to clients (KRaft hides its controllers), so Kafka is asked
    with kafka-metadata-quorum (DescribeQuorum, which Gregor does not serve);
    Gregor names its active controller in DescribeCluster."""
    if cluster.kind == "kafka":
        out = run(java("org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server",
                       cluster.bootstrap, "describe", "--status"))
        return int(re.search(r"LeaderId:\s+(\d+)", out)[1])
    return admin.describe_cluster(request_timeout=30).result().controller.id


def offsets_leaders(admin, bootstrap):
    """{partition: leader} of __consumer_offsets, once a consumer's look-up
    of its group coordinator has made the brokers create it. (Not with the
    admin client's DescribeGroups: librdkafka 2.16 aborts on an assertion
    when Kafka answers it while creating the topic.)"""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "failover-offsets", "log_level": 0})

    def answered():
        try:
            return c.committed([TopicPartition(TOPIC, 0)], timeout=10)
        except KafkaException:  # not yet a coordinator to ask
            return None
    wait(answered, 60, "a group coordinator")
    c.close()

    def led():
        topic = admin.list_topics(OFFSETS, timeout=10).topics[OFFSETS]
        leaders = {p: m.leader for p, m in topic.partitions.items()}
        return leaders if leaders and min(leaders.values()) > 0 else None
    return wait(led, 60, "the offsets topic's leaders")


def group_for(leaders, wanted):
    """A group name whose coordinator (the leader of the offsets partition
    Kafka's hash of the name picks) satisfies `wanted`; with it."""
    for n in range(1000):
        group = f"failover-{n}"
        if wanted(coordinator := leaders[offsets_partition(group, len(leaders))]):
            return group, coordinator
    raise RuntimeError("no group name found with the coordinator wanted")


def metadata(address, topic):
    """The Metadata (v4) answer of the broker at `address` itself, as
    ({live broker}, {partition: (leader, {in-sync replica})}); None without
    one within a second. By hand: librdkafka asks whichever broker it likes,
    a frozen one too."""
    try:
        conn = wire.Connection(address, timeout=1)
        try:
            conn.send(wire.frame(wire.header(3, 4) + struct.pack(">i", 1) + wire.string(topic) + b"\0"))
            r = wire.Reader(conn.response(), 8)  # after the correlation id and throttle time
        finally:
            conn.close()
    except OSError:
        return None
    brokers = set()
    for _ in range(r.take(">i")):
        brokers.add(r.take(">i"))
        r.string(), r.take(">i"), r.string()  # host, port, rack
    r.string(), r.take(">i")  # cluster id, controller id
    parts = {}
    for _ in range(r.take(">i")):
        r.take(">h"), r.string(), r.take(">b")  # error code, name, internal
        for _ in range(r.take(">i")):
            _, partition, leader = r.take(">hii")
            ints(r)  # replicas
            parts[partition] = (leader, set(ints(r)))
    return brokers, parts


def ints(reader):
    """An array of int32."""
    return [reader.take(">i") for _ in range(reader.take(">i"))]


def partitions(address, topic):
    """{partition: (leader, isr)} of the topic as the broker at `address`
    sees it; None if it does not answer or knows no such topic."""
    answer = metadata(address, topic)
    return answer[1] if answer and len(answer[1]) == PARTITIONS else None


def create_topic(admin, address, topic, victim):
    """Partitions 0 and 3 led by the victim, 1 and 4, 2 and 5 by the others;
    every broker a replica of each."""
    order = [victim, *(n for n in NODES if n != victim)]
    assignment = [order[p % 3:] + order[:p % 3] for p in range(PARTITIONS)]
    new = NewTopic(topic, num_partitions=PARTITIONS, replica_assignment=assignment, config=TOPIC_CONFIG)
    admin.create_topics([new])[topic].result()
    wait(lambda: (parts := partitions(address, topic)) is not None and all(
        leader == assignment[p][0] and len(isr) == 3 for p, (leader, isr) in parts.items()),
        60, "the topic's leaders")


def wait(check, timeout, what):
    """The first true value `check` returns within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)
    return value


def steady(writer, members):
    """Every member owns partitions, all six are owned and read from."""
    now = time.monotonic()
    owned = [m.owned() for m in members]
    recent = {p for m in members for t, p, _ in m.reads[-2000:] if t > now - 1}
    return all(owned) and set().union(*owned) == set(range(PARTITIONS)) and len(recent) == PARTITIONS \
        and len(writer.acked) > 0


def answers_as_live_broker(address, node_id):
    """Whether the broker at `address` answers Metadata listing itself."""
    answer = metadata(address, TOPIC)
    return answer is not None and node_id in answer[0]


class FirstTime(threading.Thread):
    """Polls `check` until it holds or `deadline`; `when` it first held."""

    def __init__(self, check, deadline):
        super().__init__(daemon=True)
        self.check, self.deadline = check, deadline
        self.when = None

    def run(self):
        while time.monotonic() < self.deadline:
            if self.check():
                self.when = time.monotonic()
                return
            time.sleep(POLL)


class Watch:
    """The topic's metadata as a broker the fault does not hit (`address`)
    sees it: when partition 0 got another leader than the victim, and when
    the victim, once out of an ISR (or, for a restart, once restarted: a
    broker back within its session may never leave one), was in every one."""

    def __init__(self, address, topic, victim):
        self.address, self.topic, self.victim = address, topic, victim
        self.moved = None
        self.left_isr = False
        self.in_isr = None
        # When being in every ISR counts even if the victim never left one.
        self.since = None

    def poll(self):
        parts = partitions(self.address, self.topic)
        if parts is None:
            return
        now = time.monotonic()
        if self.moved is None and parts[0][0] not in (self.victim, -1):
            self.moved = now
        if all(self.victim in isr for _, isr in parts.values()):
            if self.in_isr is None and (self.left_isr or (self.since is not None and now >= self.since)):
                self.in_isr = now
        else:
            self.left_isr = True

    def until(self, deadline):
        while time.monotonic() < deadline:
            self.poll()
            time.sleep(POLL)


def kill(cluster, watch, t):
    fault = time.monotonic()
    cluster.signal(watch.victim, signal.SIGKILL)
    watch.until(fault + t["observe"])
    return {"fault": fault, "end": fault + t["observe"]}


class HeldProduce(threading.Thread):
    """A Produce request of one record to partition 0, acks=all with a 60 s
    timeout, sent on a connection of its own: when and how it is answered."""

    def __init__(self, address, topic):
        super().__init__(daemon=True)
        self.conn = wire.Connection(address, timeout=180)
        self.request = wire.produce_v3(topic, 0, wire.batch([b"-1"]), timeout_ms=60000)
        self.when = None
        self.error = None

    def run(self):
        self.conn.send(self.request)
        try:
            self.error = wire.produce_v3_error(self.conn.response())[0]
        except OSError as e:  # closed, reset or timed out: an answer too
            self.error = type(e).__name__
        self.when = time.monotonic()
        self.conn.close()


def freeze(cluster, watch, t):
    held = HeldProduce(cluster.address(watch.victim), watch.topic)
    fault = time.monotonic()
    cluster.signal(watch.victim, signal.SIGSTOP)
    held.start()
    try:
        watch.until(fault + t["freeze"])
    finally:
        cluster.signal(watch.victim, signal.SIGCONT)
    woke = time.monotonic()
    watch.until(woke + t["observe"])
    held.join()
    return {"fault": fault, "woke": woke, "end": woke + t["observe"], "held": held}


def restart(cluster, watch, t):
    fault = time.monotonic()
    cluster.signal(watch.victim, signal.SIGKILL)
    watch.until(fault + t["down"])
    restarted = time.monotonic()
    watch.since = restarted
    cluster.restart(watch.victim)
    address = cluster.address(watch.victim)
    serving = FirstTime(lambda: answers_as_live_broker(address, watch.victim), restarted + t["rejoin"])
    serving.start()
    while (serving.is_alive() or watch.in_isr is None) and time.monotonic() < restarted + t["rejoin"]:
        watch.poll()
        time.sleep(POLL)
    serving.join()
    end = max(fault + t["observe"], time.monotonic() + 5)
    watch.until(end)
    return {"fault": fault, "restarted": restarted, "serving": serving.when, "end": end}


FAULTS = {LEADER_KILL: kill, CONTROLLER_KILL: kill, FROZEN: freeze, COORDINATOR_KILL: kill, RESTART: restart}


def longest_gap(times, start, end):
    """The longest interval of [start, end] without one of `times`."""
    points = [start, *sorted(t for t in times if start < t < end), end]
    return max(b - a for a, b in zip(points, points[1:]))


def write_gaps(writer, start, end):
    times = {p: [] for p in range(PARTITIONS)}
    for when, p, _ in writer.acked.values():
        times[p].append(when)
    return {p: longest_gap(ts, start, end) for p, ts in times.items()}


def read_gaps(members, start, end):
    times = {p: [] for p in range(PARTITIONS)}
    for m in members:
        for when, p, _ in m.reads:
            times[p].append(when)
    return {p: longest_gap(ts, start, end) for p, ts in times.items()}


def written_again(writer, stopped, woke):
    """Seconds from SIGCONT to the first acknowledged write to the victim's
    partitions of the records handed to the producer after SIGSTOP."""
    acked = [writer.acked[i][0] for i in range(len(writer.sent))
             if writer.sent[i] > stopped and i % PARTITIONS in VICTIM_PARTITIONS and i in writer.acked]
    return min(acked) - woke if acked else None


def read_twice(members, after):
    seen = set()
    twice = 0
    for when, _, value in sorted(r for m in members for r in m.reads):
        if value in seen and when > after:
            twice += 1
        seen.add(value)
    return twice


def read_back(bootstrap, topic):
    """{(partition, offset): value} of every record of the topic."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "failover-read-back",
                  "enable.auto.commit": False, "log_level": 0})
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(PARTITIONS)}
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    stored = {}
    read = Counter()
    deadline = time.monotonic() + 120
    while any(read[p] < ends[p] for p in ends) and time.monotonic() < deadline:
        for m in c.consume(10000, 1.0):
            if m.error() is None:
                stored[(m.partition(), m.offset())] = int(m.value())
                read[m.partition()] += 1
    c.close()
    return stored


def lost(bootstrap, topic, acked):
    stored = read_back(bootstrap, topic)
    return sum(1 for i, (_, p, offset) in acked.items() if stored.get((p, offset)) != i)


def utc(when):
    """A time of the monotonic clock as UTC, to find it in the brokers' logs."""
    wall = time.time() - time.monotonic() + when
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).strftime("%H:%M:%S.%f")


def client_logger(path):
    """librdkafka's log lines of one run, to a file of the run's directory."""
    logger = logging.getLogger(str(path))
    logger.addHandler(logging.FileHandler(path))
    logger.handlers[0].setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def measures(scenario, timeline, watch, writer, members):
    """{measure: value} of one run, in the order the report shows them."""
    fault, end = timeline["fault"], timeline["end"]
    out = {f"write gap p{p}{' (victim leads)' if p in VICTIM_PARTITIONS else ''}, s": gap
           for p, gap in write_gaps(writer, fault - 1, end).items()}
    out["p0 new leader in Metadata, s after the fault"] = watch.moved and watch.moved - fault
    if scenario == FROZEN:
        held = timeline["held"]
        out["held Produce answered, s after SIGCONT"] = held.when and held.when - timeline["woke"]
        out["victim's partitions written again, s after SIGCONT"] = written_again(writer, fault, timeline["woke"])
    if scenario == RESTART:
        restarted = timeline["restarted"]
        out["restarted broker answers Metadata, s after restart"] = \
            timeline["serving"] and timeline["serving"] - restarted
        out["restarted broker in every ISR, s after restart"] = watch.in_isr and watch.in_isr - restarted
    out["read gap, worst partition, s"] = max(read_gaps(members, fault - 1, end).values())
    out["rebalances (most seen by one member)"] = max(
        sum(1 for when, _ in m.assignments if when > fault) for m in members)
    out["records read twice"] = read_twice(members, fault)
    return out


def run_once(kind, scenario, t, workdir):
    """One fresh cluster, one fault: {"measures": ..., "details": ...}."""
    cluster = Cluster(kind, 3, workdir, SETTINGS)
    cluster.start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
        controller = active_controller(cluster, admin)
        victim = controller if scenario == CONTROLLER_KILL else min(n for n in NODES if n != controller)
        create_topic(admin, cluster.address(victim), TOPIC, victim)
        group, coordinator = group_for(offsets_leaders(admin, cluster.bootstrap),
                                       (lambda c: c == victim) if scenario == COORDINATOR_KILL
                                       else (lambda c: c != victim))
        logger = client_logger(cluster.dir / "clients.log")
        writer = Writer(cluster.bootstrap, TOPIC, logger)
        members = [Member(cluster.bootstrap, group, TOPIC, logger) for _ in range(3)]
        for client in (writer, *members):
            client.start()
        try:
            wait(lambda: steady(writer, members), 90, "the group to read all six partitions")
            time.sleep(t["warmup"])
            watch = Watch(cluster.address(min(n for n in NODES if n != victim)), TOPIC, victim)
            timeline = FAULTS[scenario](cluster, watch, t)
        finally:
            for client in (*members, writer):
                client.stop()
        out = measures(scenario, timeline, watch, writer, members)
        out["acknowledged records lost"] = lost(cluster.bootstrap, TOPIC, writer.acked)
        out["delivery errors"] = len(writer.errors)
        details = {"victim": victim, "controller": controller, "coordinator": coordinator,
                   "acknowledged": len(writer.acked), "undelivered at the end": writer.unacked,
                   "victim left an ISR": watch.left_isr,
                   "read gaps, s": read_gaps(members, timeline["fault"] - 1, timeline["end"]),
                   "assignments, s after the fault": [[(round(when - timeline["fault"], 2), parts)
                                                       for when, parts in m.assignments] for m in members],
                   "errors": sorted({e for _, e in writer.errors.values()}),
                   "timeline, UTC": {k: utc(v) for k, v in timeline.items() if isinstance(v, float)},
                   "workdir": str(workdir)}
        if "held" in timeline:
            error = timeline["held"].error
            details["held Produce answer"] = KafkaError(error).name() if isinstance(error, int) else error
        return {"measures": out, "details": details}
    finally:
        cluster.kill()
        for handler in logging.getLogger(str(cluster.dir / "clients.log")).handlers:
            handler.close()


def table(results, scenario):
    runs = {kind: [r for r in results[kind][scenario] if "measures" in r] for kind in ("gregor", "kafka")}
    rows = ["| Measure | Gregor | Kafka | Gregor / Kafka | Better |", "|---|---|---|---|---|"]
    names = next((r["measures"] for r in runs["gregor"] + runs["kafka"]), {})
    for name in names:
        values = {kind: [r["measures"].get(name) for r in rs] for kind, rs in runs.items()}
        ratio, better = compare(values["gregor"], values["kafka"])
        rows.append(f"| {name} | {spread(values['gregor'])} | {spread(values['kafka'])} | {ratio} | {better} |")
    return "\n".join(rows)


def failures(results, scenario):
    return [f"- {kind} run {n + 1} failed: {r['error']}" for kind in ("gregor", "kafka")
            for n, r in enumerate(results[kind][scenario]) if "error" in r]


def settings_text(t, runs):
    shared = shared_properties(3, SETTINGS)
    conf = lambda d: ", ".join(f"`{k}={str(v).lower() if isinstance(v, bool) else v}`"  # noqa: E731
                               for k, v in d.items())
    return (f"Brokers: three nodes, each a broker and a voter of the metadata quorum, on loopback; "
            f"on both kinds: {conf(shared)}; each product's defaults otherwise. "
            f"Gregor binary: `{GREGOR_BIN}`.\n\n"
            f"Topic: 6 partitions, replication factor 3, {conf(TOPIC_CONFIG)}; the broker the fault hits "
            f"(the victim) leads partitions 0 and 3, each other broker two more.\n\n"
            f"Producer: confluent-kafka {confluent_kafka.version()} (librdkafka "
            f"{confluent_kafka.libversion()[0]}), {RATE} records/s, record i to partition i % 6, "
            f"{conf(PRODUCER)}, librdkafka's defaults otherwise.\n\n"
            f"Group: three consumers, {conf(CONSUMER)}.\n\n"
            f"Timing: {t['warmup']} s of steady writes and reads before the fault, observed "
            f"{t['observe']} s after it (after SIGCONT for the frozen leader; at least 5 s after the "
            f"restarted broker is back for the restart); frozen for {t['freeze']} s; restarted "
            f"{t['down']} s after the kill.\n\n"
            f"Values: median of {runs} run(s) on fresh clusters (min-max); lower is better for every "
            f"measure; \"ranges overlap\": the runs of one kind do not all beat the other's. The "
            f"measures are defined in bench/failover.py's docstring.\n\n")


def report(results, t, runs, command, quick):
    note = "quick: one short run, checks that everything runs" if quick else ""
    parts = [header(command, note), settings_text(t, runs)]
    for scenario in results["gregor"]:
        parts.append(f"### {scenario}\n\n{SCENARIOS[scenario].format(**t)}\n\n{table(results, scenario)}\n")
        if fails := failures(results, scenario):
            parts.append("\n".join(fails) + "\n")
        parts.append("\n")
    return "".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run of each, shorter: checks that everything runs")
    parser.add_argument("--runs", type=int, help="runs of each scenario (default 3, --quick 1)")
    parser.add_argument("--scenario", action="append", choices=[slug(s) for s in SCENARIOS],
                        help="only this scenario (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the clusters' directories (broker logs)")
    args = parser.parse_args()
    t = TIMES["quick" if args.quick else "full"]
    runs = args.runs or t["runs"]
    scenarios = [s for s in SCENARIOS if not args.scenario or slug(s) in args.scenario]
    workdir = Path(tempfile.mkdtemp(prefix="gregor-failover-"))
    results = {}
    try:
        for kind in ("gregor", "kafka"):
            results[kind] = {}
            for scenario in scenarios:
                results[kind][scenario] = []
                for n in range(runs):
                    print(f"{kind}: {scenario}, run {n + 1} of {runs}...", file=sys.stderr, flush=True)
                    try:
                        result = run_once(kind, scenario, t, workdir / kind / f"{slug(scenario)}-{n + 1}")
                    except Exception as e:  # noqa: BLE001 - reported, the other runs go on
                        result = {"error": f"{type(e).__name__}: {e}"}
                    print(f"  {result}", file=sys.stderr, flush=True)
                    results[kind][scenario].append(result)
    finally:
        if args.keep:
            print(f"clusters' directories kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    command = "bench/run failover" + "".join(f" {a}" for a in sys.argv[1:] if a != "--keep")
    markdown = report(results, t, runs, command, args.quick)
    write("failover-quick" if args.quick else "failover", markdown,
          {"settings": {"brokers": SETTINGS, "topic": TOPIC_CONFIG, "producer": PRODUCER, "consumer": CONSUMER,
                        "records/s": RATE, "times": t, "runs": runs},
           "results": results})
    print(markdown)


if __name__ == "__main__":
    main()

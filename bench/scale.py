"""Scale: Gregor side by side with Apache Kafka (the tests' reference
version, KAFKA_VERSION in tests/conftest.py) as the number of partitions,
of client connections or of consumer groups grows, or the record size
with each compression codec: curves over those points rather than one
point. Each kind runs as three nodes (brokers and voters of the metadata
quorum, cluster.py's shared settings, each product's defaults otherwise),
topics with replication factor 3; the kinds alternate which goes first from
one repeat to the next. Each curve has a report of its own, so that
curves measured apart (each takes a while) all stay:
bench/results/scale-<curve>.md holds the median of the repeats per point,
their range and Gregor/Kafka ratios, scale-<curve>.json every run's raw
numbers and scale-<curve>.png the plots (--quick: scale-quick-<curve>.*),
for the curves partitions, connections, groups and sizes. These are
measures, never assertions.

Partitions (a fresh cluster per point): P partitions in total, as topics of
min(P, 100) partitions each.

- create s: from the admin client's CreateTopics (every topic, in batches
  of CREATE_BATCH topics) to the first Metadata listing every partition
  with a leader. Nearly all of it is the file system creating each
  replica's directory and files, and ext4 without a journal (this
  machine's) is slow at that for minutes after many files were deleted:
  it skips every free inode deleted in the last 60-360 s. The partitions
  curve therefore deletes its points' directories only at the end of the
  whole run (about 1 GB per point), so no point is measured right after
  the previous one's were deleted.
- Metadata p50/p99 ms: METADATA_REQUESTS Metadata requests for all topics
  (confluent-kafka's list_topics, one after the other).
- produce MB/s: one librdkafka producer (confluent-kafka, acks=1,
  linger.ms=5) sends a fixed number of 1 KiB values, record i to the i-th
  partition round-robin over all of them; from the first send to flush()
  returning. MB are 10^6 bytes of values. A first producer sends a fifth
  of that the same way before, not counted (Kafka's JIT).
- RSS MiB, peak and after load: the sum over the three brokers of VmHWM
  (the peak since start, creation and produce included) and of VmRSS once
  the producer is done.
- restart s: node 3 is killed (kill -9) and started again at once on the
  same directories; from the kill to the first Metadata answered by the
  restarted node 3 itself (asked by a fresh client that knows only its
  address) that lists node 3, every partition with a leader and node 3 in
  the ISR of every partition it replicates: it serves again, with the
  cluster's whole metadata. The ISR may or may not have shrunk meanwhile
  (the controller's broker session timeout can be longer than the
  restart). Leadership does not move back to it by itself within the run
  (Kafka's preferred leader election runs every 300 s), so "leading
  again" is not the criterion.
- controlled shutdown s: node 1 gets SIGTERM; from the signal to the first
  Metadata (from the other nodes) in which no partition has node 1 as
  leader and every partition has a leader. Also the time until the process
  exited.

Connections (one cluster per repeat, every point on it): N idle client
connections, raw sockets from this process (spread round-robin over the
three brokers) that each sent one ApiVersions v0 request, got its answer
and stay open. The file descriptor limit of this process (and so of the
brokers it starts) is raised to its hard limit first.

- RSS KiB per connection: the brokers' summed VmRSS with the N connections
  open minus that with none (just before they were opened), over N.
- produce p50/p99 ms: meanwhile, one librdkafka producer (acks=1) sends
  RATE 1 KiB records per second for a few seconds to a topic of 6
  partitions; the latency of each record from produce() to its delivery
  report.

Consumer groups (a fresh cluster per point): G groups of one member each
on one topic of GROUP_PARTITIONS partitions, which every node lists in its
Metadata before the members start. The members are raw-protocol
clients in this process (asyncio, each on its own connection to its
group's coordinator), not librdkafka
consumers: each librdkafka consumer runs its own threads (a main one and
one per broker), and a thousand of them on two cores would measure the
client more than the brokers. A member speaks the classic protocol as a
consumer does: FindCoordinator v2; JoinGroup v5 (protocol type
"consumer", a "range" subscription to the topic), once more with the
member id the broker hands out; SyncGroup v3, in which it, the leader,
assigns itself every partition; OffsetCommit v7. Session and rebalance
timeouts are SESSION_MS, so members stay in their groups without
heartbeats for the whole point. A first group joins and commits a fifth
of COMMITS times before, not counted (it creates __consumer_offsets;
Kafka's JIT).

- join s: every member finds its group's coordinator (asking the nodes
  round-robin) and connects to it first, not counted; then all join at
  once, from the first JoinGroup to the last SyncGroup answer carrying the
  member's assignment (a classic group is Stable, its member assigned,
  from that answer on). A member whose coordinator moved or whose group
  rebalances finds the coordinator again and rejoins, counted.
- commit p50/p99 ms: COMMITS OffsetCommit requests, one after the other,
  the i-th from group i mod G committing offset i for every partition;
  the round trip of each, every partition's answer checked free of error.
- broker RSS MiB: the brokers' summed VmRSS after the commits.
Then DescribeGroups (the admin client's describe_consumer_groups) must list
every group Stable with its one member assigned every partition, or the
point fails: all groups were alive throughout.

Record sizes and compression (one cluster per repeat, every point on
it): for each record size S and codec C a fresh topic of SIZE_PARTITIONS
partitions with max.message.bytes=MAX_MESSAGE, so that a 1 MiB record
fits uncompressed. One librdkafka producer (as the partitions curve's,
compression.type=C, message.max.bytes=MAX_MESSAGE) sends
min(SIZE_BYTES / S, SIZE_RECORDS) values of S bytes, record i to
partition i mod SIZE_PARTITIONS. The values are consecutive S-byte slices
of a fixed TEXT-byte text of words drawn at random (seeded) from 1,000
random lowercase words: compressible like text, and no value repeats
within TEXT bytes of values. Both brokers decompress every compressed
batch to validate its records. A first producer sends a fifth as many the
same way before, not counted (Kafka's JIT), and the brokers replicate it.

- produce MB/s: from the first send to flush() returning; MB are 10^6
  bytes of values, uncompressed.
- CPU s/GB: the three brokers' utime+stime (/proc/<pid>/stat) from
  before the producer is created until the high watermarks of the topic's
  partitions count every record (every in-sync replica has them: all
  three unless one fell behind), over GB (10^9 bytes) of values.

A run that fails records its error and the run goes on; --quick exits
non-zero when any run failed.
"""

import argparse
import asyncio
import random
import resource
import selectors
import shutil
import signal
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from string import ascii_lowercase

from confluent_kafka import ConsumerGroupState, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from cluster import GREGOR_BIN, Cluster, shared_properties
from report import RESULTS, compare, header, spread, write
import wire  # tests/wire.py: cluster puts tests/ on the path

RECORD = 1024
PER_TOPIC = 100
CREATE_BATCH = 50
REPLICAS = 3
PRODUCER = {"acks": "1", "linger.ms": 5, "queue.buffering.max.messages": 1000000,
            "queue.buffering.max.kbytes": 1048576}
RATE = 1000
GROUP_TOPIC = "scale-groups"
GROUP_PARTITIONS = 6
SESSION_MS = 300000
SIZE_PARTITIONS = 6
MAX_MESSAGE = 2 << 20
TEXT = 8 << 20
SIZES = {
    "full": {"repeat": 3, "partitions": [100, 1000, 10000], "connections": [0, 100, 1000, 10000],
             "groups": [10, 100, 1000], "sizes": [100, 1 << 10, 64 << 10, 1 << 20],
             "codecs": ["none", "lz4", "zstd"], "records": 200000, "metadata requests": 50, "seconds": 10,
             "commits": 2000, "size bytes": 200000000, "size records": 500000},
    "quick": {"repeat": 1, "partitions": [10, 100], "connections": [0, 10, 100], "groups": [10, 100],
              "sizes": [1 << 10, 1 << 20], "codecs": ["none", "zstd"], "records": 10000,
              "metadata requests": 10, "seconds": 2, "commits": 200, "size bytes": 20000000,
              "size records": 20000},
}
WAIT = 600


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def admin(cluster, exclude=None):
    """An admin client of the nodes but `exclude`."""
    nodes = [cluster.address(n) for n in range(1, cluster.size + 1) if n != exclude]
    return AdminClient({"bootstrap.servers": ",".join(nodes), "log_level": 0})


def wait_for(client, check, timeout=WAIT):
    """Seconds until check(metadata) holds for a Metadata of all topics,
    None if it never does within `timeout`; `client` is an admin client,
    or a function returning a fresh one for each try."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        asked = time.monotonic()
        try:
            if check((client() if callable(client) else client).list_topics(timeout=2)):
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - no answer yet, ask again
            pass
        # At least as long as the asking took: with 10,000 partitions a
        # Metadata answer takes this client a good part of a core to
        # read, and the brokers measured share the machine's two.
        time.sleep(max(0.05, time.monotonic() - asked))
    return None


def partitions_of(md, topics):
    return [p for t in topics if t in md.topics for p in md.topics[t].partitions.values()]


def all_led(md, topics, total):
    parts = partitions_of(md, topics)
    return len(parts) == total and all(p.leader >= 0 for p in parts)


def create(cluster, total):
    """Creates `total` partitions; (topics, seconds until all have leaders)."""
    per = min(total, PER_TOPIC)
    topics = [f"scale-{i}" for i in range(total // per)]
    client = admin(cluster)
    started = time.monotonic()
    for i in range(0, len(topics), CREATE_BATCH):
        futures = client.create_topics([NewTopic(t, per, REPLICAS) for t in topics[i:i + CREATE_BATCH]],
                                       request_timeout=120)
        for f in futures.values():
            f.result()
    if wait_for(client, lambda md: all_led(md, topics, total)) is None:
        raise RuntimeError(f"not every one of {total} partitions had a leader within {WAIT} s")
    return topics, time.monotonic() - started


def metadata_latency(cluster, n):
    client = admin(cluster)
    for _ in range(2 * cluster.size):  # connections to every node (opened lazily), not counted
        client.list_topics(timeout=60)
    times = []
    for _ in range(n):
        started = time.monotonic()
        client.list_topics(timeout=60)
        times.append((time.monotonic() - started) * 1000)
    return pct(times, 0.5), pct(times, 0.99)


def produce_spread(cluster, targets, records, pool, settings=None):
    """MB/s of `records` values, the i-th pool[i mod len(pool)] (all of one
    size) to the i-th of `targets` (topic, partition) round-robin, by a
    producer of PRODUCER and `settings`."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "log_level": 0, **PRODUCER, **(settings or {})})
    failed = []

    def report(err, _msg):
        if err is not None:
            failed.append(err)
    producer.list_topics(timeout=30)
    started = time.monotonic()
    for i in range(records):
        topic, partition = targets[i % len(targets)]
        while True:
            try:
                producer.produce(topic, pool[i % len(pool)], partition=partition, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(WAIT)
    seconds = time.monotonic() - started
    if left or failed:
        raise RuntimeError(f"{left} records not delivered, {len(failed)} failed: {failed[:1]}")
    return records * len(pool[0]) / seconds / 1e6


def isr_back(node, topics, total):
    def check(md):
        parts = partitions_of(md, topics)
        return (node in md.brokers and len(parts) == total and all(p.leader >= 0 for p in parts)
                and all(node in p.isrs for p in parts if node in p.replicas))
    return check


def none_led_by(node, topics, total):
    return lambda md: all_led(md, topics, total) and not any(
        p.leader == node for p in partitions_of(md, topics))


def partitions_run(kind, total, n, workdir):
    cluster = Cluster(kind, 3, workdir)
    try:
        metrics = {"start-up s": cluster.start()}
        topics, metrics["create s"] = create(cluster, total)
        metrics["Metadata p50 ms"], metrics["Metadata p99 ms"] = metadata_latency(cluster, n["metadata requests"])
        targets = [(t, p) for t in topics for p in range(total // len(topics))]
        pool = [b"x" * RECORD]
        produce_spread(cluster, targets, n["records"] // 5, pool)  # warm-up (the JIT's), not counted
        metrics["produce MB/s"] = produce_spread(cluster, targets, n["records"], pool)
        metrics["peak RSS MiB"] = cluster.rss("VmHWM")
        metrics["RSS after load MiB"] = cluster.rss()
        killed = time.monotonic()
        cluster.signal(3, signal.SIGKILL)
        cluster.restart(3)
        # A fresh client knows node 3 alone until its first answer: the
        # Metadata comes from the restarted process.
        back = wait_for(lambda: AdminClient({"bootstrap.servers": cluster.address(3), "log_level": 0}),
                        isr_back(3, topics, total))
        metrics["restart s"] = None if back is None else time.monotonic() - killed
        others = admin(cluster, exclude=1)
        stopped = time.monotonic()
        cluster.signal(1, signal.SIGTERM)
        moved = wait_for(others, none_led_by(1, topics, total))
        metrics["controlled shutdown s"] = None if moved is None else time.monotonic() - stopped
        try:
            cluster.procs[0].wait(WAIT)
            metrics["shutdown exit s"] = time.monotonic() - stopped
        except Exception:  # noqa: BLE001 - did not exit: no number
            metrics["shutdown exit s"] = None
        return metrics
    finally:
        cluster.kill()


def wire_array(items):
    """A Kafka ARRAY of already encoded items."""
    return struct.pack(">i", len(items)) + b"".join(items)


def request(key, version, correlation, body=b""):
    """A request (header v1, client id "scale") after its size."""
    return wire.frame(wire.header(key, version, correlation, "scale") + body)


def open_idle(cluster, count, timeout=WAIT):
    """`count` sockets spread over the nodes, each having sent ApiVersions
    and read its whole answer; raises when one is refused or unanswered."""
    socks, pending = [], {}
    sel = selectors.DefaultSelector()
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", cluster.ports[i % cluster.size]), timeout=30)
        s.sendall(request(18, 0, i))  # ApiVersions v0
        s.setblocking(False)
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        if i % 500 == 499:
            drain(sel, pending, 0)
    drain(sel, pending, timeout)
    sel.close()
    if pending:
        raise RuntimeError(f"{len(pending)} of {count} connections got no ApiVersions answer")
    return socks


def drain(sel, pending, timeout):
    deadline = time.monotonic() + timeout
    while pending:
        events = sel.select(max(0.0, deadline - time.monotonic()) if timeout else 0)
        if not events:
            if not timeout or time.monotonic() >= deadline:
                return
            continue
        for key, _ in events:
            s = key.fileobj
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("a broker closed an idle connection")
            data = pending[s] + chunk
            if len(data) >= 4 and len(data) >= 4 + struct.unpack(">i", data[:4])[0]:
                sel.unregister(s)
                del pending[s]
            else:
                pending[s] = data


def produce_latency(cluster, seconds):
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "log_level": 0, **PRODUCER})
    latencies, failed = [], []
    value = b"x" * RECORD

    def report(err, _msg, sent):
        if err is not None:
            failed.append(err)
        else:
            latencies.append((time.monotonic() - sent) * 1000)
    producer.list_topics("scale-latency", timeout=30)
    started = time.monotonic()
    for i in range(int(RATE * seconds)):
        while time.monotonic() < started + i / RATE:
            producer.poll(0.0005)
        producer.produce("scale-latency", value, on_delivery=lambda e, m, t=time.monotonic(): report(e, m, t))
        producer.poll(0)
    if producer.flush(60) or failed:
        raise RuntimeError(f"records not delivered: {failed[:1]}")
    return pct(latencies, 0.5), pct(latencies, 0.99)


def connections_run(kind, n, workdir):
    cluster = Cluster(kind, 3, workdir)
    try:
        results = {"start-up s": cluster.start()}
        client = admin(cluster)
        client.create_topics([NewTopic("scale-latency", 6, REPLICAS)])["scale-latency"].result()
        produce_latency(cluster, n["seconds"])  # warm-up (the JIT's), not counted
        for count in n["connections"]:
            point = {}
            try:
                time.sleep(1)
                before = cluster.rss()
                socks = open_idle(cluster, count)
                try:
                    time.sleep(1)
                    opened = cluster.rss()
                    if count:
                        point["RSS KiB/connection"] = (opened - before) * 1024 / count
                    point["produce p50 ms"], point["produce p99 ms"] = produce_latency(cluster, n["seconds"])
                    point["broker RSS MiB"] = cluster.rss()
                finally:
                    for s in socks:
                        s.close()
            except Exception as e:  # noqa: BLE001 - the point fails, the next one is tried
                point = {"error": f"{type(e).__name__}: {e}"}
            results[count] = point
        return results
    finally:
        cluster.kill()


class Connection:
    """An asyncio connection to a broker, one request at a time."""

    def __init__(self, streams):
        self.reader, self.writer = streams
        self.correlation = 0

    async def ask(self, key, version, body):
        self.correlation += 1
        self.writer.write(request(key, version, self.correlation, body))
        size = struct.unpack(">i", await self.reader.readexactly(4))[0]
        answer = wire.Reader(await self.reader.readexactly(size))
        answer.take(">i")  # correlation id
        return answer


async def connect(port):
    return Connection(await asyncio.open_connection("127.0.0.1", port))


# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, REBALANCE_IN_PROGRESS
RETRIABLE = {14, 15, 16, 27}
MEMBER_ID_REQUIRED = 79


class Retry(Exception):
    """The coordinator moved or is not ready, or the group rebalances."""


def check(error, what):
    if error in RETRIABLE:
        raise Retry(f"{what}: error {error}")
    if error:
        raise RuntimeError(f"{what}: error {error}")


def subscription():
    """ConsumerProtocolSubscription v0 to GROUP_TOPIC."""
    return struct.pack(">h", 0) + wire_array([wire.string(GROUP_TOPIC)]) + struct.pack(">i", -1)


def assignment():
    """ConsumerProtocolAssignment v0 of every partition of GROUP_TOPIC."""
    partitions = wire_array([struct.pack(">i", p) for p in range(GROUP_PARTITIONS)])
    return struct.pack(">h", 0) + wire_array([wire.string(GROUP_TOPIC) + partitions]) + struct.pack(">i", -1)


class Member:
    """The one member of a classic consumer group, as a consumer would be;
    it asks node `first` (0-based) which node is the group's coordinator."""

    def __init__(self, cluster, group, first):
        self.cluster, self.group, self.first = cluster, group, first
        self.coordinator = None
        self.member_id, self.generation = "", -1

    async def find(self):
        """Connects to the group's coordinator, once there is one."""
        asker = await connect(self.cluster.ports[self.first])
        try:
            while True:
                answer = await asker.ask(10, 2, wire.string(self.group) + b"\0")  # FindCoordinator v2
                answer.take(">i")  # throttle
                error, _message, _node, _host, port = (answer.take(">h"), answer.string(), answer.take(">i"),
                                                       answer.string(), answer.take(">i"))
                if error not in RETRIABLE:
                    break
                await asyncio.sleep(0.05)
            check(error, f"FindCoordinator {self.group}")
        finally:
            asker.writer.close()
        self.coordinator = await connect(port)

    async def join(self):
        """JoinGroup (again with the member id the broker hands out) and
        SyncGroup assigning itself every partition."""
        while True:
            answer = await self.coordinator.ask(11, 5, (  # JoinGroup v5
                wire.string(self.group) + struct.pack(">ii", SESSION_MS, SESSION_MS) + wire.string(self.member_id)
                + wire.string(None) + wire.string("consumer")
                + wire_array([wire.string("range") + wire.byte_string(subscription())])))
            answer.take(">i")  # throttle
            error, self.generation, _protocol, _leader = (answer.take(">h"), answer.take(">i"), answer.string(),
                                                          answer.string())
            self.member_id = answer.string()
            if error != MEMBER_ID_REQUIRED:
                break
        check(error, f"JoinGroup {self.group}")
        answer = await self.coordinator.ask(14, 3, (  # SyncGroup v3
            wire.string(self.group) + struct.pack(">i", self.generation) + wire.string(self.member_id)
            + wire.string(None) + wire_array([wire.string(self.member_id) + wire.byte_string(assignment())])))
        answer.take(">i")  # throttle
        check(answer.take(">h"), f"SyncGroup {self.group}")
        if answer.bytes() != assignment():
            raise RuntimeError(f"{self.group}: SyncGroup answered another assignment")

    async def enter(self):
        """join(), from FindCoordinator again after an error that asks for it."""
        while True:
            try:
                return await self.join()
            except Retry:
                self.member_id = ""
                self.coordinator.writer.close()
                await asyncio.sleep(0.05)
                await self.find()

    async def commit(self, offset):
        """Milliseconds of one OffsetCommit v7 of `offset` for every partition."""
        partitions = [struct.pack(">iqi", p, offset, -1) + wire.string(None) for p in range(GROUP_PARTITIONS)]
        body = (wire.string(self.group) + struct.pack(">i", self.generation) + wire.string(self.member_id)
                + wire.string(None) + wire_array([wire.string(GROUP_TOPIC) + wire_array(partitions)]))
        started = time.monotonic()
        answer = await self.coordinator.ask(8, 7, body)
        ms = (time.monotonic() - started) * 1000
        answer.take(">i")  # throttle
        for _ in range(answer.take(">i")):
            answer.string()
            for _ in range(answer.take(">i")):
                answer.take(">i")
                check(answer.take(">h"), f"OffsetCommit {self.group}")
        return ms


async def join_all(members):
    """Seconds from the first JoinGroup until every member's SyncGroup
    answered, every member connected to its coordinator first."""
    await asyncio.wait_for(asyncio.gather(*(m.find() for m in members)), WAIT)
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(m.enter() for m in members)), WAIT)
    return time.monotonic() - started


async def commits(members, count):
    """`count` OffsetCommit round trips (ms), one after the other, the i-th
    from members[i mod len(members)]."""
    return [await members[i % len(members)].commit(i) for i in range(count)]


def all_stable(cluster, groups):
    """Raises unless DescribeGroups shows every group Stable with its one
    member assigned every partition."""
    client = admin(cluster)
    for group, future in client.describe_consumer_groups(groups, request_timeout=WAIT).items():
        described = future.result()
        assigned = [len(m.assignment.topic_partitions) for m in described.members]
        if described.state != ConsumerGroupState.STABLE or assigned != [GROUP_PARTITIONS]:
            raise RuntimeError(f"{group} is {described.state}, its members assigned {assigned} partitions")


async def groups_point(cluster, count, n):
    warm_up = Member(cluster, "scale-warm-up", 0)  # creates __consumer_offsets, the JIT's; not counted
    await join_all([warm_up])
    await commits([warm_up], n["commits"] // 5)
    members = [Member(cluster, f"scale-group-{i}", i % cluster.size) for i in range(count)]
    try:
        metrics = {"join s": await join_all(members)}
        latencies = await commits(members, n["commits"])
        metrics["commit p50 ms"], metrics["commit p99 ms"] = pct(latencies, 0.5), pct(latencies, 0.99)
        metrics["broker RSS MiB"] = cluster.rss()
        all_stable(cluster, [m.group for m in members])
        return metrics
    finally:
        for m in [warm_up, *members]:
            if m.coordinator:
                m.coordinator.writer.close()


def known_everywhere(cluster, topic, partitions):
    """Waits until every node itself answers Metadata listing every
    partition of `topic` with a leader (a coordinator refuses commits to
    partitions it does not know of)."""
    for node in range(1, cluster.size + 1):
        # A fresh client knows that node alone until its first answer.
        if wait_for(lambda: AdminClient({"bootstrap.servers": cluster.address(node), "log_level": 0}),
                    lambda md: all_led(md, [topic], partitions)) is None:
            raise RuntimeError(f"node {node} did not list {topic} within {WAIT} s")


def groups_run(kind, count, n, workdir):
    cluster = Cluster(kind, 3, workdir)
    try:
        metrics = {"start-up s": cluster.start()}
        client = admin(cluster)
        client.create_topics([NewTopic(GROUP_TOPIC, GROUP_PARTITIONS, REPLICAS)])[GROUP_TOPIC].result()
        known_everywhere(cluster, GROUP_TOPIC, GROUP_PARTITIONS)
        metrics.update(asyncio.run(groups_point(cluster, count, n)))
        return metrics
    finally:
        cluster.kill()


def words(size):
    """`size` bytes of words drawn at random (seeded) from 1,000 random
    lowercase words."""
    rng = random.Random(1)
    vocabulary = ["".join(rng.choices(ascii_lowercase, k=rng.randint(2, 12))) for _ in range(1000)]
    return " ".join(rng.choices(vocabulary, k=size // 4)).encode()[:size]


def size_point(size, codec):
    """The name of a point of the sizes curve: "64 KiB lz4"."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size % scale == 0:
            return f"{size // scale} {unit} {codec}"
    return f"{size} B {codec}"


def replicated(client, topic, records):
    """Waits until the high watermarks of `topic` add up to `records`."""
    latest = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(SIZE_PARTITIONS)}
    deadline = time.monotonic() + WAIT
    while sum(f.result().offset for f in client.list_offsets(latest).values()) < records:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic}: not every record replicated within {WAIT} s")
        time.sleep(0.05)


def size_run(cluster, pool, codec, n):
    """Produce MB/s and CPU s/GB of values of pool's size with `codec`."""
    size = len(pool[0])
    records = min(n["size bytes"] // size, n["size records"])
    topic = f"scale-{size}-{codec}"
    client = admin(cluster)
    client.create_topics([NewTopic(topic, SIZE_PARTITIONS, REPLICAS,
                                   config={"max.message.bytes": str(MAX_MESSAGE)})])[topic].result()
    if wait_for(client, lambda md: all_led(md, [topic], SIZE_PARTITIONS)) is None:
        raise RuntimeError(f"{topic} had no leaders within {WAIT} s")
    targets = [(topic, p) for p in range(SIZE_PARTITIONS)]
    settings = {"compression.type": codec, "message.max.bytes": MAX_MESSAGE}
    produce_spread(cluster, targets, records // 5, pool, settings)  # warm-up (the JIT's), not counted
    replicated(client, topic, records // 5)
    cpu = cluster.cpu()
    mbs = produce_spread(cluster, targets, records, pool, settings)
    replicated(client, topic, records // 5 + records)
    return {"produce MB/s": mbs, "CPU s/GB": (cluster.cpu() - cpu) / (records * size / 1e9)}


def sizes_run(kind, n, workdir):
    cluster = Cluster(kind, 3, workdir)
    try:
        results = {"start-up s": cluster.start()}
        text = words(TEXT)
        for size in n["sizes"]:
            pool = [text[o:o + size] for o in range(0, TEXT - size + 1, size)]
            for codec in n["codecs"]:
                try:
                    point = size_run(cluster, pool, codec, n)
                except Exception as e:  # noqa: BLE001 - the point fails, the next one is tried
                    point = {"error": f"{type(e).__name__}: {e}"}
                results[size_point(size, codec)] = point
        return results
    finally:
        cluster.kill()


PARTITION_METRICS = {"create s": False, "Metadata p50 ms": False, "Metadata p99 ms": False,
                     "produce MB/s": True, "peak RSS MiB": False, "RSS after load MiB": False,
                     "restart s": False, "controlled shutdown s": False, "shutdown exit s": False}
CONNECTION_METRICS = {"RSS KiB/connection": False, "produce p50 ms": False, "produce p99 ms": False,
                      "broker RSS MiB": False}
GROUP_METRICS = {"join s": False, "commit p50 ms": False, "commit p99 ms": False, "broker RSS MiB": False}
SIZE_METRICS = {"produce MB/s": True, "CPU s/GB": False}
# curve: (its run, whether each point has a cluster of its own: run(kind,
# point, n, workdir) for each point, else run(kind, n, workdir) for them all)
RUNS = {"partitions": (partitions_run, True), "connections": (connections_run, False),
        "groups": (groups_run, True), "sizes": (sizes_run, False)}


def points(curve, n):
    if curve == "sizes":
        return [size_point(size, codec) for size in n["sizes"] for codec in n["codecs"]]
    return n[curve]


def plot_lines(curve, n):
    """The plot's lines of each kind: {name: [(x, point)]}; the sizes curve
    has one per codec over the record size."""
    if curve == "sizes":
        return {codec: [(size, size_point(size, codec)) for size in n["sizes"]] for codec in n["codecs"]}
    return {"": [(p, p) for p in n[curve]]}


def attempt(what, measure, rundir, keep):
    """measure(rundir), or the error it raised; the directory is removed
    after unless `keep` (then it goes with the whole work directory at the
    end)."""
    print(f"{what}...", file=sys.stderr, flush=True)
    try:
        result = measure(rundir)
    except Exception as e:  # noqa: BLE001 - the run goes on
        result = {"error": f"{type(e).__name__}: {e}"}
    finally:
        if not keep:
            shutil.rmtree(rundir, ignore_errors=True)
    print(f"  {result}", file=sys.stderr, flush=True)
    return result


def curve_run(curve, kind, repeat, n, workdir, keep):
    """One run of `curve` on `kind`: {point: its metrics or its error}."""
    run, per_point = RUNS[curve]
    what = f"{kind}: repeat {repeat}, {curve}"
    if per_point:
        # The points of the partitions curve leave tens of thousands of
        # files each: they are deleted only at the end (see the docstring).
        keep = keep or curve == "partitions"
        return {p: attempt(f"{what} {p}", lambda d, p=p: run(kind, p, n, d),
                           workdir / f"{kind}-{repeat}-{curve}-{p}", keep) for p in n[curve]}
    result = attempt(what, lambda d: run(kind, n, d), workdir / f"{kind}-{repeat}-{curve}", keep)
    return {p: result for p in points(curve, n)} if "error" in result else result


def values(runs, point, metric):
    """Each run's number at `point` (None: never happened), the runs in
    which the point failed left out."""
    return [r[point][metric] for r in runs if metric in r.get(point, {})]


def table(results, points, metrics):
    out = ["| Point | Metric | Gregor | Kafka | Gregor / Kafka | Better |", "|---|---|---|---|---|---|"]
    for point in points:
        name = f"{point:,}" if isinstance(point, int) else point
        for metric, higher in metrics.items():
            g, k = (values(results[kind], point, metric) for kind in ("gregor", "kafka"))
            if not g and not k:  # not measured at this point (or failed: see below the table)
                continue
            ratio, better = compare(g, k, higher) if g and k else ("-", "-")
            out.append(f"| {name} | {metric} | {spread(g) if g else 'failed'} | "
                       f"{spread(k) if k else 'failed'} | {ratio} | {better} |")
    return "\n".join(out)


def failures(results):
    lines = []
    for curve, per_kind in results.items():
        for kind, runs in per_kind.items():
            for r in runs:
                for point, v in r.items():
                    if isinstance(v, dict) and "error" in v:
                        lines.append(f"- {curve}, {kind}, {point}: {v['error']}")
    return lines


def plot(results, curve, curve_lines, metrics, name, xlabel):
    """One PNG of `metrics` against the points, both kinds on each chart
    (`curve_lines`: see plot_lines()); skipped (with a note) when matplotlib is
    missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"(no {name}.png: matplotlib is not installed)"
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4))
    for ax, metric in zip(axes, metrics):
        for kind, color in (("gregor", "tab:blue"), ("kafka", "tab:orange")):
            for (line, xs_points), style in zip(curve_lines.items(), ("-", "--", ":")):
                xs, ys = [], []
                for x, p in xs_points:
                    vs = [v for v in values(results[curve][kind], p, metric) if v is not None]
                    if vs:
                        xs.append(x)
                        ys.append(statistics.median(vs))
                ax.plot(xs, ys, marker="o", color=color, linestyle=style, label=f"{kind} {line}".strip())
        ax.set_xscale("symlog", linthresh=10)  # the point 0 (no idle connections) too
        ax.set_xlabel(xlabel)
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=80)
    plt.close(fig)
    return f"![{curve}]({name}.png)"


# curve: (heading, metrics (higher is better?), metrics plotted, x axis)
SECTIONS = {
    "partitions": (f"Partitions (total, topics of up to {PER_TOPIC})", PARTITION_METRICS,
                   ["produce MB/s", "Metadata p99 ms", "RSS after load MiB", "create s"], "partitions"),
    "connections": ("Idle connections", CONNECTION_METRICS,
                    ["RSS KiB/connection", "produce p99 ms", "broker RSS MiB"], "connections"),
    "groups": ("Consumer groups (one member each)", GROUP_METRICS,
               ["join s", "commit p99 ms", "broker RSS MiB"], "groups"),
    "sizes": ("Record size and compression", SIZE_METRICS, ["produce MB/s", "CPU s/GB"], "record bytes"),
}


def section(results, curve, n, name):
    """The curve's table and plot; `name` is its report's (and plot's)."""
    heading, metrics, plotted, xlabel = SECTIONS[curve]
    return (f"### {heading}\n\n{table(results[curve], points(curve, n), metrics)}\n\n"
            f"{plot(results, curve, plot_lines(curve, n), plotted, name, xlabel)}\n\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny points, one repeat: checks that it all runs")
    parser.add_argument("--repeat", "--runs", type=int, dest="repeat",
                        help="repeats, each one run of each kind (default 3, --quick 1)")
    parser.add_argument("--only", choices=list(RUNS), help="one curve only")
    parser.add_argument("--keep", action="store_true", help="keep the brokers' directories (logs and data)")
    args = parser.parse_args()
    n = SIZES["quick" if args.quick else "full"]
    repeat = args.repeat or n["repeat"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    curves = [args.only] if args.only else list(RUNS)
    workdir = Path(tempfile.mkdtemp(prefix="gregor-scale-"))
    results = {curve: {"gregor": [], "kafka": []} for curve in curves}
    try:
        for i in range(repeat):
            for kind in (["gregor", "kafka"] if i % 2 == 0 else ["kafka", "gregor"]):
                for curve in curves:
                    results[curve][kind].append(curve_run(curve, kind, i + 1, n, workdir, args.keep))
    finally:
        if args.keep:
            print(f"brokers' directories kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    prefix = "scale-quick" if args.quick else "scale"
    command = "bench/run scale" + "".join(f" {a}" for a in sys.argv[1:] if a != "--keep")
    note = "quick: tiny points, one run, checks that everything runs" if args.quick else ""
    conf = lambda d: ", ".join(f"`{k}={v}`" for k, v in d.items())  # noqa: E731
    parts = [header(command, note),
             f"Brokers: three nodes of each kind (brokers and voters), on loopback; "
             f"{conf(shared_properties(3, {}))}; each product's defaults otherwise. Gregor binary: "
             f"`{GREGOR_BIN}`. Topics: replication factor {REPLICAS}.\n\n"
             f"Clients: confluent-kafka (librdkafka), producer {conf(PRODUCER)}, 1 KiB values but for the "
             f"record sizes; "
             f"{n['records']:,} records over all partitions; {n['metadata requests']} Metadata requests; "
             f"{RATE} records/s for {n['seconds']} s beside the idle connections. File descriptor limit of "
             f"the client and brokers: {hard} (was {soft}). Consumer groups: raw-protocol members (classic "
             f"protocol, session and rebalance timeouts {SESSION_MS:,} ms) on a topic of {GROUP_PARTITIONS} "
             f"partitions, {n['commits']:,} OffsetCommits. Record sizes: topics of {SIZE_PARTITIONS} partitions, "
             f"the producer's `compression.type` the codec, `max.message.bytes={MAX_MESSAGE}` on topic and "
             f"producer, {n['size bytes'] / 1e6:,.0f} MB of values per point, at most "
             f"{n['size records']:,} records.\n\n"
             f"Values: median of {repeat} repeat(s) (min-max), the kinds alternating which goes first; "
             f"\"never\": the event did not happen within {WAIT} s. What each metric is, precisely: "
             f"bench/scale.py's docstring (restart s: kill -9 of node 3 to its first Metadata answer, "
             f"from the restarted node itself, listing it in the ISR of every partition it replicates and every "
             f"partition with a leader; controlled "
             f"shutdown s: SIGTERM of node 1 to Metadata with no partition led by it; join s: from the first "
             f"JoinGroup to the last group's SyncGroup answer; CPU s/GB: the brokers' CPU until every record is "
             f"replicated, per GB of uncompressed values).\n\n"]
    settings = {"producer": PRODUCER, "sizes": n, "repeat": repeat, "rate": RATE, "record bytes": RECORD,
                "nofile": hard, "session ms": SESSION_MS, "max message bytes": MAX_MESSAGE}
    failed = False
    for curve in curves:
        name = f"{prefix}-{curve}"
        report = parts + [section(results, curve, n, name)]
        errors = failures({curve: results[curve]})
        if errors:
            failed = True
            report.append("Failed points:\n\n" + "\n".join(errors) + "\n")
        markdown = "".join(report)
        write(name, markdown, {"settings": settings, "curve": curve,
                               "results": {k: [{str(p): v for p, v in r.items()} for r in runs]
                                           for k, runs in results[curve].items()}})
        print(markdown)
    if args.quick and failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

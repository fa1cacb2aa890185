"""Scale: Gregor side by side with Apache Kafka (the tests' reference
version, KAFKA_VERSION in tests/conftest.py) as the number of partitions or
of client connections grows, curves over those points rather than one
point. Each kind runs as three nodes (brokers and voters of the metadata
quorum, cluster.py's shared settings, each product's defaults otherwise),
topics with replication factor 3; the kinds alternate which goes first from
one repeat to the next. Writes the median of the repeats per point, their
range and Gregor/Kafka ratios to bench/results/scale.md, every run's raw
numbers to scale.json and plots to scale-partitions.png and
scale-connections.png (--quick: scale-quick.*). These are measures, never
assertions.

Partitions (a fresh cluster per point): P partitions in total, as topics of
min(P, 100) partitions each.

- create s: from the admin client's CreateTopics (every topic, in batches
  of CREATE_BATCH topics) to the first Metadata listing every partition
  with a leader.
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

A run that fails records its error and the run goes on; --quick exits
non-zero when any run failed. Consumer groups and record sizes or
compression are not measured yet.
"""

import argparse
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

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import GREGOR_BIN, Cluster, shared_properties
from report import RESULTS, compare, header, spread, write

RECORD = 1024
PER_TOPIC = 100
CREATE_BATCH = 50
REPLICAS = 3
PRODUCER = {"acks": "1", "linger.ms": 5, "queue.buffering.max.messages": 1000000,
            "queue.buffering.max.kbytes": 1048576}
RATE = 1000
SIZES = {
    "full": {"repeat": 3, "partitions": [100, 1000, 10000], "connections": [0, 100, 1000, 10000],
             "records": 200000, "metadata requests": 50, "seconds": 10},
    "quick": {"repeat": 1, "partitions": [10, 100], "connections": [0, 10, 100],
              "records": 10000, "metadata requests": 10, "seconds": 2},
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
        try:
            if check((client() if callable(client) else client).list_topics(timeout=2)):
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - no answer yet, ask again
            pass
        time.sleep(0.05)
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


def produce_spread(cluster, topics, total, records):
    """MB/s of `records` 1 KiB values round-robin over every partition."""
    per = total // len(topics)
    targets = [(t, p) for t in topics for p in range(per)]
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "log_level": 0, **PRODUCER})
    failed = []
    value = b"x" * RECORD

    def report(err, _msg):
        if err is not None:
            failed.append(err)
    producer.list_topics(timeout=30)
    started = time.monotonic()
    for i in range(records):
        topic, partition = targets[i % len(targets)]
        while True:
            try:
                producer.produce(topic, value, partition=partition, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(WAIT)
    seconds = time.monotonic() - started
    if left or failed:
        raise RuntimeError(f"{left} records not delivered, {len(failed)} failed: {failed[:1]}")
    return records * RECORD / seconds / 1e6


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
        produce_spread(cluster, topics, total, n["records"] // 5)  # warm-up (the JIT's), not counted
        metrics["produce MB/s"] = produce_spread(cluster, topics, total, n["records"])
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


def api_versions_request(correlation):
    client = b"scale"
    body = struct.pack(">hhih", 18, 0, correlation, len(client)) + client
    return struct.pack(">i", len(body)) + body


def open_idle(cluster, count, timeout=WAIT):
    """`count` sockets spread over the nodes, each having sent ApiVersions
    and read its whole answer; raises when one is refused or unanswered."""
    socks, pending = [], {}
    sel = selectors.DefaultSelector()
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", cluster.ports[i % cluster.size]), timeout=30)
        s.sendall(api_versions_request(i))
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


def connections_run(kind, points, n, workdir):
    cluster = Cluster(kind, 3, workdir)
    try:
        results = {"start-up s": cluster.start()}
        client = admin(cluster)
        client.create_topics([NewTopic("scale-latency", 6, REPLICAS)])["scale-latency"].result()
        produce_latency(cluster, n["seconds"])  # warm-up (the JIT's), not counted
        for count in points:
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


PARTITION_METRICS = {"create s": False, "Metadata p50 ms": False, "Metadata p99 ms": False,
                     "produce MB/s": True, "peak RSS MiB": False, "RSS after load MiB": False,
                     "restart s": False, "controlled shutdown s": False, "shutdown exit s": False}
CONNECTION_METRICS = {"RSS KiB/connection": False, "produce p50 ms": False, "produce p99 ms": False,
                      "broker RSS MiB": False}


def values(runs, point, metric):
    """Each run's number at `point` (None: never happened), the runs in
    which the point failed left out."""
    return [r[point][metric] for r in runs if metric in r.get(point, {})]


def table(results, points, metrics):
    out = ["| Point | Metric | Gregor | Kafka | Gregor / Kafka | Better |", "|---|---|---|---|---|---|"]
    for point in points:
        for metric, higher in metrics.items():
            g, k = (values(results[kind], point, metric) for kind in ("gregor", "kafka"))
            if not g and not k:  # not measured at this point (or failed: see below the table)
                continue
            ratio, better = compare(g, k, higher) if g and k else ("-", "-")
            out.append(f"| {point:,} | {metric} | {spread(g) if g else 'failed'} | "
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


def plot(results, curve, points, metrics, name):
    """One PNG of `metrics` against the points, both kinds on each chart;
    skipped (with a note) when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"(no {name}.png: matplotlib is not installed)"
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4))
    for ax, metric in zip(axes, metrics):
        for kind in ("gregor", "kafka"):
            xs, ys = [], []
            for p in points:
                vs = [v for v in values(results[curve][kind], p, metric) if v is not None]
                if vs:
                    xs.append(p)
                    ys.append(statistics.median(vs))
            ax.plot(xs, ys, marker="o", label=kind)
        ax.set_xscale("symlog", linthresh=10)  # the point 0 (no idle connections) too
        ax.set_xlabel(curve)
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=80)
    plt.close(fig)
    return f"![{curve}]({name}.png)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny points, one repeat: checks that it all runs")
    parser.add_argument("--repeat", "--runs", type=int, dest="repeat",
                        help="repeats, each one run of each kind (default 3, --quick 1)")
    parser.add_argument("--only", choices=["partitions", "connections"], help="one curve only")
    parser.add_argument("--keep", action="store_true", help="keep the brokers' directories (logs and data)")
    args = parser.parse_args()
    n = SIZES["quick" if args.quick else "full"]
    repeat = args.repeat or n["repeat"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    curves = [args.only] if args.only else ["partitions", "connections"]
    workdir = Path(tempfile.mkdtemp(prefix="gregor-scale-"))
    results = {curve: {"gregor": [], "kafka": []} for curve in curves}
    try:
        for i in range(repeat):
            for kind in (["gregor", "kafka"] if i % 2 == 0 else ["kafka", "gregor"]):
                if "partitions" in curves:
                    run = {}
                    for total in n["partitions"]:
                        print(f"{kind}: repeat {i + 1}, {total} partitions...", file=sys.stderr, flush=True)
                        rundir = workdir / f"{kind}-{i + 1}-p{total}"
                        try:
                            run[total] = partitions_run(kind, total, n, rundir)
                        except Exception as e:  # noqa: BLE001 - the point fails, the run goes on
                            run[total] = {"error": f"{type(e).__name__}: {e}"}
                        finally:
                            if not args.keep:
                                shutil.rmtree(rundir, ignore_errors=True)
                        print(f"  {run[total]}", file=sys.stderr, flush=True)
                    results["partitions"][kind].append(run)
                if "connections" in curves:
                    print(f"{kind}: repeat {i + 1}, connections...", file=sys.stderr, flush=True)
                    rundir = workdir / f"{kind}-{i + 1}-connections"
                    try:
                        run = connections_run(kind, n["connections"], n, rundir)
                    except Exception as e:  # noqa: BLE001 - every point fails with it
                        run = {p: {"error": f"{type(e).__name__}: {e}"} for p in n["connections"]}
                    finally:
                        if not args.keep:
                            shutil.rmtree(rundir, ignore_errors=True)
                    print(f"  {run}", file=sys.stderr, flush=True)
                    results["connections"][kind].append(run)
    finally:
        if args.keep:
            print(f"brokers' directories kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    name = "scale-quick" if args.quick else "scale"
    command = "bench/run scale" + "".join(f" {a}" for a in sys.argv[1:] if a != "--keep")
    note = "quick: tiny points, one run, checks that everything runs" if args.quick else ""
    conf = lambda d: ", ".join(f"`{k}={v}`" for k, v in d.items())  # noqa: E731
    parts = [header(command, note),
             f"Brokers: three nodes of each kind (brokers and voters), on loopback; "
             f"{conf(shared_properties(3, {}))}; each product's defaults otherwise. Gregor binary: "
             f"`{GREGOR_BIN}`. Topics: replication factor {REPLICAS}.\n\n"
             f"Clients: confluent-kafka (librdkafka), producer {conf(PRODUCER)}, 1 KiB values; "
             f"{n['records']:,} records over all partitions; {n['metadata requests']} Metadata requests; "
             f"{RATE} records/s for {n['seconds']} s beside the idle connections. File descriptor limit of "
             f"the client and brokers: {hard} (was {soft}).\n\n"
             f"Values: median of {repeat} repeat(s) (min-max), the kinds alternating which goes first; "
             f"\"never\": the event did not happen within {WAIT} s. What each metric is, precisely: "
             f"bench/scale.py's docstring (restart s: kill -9 of node 3 to its first Metadata answer, "
             f"from the restarted node itself, listing it in the ISR of every partition it replicates and every "
             f"partition with a leader; controlled "
             f"shutdown s: SIGTERM of node 1 to Metadata with no partition led by it).\n\n"]
    if "partitions" in results:
        parts.append(f"### Partitions (total, topics of up to {PER_TOPIC})\n\n"
                     f"{table(results['partitions'], n['partitions'], PARTITION_METRICS)}\n\n"
                     f"{plot(results, 'partitions', n['partitions'], ['produce MB/s', 'Metadata p99 ms', 'RSS after load MiB', 'create s'], f'{name}-partitions')}\n\n")
    if "connections" in results:
        parts.append(f"### Idle connections\n\n"
                     f"{table(results['connections'], n['connections'], CONNECTION_METRICS)}\n\n"
                     f"{plot(results, 'connections', n['connections'], ['RSS KiB/connection', 'produce p99 ms', 'broker RSS MiB'], f'{name}-connections')}\n\n")
    errors = failures(results)
    if errors:
        parts.append("Failed points:\n\n" + "\n".join(errors) + "\n")
    markdown = "".join(parts)
    write(name, markdown, {"settings": {"producer": PRODUCER, "sizes": n, "repeat": repeat, "rate": RATE,
                                        "record bytes": RECORD, "nofile": hard},
                           "results": {c: {k: [{str(p): v for p, v in r.items()} for r in runs]
                                           for k, runs in per.items()} for c, per in results.items()}})
    print(markdown)
    if args.quick and errors:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Log compaction: Gregor side by side with Apache Kafka (the tests'
reference version, KAFKA_VERSION in tests/conftest.py), the same workload
and clients, one broker kind after the other. Writes the median of the runs,
their range and Gregor/Kafka ratios to bench/results/compaction.md and
.json (--quick: compaction-quick.*). These are measures, never assertions.

Every run starts a fresh single broker of each kind with CLEANER on both:
one cleaner thread, Kafka's default dedupe buffer, a short back-off so that
waiting for the cleaner's next pass does not dominate; unthrottled, each
product's defaults otherwise. A compacted topic has one partition,
cleanup.policy=compact and small segments (`segment` bytes), and is loaded
by one librdkafka producer (confluent-kafka, acks=1) with `mib` MiB of
1 KiB values, record i with key i % `keys`, so that all but the last `keys`
records are superseded; then the driver syncs (os.sync), so that the
kernel's writeback of the load is not measured with the cleaning. While it
loads, a min.compaction.lag.ms of a day keeps the cleaner off it (a
min.cleanable.dirty.ratio cannot: a log never cleaned is all dirty, ratio
1); then one IncrementalAlterConfigs sets CLEAN_NOW and the cleaner takes
the log at its next pass. Before the measures each broker cleans a first
topic of `warm-up mib` MiB the same way, unmeasured: the JVM compiles
Kafka's cleaner in its first cleanings. Measures:

- cleaning throughput: the bytes of the segments the cleaning rewrote over
  its duration, both as the broker reports them: Gregor's log line "cleaned
  a compacted log" (bytes_before, ms), Kafka's log cleaner's report ("... MB
  of log processed in ... seconds (... MB/sec)", its MB being MiB); and wall
  times from sending the alter: to the driver seeing that report (the
  broker's log is polled every POLL s), and to 95% of the bytes the
  cleaning frees being gone from the partition's .log files (Kafka renames
  the segments it replaces to .deleted at once, removing them later);
- memory while cleaning: the broker process's RSS when the alter is sent
  and its peak (VmHWM, reset at the alter through /proc/<pid>/clear_refs)
  until the cleaning is seen reported. Kafka's JVM runs with kafka-server-
  start's 1 GiB heap, in which its dedupe buffer is allocated whole when the
  cleaner starts; Gregor takes its key map as keys come: the absolute values
  are not of the same kind;
- produce latency while cleaning: a second compacted topic loaded as the
  first; a librdkafka producer (acks=all, linger.ms=1, as bench.py's latency
  workload; not kafka-producer-perf-test, whose summary cannot be cut to
  the cleaning's duration) writes `rate` 1 KiB records/s to another topic of
  LATENCY_PARTITIONS partitions from `baseline` s before the alter until the
  cleaning is seen reported. Latency from produce() to the delivery report,
  of the records sent before the alter (cleaner idle; the producer's first
  second excepted) and of those sent during the cleaning (its reported
  duration, up to when the driver saw the report).

The machine's memory holds the logs: cleanings read from the page cache,
so what is measured is the cleaner's CPU work and its writes.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from cluster import GREGOR_BIN, LOG4J, Cluster, peak_rss_mib, shared_properties
from report import compare, header, spread, write

from conftest import free_port  # noqa: E402 - tests/ is on the path cluster.py sets

MiB = 1 << 20
RECORD = 1024
SIZES = {
    "full": {"runs": 3, "mib": 2048, "warm-up mib": 256, "keys": 100_000, "segment": 16 * MiB, "rate": 5_000,
             "baseline": 10},
    "quick": {"runs": 1, "mib": 96, "warm-up mib": 16, "keys": 10_000, "segment": 4 * MiB, "rate": 1_000,
              "baseline": 3},
}
# The same on both kinds: Kafka's defaults for the threads and the buffer,
# written out so that the report states them.
CLEANER = {"log.cleaner.threads": 1, "log.cleaner.dedupe.buffer.size": 128 * MiB, "log.cleaner.backoff.ms": 200}
LOADING = {"cleanup.policy": "compact", "min.compaction.lag.ms": 86_400_000}
CLEAN_NOW = {"min.compaction.lag.ms": 0, "min.cleanable.dirty.ratio": 0.01}
LOADER = {"acks": 1, "linger.ms": 10, "batch.size": 512 * 1024}
PROBE = {"acks": "all", "linger.ms": 1}
LATENCY_PARTITIONS = 6
POLL = 0.05
CLEANING_TIMEOUT = 900
# Kafka's log cleaner reports at INFO, which the tests' configuration hides.
KAFKA_CLEANER_LOGGER = "org.apache.kafka.storage.internals.log.LogCleaner$CleanerThread"
GREGOR_REPORT = re.compile(
    r"cleaned a compacted log topic=(?P<topic>\S+) partition=0 bytes_before=(?P<before>\d+) "
    r"bytes_after=(?P<after>\d+) .*\bms=(?P<ms>\d+)\n")
KAFKA_REPORT = re.compile(
    r"cleaned log (?P<log>\S+) \(dirty section = \[\d+, \d+\]\)\s+(?P<before>[\d,.]+) MB of log processed "
    r"in (?P<seconds>[\d,.]+) seconds \((?P<rate>[\d,.]+) MB/sec\).*?Buffer utilization: (?P<buffer>[\d.]+)%"
    r".*?End size: (?P<after>[\d,.]+) MB", re.S)


def kafka_log4j(path):
    """The tests' log4j configuration with the log cleaner's reports."""
    path.write_text(LOG4J.read_text() + f"log4j.logger.{KAFKA_CLEANER_LOGGER}=INFO\n")
    return path


def number(text):
    return float(text.replace(",", ""))


def cleaning_report(kind, text, topic):
    """The broker's report of its cleaning of `topic` in its log `text`:
    {"MiB": rewritten, "MiB after", "seconds", "MiB/s", "key map"}; None
    before it is there."""
    if kind == "gregor":
        m = next((m for m in GREGOR_REPORT.finditer(text) if m["topic"] == topic), None)
        return m and {"MiB": int(m["before"]) / MiB, "MiB after": int(m["after"]) / MiB,
                      "seconds": int(m["ms"]) / 1000, "MiB/s": int(m["before"]) / MiB / (int(m["ms"]) / 1000)}
    m = next((m for m in KAFKA_REPORT.finditer(text) if m["log"] == f"{topic}-0"), None)
    return m and {"MiB": number(m["before"]), "MiB after": number(m["after"]), "seconds": number(m["seconds"]),
                  "MiB/s": number(m["rate"]), "key map": f"{m['buffer']}% of the dedupe buffer"}


def log_bytes(cluster, topic):
    """Bytes of the partition's .log files."""
    total = 0
    for f in (cluster.dir / "data-1" / f"{topic}-0").glob("*.log"):
        try:
            total += f.stat().st_size
        except FileNotFoundError:  # replaced meanwhile
            pass
    return total


def create_compacted(cluster, topic, n):
    configs = {**LOADING, "segment.bytes": n["segment"]}
    cluster.create_topic(topic, 1, 1, [f"{k}={v}" for k, v in configs.items()])


def load(cluster, topic, mib, keys):
    """Writes `mib` MiB of 1 KiB values to the topic, record i with key
    i % `keys`, then has the kernel write them to disk (so that its
    writeback is not measured with what follows); returns MiB/s."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "log_level": 0, **LOADER})
    value = os.urandom(RECORD)
    failed = []

    def delivered(err, _msg):
        if err is not None:
            failed.append(err)
    started = time.monotonic()
    for i in range(mib * MiB // RECORD):
        while True:
            try:
                producer.produce(topic, value, b"%08d" % (i % keys), partition=0, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(300) or failed:
        raise RuntimeError(f"loading {topic}: {len(failed)} records failed, e.g. {failed[:1]}")
    rate = mib / (time.monotonic() - started)
    os.sync()
    return rate


def allow_cleaning(admin, topic):
    resource = ConfigResource("TOPIC", topic, incremental_configs=[
        ConfigEntry(k, str(v), incremental_operation=AlterConfigOpType.SET) for k, v in CLEAN_NOW.items()])
    admin.incremental_alter_configs([resource])[resource].result(30)


def clean(cluster, admin, topic):
    """Lets the cleaner at `topic` (loaded) and waits for the broker's
    report: {"report", "sent": when the alter was sent, "seen": when the
    report was, "freed": when 95% of the bytes freed were gone, "RSS MiB"
    at the alter, "peak RSS MiB" since}."""
    log = cluster.dir / f"{cluster.kind}-1.log"
    if cleaning_report(cluster.kind, log.read_text(errors="replace"), topic):
        raise RuntimeError(f"{topic} was cleaned while it loaded")
    pid = cluster.procs[0].pid
    offset = log.stat().st_size
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    rss = peak_rss_mib(pid)
    sizes = [(time.monotonic(), log_bytes(cluster, topic))]
    sent = time.monotonic()
    allow_cleaning(admin, topic)
    with open(log, errors="replace") as f:
        f.seek(offset)
        text = ""
        while (report := cleaning_report(cluster.kind, text, topic)) is None:
            if time.monotonic() > sent + CLEANING_TIMEOUT:
                raise RuntimeError(f"{topic} not cleaned within {CLEANING_TIMEOUT} s")
            time.sleep(POLL)
            sizes.append((time.monotonic(), log_bytes(cluster, topic)))
            text += f.read()
    seen = time.monotonic()
    peak = peak_rss_mib(pid)
    before, after = sizes[0][1], log_bytes(cluster, topic)
    freed = next(t for t, size in sizes + [(seen, after)] if size <= after + 0.05 * (before - after))
    return {"report": report, "sent": sent, "seen": seen, "freed": freed, "RSS MiB": rss, "peak RSS MiB": peak}


class Probe(threading.Thread):
    """A librdkafka producer writing `rate` 1 KiB records/s until stopped:
    when each record was handed to it and how long its delivery report
    took."""

    def __init__(self, bootstrap, topic, rate):
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "log_level": 0, **PROBE})
        self.topic, self.rate = topic, rate
        self.started = time.monotonic()
        self.samples = []  # (sent, seconds)
        self.failures = []
        self.stopping = threading.Event()

    def run(self):
        value = b"x" * RECORD
        i = 0
        while not self.stopping.is_set():
            # Send on schedule: record i leaves at i / rate seconds.
            while (ahead := self.started + i / self.rate - time.monotonic()) > 0:
                self.producer.poll(ahead)
            sent = time.monotonic()
            self.producer.produce(self.topic, value, on_delivery=lambda err, _msg, t=sent: self.delivered(t, err))
            self.producer.poll(0)
            i += 1
        self.producer.flush(60)

    def delivered(self, sent, err):
        if err is None:
            self.samples.append((sent, time.monotonic() - sent))
        else:
            self.failures.append(err)

    def stop(self):
        self.stopping.set()
        self.join()

    def latency(self, start, end):
        """p50, p99 and p99.9 in ms of the records sent in [start, end), and
        how many there were."""
        timed = sorted(seconds for sent, seconds in self.samples if start <= sent < end)
        if not timed:
            raise RuntimeError("no record was sent in the window")

        def pct(q):
            return timed[min(len(timed) - 1, int(q * len(timed)))] * 1000
        return {"p50": pct(0.5), "p99": pct(0.99), "p99.9": pct(0.999), "records": len(timed)}


def gregor_map_mib(http_port):
    """Gregor's key map at its largest in the last cleaning, from /metrics."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return number(re.search(r"^gregor_log_cleaner_map_bytes (\S+)$", text, re.M)[1]) / MiB


def run_once(kind, n, workdir, log4j):
    """One fresh broker: {"measures": {section: {name: value}}, "details"}."""
    http_port = free_port()
    settings = {**CLEANER, **({"http.listener": f"127.0.0.1:{http_port}"} if kind == "gregor" else {})}
    cluster = Cluster(kind, 1, workdir, settings, log4j=log4j)
    cluster.start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
        # The JVM's JIT compiles Kafka's cleaner in a first cleaning.
        create_compacted(cluster, "warm-up", n)
        load(cluster, "warm-up", n["warm-up mib"], n["keys"])
        clean(cluster, admin, "warm-up")

        create_compacted(cluster, "compacted", n)
        load_rate = load(cluster, "compacted", n["mib"], n["keys"])
        alone = clean(cluster, admin, "compacted")
        report = alone["report"]
        key_map = f"{gregor_map_mib(http_port):.1f} MiB" if kind == "gregor" else report["key map"]

        create_compacted(cluster, "compacted-2", n)
        load(cluster, "compacted-2", n["mib"], n["keys"])
        cluster.create_topic("latency", LATENCY_PARTITIONS, 1)
        probe = Probe(cluster.bootstrap, "latency", n["rate"])
        probe.start()
        try:
            time.sleep(1 + n["baseline"])
            busy = clean(cluster, admin, "compacted-2")
        finally:
            probe.stop()
        if probe.failures:
            raise RuntimeError(f"the latency producer failed: {probe.failures[:3]}")
        idle = probe.latency(probe.started + 1, busy["sent"])
        during = probe.latency(busy["seen"] - busy["report"]["seconds"], busy["seen"])
        measures = {
            "cleaning": {
                "dirty log cleaned, MiB": report["MiB"],
                "cleaning, s": report["seconds"],
                "cleaning, MiB/s": report["MiB/s"],
                "log after cleaning, MiB": report["MiB after"],
                "alter to the cleaning reported, s (wall)": alone["seen"] - alone["sent"],
                "alter to 95% of the space freed, s (wall)": alone["freed"] - alone["sent"],
            },
            "memory": {
                "RSS at the alter, MiB": alone["RSS MiB"],
                "peak RSS while cleaning, MiB": alone["peak RSS MiB"],
                "RSS growth while cleaning, MiB": alone["peak RSS MiB"] - alone["RSS MiB"],
            },
            "latency": {
                "produce p50, cleaner idle, ms": idle["p50"],
                "produce p99, cleaner idle, ms": idle["p99"],
                "produce p99.9, cleaner idle, ms": idle["p99.9"],
                "produce p50 while cleaning, ms": during["p50"],
                "produce p99 while cleaning, ms": during["p99"],
                "produce p99.9 while cleaning, ms": during["p99.9"],
                "records timed while cleaning": during["records"],
                "cleaning under the producer, s": busy["report"]["seconds"],
            },
        }
        details = {"load MiB/s": load_rate, "key map": key_map,
                   "cleaning under the producer": busy["report"], "records timed, cleaner idle": idle["records"],
                   "workdir": str(workdir)}
        return {"measures": measures, "details": details}
    finally:
        cluster.kill()


SECTIONS = {
    "cleaning": "Cleaning throughput",
    "memory": "Memory while cleaning",
    "latency": "Produce latency while the cleaner runs",
}
HIGHER_IS_BETTER = {"cleaning, MiB/s"}
# The same workload's sizes: compared, but neither kind is better for them.
NEUTRAL = {"dirty log cleaned, MiB", "log after cleaning, MiB", "records timed while cleaning"}


def table(results, section):
    runs = {kind: [r for r in rs if "measures" in r] for kind, rs in results.items()}
    rows = ["| Measure | Gregor | Kafka | Gregor / Kafka | Better |", "|---|---|---|---|---|"]
    names = next((r["measures"][section] for r in runs["gregor"] + runs["kafka"]), {})
    for name in names:
        values = {kind: [r["measures"][section][name] for r in rs] for kind, rs in runs.items()}
        ratio, better = compare(values["gregor"], values["kafka"], name in HIGHER_IS_BETTER)
        rows.append(f"| {name} | {spread(values['gregor'])} | {spread(values['kafka'])} | {ratio} | "
                    f"{'-' if name in NEUTRAL else better} |")
    return "\n".join(rows)


def key_maps(results):
    """Each kind's key map in its runs, as it reports it."""
    return "; ".join(f"{kind}: {', '.join(r['details']['key map'] for r in rs if 'details' in r) or '-'}"
                     for kind, rs in results.items())


def settings_text(n, runs):
    conf = lambda d: ", ".join(f"`{k}={v}`" for k, v in d.items())  # noqa: E731
    return (f"Broker: one node of each kind, a broker and the metadata quorum's voter, on loopback; on both: "
            f"{conf(shared_properties(1, CLEANER))}; each product's defaults otherwise. "
            f"Gregor binary: `{GREGOR_BIN}`.\n\n"
            f"Compacted topics: 1 partition, {conf({**LOADING, 'segment.bytes': n['segment']})} while "
            f"loading {n['mib']:,} MiB of 1 KiB values over {n['keys']:,} keys (librdkafka, {conf(LOADER)}), "
            f"then {conf(CLEAN_NOW)}; a first one of {n['warm-up mib']} MiB cleaned before, unmeasured.\n\n"
            f"Latency: librdkafka, {conf(PROBE)}, {n['rate']:,} x 1 KiB records/s to a topic of "
            f"{LATENCY_PARTITIONS} partitions, {n['baseline']} s with the cleaner idle before a cleaning of "
            f"the same size.\n\n"
            f"Values: median of {runs} run(s) on fresh brokers (min-max); \"ranges overlap\": the runs of one "
            f"kind do not all beat the other's. The measures are defined in bench/compaction.py's "
            f"docstring.\n\n")


def report(results, n, runs, command, quick):
    note = "quick: one small run, checks that everything runs" if quick else ""
    parts = [header(command, note), settings_text(n, runs)]
    for section, title in SECTIONS.items():
        parts.append(f"### {title}\n\n{table(results, section)}\n\n")
        if section == "memory":
            parts.append("Kafka's RSS includes its JVM's 1 GiB heap (committed as it is touched) and its "
                         "dedupe buffer, allocated whole at start; Gregor's its key map, taken as keys come. "
                         f"The key maps as the brokers report them: {key_maps(results)}.\n\n")
    failed = [f"- {kind} run {i + 1} failed: {r['error']}" for kind, rs in results.items()
              for i, r in enumerate(rs) if "error" in r]
    return "".join(parts) + ("\n".join(failed) + "\n" if failed else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small run: checks that everything runs")
    parser.add_argument("--runs", type=int, help="runs of each kind (default 3, --quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the brokers' directories (logs and data)")
    args = parser.parse_args()
    n = SIZES["quick" if args.quick else "full"]
    runs = args.runs or n["runs"]
    workdir = Path(tempfile.mkdtemp(prefix="gregor-compaction-"))
    log4j = kafka_log4j(workdir / "log4j.properties")
    results = {"gregor": [], "kafka": []}
    try:
        for kind in results:
            for i in range(runs):
                print(f"{kind}: run {i + 1} of {runs}...", file=sys.stderr, flush=True)
                rundir = workdir / f"{kind}-{i + 1}"
                try:
                    result = run_once(kind, n, rundir, log4j)
                except Exception as e:  # noqa: BLE001 - reported, the other runs go on
                    result = {"error": f"{type(e).__name__}: {e}"}
                finally:
                    if not args.keep:  # gigabytes of logs
                        shutil.rmtree(rundir, ignore_errors=True)
                print(f"  {result}", file=sys.stderr, flush=True)
                results[kind].append(result)
    finally:
        if args.keep:
            print(f"brokers' directories kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    command = "bench/run compaction" + "".join(f" {a}" for a in sys.argv[1:] if a != "--keep")
    markdown = report(results, n, runs, command, args.quick)
    write("compaction-quick" if args.quick else "compaction", markdown,
          {"settings": {"brokers": CLEANER, "topic": {**LOADING, "segment.bytes": n["segment"]},
                        "clean": CLEAN_NOW, "loader": LOADER, "probe": PROBE, "sizes": n, "runs": runs},
           "results": results})
    print(markdown)
    if args.quick and any("error" in r for rs in results.values() for r in rs):
        sys.exit(1)


if __name__ == "__main__":
    main()

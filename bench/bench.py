"""Gregor and Apache Kafka (the tests' reference version, KAFKA_VERSION in
tests/conftest.py) side by side: the same workloads, the same clients, on
the same machine, one broker kind after the other, alternating which goes
first from one repeat to the next. Every repeat runs every workload on
fresh brokers of both kinds. Writes the median of the repeats, their range,
Gregor/Kafka ratios of the medians and a count of the rows each kind is
better on to bench/results/latest.md, and every repeat's numbers to
latest.json (--quick: quick.*).

Workloads (each on a fresh topic):
- produce, 1 broker: 1 KiB records, acks=1, 6 partitions
  (kafka-producer-perf-test, and kcat for librdkafka)
- consume, 1 broker: those records read back from the beginning
  (kafka-consumer-perf-test, and kcat)
- produce small, 1 broker: 100-byte records, acks=1, 6 partitions
- produce replicated, 3 brokers: 1 KiB, replication factor 3, acks=all,
  min.insync.replicas=2
- latency, 3 brokers: 1 KiB at a fixed moderate rate, acks=all (produce
  latency from kafka-producer-perf-test and from librdkafka through
  confluent-kafka; end-to-end latency from kafka-e2e-latency, one record
  at a time)
The null broker (bench/null-broker: answers from memory, stores nothing)
runs the single-broker produce and kcat workloads after both kinds in
every repeat, as the anchor of what the clients can do at all.
Broker CPU seconds come from /proc (user + system of every broker
process, all replicas included) per GB of records the clients wrote or
read; peak RSS from VmHWM (the largest broker); start-up from process start
to the first Metadata answer that lists every broker.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Producer

from cluster import GREGOR_BIN, Cluster, java, run
from null_broker import NullBroker
from report import compare, header, spread, write

# Repeats and records per workload: full run and --quick (the CI smoke test).
SIZES = {
    "full": {"repeat": 3, "produce": 1_000_000, "small": 3_000_000, "kcat": 300_000, "replicated": 300_000,
             "rate": 5_000, "latency_seconds": 30, "e2e": 5_000},
    "quick": {"repeat": 1, "produce": 20_000, "small": 50_000, "kcat": 10_000, "replicated": 10_000,
              "rate": 1_000, "latency_seconds": 3, "e2e": 200},
}


PRODUCER_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def producer_perf(cluster, topic, records, size, acks, throughput=-1, bootstrap=None, config=None):
    """kafka-producer-perf-test against `bootstrap` (default the PLAINTEXT
    listener), with the client properties file `config` if given."""
    extra = ["--command-config", config] if config else []
    out = run(java("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                   "--num-records", records, "--record-size", size, "--throughput", throughput, *extra,
                   "--producer-props", f"bootstrap.servers={bootstrap or cluster.bootstrap}", f"acks={acks}"))
    m = PRODUCER_LINE.search(out.strip().splitlines()[-1])
    if m is None:
        raise RuntimeError(f"unexpected kafka-producer-perf-test output:\n{out[-1000:]}")
    return {"records/s": float(m[2]), "MB/s": float(m[3]), "p50 ms": float(m[6]),
            "p99 ms": float(m[8]), "p99.9 ms": float(m[9])}


def consumer_perf(cluster, topic, records, bootstrap=None, config=None):
    """kafka-consumer-perf-test, as producer_perf."""
    extra = ["--command-config", config] if config else []
    out = run(java("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
                   bootstrap or cluster.bootstrap, "--topic", topic, "--messages", records,
                   "--timeout", 60000, *extra))
    fields = [f.strip() for f in out.strip().splitlines()[-1].split(",")]
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
    return {"records/s": float(fields[5]), "MB/s": float(fields[3])}


def end_to_end(cluster, topic, records, size):
    out = run(java("org.apache.kafka.tools.EndToEndLatency", "--bootstrap-server", cluster.bootstrap,
                   "--topic", topic, "--num-records", records, "--producer-acks", "all",
                   "--record-size", size))
    m = re.search(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", out)
    if m is None:
        raise RuntimeError(f"unexpected kafka-e2e-latency output:\n{out[-1000:]}")
    return {"e2e p50 ms": float(m[1]), "e2e p99 ms": float(m[2]), "e2e p99.9 ms": float(m[3])}


def kcat_produce(cluster, topic, lines_file, records):
    started = time.monotonic()
    run(["kcat", "-P", "-b", cluster.bootstrap, "-t", topic, "-X", "acks=1", "-l", str(lines_file)])
    seconds = time.monotonic() - started
    size = lines_file.stat().st_size - records  # without the newlines
    return {"records/s": records / seconds, "MB/s": size / seconds / 1e6}


def kcat_consume(cluster, topic, records):
    started = time.monotonic()
    out = subprocess.run(["kcat", "-C", "-b", cluster.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                          "-f", "%S\n"], capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    got = len(out.stdout.splitlines())
    if got != records:
        raise RuntimeError(f"kcat read {got} of {records} records: {out.stderr[-1000:]}")
    size = sum(int(n) for n in out.stdout.split())
    return {"records/s": records / seconds, "MB/s": size / seconds / 1e6}


def rdkafka_latency(cluster, topic, rate, seconds, size):
    """Produce latency of librdkafka (confluent-kafka) at a fixed rate,
    acks=all: from produce() to the delivery report, after the first
    second."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 1})
    value = b"x" * size
    latencies = []
    failures = []

    started = time.perf_counter()

    def delivered(sent, err, _msg):
        if err is not None:
            failures.append(err)
        latencies.append((sent, time.perf_counter() - sent))
    total = rate * seconds
    for i in range(total):
        # Send on schedule: record i leaves at i / rate seconds.
        ahead = started + i / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        producer.produce(topic, value, on_delivery=lambda err, msg, t=time.perf_counter(): delivered(t, err, msg))
        producer.poll(0)
    producer.flush(60)
    if failures or len(latencies) != total:
        raise RuntimeError(f"librdkafka: {len(latencies)} of {total} delivered, failures: {failures[:3]}")
    # The first second pays for connecting and fetching metadata.
    latencies = sorted(lat for sent, lat in latencies if sent - started >= 1) or [0.0]

    def pct(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return {"p50 ms": pct(0.5), "p99 ms": pct(0.99), "p99.9 ms": pct(0.999)}


def measured(cluster, moved_bytes, work):
    """Runs `work()`, adding the brokers' CPU seconds per GB moved."""
    before = cluster.cpu()
    result = work()
    used = cluster.cpu() - before
    result["broker CPU s/GB"] = used / (moved_bytes / 1e9) if moved_bytes else 0.0
    return result


def bench_one(kind, n, workdir, lines_file):
    """Every workload against `kind`; {workload: {metric: value}}. The null
    broker runs the single-broker produce and kcat rows only (it serves no
    groups and has no replicas)."""
    out = {}
    null = kind == "null"
    single = NullBroker(workdir / "null") if null else Cluster(kind, 1, workdir / f"{kind}-1")
    try:
        out["start-up, 1 broker"] = {"seconds": single.start()}
        single.create_topic("produce", 6, 1)
        out["produce 1 KiB, acks=1, 1 broker"] = measured(
            single, n["produce"] * 1024, lambda: producer_perf(single, "produce", n["produce"], 1024, 1))
        if not null:
            out["consume 1 KiB, 1 broker"] = measured(
                single, n["produce"] * 1024, lambda: consumer_perf(single, "produce", n["produce"]))
        single.create_topic("small", 6, 1)
        out["produce 100 B, acks=1, 1 broker"] = measured(
            single, n["small"] * 100, lambda: producer_perf(single, "small", n["small"], 100, 1))
        single.create_topic("kcat", 6, 1)
        out["librdkafka produce 1 KiB, acks=1, 1 broker"] = measured(
            single, n["kcat"] * 1024, lambda: kcat_produce(single, "kcat", lines_file, n["kcat"]))
        out["librdkafka consume 1 KiB, 1 broker"] = measured(
            single, n["kcat"] * 1024, lambda: kcat_consume(single, "kcat", n["kcat"]))
        out["peak RSS, 1 broker"] = {"MiB": single.peak_rss()}
    finally:
        single.stop()
    if null:
        return out
    three = Cluster(kind, 3, workdir / f"{kind}-3")
    try:
        out["start-up, 3 brokers"] = {"seconds": three.start()}
        three.create_topic("replicated", 6, 3, ["min.insync.replicas=2"])
        out["produce 1 KiB, acks=all, RF 3, 3 brokers"] = measured(
            three, n["replicated"] * 1024,
            lambda: producer_perf(three, "replicated", n["replicated"], 1024, "all"))
        three.create_topic("latency", 6, 3, ["min.insync.replicas=2"])
        records = n["rate"] * n["latency_seconds"]
        latency = measured(
            three, records * 1024,
            lambda: {**producer_perf(three, "latency", records, 1024, "all", throughput=n["rate"]),
                     **end_to_end(three, "latency", n["e2e"], 1024)})
        # The rate is the one asked for: only latency and cost compare.
        for fixed in ("records/s", "MB/s"):
            latency.pop(fixed)
        out[f"latency at {n['rate']} x 1 KiB/s, acks=all, 3 brokers"] = latency
        three.create_topic("rdkafka-latency", 6, 3, ["min.insync.replicas=2"])
        out[f"librdkafka latency at {n['rate']} x 1 KiB/s, acks=all, 3 brokers"] = measured(
            three, records * 1024,
            lambda: rdkafka_latency(three, "rdkafka-latency", n["rate"], n["latency_seconds"], 1024))
        out["peak RSS per broker, 3 brokers"] = {"MiB": three.peak_rss()}
    finally:
        three.stop()
    return out


# Which way is better, per metric.
HIGHER_IS_BETTER = {"records/s", "MB/s"}
SHOWN = ["MB/s", "records/s", "p50 ms", "p99 ms", "p99.9 ms", "e2e p50 ms", "e2e p99 ms",
         "e2e p99.9 ms", "broker CPU s/GB", "MiB", "seconds"]
UNITS = {"MiB": "peak RSS MiB", "seconds": "seconds"}


# The rows the null broker's throughput anchors: Gregor's as a fraction of it.
ANCHORED = {"MB/s"}


def compared(results):
    """One row per workload and metric: (workload, metric, Gregor's and
    Kafka's median (min-max) of the repeats, Gregor / Kafka, better, and
    for throughput Gregor / the null broker)."""
    workloads = {kind: [r["workloads"] for r in runs] for kind, runs in results.items()}
    rows = []
    for workload, metrics in workloads["gregor"][0].items():
        for metric in SHOWN:
            if metric not in metrics or metric not in workloads["kafka"][0].get(workload, {}):
                continue
            values = {kind: [w[workload][metric] for w in ws if metric in w.get(workload, {})]
                      for kind, ws in workloads.items()}
            ratio, better = compare(values["gregor"], values["kafka"], metric in HIGHER_IS_BETTER)
            anchored = "-"
            if metric in ANCHORED and values.get("null"):
                anchored = compare(values["gregor"], values["null"], True)[0]
            rows.append((workload, UNITS.get(metric, metric), spread(values["gregor"]), spread(values["kafka"]),
                         ratio, better, anchored))
    return rows


def table(rows):
    header = ["| Workload | Metric | Gregor | Kafka | Gregor / Kafka | Better | Gregor / null broker |",
              "|---|---|---|---|---|---|---|"]
    return "\n".join(header + [f"| {' | '.join(row)} |" for row in rows])


def summary(rows, repeat):
    """How many rows each kind is better on by the medians, and on how many
    the repeats' ranges overlap."""
    count = Counter(row[5] for row in rows)
    text = f"Of {len(rows)} rows, by the medians: Gregor is better on {count['Gregor']}, Kafka on {count['Kafka']}"
    if repeat > 1:
        overlap = {kind: count[f"{kind} (ranges overlap)"] for kind in ("Gregor", "Kafka")}
        text += (f", their ranges apart; on {sum(overlap.values())} the ranges overlap (the median better for "
                 f"Gregor on {overlap['Gregor']}, for Kafka on {overlap['Kafka']})")
    else:
        text += " (one run each: no ranges)"
    if count["same"]:
        text += f"; the medians are the same on {count['same']}"
    return text + "."


def settings_text(n, repeat):
    return (f"Gregor binary: `{GREGOR_BIN}`. Records: {n['produce']:,} of 1 KiB and {n['small']:,} of 100 B "
            f"(Java producer), {n['kcat']:,} of 1 KiB (kcat), {n['replicated']:,} replicated; latency at "
            f"{n['rate']:,} records/s for {n['latency_seconds']} s, {n['e2e']:,} end-to-end.\n\n"
            f"Values: median of {repeat} repeat(s) on fresh brokers (min-max), the kinds alternating which "
            f"goes first; \"ranges overlap\": the runs of one kind do not all beat the other's. The "
            f"workloads are defined in bench/bench.py's docstring. \"Gregor / null broker\": Gregor's median "
            f"throughput as a fraction of the null broker's (bench/null-broker, which stores nothing: what the "
            f"client and this machine can do at all), run after both kinds in every repeat.\n\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny workloads: checks that everything runs")
    parser.add_argument("--repeat", "--runs", type=int, dest="repeat",
                        help="repeats, each one run of each kind (default 3, --quick 1)")
    args = parser.parse_args()
    n = SIZES["quick" if args.quick else "full"]
    repeat = args.repeat or n["repeat"]
    workdir = Path(tempfile.mkdtemp(prefix="gregor-bench-"))
    results = {"gregor": [], "kafka": [], "null": []}
    try:
        lines_file = workdir / "records.txt"
        with open(lines_file, "w") as f:
            line = "x" * 1024 + "\n"
            for _ in range(n["kcat"]):
                f.write(line)
        for i in range(repeat):
            for kind in (["gregor", "kafka"] if i % 2 == 0 else ["kafka", "gregor"]) + ["null"]:
                print(f"{kind}: repeat {i + 1} of {repeat}...", file=sys.stderr, flush=True)
                rundir = workdir / f"repeat-{i + 1}"
                loadavg = Path("/proc/loadavg").read_text().split()[:3]
                try:
                    workloads = bench_one(kind, n, rundir, lines_file)
                finally:
                    shutil.rmtree(rundir, ignore_errors=True)  # gigabytes of logs
                results[kind].append({"workloads": workloads, "load average at start": loadavg})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = compared(results)
    loads = "; ".join(f"{kind}: {', '.join(r['load average at start'][0] for r in runs)}"
                      for kind, runs in results.items())
    report = (header("bench/run" + "".join(f" {a}" for a in sys.argv[1:]),
                     "quick: sizes too small to mean anything" if args.quick else "")
              + settings_text(n, repeat) + f"{table(rows)}\n\n{summary(rows, repeat)}\n\n"
              + f"Load average (1 min) when each run started: {loads}.\n")
    write("quick" if args.quick else "latest", report,
          {"settings": {"sizes": n, "repeat": repeat, "gregor binary": str(GREGOR_BIN)}, "results": results})
    print(report)


if __name__ == "__main__":
    main()

"""Transactions: Gregor side by side with Apache Kafka (the tests'
reference version, KAFKA_VERSION in tests/conftest.py), the same workloads
and client, one broker kind after the other, alternating which goes first
from one repeat to the next. Writes the median of the repeats, their range
and Gregor/Kafka ratios to bench/results/transactions.md and .json
(--quick: transactions-quick.*). These are measures, never assertions.

Every repeat starts a fresh single broker of each kind (a broker and the
metadata quorum's voter, each product's defaults but for cluster.py's
shared settings). The client is Apache Kafka's Java client of the same
version, driven by bench/transactions-app/TxnBench.java (compiled against
the Kafka jars at start): the Java client is the reference implementation
of the transactional protocol (KIP-98, and KIP-890's transaction version 2
where the broker finalizes it), is the client the other benchmarks' perf
tools use, and times commitTransaction() in the same process that calls it,
with no interpreter in between. Records are 1 KiB values without keys, sent
round-robin over PARTITIONS partitions so that each transaction spans them
all; the producer's settings are PRODUCER (idempotence, which transactions
need, is on by default). MB are 10^6 bytes of record values. Workloads:

- transactional produce, commit every N ms (N in INTERVALS), each on a
  fresh topic with its own transactional.id: one producer sends
  continuously for N ms after beginTransaction(), then calls
  commitTransaction() (which sends what is left, waits for every record's
  acknowledgement and ends the transaction), then begins the next, for
  `warm-up` + `seconds` s. The transactions begun in the first `warm-up` s
  are not counted (the connection, the coordinator's first transaction and
  the JIT's). Throughput: the committed records of the counted
  transactions over the time from the first one's begin to the last one's
  commit returning. Commit latency: p50 and p99 of how long the commit
  took, from System.nanoTime before and after: flush() then
  commitTransaction(), which is what commitTransaction() alone does (it
  waits until every record sent is acknowledged, then ends the transaction
  with EndTxn), timed apart so that the ending shows on its own: "commit
  after flush" is commitTransaction() once nothing is left to send. send()
  only queues (up to buffer.memory, 32 MiB, then it blocks) and queues
  about a thousand 1 KiB records per ms, so even a 1 ms transaction holds
  many records (records/transaction, a result too) and the flush is most
  of a commit: commit latency follows produce throughput, commit after
  flush is the broker's (and the coordinator's) cost of ending one.
- consume a transactional topic: a topic written first, unmeasured but for
  its details, by one transactional producer: `transactions` transactions
  of `records per txn` records, every ABORT_EVERY-th aborted (the same
  records and transactions on both kinds; every transaction is flushed
  before it ends, so that an aborted one's records are in the log:
  abortTransaction() drops what is not sent yet). Then one Java consumer without a
  group reads it from the beginning to the end offsets it is given at
  start, with isolation.level=read_committed (the broker sends the aborted
  transactions' list with each fetch, the client drops their records) and
  then with read_uncommitted, for reference. Throughput: the records the
  consumer returned (and their value bytes) over the time from its first
  poll to the last. A read that returns other than the committed records
  (read_committed) or all records (read_uncommitted) is a failure of its
  row, not a number. A first read_uncommitted read, not measured, comes
  before both.

Broker CPU is user + system time of the broker process while the client
ran, per GB of record values the producer sent (the warm-up's included) or
of the whole topic (consumers, read_committed included: the aborted
records are fetched too).

Until a broker supports transactions its rows fail one by one, each with
the client's error (a producer that cannot start its transactions fails the
consume rows too), and the run goes on; --quick exits non-zero only when a
broker does not start and answer Metadata.
"""

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cluster import GREGOR_BIN, KAFKA_LIBS, LOG4J, Cluster, java, shared_properties
from report import compare, header, write

RECORD = 1024
PARTITIONS = 6
INTERVALS = [1, 10, 100]
ABORT_EVERY = 10
SIZES = {
    "full": {"repeat": 3, "warm-up": 5, "seconds": 20, "transactions": 300, "records per txn": 1000},
    "quick": {"repeat": 1, "warm-up": 1, "seconds": 2, "transactions": 20, "records per txn": 200},
}
# Kafka's Java producer's defaults (acks=all and linger.ms=5 since 4.0),
# written out so that the report states them.
PRODUCER = {"acks": "all", "linger.ms": 5, "batch.size": 16384, "compression.type": "none"}
CONSUMER = {"auto.offset.reset": "earliest"}
APP = Path(__file__).resolve().parent / "transactions-app"
MAIN_CLASS = "TxnBench"
# Beyond the workload's own duration: a client that hangs is killed and its
# row fails.
CLIENT_TIMEOUT = 300


class ClientFailed(Exception):
    pass


def compile_app(out):
    """bench/transactions-app compiled against the Kafka jars into `out`."""
    sources = sorted(map(str, APP.glob("*.java")))
    proc = subprocess.run(["javac", "-d", str(out), "-cp", f"{KAFKA_LIBS}/*", *sources],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"javac failed:\n{proc.stdout}\n{proc.stderr}")
    return out


def client(classes, workdir, mode, properties, topic, timeout, **options):
    """Runs TxnBench `mode` with the client `properties`; its JSON answer.
    Raises ClientFailed with the client's own error when it fails."""
    config = workdir / f"{mode}-{topic}-{properties.get('isolation.level', 'producer')}.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
    cmd = ["java", "-Xmx1G", f"-Dlog4j.configuration=file:{LOG4J}", "-cp", f"{classes}:{KAFKA_LIBS}/*",
           MAIN_CLASS, mode, str(config), topic, *(f"{k.replace('_', '.')}={v}" for k, v in options.items())]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClientFailed(f"the {mode} client did not finish within {timeout} s") from None
    if proc.returncode != 0:
        errors = [line.removeprefix("ERROR ") for line in proc.stderr.splitlines()
                  if line.startswith(("ERROR ", "CAUSED BY "))]
        raise ClientFailed("; ".join(errors) or f"the {mode} client exited {proc.returncode}: {proc.stderr[-1000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def transaction_version(cluster):
    """The transaction.version feature the broker finalized (KIP-890: 2
    means the client adds partitions with its produce requests and bumps its
    epoch at every commit), as kafka-features describes it."""
    try:
        out = subprocess.run(java("org.apache.kafka.tools.FeatureCommand", "--bootstrap-server",
                                  cluster.bootstrap, "describe"), capture_output=True, text=True, timeout=120)
        m = re.search(r"Feature: transaction\.version\s.*?FinalizedVersionLevel: (\S+)", out.stdout)
        return m[1] if m else "not finalized"
    except Exception as e:  # noqa: BLE001 - a detail of the report, not a row
        return f"unknown ({type(e).__name__}: {e})"


def timed_produce(cluster, classes, workdir, n, interval):
    """One transactional producer committing every `interval` ms."""
    topic = f"txn-{interval}ms"
    cluster.create_topic(topic, PARTITIONS, 1)
    props = {"bootstrap.servers": cluster.bootstrap, "transactional.id": f"bench-{interval}ms", **PRODUCER}
    before = cluster.cpu()
    out = client(classes, workdir, "produce", props, topic, n["warm-up"] + n["seconds"] + CLIENT_TIMEOUT,
                 record_bytes=RECORD, interval_ms=interval, warmup_s=n["warm-up"], seconds=n["seconds"])
    cpu = cluster.cpu() - before
    if not out["commit_ms"]:
        raise ClientFailed("no transaction was committed after the warm-up")
    records = out["committed_records"]
    sent = records + out["aborted_records"] + out["unmeasured_records"]
    metrics = {
        "records/s": records / out["seconds"],
        "MB/s": records * RECORD / out["seconds"] / 1e6,
        "records/transaction": records / out["committed_transactions"],
        "commit p50 ms": pct(out["commit_ms"], 0.5),
        "commit p99 ms": pct(out["commit_ms"], 0.99),
        "commit after flush p50 ms": pct(out["end_ms"], 0.5),
        "commit after flush p99 ms": pct(out["end_ms"], 0.99),
        # The broker's CPU over the producer's whole life, warm-up included.
        "broker CPU s/GB": cpu / (sent * RECORD / 1e9),
    }
    details = {"transactions": out["committed_transactions"], "warm-up transactions": out["unmeasured_transactions"],
               "initTransactions s": out["init_seconds"], "seconds": out["seconds"]}
    return {"metrics": metrics, "details": details}


def load_topic(cluster, classes, workdir, n):
    """Writes the consumers' topic; the producer's answer."""
    cluster.create_topic("txn-consume", PARTITIONS, 1)
    props = {"bootstrap.servers": cluster.bootstrap, "transactional.id": "bench-load", **PRODUCER}
    out = client(classes, workdir, "produce", props, "txn-consume", 3 * CLIENT_TIMEOUT, record_bytes=RECORD,
                 transactions=n["transactions"], records_per_txn=n["records per txn"], abort_every=ABORT_EVERY)
    expected_aborted = n["transactions"] // ABORT_EVERY
    if out["aborted_transactions"] != expected_aborted:
        raise ClientFailed(f"{out['aborted_transactions']} transactions aborted, not {expected_aborted}")
    return out


def consume(cluster, classes, workdir, isolation, expected, topic_bytes):
    props = {"bootstrap.servers": cluster.bootstrap, "isolation.level": isolation, **CONSUMER}
    before = cluster.cpu()
    out = client(classes, workdir, "consume", props, "txn-consume", CLIENT_TIMEOUT)
    cpu = cluster.cpu() - before
    if out["records"] != expected:
        raise ClientFailed(f"{isolation} returned {out['records']:,} records, not the {expected:,} expected")
    return {"metrics": {"records/s": out["records"] / out["seconds"],
                        "MB/s": out["bytes"] / out["seconds"] / 1e6,
                        "broker CPU s/GB": cpu / (topic_bytes / 1e9)},
            "details": {"records": out["records"], "seconds": out["seconds"], "polls": out["polls"],
                        "end offsets (sum)": out["end_offsets"]}}


def produce_row(interval):
    return f"transactional produce, commit every {interval} ms"


READ_COMMITTED = "consume, read_committed"
READ_UNCOMMITTED = "consume, read_uncommitted (reference)"
PRODUCE_ROWS = [produce_row(i) for i in INTERVALS]
ROWS = [*PRODUCE_ROWS, READ_COMMITTED, READ_UNCOMMITTED]


def describe(error):
    return str(error) if isinstance(error, ClientFailed) else f"{type(error).__name__}: {error}"


def attempt(rows, name, work):
    """rows[name] := work()'s result, or the error it failed with."""
    try:
        rows[name] = work()
    except Exception as e:  # noqa: BLE001 - reported in its row, the other rows go on
        rows[name] = {"error": describe(e)}


def run_once(kind, n, workdir, classes):
    """One fresh broker: {"rows": {row: {"metrics", "details"} or {"error"}},
    "details", "load average at start"}; {"error", "load average at start"}
    when the broker did not start."""
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    cluster = Cluster(kind, 1, workdir)
    try:
        try:
            startup = cluster.start()
        except Exception as e:  # noqa: BLE001 - the whole run fails, the others go on
            return {"error": f"the broker did not start: {describe(e)}", "load average at start": loadavg}
        details = {"start-up s": startup, "transaction.version": transaction_version(cluster),
                   "workdir": str(workdir)}
        rows = {}
        for interval in INTERVALS:
            attempt(rows, produce_row(interval), lambda i=interval: timed_produce(cluster, classes, workdir, n, i))
        try:
            load = load_topic(cluster, classes, workdir, n)
        except Exception as e:  # noqa: BLE001 - the consumers' rows fail with it
            for row in (READ_COMMITTED, READ_UNCOMMITTED):
                rows[row] = {"error": f"the topic could not be written transactionally: {describe(e)}"}
        else:
            details["load"] = {k: v for k, v in load.items() if not k.endswith("_ms")}
            for name, times in (("commit", "commit_ms"), ("commit after flush", "end_ms"), ("abort", "abort_ms")):
                details["load"][f"{name} p50 ms"] = pct(load[times], 0.5) if load[times] else None
            committed = load["committed_records"]
            total = committed + load["aborted_records"]
            # Unmeasured: the broker's first read of the topic (the page
            # cache holds it already; the JIT may not have the read path).
            attempt(rows, "warm-up read", lambda: consume(
                cluster, classes, workdir, "read_uncommitted", total, total * RECORD))
            details["warm-up read"] = rows.pop("warm-up read")
            attempt(rows, READ_COMMITTED, lambda: consume(
                cluster, classes, workdir, "read_committed", committed, total * RECORD))
            attempt(rows, READ_UNCOMMITTED, lambda: consume(
                cluster, classes, workdir, "read_uncommitted", total, total * RECORD))
        details["peak RSS MiB"] = cluster.peak_rss()
        return {"rows": rows, "details": details, "load average at start": loadavg}
    finally:
        cluster.kill()


# Per metric, whether higher is better.
METRICS = {"records/s": True, "MB/s": True, "records/transaction": None, "commit p50 ms": False,
           "commit p99 ms": False, "commit after flush p50 ms": False, "commit after flush p99 ms": False,
           "broker CPU s/GB": False}
CONSUMER_METRICS = ["records/s", "MB/s", "broker CPU s/GB"]


def row_results(runs, row):
    """The runs' results for one row: a run whose broker did not start
    fails each of its rows with that error."""
    return [r.get("rows", {}).get(row, {"error": r.get("error", "not run")}) for r in runs]


def cell(values, failed):
    """Median (min-max) of the runs that worked, and how many failed."""
    if not values:
        return f"failed ({failed} of {failed})" if failed else "-"
    fmt = lambda v: f"{v:,.2f}"  # noqa: E731
    text = fmt(statistics.median(values))
    if len(values) > 1:
        text += f" ({fmt(min(values))}-{fmt(max(values))})"
    return text + (f", failed in {failed} of {failed + len(values)}" if failed else "")


def table(results, rows):
    out = ["| Workload | Metric | Gregor | Kafka | Gregor / Kafka | Better |", "|---|---|---|---|---|---|"]
    for row in rows:
        per_kind = {kind: row_results(runs, row) for kind, runs in results.items()}
        failed = {kind: sum("error" in r for r in rs) for kind, rs in per_kind.items()}
        for metric in METRICS if row in PRODUCE_ROWS else CONSUMER_METRICS:
            values = {kind: [r["metrics"][metric] for r in rs if "metrics" in r] for kind, rs in per_kind.items()}
            if values["gregor"] and values["kafka"]:
                ratio, better = compare(values["gregor"], values["kafka"], bool(METRICS[metric]))
                if METRICS[metric] is None:  # a result, but neither more nor fewer is better
                    better = "-"
            else:
                ratio, better = "-", "-"
            out.append(f"| {row} | {metric} | {cell(values['gregor'], failed['gregor'])} | "
                       f"{cell(values['kafka'], failed['kafka'])} | {ratio} | {better} |")
    return "\n".join(out)


# How Gregor answers a transactional producer until it supports transactions
# (InitProducerId refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED; no ACLs
# are set here, so no other cause).
GREGOR_REFUSAL = "TransactionalIdAuthorizationException"


def failures(results):
    """Each kind's failed rows with their errors, the same error once."""
    lines = []
    for kind, runs in results.items():
        for row in ROWS:
            errors = [r["error"] for r in row_results(runs, row) if "error" in r]
            for error in dict.fromkeys(errors):
                why = (" (Gregor's refusal of transactional producers: transactions are not supported yet)"
                       if kind == "gregor" and GREGOR_REFUSAL in error else "")
                lines.append(f"- {kind}, {row}: failed in {errors.count(error)} of {len(runs)} run(s): "
                             f"{error}{why}")
    return lines


def load_summary(results):
    lines = []
    for kind, runs in results.items():
        loads = [r["details"]["load"] for r in runs if "load" in r.get("details", {})]
        if loads:
            p50 = lambda name: cell([d[f"{name} p50 ms"] for d in loads if d[f"{name} p50 ms"] is not None], 0)  # noqa: E731
            lines.append(f"- {kind}: written in {cell([d['seconds'] for d in loads], 0)} s; p50 of commit "
                         f"{p50('commit')} ms, of commit after flush {p50('commit after flush')} ms, of abort "
                         f"after flush {p50('abort')} ms")
    return lines


def features(results):
    """Each kind's finalized transaction.version, each value once."""
    found = {kind: dict.fromkeys(str(r["details"]["transaction.version"]) for r in runs if "details" in r)
             for kind, runs in results.items()}
    return "; ".join(f"{kind}: {', '.join(values) or '-'}" for kind, values in found.items())


def settings_text(n, repeat):
    conf = lambda d: ", ".join(f"`{k}={v}`" for k, v in d.items())  # noqa: E731
    return (f"Broker: one node of each kind, a broker and the metadata quorum's voter, on loopback; "
            f"{conf(shared_properties(1, {}))}; each product's defaults otherwise. Gregor binary: "
            f"`{GREGOR_BIN}`.\n\n"
            f"Client: Apache Kafka's Java client (bench/transactions-app/TxnBench.java), 1 KiB values "
            f"without keys round-robin over {PARTITIONS} partitions; producer {conf(PRODUCER)}. Timed "
            f"producers: {n['warm-up']} s of warm-up, then {n['seconds']} s counted. Consumers' topic: "
            f"{n['transactions']:,} transactions of {n['records per txn']:,} records, every {ABORT_EVERY}th "
            f"aborted; consumer {conf(CONSUMER)}, no group.\n\n"
            f"Values: median of {repeat} repeat(s) on fresh brokers (min-max), the kinds alternating which "
            f"goes first; \"ranges overlap\": the runs of one kind do not all beat the other's. MB = 10^6 "
            f"bytes of values. The workloads are defined in bench/transactions.py's docstring.\n\n")


def report(results, n, repeat, command, quick):
    note = "quick: one short run, checks that everything runs" if quick else ""
    parts = [header(command, note), settings_text(n, repeat),
             f"### Transactional produce\n\n{table(results, PRODUCE_ROWS)}\n\n",
             f"### Consuming a transactional topic ({ABORT_EVERY - 1} in {ABORT_EVERY} transactions committed)"
             f"\n\n{table(results, [READ_COMMITTED, READ_UNCOMMITTED])}\n\n"]
    loads = load_summary(results)
    if loads:
        parts.append("Writing the consumers' topic (not compared):\n\n" + "\n".join(loads) + "\n\n")
    parts.append(f"transaction.version finalized (kafka-features): {features(results)}.\n\n")
    loads = "; ".join(f"{kind}: {', '.join(r['load average at start'][0] for r in runs)}"
                      for kind, runs in results.items())
    parts.append(f"Load average (1 min) when each run started: {loads}.\n\n")
    errors = failures(results)
    if errors:
        parts.append("Failed rows:\n\n" + "\n".join(errors) + "\n")
    return "".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short run: checks that both brokers answer")
    parser.add_argument("--repeat", "--runs", type=int, dest="repeat",
                        help="repeats, each one run of each kind (default 3, --quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the brokers' directories (logs and data)")
    args = parser.parse_args()
    n = SIZES["quick" if args.quick else "full"]
    repeat = args.repeat or n["repeat"]
    workdir = Path(tempfile.mkdtemp(prefix="gregor-transactions-"))
    results = {"gregor": [], "kafka": []}
    try:
        classes = compile_app(workdir / "classes")
        for i in range(repeat):
            for kind in (["gregor", "kafka"] if i % 2 == 0 else ["kafka", "gregor"]):
                print(f"{kind}: repeat {i + 1} of {repeat}...", file=sys.stderr, flush=True)
                rundir = workdir / f"{kind}-{i + 1}"
                try:
                    result = run_once(kind, n, rundir, classes)
                finally:
                    if not args.keep:
                        shutil.rmtree(rundir, ignore_errors=True)
                print(f"  {result}", file=sys.stderr, flush=True)
                results[kind].append(result)
    finally:
        if args.keep:
            print(f"brokers' directories kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    command = "bench/run transactions" + "".join(f" {a}" for a in sys.argv[1:] if a != "--keep")
    markdown = report(results, n, repeat, command, args.quick)
    write("transactions-quick" if args.quick else "transactions", markdown,
          {"settings": {"producer": PRODUCER, "consumer": CONSUMER, "partitions": PARTITIONS, "record bytes": RECORD,
                        "intervals ms": INTERVALS, "abort every": ABORT_EVERY, "sizes": n, "repeat": repeat},
           "results": results})
    print(markdown)
    if args.quick and any("error" in r for rs in results.values() for r in rs):
        sys.exit(1)


if __name__ == "__main__":
    main()

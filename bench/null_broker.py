"""The null broker (bench/null-broker) for the benchmarks: a Kafka broker
that answers Produce and Fetch from memory and stores nothing, so a
workload run against it measures what the clients and the machine can do
at all. It has the shape of cluster.Cluster with one node (start, stop,
bootstrap, cpu, peak_rss, create_topic), so the benchmarks' workload
functions run against it unchanged.

Its binary is the one built beside the Gregor binary benchmarked (bench/run
and tests/run build both), TEST_NULL_BROKER_BIN if set; when there is none,
it is built here (release, host target).
"""

import os
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from cluster import ROOT, cpu_seconds, peak_rss_mib

from conftest import GREGOR_BIN, free_port


def binary():
    """The null broker's binary, built if there is none."""
    if "TEST_NULL_BROKER_BIN" in os.environ:
        return Path(os.environ["TEST_NULL_BROKER_BIN"])
    host = ROOT / "target" / "release" / "null-broker"
    for candidate in (GREGOR_BIN.parent / "null-broker", host):
        if candidate.exists():
            return candidate
    # By target, not package, as tests/run builds: the whole workspace's
    # dependency features, so what is built already is reused.
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "null-broker"], cwd=ROOT, check=True)
    return host


class NullBroker:
    """One null broker on a free loopback port; every topic a client names
    exists with `partitions` partitions. Its log goes to `workdir`."""

    kind = "null"
    size = 1

    def __init__(self, workdir, partitions=6):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.partitions = partitions
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.procs = []

    def start(self):
        """Starts it; returns seconds until it answers Metadata."""
        command = [str(binary()), "--port", str(self.port), "--partitions", str(self.partitions)]
        started = time.monotonic()
        with open(self.dir / "null-broker.log", "a") as log:
            self.procs = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)]
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = started + 30
        while True:
            if self.procs[0].poll() is not None:
                raise RuntimeError(f"the null broker exited with {self.procs[0].returncode}; see {self.dir}")
            try:
                if admin.list_topics(timeout=0.5).brokers:
                    return time.monotonic() - started
            except Exception:  # noqa: BLE001 - not up yet, whatever the reason
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the null broker did not start; see {self.dir}")
            time.sleep(0.05)

    def create_topic(self, name, partitions, replicas, configs=()):
        """Nothing to do: topics exist once named, with the partitions the
        broker was started with, which must be those asked for (`replicas`
        and `configs` mean nothing to a broker that stores nothing)."""
        if partitions != self.partitions:
            raise ValueError(f"topic {name}: {partitions} partitions asked, the null broker has {self.partitions}")

    def cpu(self):
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def peak_rss(self):
        return max(peak_rss_mib(p.pid) for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
            p.wait()

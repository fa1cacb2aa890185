"""Clusters of Gregor or Apache Kafka (the tests' reference version,
KAFKA_VERSION in tests/conftest.py) on loopback ports, for the benchmarks:
every node is a broker and a voter of the metadata quorum, with the same
settings on both kinds. Nodes can be killed, frozen and restarted one by one.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from confluent_kafka.admin import AdminClient  # noqa: E402

from conftest import GREGOR_BIN, KAFKA_LIBS, LOG4J, free_port, freeze  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
# kafka-server-start.sh's defaults (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS).
KAFKA_JVM = ["-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
             "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true"]


def java(main_class, *args):
    """A Kafka tool at full speed (unlike the tests' quick-start JVMs)."""
    return ["java", "-Xmx1G", f"-Dlog4j.configuration=file:{LOG4J}", "-cp", f"{KAFKA_LIBS}/*",
            main_class, *map(str, args)]


def run(cmd, timeout=1800, input=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} {' '.join(cmd[-6:])} exited {proc.returncode}:\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_mib(pid, field):
    """A /proc/<pid>/status memory field (VmHWM, VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib(pid):
    return status_mib(pid, "VmHWM")


def shared_properties(size, settings):
    """The properties of every node of a cluster of `size`, of either kind."""
    return {
        "process.roles": "broker,controller",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "offsets.topic.replication.factor": min(3, size),
        "transaction.state.log.replication.factor": min(3, size),
        "transaction.state.log.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "false",
        **settings,
    }


class Cluster:
    """`size` brokers of one kind, each also a voter of the metadata quorum;
    `settings` are added to every node's properties. Besides PLAINTEXT
    (`bootstrap`, also between brokers) each node may have more client
    listeners, `listeners` {name: security protocol}, reached at
    `bootstraps[name]`. Kafka logs as the log4j configuration `log4j`
    says (the tests': warnings and errors, by default)."""

    def __init__(self, kind, size, workdir, settings=None, listeners=None, log4j=LOG4J):
        self.kind = kind
        self.size = size
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.settings = dict(settings or {})
        self.listeners = dict(listeners or {})
        self.log4j = log4j
        self.ports = [free_port() for _ in range(size)]
        self.controller_ports = [free_port() for _ in range(size)]
        self.extra_ports = {name: [free_port() for _ in range(size)] for name in self.listeners}
        self.commands = []
        self.procs = []
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        self.bootstraps = {name: ",".join(f"127.0.0.1:{p}" for p in ports)
                           for name, ports in self.extra_ports.items()}

    def properties(self, n):
        voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(self.controller_ports))
        clients = [f"PLAINTEXT://127.0.0.1:{self.ports[n]}"] + [
            f"{name}://127.0.0.1:{ports[n]}" for name, ports in self.extra_ports.items()]
        shared = shared_properties(self.size, self.settings)
        shared["listener.security.protocol.map"] += "".join(
            f",{name}:{protocol}" for name, protocol in self.listeners.items())
        return {
            "node.id": n + 1,
            "controller.quorum.voters": voters,
            "listeners": ",".join(clients + [f"CONTROLLER://127.0.0.1:{self.controller_ports[n]}"]),
            "advertised.listeners": ",".join(clients),
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": self.dir / f"data-{n + 1}",
            **shared,
        }

    def command(self, n):
        """Writes node n's config (formatting its storage for Kafka) and
        returns the command line that runs it."""
        config = self.dir / f"server-{n + 1}.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.properties(n).items()))
        if self.kind == "kafka":
            run(java("kafka.tools.StorageTool", "format", "--config", config,
                     "--cluster-id", "GregorBenchmarkRun001", "--ignore-formatted"))
            return ["java", *KAFKA_JVM, f"-Dlog4j.configuration=file:{self.log4j}",
                    "-cp", f"{KAFKA_LIBS}/*", "kafka.Kafka", str(config)]
        return [str(GREGOR_BIN), "broker", str(config)]

    def launch(self, n):
        with open(self.dir / f"{self.kind}-{n + 1}.log", "a") as log:
            return subprocess.Popen(self.commands[n], stdout=log, stderr=subprocess.STDOUT)

    def start(self):
        """Starts every broker; returns seconds until the cluster answers
        Metadata with all of them."""
        self.commands = [self.command(n) for n in range(self.size)]
        started = time.monotonic()
        self.procs = [self.launch(n) for n in range(self.size)]
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = started + 180
        while True:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a {self.kind} broker exited with {p.returncode}; see {self.dir}")
            try:
                if len(admin.list_topics(timeout=0.5).brokers) == self.size:
                    return time.monotonic() - started
            except Exception:  # noqa: BLE001 - not up yet, whatever the reason
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not start; see {self.dir}")
            time.sleep(0.05)

    def address(self, node_id):
        return f"127.0.0.1:{self.ports[node_id - 1]}"

    def signal(self, node_id, sig):
        """Sends `sig` to node `node_id` (kill -9 waits until it is gone,
        SIGSTOP until every thread has stopped)."""
        proc = self.procs[node_id - 1]
        if sig == signal.SIGSTOP:
            freeze(proc, f"{self.kind} node {node_id}")
            return
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait()

    def restart(self, node_id):
        """Starts node `node_id` again, on the same directories and ports."""
        self.procs[node_id - 1] = self.launch(node_id - 1)

    def cpu(self):
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def peak_rss(self):
        return max(peak_rss_mib(p.pid) for p in self.procs)

    def rss(self, field="VmRSS"):
        """The sum over the running nodes of their resident memory now
        (VmRSS) or at its peak (VmHWM), in MiB."""
        return sum(status_mib(p.pid, field) for p in self.procs if p.poll() is None)

    def create_topic(self, name, partitions, replicas, configs=()):
        args = ["--bootstrap-server", self.bootstrap, "--create", "--topic", name,
                "--partitions", partitions, "--replication-factor", replicas]
        for c in configs:
            args += ["--config", c]
        run(java("org.apache.kafka.tools.TopicCommand", *args))

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def kill(self):
        """kill -9 of every node: for clusters whose state is thrown away
        (a controlled shutdown without a quorum would wait a minute)."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()

"""Test harness: real Gregor broker processes, a real Apache Kafka reference
broker, and Apache Kafka's own Java tools (of KAFKA_VERSION unless a test
asks for another client version).

Everything here starts processes and talks to them over real sockets; the
fixtures only decide ports and directories and clean up afterwards.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GREGOR_BIN = Path(os.environ.get("TEST_GREGOR_BIN", ROOT / "target" / "release" / "gregor"))
# The reference version: the Java tools the tests run, and the Apache Kafka
# broker the differential test and the benchmarks compare with.
KAFKA_VERSION = "4.4.0"
# Client versions whose tools the compatibility tests run against Gregor:
# the reference and the release before it (tests/kafka-jars/<version>).
KAFKA_CLIENT_VERSIONS = [KAFKA_VERSION, "4.3.1"]
# Numbers tests observe but do not assert (no timing is a pass criterion),
# printed at the end of the run: (what, value).
MEASURES = []


def report_measure(what, value):
    """Records a number for the run's summary instead of asserting on it."""
    MEASURES.append((what, value))


def pytest_terminal_summary(terminalreporter):
    if MEASURES:
        terminalreporter.section("measured, not asserted")
        for what, value in MEASURES:
            terminalreporter.write_line(f"{what}: {value}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item (`item.rep_call` ...), so
    a fixture can tell in its teardown whether the test failed."""
    outcome = yield
    setattr(item, f"rep_{call.when}", outcome.get_result())


def kafka_libs(version=KAFKA_VERSION):
    return ROOT / ".cache" / f"kafka-{version}" / "libs"


KAFKA_LIBS = kafka_libs()
LOG4J = ROOT / "tests" / "log4j.properties"

# KAFKA_VERSION's kafka-*.sh scripts are thin wrappers over these classes
# (Kafka 4.4 moved kafka-configs' class from kafka.admin into the tools).
TOOLS = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-dump-log": "org.apache.kafka.tools.DumpLogSegments",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-storage": "kafka.tools.StorageTool",
    "kafka-server-start": "kafka.Kafka",
    "kafka-verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-acls": "org.apache.kafka.tools.AclCommand",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-features": "org.apache.kafka.tools.FeatureCommand",
}


def java_command(tool, *args, heap="256m", version=KAFKA_VERSION, jvm=()):
    """The command line the `tool` script of Apache Kafka `version` would
    run, with the JVM options `jvm` (e.g. system properties) added. The
    tools start from the version's class-data sharing archive where
    .ci/install built one (tests/kafka-jars/class-archive)."""
    archive = kafka_libs(version).parent / "tools.jsa"
    return [
        "java",
        *jvm,
        *([f"-XX:SharedArchiveFile={archive}"] if archive.exists() else []),
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        f"-Dlog4j.configuration=file:{LOG4J}",
        "-cp",
        f"{kafka_libs(version)}/*",
        TOOLS[tool],
        *[str(a) for a in args],
    ]


def kafka_tool(tool, *args, input=None, timeout=120, check=True, version=KAFKA_VERSION, jvm=()):
    """Runs one of Apache Kafka's command-line tools to completion."""
    proc = subprocess.run(
        java_command(tool, *args, version=version, jvm=jvm),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{tool} {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


# An idempotent acks=all producer that retries until delivery.timeout.ms:
# what the durability tests run kafka-verifiable-producer with.
DURABLE_PRODUCER = ("enable.idempotence=true\nacks=all\ndelivery.timeout.ms=120000\n"
                    "request.timeout.ms=10000\nretries=2147483647\n")


def producer_events(path, name):
    """The events called `name` in kafka-verifiable-producer's output."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if e.get("name") == name:
            out.append(e)
    return out


_HANDED_OUT = set()


def read_stored(bootstrap, topic, at_least, prefix=()):
    """{value: (partition, offset)} of every record of `topic`, read with
    kafka-console-consumer (run under `prefix`, e.g. in a network
    namespace); fails on a value stored twice or fewer than `at_least`."""
    proc = subprocess.run(
        [*prefix, *java_command(
            "kafka-console-consumer", "--bootstrap-server", bootstrap, "--topic", topic,
            "--from-beginning", "--max-messages", at_least, "--timeout-ms", 60000,
            "--property", "print.partition=true", "--property", "print.offset=true")],
        capture_output=True, text=True, timeout=300)
    stored = {}
    for line in proc.stdout.splitlines():
        fields = line.split("\t")
        meta = {f.split(":", 1)[0]: f.split(":", 1)[1] for f in fields[:-1] if ":" in f}
        if "Partition" not in meta or "Offset" not in meta:
            continue
        value = fields[-1]
        assert value not in stored, f"{value} stored twice"
        stored[value] = (int(meta["Partition"]), int(meta["Offset"]))
    assert len(stored) >= at_least, f"read {len(stored)} of {at_least}:\n{proc.stderr[-2000:]}"
    return stored


def free_port():
    """A port nobody listens on, never the same twice in one test session:
    the kernel may offer a just-released port again before the broker that
    was given it has bound it."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for_port(port, proc, log, timeout=60, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} did not open within {timeout}s:\n{log.read_text()}")


def freeze(proc, what):
    """SIGSTOP, returning once every thread of `proc` has stopped: the signal
    is only queued when kill() returns, and a thread busy in a system call
    stops after it, so a request sent at once could still be read and
    answered."""
    proc.send_signal(signal.SIGSTOP)
    tasks = Path(f"/proc/{proc.pid}/task")

    def state(task):
        # The state follows the command name, which is in parentheses.
        try:
            return (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "T"  # the thread has exited

    wait_until(lambda: all(state(t) in ("T", "t") for t in tasks.iterdir()), 10,
               f"every thread of {what} to stop")


def wait_until(check, timeout, what, failed=lambda: None, step=0.2):
    """Polls `check` until it is true; fails at once with what `failed`
    returns (a process that died, say) and after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (failure := failed()) is not None:
            raise AssertionError(failure)
        if check():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Gregor:
    """One Gregor broker process with an INTERNAL and an EXTERNAL listener."""

    def __init__(self, workdir, props=None, env=None, node_id=1, host=None, wrap=None, http=False):
        """`host`: bind and advertise this address (fixed ports) instead of
        loopback (free ports); `wrap`: prefix of the command line (e.g. to
        run inside a network namespace); `http`: an `http.listener` on a
        free loopback port, for `metrics`."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data = self.workdir / "data"
        self.host = host or "127.0.0.1"
        self.internal_port = 9094 if host else free_port()
        self.external_port = 9092 if host else free_port()
        self.wrap = wrap or []
        self.node_id = node_id
        self.props = {
            "node.id": str(node_id),
            "listeners": f"INTERNAL://{self.host}:{self.internal_port},"
            f"EXTERNAL://{self.host}:{self.external_port}",
            # Different advertised hosts show which listener answered.
            "advertised.listeners": f"INTERNAL://{self.host}:{self.internal_port},"
            f"EXTERNAL://{host or 'localhost'}:{self.external_port}",
            "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "log.dirs": str(self.data),
            "num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            # A broker killed with -9 and restarted waits for its previous
            # registration to expire; keep that short in tests.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
        }
        self.props.update(props or {})
        self.env = env or {}
        self.proc = None
        self.http_port = None
        if http:
            self.http_port = free_port()
            self.props["http.listener"] = f"127.0.0.1:{self.http_port}"
        self.log = self.workdir / "gregor.log"
        self.config = self.workdir / "server.properties"

    @property
    def bootstrap(self):
        return f"{self.host}:{self.external_port}"

    @property
    def internal_bootstrap(self):
        return f"{self.host}:{self.internal_port}"

    def write_config(self):
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))

    def start(self, wait=True):
        self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GREGOR_")}
        env.setdefault("RUST_LOG", "info")
        env.update(self.env)
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [*self.wrap, str(GREGOR_BIN), "broker", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        if wait:
            self.wait()
        return self

    def wait(self, timeout=60):
        """Until the broker serves clients (it has joined its cluster)."""
        wait_for_port(self.external_port, self.proc, self.log, timeout, host=self.host)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("broker did not stop within 30s of SIGTERM")

    def kill(self):
        """kill -9: no flush, no goodbye."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def freeze(self):
        freeze(self.proc, f"broker {self.node_id}")

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def restart(self):
        self.stop()
        return self.start()

    def log_text(self):
        return self.log.read_text()

    def metrics(self):
        """The samples of /metrics on its `http.listener` (see
        GregorCluster's `http`), as {name with labels: value}."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{self.host}:{self.http_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return {name: float(value) for name, value in
                (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class GregorCluster:
    """Brokers that are also the voters of one metadata quorum, each with
    INTERNAL, EXTERNAL and CONTROLLER listeners on loopback ports."""

    def __init__(self, workdir, size=3, props=None, network=None, http=False):
        """With a `netns.Network`, broker n runs in its namespace n; with
        `http`, every broker has an `http.listener`."""
        workdir = Path(workdir)
        hosts = [network.ip(n) if network else "127.0.0.1" for n in range(1, size + 1)]
        controller_ports = [9093 if network else free_port() for _ in range(size)]
        voters = ",".join(f"{i + 1}@{hosts[i]}:{p}" for i, p in enumerate(controller_ports))
        self.brokers = []
        for i, cport in enumerate(controller_ports):
            b = Gregor(workdir / f"broker-{i + 1}", node_id=i + 1,
                       host=network and hosts[i],
                       wrap=network and network.wrap(i + 1, []))
            b.props["listeners"] += f",CONTROLLER://{hosts[i]}:{cport}"
            b.props["listener.security.protocol.map"] += ",CONTROLLER:PLAINTEXT"
            if http:
                # Probes and /metrics (Gregor's own port, see Gregor.metrics).
                b.http_port = 9644 if network else free_port()
                b.props["http.listener"] = f"{hosts[i]}:{b.http_port}"
            b.props.update({
                "controller.listener.names": "CONTROLLER",
                "controller.quorum.voters": voters,
                "default.replication.factor": str(size),
                "offsets.topic.replication.factor": str(size),
                "min.insync.replicas": "2",
                "replica.lag.time.max.ms": "5000",
            })
            b.props.update(props or {})
            self.brokers.append(b)

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def broker(self, node_id):
        return self.brokers[node_id - 1]

    def start(self):
        # A broker serves once the quorum has formed, so start them all
        # before waiting for any.
        for b in self.brokers:
            b.start(wait=False)
        for b in self.brokers:
            b.wait(timeout=90)
        return self

    def stop(self):
        for b in self.brokers:
            if b.alive():
                b.proc.send_signal(signal.SIGTERM)
        for b in self.brokers:
            b.stop()


# The differential tests' secured listener, the same on Gregor and on
# Apache Kafka: SASL_PLAINTEXT with PLAIN users, Kafka's StandardAuthorizer,
# open where no ACL is set (so the plaintext listener's anonymous clients
# are served as without an authorizer), admin a super user.
SECURED_USERS = {"admin": "admin-secret", "alice": "alice-secret"}
SECURED_PROPS = {
    "listener.name.secured.sasl.enabled.mechanisms": "PLAIN",
    "listener.name.secured.plain.sasl.jaas.config":
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in SECURED_USERS.items()) + ";",
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": "true",
    "super.users": "User:admin",
}


class ApacheKafka:
    """Apache Kafka KAFKA_VERSION from the same jars as the tools: KRaft,
    one node that is both controller and broker, with a plaintext listener
    (`bootstrap`) and the secured one (`secured_bootstrap`, SECURED_PROPS)."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.secured_port = free_port()
        self.controller_port = free_port()
        self.config = self.workdir / "server.properties"
        self.log = self.workdir / "kafka.log"
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def secured_bootstrap(self):
        return f"127.0.0.1:{self.secured_port}"

    def start(self):
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},SECURED://127.0.0.1:{self.secured_port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},SECURED://127.0.0.1:{self.secured_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SECURED:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            **SECURED_PROPS,
        }
        self.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        kafka_tool(
            "kafka-storage", "format", "--config", self.config,
            "--cluster-id", "GregorDifferentialTst",
            "--ignore-formatted",
        )
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                java_command("kafka-server-start", self.config, heap="768m"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.proc, self.log, timeout=120)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class KafkaNode:
    """One node of a KafkaCluster: an Apache Kafka KAFKA_VERSION process that
    is broker and controller, with a plaintext listener (`bootstrap`), the
    secured one (`secured_bootstrap`) and its controller listener, on ports
    that stay its own across restarts. Stopped, killed and restarted like a
    Gregor broker (`kill`, `start`, `alive`, `log_text`)."""

    def __init__(self, workdir, node_id):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.node_id = node_id
        self.port = free_port()
        self.secured_port = free_port()
        self.controller_port = free_port()
        self.config = self.workdir / "server.properties"
        self.log = self.workdir / "kafka.log"
        self.props = {}
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def secured_bootstrap(self):
        return f"127.0.0.1:{self.secured_port}"

    def format(self, cluster_id):
        """kafka-storage format, started (the caller waits for it)."""
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        return subprocess.Popen(
            java_command("kafka-storage", "format", "--config", self.config, "--cluster-id", cluster_id,
                         "--ignore-formatted"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def start(self, wait=True):
        # INFO to its log file, for a test to show what the reference did
        # when it fails (the tools' configuration logs warnings only).
        log4j = self.workdir / "log4j.properties"
        log4j.write_text(LOG4J.read_text().replace("rootLogger=WARN", "rootLogger=INFO"))
        command = [f"-Dlog4j.configuration=file:{log4j}" if a.startswith("-Dlog4j.configuration=") else a
                   for a in java_command("kafka-server-start", self.config, heap="512m")]
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait()
        return self

    def wait(self, timeout=120):
        wait_for_port(self.port, self.proc, self.log, timeout)
        return self

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        """kill -9: no flush, no goodbye."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return self.log.read_text(errors="replace")


class KafkaCluster:
    """Three (`size`) Apache Kafka KAFKA_VERSION nodes in KRaft mode, each
    broker and controller (a static quorum of all of them): the reference
    for tests that kill brokers, laid out like GregorCluster (`brokers`,
    `broker(node_id)`, `bootstrap`), with every node's plaintext and
    secured (SECURED_PROPS-like, `props` decides) listeners."""

    def __init__(self, workdir, size=3, props=None):
        workdir = Path(workdir)
        self.brokers = [KafkaNode(workdir / f"kafka-{i + 1}", i + 1) for i in range(size)]
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.brokers)
        for n in self.brokers:
            n.props = {
                "process.roles": "broker,controller",
                "node.id": str(n.node_id),
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://127.0.0.1:{n.port},SECURED://127.0.0.1:{n.secured_port},"
                             f"CONTROLLER://127.0.0.1:{n.controller_port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{n.port},SECURED://127.0.0.1:{n.secured_port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map":
                    "PLAINTEXT:PLAINTEXT,SECURED:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs": str(n.workdir / "data"),
                "num.partitions": "1",
                "default.replication.factor": str(size),
                "offsets.topic.replication.factor": str(size),
                "transaction.state.log.replication.factor": str(size),
                "min.insync.replicas": "2",
                "transaction.state.log.min.isr": "2",
                "group.initial.rebalance.delay.ms": "0",
                "replica.lag.time.max.ms": "5000",
                # As GregorCluster: a killed broker is fenced, and a
                # restarted one registers again, within seconds.
                "broker.session.timeout.ms": "3000",
                "broker.heartbeat.interval.ms": "500",
                **SECURED_PROPS,
                **(props or {}),
            }

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.brokers)

    @property
    def secured_bootstrap(self):
        return ",".join(n.secured_bootstrap for n in self.brokers)

    def broker(self, node_id):
        return self.brokers[node_id - 1]

    def start(self):
        formats = [n.format("GregorReferenceCluster") for n in self.brokers]
        for n, f in zip(self.brokers, formats):
            out, _ = f.communicate(timeout=120)
            assert f.returncode == 0, f"kafka-storage format of node {n.node_id} failed:\n{out}"
        # A node serves once the quorum has formed: start all, then wait.
        for n in self.brokers:
            n.start(wait=False)
        for n in self.brokers:
            n.wait(timeout=180)
        return self

    def stop(self):
        for n in self.brokers:
            if n.alive():
                n.proc.terminate()
        for n in self.brokers:
            n.stop()


@pytest.fixture
def gregor(tmp_path):
    """A fresh single Gregor broker."""
    broker = Gregor(tmp_path / "gregor").start()
    yield broker
    broker.stop()


@pytest.fixture
def gregor_factory(tmp_path):
    """Builds brokers with custom settings; stops them all afterwards."""
    started = []

    def make(props=None, env=None, start=True, name=None):
        broker = Gregor(tmp_path / (name or f"gregor{len(started)}"), props=props, env=env)
        started.append(broker)
        return broker.start() if start else broker

    yield make
    for b in started:
        if b.alive():
            b.stop()


@pytest.fixture
def cluster(tmp_path):
    """A fresh three-broker Gregor cluster."""
    c = GregorCluster(tmp_path / "cluster").start()
    yield c
    c.stop()


@pytest.fixture
def metered_cluster(tmp_path):
    """A fresh three-broker Gregor cluster whose brokers serve /metrics."""
    c = GregorCluster(tmp_path / "cluster", http=True).start()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory):
    """The reference broker, shared by the differential tests."""
    broker = ApacheKafka(tmp_path_factory.mktemp("apache-kafka")).start()
    yield broker
    broker.stop()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def offsets_partition(group, partitions=50):
    """The __consumer_offsets partition Kafka gives a group: Java's
    String.hashCode with the sign bit cleared, modulo the count (50 unless
    `offsets.topic.num.partitions` says otherwise)."""
    h = 0
    units = group.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (h * 31 + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % partitions

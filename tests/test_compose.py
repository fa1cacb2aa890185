"""examples/compose.yaml under podman-compose and under Docker Compose
(talking to podman's Docker-compatible API): three broker containers on one
network. Inside it, the image's own `gregor` tools reach the brokers by
container name; from the host, Apache Kafka's console tools use the three
published ports; stopping a container loses no acknowledged record."""

import os
import subprocess
import time
import uuid

import pytest

from conftest import DURABLE_PRODUCER, ROOT, free_port, java_command, kafka_tool, producer_events, read_stored
from test_image import IMAGE, PODMAN, podman

FILE = ROOT / "examples" / "compose.yaml"
PODMAN_COMPOSE = ROOT / ".cache" / "venv" / "bin" / "podman-compose"
# The Docker CLI's compose plugin, built by .ci/install.
DOCKER_CONFIG = ROOT / ".cache" / "docker"
INSIDE = "broker-1:19092,broker-2:19092,broker-3:19092"


class Compose:
    """One project of examples/compose.yaml run by `tool`."""

    def __init__(self, tool, workdir):
        self.tool = tool
        self.project = f"gc{uuid.uuid4().hex[:6]}"
        self.ports = [free_port() for _ in range(3)]
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        # podman here needs runc and ulimits no higher than the host's;
        # neither compose tool passes such flags, so they go in the config.
        conf = workdir / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                        '[engine]\nruntime = "runc"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "GREGOR_IMAGE": IMAGE,
                    "GREGOR_HOST": "127.0.0.1",
                    **{f"GREGOR_PORT_{i + 1}": str(p) for i, p in enumerate(self.ports)}}
        self.service = None
        if tool == "docker":
            # Docker Compose drives podman through its Docker API.
            sock = workdir / "podman.sock"
            self.service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                                            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while not sock.exists():
                assert time.monotonic() < deadline, "podman's API socket did not appear"
                time.sleep(0.2)
            self.env.update(DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(DOCKER_CONFIG))

    def __call__(self, *args, timeout=300):
        command = [str(PODMAN_COMPOSE)] if self.tool == "podman-compose" else ["docker", "compose"]
        proc = subprocess.run([*command, "-p", self.project, "-f", str(FILE), *map(str, args)],
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{self.tool} {args}: {proc.stdout}\n{proc.stderr}"
        return proc

    def container(self, service):
        if self.tool == "podman-compose":
            return f"{self.project}_{service}_1"
        return f"{self.project}-{service}-1"

    def gregor(self, service, *args, input=None, check=True, timeout=120):
        """The image's `gregor` tool, run inside a broker's container."""
        proc = subprocess.run([*PODMAN, "exec", "-i", self.container(service), "/gregor", *map(str, args)],
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"gregor {args}: {proc.stdout}\n{proc.stderr}"
        return proc

    def logs(self):
        """The brokers' last log lines, to tell why one is not serving."""
        out = []
        for service in ["broker-1", "broker-2", "broker-3"]:
            proc = subprocess.run([*PODMAN, "logs", "--tail", "30", self.container(service)],
                                  capture_output=True, text=True)
            out.append(f"--- {service}:\n{proc.stdout}{proc.stderr}")
        return "\n".join(out)

    def close(self):
        try:
            self("down", "-v")
        finally:
            if self.service is not None:
                self.service.terminate()
                self.service.wait(timeout=30)


@pytest.fixture(scope="module", params=["podman-compose", "docker"])
def compose(request, tmp_path_factory):
    c = Compose(request.param, tmp_path_factory.mktemp("compose"))
    try:
        c("up", "-d")
        # Formed: the offsets topic exists, and each broker answers on its
        # own address (a quorum of two can form before the third listens).
        deadline = time.monotonic() + 120
        for broker in INSIDE.split(","):
            while True:
                listed = c.gregor("broker-1", "topics", "list", "--bootstrap-server", broker, check=False)
                if listed.returncode == 0 and "__consumer_offsets" in listed.stdout:
                    break
                assert time.monotonic() < deadline, (
                    f"the cluster did not form: {broker}: {listed.stderr}\n{c.logs()}")
                time.sleep(1)
        yield c
    finally:
        c.close()


def test_the_images_tools_work_inside_the_network(compose):
    compose.gregor("broker-1", "topics", "create", "--bootstrap-server", "broker-1:19092",
                   "--topic", "inside", "--partitions", 3, "--replication-factor", 3)
    described = compose.gregor("broker-3", "topics", "describe", "--bootstrap-server", "broker-3:19092",
                               "--topic", "inside").stdout
    assert "PartitionCount: 3\tReplicationFactor: 3" in described, described
    assert described.count("Isr: ") == 3, described
    lines = [f"k{i % 7}:value-{i}" for i in range(300)]
    compose.gregor("broker-2", "produce", "--bootstrap-server", "broker-2:19092", "--topic", "inside",
                   "--key-separator", ":", input="\n".join(lines) + "\n")
    # In a group, from the beginning: every record once, keyed records of
    # one key in order (one partition each).
    out = compose.gregor("broker-3", "consume", "--bootstrap-server", "broker-3:19092", "--topic", "inside",
                         "--group", "readers", "--from-beginning", "--print-key", "--key-separator", ":",
                         "--max-messages", len(lines), "--timeout-ms", 30000).stdout.splitlines()
    assert sorted(out) == sorted(lines)
    for key in {line.split(":")[0] for line in lines}:
        mine = [line for line in out if line.startswith(key + ":")]
        assert mine == [line for line in lines if line.startswith(key + ":")], key
    # The group committed its offsets: it reads only what is new.
    compose.gregor("broker-1", "produce", "--bootstrap-server", INSIDE, "--topic", "inside",
                   input="after-1\nafter-2\n")
    more = compose.gregor("broker-1", "consume", "--bootstrap-server", INSIDE, "--topic", "inside",
                          "--group", "readers", "--timeout-ms", 5000).stdout.split()
    assert sorted(more) == ["after-1", "after-2"]
    assert "inside" in compose.gregor("broker-2", "topics", "list", "--bootstrap-server", INSIDE).stdout.split()


def test_java_tools_on_the_host_use_every_published_port(compose):
    kafka_tool("kafka-topics", "--bootstrap-server", compose.bootstrap, "--create", "--topic", "outside",
               "--partitions", 3, "--replication-factor", 3)
    # Each published port alone is a working bootstrap server.
    for port in compose.ports:
        listed = kafka_tool("kafka-topics", "--bootstrap-server", f"127.0.0.1:{port}", "--list").stdout
        assert "outside" in listed.split(), listed
    values = [f"outside-{i}" for i in range(100)]
    kafka_tool("kafka-console-producer", "--bootstrap-server", compose.bootstrap, "--topic", "outside",
               "--producer-property", "acks=all", input="\n".join(values) + "\n")
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", compose.bootstrap, "--topic", "outside",
                     "--from-beginning", "--max-messages", len(values), "--timeout-ms", 30000).stdout
    assert sorted(out.split()) == sorted(values)


def test_stopping_a_broker_loses_no_acknowledged_record(compose, tmp_path):
    kafka_tool("kafka-topics", "--bootstrap-server", compose.bootstrap, "--create", "--topic", "durable",
               "--partitions", 3, "--replication-factor", 3)
    config = tmp_path / "producer.properties"
    config.write_text(DURABLE_PRODUCER)
    acks = tmp_path / "producer.out"
    producer = subprocess.Popen(
        java_command("kafka-verifiable-producer", "--bootstrap-server", compose.bootstrap, "--topic", "durable",
                     "--max-messages", 100000, "--throughput", 300, "--producer.config", config),
        stdout=open(acks, "w"), stderr=subprocess.DEVNULL)

    def acked_more_than(n, what):
        deadline = time.monotonic() + 120
        while len(producer_events(acks, "producer_send_success")) <= n:
            assert producer.poll() is None, "the producer stopped"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.5)
        return len(producer_events(acks, "producer_send_success"))
    try:
        before = acked_more_than(300, "the producer to get going")
        podman("stop", "--time", 30, compose.container("broker-2"))
        # The other two keep serving acks=all writes (min.insync.replicas 2).
        acked_more_than(before + 600, "writes with a broker stopped")
        kafka_tool("kafka-topics", "--bootstrap-server", compose.bootstrap, "--create", "--topic", "later",
                   "--partitions", 1, "--replication-factor", 2)
    finally:
        producer.terminate()
        producer.wait(timeout=60)
    acked = producer_events(acks, "producer_send_success")
    stored = read_stored(compose.bootstrap, "durable", len(acked))
    for e in acked:
        assert stored.get(e["value"]) == (e["partition"], e["offset"]), e
    podman("start", compose.container("broker-2"))

"""`gregor dev`, the README's first command: three local brokers with
internal listeners on 29092-29094 and external ones on 9092-9094; with
`--secure`, the same cluster with TLS, SCRAM and ACLs and ready client
settings."""

import os
import signal
import subprocess
import time

from conftest import GREGOR_BIN, kafka_tool, unique, wait_for_port

BOOTSTRAP = "localhost:9092,localhost:9093,localhost:9094"
INTERNAL = "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"


def start(data, log, *flags):
    # Its own process group, so a signal reaches all of it as Ctrl-C would.
    with open(log, "w") as out:
        proc = subprocess.Popen([str(GREGOR_BIN), "dev", *flags, "--data", str(data)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    for port in (9092, 9093, 9094, 29092, 29093, 29094):
        wait_for_port(port, proc, log, timeout=90)
    return proc


def ctrl_c(proc):
    os.killpg(proc.pid, signal.SIGINT)
    return proc.wait(timeout=60)


def test_gregor_dev_runs_a_three_broker_cluster_and_keeps_data_with_data_dir(tmp_path):
    data = tmp_path / "dev"
    topic = unique("dev")
    proc = start(data, tmp_path / "dev.log")
    try:
        kafka_tool("kafka-topics", "--bootstrap-server", BOOTSTRAP, "--create",
                   "--topic", topic, "--partitions", 6, "--replication-factor", 3)
        kafka_tool("kafka-console-producer", "--bootstrap-server", INTERNAL,
                   "--topic", topic, "--command-property", "acks=all", input="x\ny\nz\n")
    finally:
        assert ctrl_c(proc) == 0
    text = (tmp_path / "dev.log").read_text()
    for n in (1, 2, 3):
        assert f"broker-{n} | " in text and "INFO gregor: stopped" in text
    assert text.count("INFO gregor: stopped") == 3

    # --data keeps the cluster: the topic and its records are still there.
    proc = start(data, tmp_path / "dev2.log")
    try:
        out = kafka_tool("kafka-console-consumer", "--bootstrap-server", BOOTSTRAP,
                         "--topic", topic, "--from-beginning", "--max-messages", 3,
                         "--timeout-ms", 60000).stdout
        assert sorted(out.split()) == ["x", "y", "z"]
    finally:
        assert ctrl_c(proc) == 0


def brokers_of(data):
    """PIDs of the broker processes `gregor dev` started on `data`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"broker" in argv and any(str(data).encode() in a for a in argv):
                pids.append(int(entry))
    return pids


def test_the_brokers_of_gregor_dev_stop_when_it_is_killed(tmp_path):
    data = tmp_path / "dev"
    proc = start(data, tmp_path / "dev.log")
    brokers = brokers_of(data)
    assert len(brokers) == 3, brokers
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 60
    while brokers_of(data) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = brokers_of(data)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "brokers outlived gregor dev"


def test_gregor_dev_secure_serves_clients_with_the_files_it_writes(tmp_path):
    """`--secure`: Kafka's tools with client.properties and kcat with
    librdkafka.conf (SASL_SSL, SCRAM-SHA-512 as the admin super user)
    create, write and read a replicated topic, while brokers replicate and
    reach the quorum over mutual TLS; a client without the settings gets
    nothing, and the password is in no log."""
    data, log = tmp_path / "dev", tmp_path / "dev.log"
    proc = start(data, log, "--secure")
    java, librdkafka = data / "client.properties", data / "librdkafka.conf"
    topic = unique("secure")
    try:
        kafka_tool("kafka-topics", "--bootstrap-server", BOOTSTRAP, "--command-config", java,
                   "--create", "--topic", topic, "--partitions", 3, "--replication-factor", 3)
        subprocess.run(["kcat", "-F", str(librdkafka), "-P", "-t", topic, "-X", "acks=all"],
                       input="a\nb\nc\n", text=True, check=True, timeout=60)
        out = subprocess.run(["kcat", "-F", str(librdkafka), "-C", "-t", topic, "-o", "beginning",
                              "-c", "3", "-e"], capture_output=True, text=True, check=True, timeout=60)
        assert sorted(out.stdout.split()) == ["a", "b", "c"]
        described = kafka_tool("kafka-topics", "--bootstrap-server", BOOTSTRAP, "--command-config", java,
                               "--describe", "--topic", topic).stdout
        assert described.count("Isr: ") == 3 and all(
            len(line.split("Isr: ")[1].split()[0].split(",")) == 3
            for line in described.splitlines() if "Isr: " in line), described
        plain = subprocess.run(["kcat", "-b", BOOTSTRAP, "-L", "-m", "5"],
                               capture_output=True, text=True, timeout=60)
        assert plain.returncode != 0 and topic not in plain.stdout
    finally:
        assert ctrl_c(proc) == 0
    password = (data / "secure" / "admin.password").read_text().strip()
    text = log.read_text()
    assert str(java) in text and str(librdkafka) in text
    assert password and password not in text
    assert text.count("INFO gregor: stopped") == 3

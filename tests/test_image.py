"""The images (built by image/build before the tests run) under podman: a
single-broker container serves Apache Kafka's console tools through a
published port and probes and metrics on its HTTP port, and stops cleanly
on SIGTERM; the operator's container says why it stops when there is no
Kubernetes to talk to; both run as a non-root user without a shell."""

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

from conftest import free_port, kafka_tool
from release import BROKER_IMAGE, OPERATOR_IMAGE, VERSION

IMAGE = BROKER_IMAGE
# podman here needs runc and ulimits no higher than the host's.
PODMAN = ["podman", "--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def podman(*args, check=True, timeout=120):
    proc = subprocess.run([*PODMAN, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def test_the_image_is_small_and_runs_as_a_user_without_a_shell():
    info = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    assert info["Size"] < 50 * 1024 * 1024, info["Size"]
    assert info["Config"]["User"] == "65532:65532"
    assert "/var/lib/gregor" in info["Config"]["Volumes"]
    no_shell = podman("run", "--rm", *LIMITS, "--entrypoint", "/bin/sh", IMAGE, "-c", "true", check=False)
    assert no_shell.returncode != 0
    assert podman("run", "--rm", *LIMITS, IMAGE, "--version").stdout == f"gregor {VERSION}\n"


def test_the_operator_image_runs_as_a_user_without_a_shell_and_says_why_it_stops():
    info = json.loads(podman("image", "inspect", OPERATOR_IMAGE).stdout)[0]
    assert info["Size"] < 50 * 1024 * 1024, info["Size"]
    assert info["Config"]["User"] == "65532:65532"
    no_shell = podman("run", "--rm", *LIMITS, "--entrypoint", "/bin/sh", OPERATOR_IMAGE, "-c", "true",
                      check=False)
    assert no_shell.returncode != 0
    version = podman("run", "--rm", *LIMITS, OPERATOR_IMAGE, "--version")
    assert version.stdout == f"gregor-operator {VERSION}\n"
    # Neither a service account nor a kubeconfig: it stops at once, saying so.
    alone = podman("run", "--rm", *LIMITS, "--network", "none", OPERATOR_IMAGE, check=False, timeout=60)
    assert alone.returncode == 1, alone
    assert "cannot reach the Kubernetes API" in alone.stderr, alone.stderr
    assert "panicked" not in alone.stderr, alone.stderr


def http_get(port, path):
    """(status, body) of a GET on the container's HTTP port."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_broker_container_serves_kafka_clients_and_stops_cleanly():
    name = f"gregor-{uuid.uuid4().hex[:8]}"
    port, http = free_port(), free_port()
    volume = f"{name}-data"
    podman("run", "-d", "--name", name, *LIMITS, "-p", f"127.0.0.1:{port}:9092",
           "-p", f"127.0.0.1:{http}:9644", "-v", f"{volume}:/var/lib/gregor",
           "-e", f"GREGOR_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:{port}", IMAGE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_get(http, "/readyz") == (200, "ready\n"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the container never became ready"
            time.sleep(0.5)
        assert http_get(http, "/livez") == (200, "ok\n")
        bootstrap = f"127.0.0.1:{port}"
        kafka_tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", "boxed",
                   "--partitions", 2, "--replication-factor", 1)
        values = [f"boxed-{i}" for i in range(20)]
        kafka_tool("kafka-console-producer", "--bootstrap-server", bootstrap, "--topic", "boxed",
                   input="\n".join(values) + "\n")
        out = kafka_tool("kafka-console-consumer", "--bootstrap-server", bootstrap, "--topic", "boxed",
                         "--from-beginning", "--max-messages", len(values), "--timeout-ms", 30000).stdout
        assert sorted(out.split()) == sorted(values)
        status, metrics = http_get(http, "/metrics")
        assert status == 200
        samples = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if not line.startswith("#"))
        assert int(samples['gregor_requests_total{api="Produce"}']) >= 1, metrics
        # The two partitions of "boxed" and those of __consumer_offsets.
        assert int(samples["gregor_partition_leaders"]) >= 2, metrics
        assert samples["gregor_broker_fenced"] == "0", metrics
        assert 0 < int(samples["process_resident_memory_bytes"]) < 200 << 20, metrics

        podman("stop", "--time", 30, name)
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, state
        assert "stopped" in podman("logs", name).stderr.splitlines()[-1]

        # The data outlives the container: a new one on the same volume
        # serves the same records.
        podman("rm", name)
        podman("run", "-d", "--name", name, *LIMITS, "-p", f"127.0.0.1:{port}:9092",
               "-v", f"{volume}:/var/lib/gregor",
               "-e", f"GREGOR_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:{port}", IMAGE)
        again = kafka_tool("kafka-console-consumer", "--bootstrap-server", bootstrap, "--topic", "boxed",
                           "--from-beginning", "--max-messages", len(values), "--timeout-ms", 30000).stdout
        assert sorted(again.split()) == sorted(values)
    finally:
        podman("rm", "-f", name, check=False)
        podman("volume", "rm", "-f", volume, check=False)

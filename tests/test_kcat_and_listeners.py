"""kcat (librdkafka's CLI) and the two named listeners."""

import json
import subprocess

from conftest import unique


def kcat(*args, input=None, timeout=60):
    proc = subprocess.run(["kcat", *args], input=input, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_metadata_answers_with_the_listener_the_request_came_in_on(gregor):
    topic = unique("meta")
    kcat("-b", gregor.bootstrap, "-P", "-t", topic, input="x\n")
    external = json.loads(kcat("-b", gregor.bootstrap, "-L", "-J", "-t", topic))
    internal = json.loads(kcat("-b", gregor.internal_bootstrap, "-L", "-J", "-t", topic))
    assert [(b["id"], b["name"]) for b in external["brokers"]] == [(1, f"localhost:{gregor.external_port}")]
    assert [(b["id"], b["name"]) for b in internal["brokers"]] == [(1, f"127.0.0.1:{gregor.internal_port}")]
    [t] = external["topics"]
    assert t["topic"] == topic and t["partitions"][0]["leader"] == 1


def test_kcat_produce_and_consume_with_keys_and_headers(gregor):
    topic = unique("kcat")
    lines = "".join(f"key{i}\tvalue{i}\n" for i in range(50))
    kcat("-b", gregor.bootstrap, "-P", "-t", topic, "-K", "\t", "-H", "origin=kcat", "-z", "lz4", input=lines)
    out = kcat("-b", gregor.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-c", "50",
               "-f", "%k=%s@%o;%h\n")
    assert out.splitlines() == [f"key{i}=value{i}@{i};origin=kcat" for i in range(50)]
    # Reading from a relative offset and from the internal listener.
    out = kcat("-b", gregor.internal_bootstrap, "-C", "-t", topic, "-o", "-5", "-e", "-f", "%s\n")
    assert out.splitlines() == [f"value{i}" for i in range(45, 50)]


def test_auto_created_topics_follow_num_partitions(gregor_factory):
    broker = gregor_factory(props={"num.partitions": "3"})
    topic = unique("auto")
    kcat("-b", broker.bootstrap, "-P", "-t", topic, input="a\n")
    meta = json.loads(kcat("-b", broker.bootstrap, "-L", "-J", "-t", topic))
    assert len(meta["topics"][0]["partitions"]) == 3

    off = gregor_factory(props={"auto.create.topics.enable": "false"})
    meta = json.loads(kcat("-b", off.bootstrap, "-L", "-J", "-t", topic))
    assert meta["topics"][0]["error"] == "Broker: Unknown topic or partition"

"""Start-up configuration: a bad file or environment stops the broker with a
message naming the setting; the environment overrides the file."""

import json
import subprocess

import pytest

from conftest import GREGOR_BIN, Gregor, unique

BAD = [
    ({"node.id": None}, {}, "node.id"),
    ({"log.dirs": None}, {}, "log.dirs"),
    ({"num.partitions": "many"}, {}, "num.partitions"),
    ({"num.partitions": "0"}, {}, "num.partitions"),
    ({"log.retention.ms": "soon"}, {}, "log.retention.ms"),
    ({"message.max.bytes": "-5"}, {}, "message.max.bytes"),
    ({"auto.create.topics.enable": "yes"}, {}, "auto.create.topics.enable"),
    ({"socket.request.max.bytes": "big"}, {}, "socket.request.max.bytes"),
    ({"log.segmnet.bytes": "1024"}, {}, "log.segmnet.bytes"),
    ({"listener.security.protocol.map": "INTERNAL:SSL,EXTERNAL:PLAINTEXT"}, {}, "listener INTERNAL uses SSL"),
    ({"advertised.listeners": "NOPE://h:1"}, {}, "advertised.listeners"),
    ({}, {"GREGOR_NUM_PARTITIONS": "x"}, "num.partitions"),
    ({}, {"GREGOR_NOT_A_SETTING": "1"}, "not.a.setting"),
]


@pytest.mark.parametrize("props,env,key", BAD, ids=[b[2] + ("(env)" if b[1] else "") for b in BAD])
def test_bad_settings_stop_start_up_naming_the_setting(tmp_path, props, env, key):
    broker = Gregor(tmp_path)
    for k, v in props.items():
        if v is None:
            broker.props.pop(k)
        else:
            broker.props[k] = v
    broker.write_config()
    proc = subprocess.run([str(GREGOR_BIN), "broker", str(broker.config)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert key in proc.stderr, proc.stderr
    assert "configuration error" in proc.stderr


def test_missing_file_is_reported(tmp_path):
    proc = subprocess.run([str(GREGOR_BIN), "broker", str(tmp_path / "nope.properties")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "nope.properties" in proc.stderr


def test_environment_overrides_the_file(gregor_factory):
    broker = gregor_factory(props={"num.partitions": "1"}, env={"GREGOR_NUM_PARTITIONS": "4"})
    topic = unique("env")
    subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", topic], input="x\n", text=True, check=True,
                   timeout=30)
    meta = json.loads(subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-J", "-t", topic],
                                     capture_output=True, text=True, check=True, timeout=30).stdout)
    assert len(meta["topics"][0]["partitions"]) == 4


def test_a_log_dir_of_another_node_is_refused(gregor_factory, tmp_path):
    first = gregor_factory(name="first")
    first.stop()
    other = Gregor(tmp_path / "second", props={"node.id": "7", "log.dirs": str(first.data)})
    other.write_config()
    proc = subprocess.run([str(GREGOR_BIN), "broker", str(other.config)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode != 0
    assert "belongs to node 1" in proc.stderr

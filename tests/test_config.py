"""Start-up configuration: a bad file or environment stops the broker with a
message naming the setting; the environment overrides the file."""

import json
import subprocess

import pytest

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

from conftest import GREGOR_BIN, Gregor, kafka_tool, unique

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
    ({"max.decompressed.message.bytes": "0"}, {}, "must be at least 1"),
    ({"max.decompressed.message.bytes": "2147483640"}, {}, "must be at most 2147483639"),
    ({"listener.security.protocol.map": "INTERNAL:GSSAPI,EXTERNAL:PLAINTEXT"}, {}, "listener INTERNAL uses GSSAPI"),
    ({"listener.security.protocol.map": "INTERNAL:SASL_SSL,EXTERNAL:PLAINTEXT"}, {}, "an SSL listener needs a key store"),
    ({"listener.security.protocol.map": "INTERNAL:SASL_PLAINTEXT,EXTERNAL:PLAINTEXT",
      "sasl.enabled.mechanisms": "PLAIN", "listener.name.internal.plain.sasl.jaas.config":
      'org.apache.kafka.common.security.plain.PlainLoginModule required user_a="b";'}, {},
     "sasl.mechanism.inter.broker.protocol, which is \"GSSAPI\""),
    ({"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT"}, {}, "GSSAPI (Kerberos)"),
    ({"listener.security.protocol.map": "INTERNAL:SSL,EXTERNAL:PLAINTEXT"}, {}, "an SSL listener needs a key store"),
    ({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"}, {}, "gone from Kafka 4"),
    ({"authorizer.class.name": "com.example.MyAuthorizer"}, {}, "Gregor loads no Java classes"),
    ({"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
      "super.users": "admin"}, {}, "expected Type:name"),
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


def test_broker_settings_are_described_with_their_sources(gregor_factory):
    """kafka-configs shows every broker setting: the file's value first,
    then the default, as Kafka lists synonyms."""
    broker = gregor_factory(props={"max.decompressed.message.bytes": "5000"})
    out = kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, "--describe", "--all",
                     "--entity-type", "brokers", "--entity-name", "1").stdout
    assert ("max.decompressed.message.bytes=5000 sensitive=false synonyms={STATIC_BROKER_CONFIG:"
            "max.decompressed.message.bytes=5000, DEFAULT_CONFIG:max.decompressed.message.bytes=2147483639}") in out
    assert "log.retention.hours=168 sensitive=false synonyms={DEFAULT_CONFIG:log.retention.hours=168}" in out
    assert "message.max.bytes=1048588" in out

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource("broker", "1")
    configs = admin.describe_configs([res])[res].result(30)
    assert configs["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["auto.create.topics.enable"].is_default
    assert configs["broker.rack"].value is None
    # Kafka marks the settings that change at run time as not read-only.
    changeable = {name for name, c in configs.items() if not c.is_read_only}
    assert changeable == {"transaction.partition.verification.enable", "producer.id.expiration.ms",
                          "num.recovery.threads.per.data.dir", "leader.replication.throttled.rate",
                          "follower.replication.throttled.rate"} & set(configs)
    assert "transaction.partition.verification.enable" in changeable


def test_decompressed_records_are_bounded_by_the_broker_default(gregor_factory):
    """max.decompressed.message.bytes in server.properties is every topic's
    default: a compressed batch holding a larger record is refused with
    INVALID_RECORD; records sent uncompressed are not checked."""
    broker = gregor_factory(props={"max.decompressed.message.bytes": "5000"})
    topic = unique("decompressed")
    outcomes = []
    for compression, size in [("gzip", 100), ("gzip", 20_000), ("none", 20_000)]:
        p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": compression, "linger.ms": 0})
        p.produce(topic, value=b"x" * size,
                  on_delivery=lambda err, msg: outcomes.append(err.name() if err else "OK"))
        p.flush(30)
    assert outcomes == ["OK", "INVALID_RECORD", "OK"]

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource("topic", topic)
    entry = admin.describe_configs([res])[res].result(30)["max.decompressed.message.bytes"]
    assert entry.value == "5000"
    assert entry.source == ConfigSource.STATIC_BROKER_CONFIG.value

"""SASL on Gregor's listeners with Kafka's settings: a SASL_PLAINTEXT
listener offering PLAIN (users from its JAAS configuration) served to real
clients (confluent-kafka, kcat, Apache Kafka's console tools with a
--command-config), wrong passwords and out-of-place requests refused with
Kafka's errors, logged with the principal and peer and counted, and
sessions that must re-authenticate (KIP-368)."""

import json
import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import GREGOR_BIN, Gregor, free_port, kafka_tool, unique, wait_until

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_alice="alice-secret" user_bob="bob-secret";')


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker whose EXTERNAL listener (its bootstrap) is SASL_PLAINTEXT
    with PLAIN; sessions last 5 s before clients must re-authenticate."""
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
             "listener.name.external.sasl.enabled.mechanisms": "PLAIN",
             "listener.name.external.plain.sasl.jaas.config": JAAS,
             "listener.name.external.connections.max.reauth.ms": "5000",
             "http.listener": f"127.0.0.1:{free_port()}"}
    b = Gregor(tmp_path_factory.mktemp("sasl-broker"), props=props)
    b.http_port = props["http.listener"].rsplit(":", 1)[1]
    b.start()
    yield b
    b.stop()


def plain(broker, user="alice", password="alice-secret"):
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": password}


def failed_authentications(broker):
    return broker.metrics()["gregor_failed_authentication_total"]


def test_clients_authenticate_with_plain_and_are_served(broker, tmp_path):
    topic = unique("sasl-plain")
    admin = AdminClient(plain(broker))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer(plain(broker, "bob", "bob-secret"))
    for i in range(5):
        p.produce(topic, f"librdkafka-{i}".encode())
    assert p.flush(30) == 0

    kcat = ["kcat", "-b", broker.bootstrap, "-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=PLAIN",
            "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"]
    subprocess.run([*kcat, "-P", "-t", topic], input="kcat-0\n", text=True, check=True, timeout=60)
    listed = json.loads(subprocess.run([*kcat, "-L", "-J", "-t", topic], capture_output=True, text=True,
                                       check=True, timeout=60).stdout)
    assert [t["topic"] for t in listed["topics"]] == [topic]

    config = tmp_path / "client.properties"
    config.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                      "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                      'username="alice" password="alice-secret";\n')
    kafka_tool("kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
               "--command-config", config, input="java-0\n")
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                     "--from-beginning", "--max-messages", "7", "--timeout-ms", "30000",
                     "--command-config", config).stdout
    assert out.split() == [f"librdkafka-{i}" for i in range(5)] + ["kcat-0", "java-0"]
    assert "alice-secret" not in broker.log_text() and "bob-secret" not in broker.log_text()


def test_a_wrong_password_is_refused_logged_counted_and_others_are_served(broker):
    before = failed_authentications(broker)
    errors = []
    p = Producer({**plain(broker, "alice", "guess"), "error_cb": errors.append})
    p.poll(0)
    wait_until(lambda: p.poll(0.2) is not None or errors, 30, "the authentication error")
    assert any(e.code() == -169 for e in errors), errors  # _AUTHENTICATION
    assert "Invalid username or password" in " ".join(e.str() for e in errors), errors
    wait_until(lambda: "SASL authentication failed" in broker.log_text(), 10, "the refusal in the log")
    refusal = next(line for line in broker.log_text().splitlines() if "SASL authentication failed" in line)
    assert "peer=127.0.0.1" in refusal and "listener=EXTERNAL" in refusal and "alice" in refusal, refusal
    assert "guess" not in broker.log_text()
    assert failed_authentications(broker) > before
    # Everyone else is still served.
    AdminClient(plain(broker)).list_topics(timeout=30)


def frame_of(api_key, version, correlation_id, body=b"", client_id=b"raw"):
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def closed(sock):
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_request_before_authenticating_closes_the_connection(broker):
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame_of(3, 1, 7, struct.pack(">i", 0)))  # Metadata v1: no topics
        assert closed(s)
    # ApiVersions is served before authentication.
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame_of(18, 0, 8))
        size = struct.unpack(">i", s.recv(4))[0]
        assert size > 6
    # An oversized frame before authentication (sasl.server.max.receive.size).
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", 10 << 20) + b"\0" * 64)
        assert closed(s)


def test_an_unknown_mechanism_is_refused_with_the_enabled_ones(broker):
    host, port = broker.bootstrap.split(":")
    mechanism = b"SCRAM-SHA-256"
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame_of(17, 1, 9, struct.pack(">h", len(mechanism)) + mechanism))
        size = struct.unpack(">i", s.recv(4))[0]
        body = b""
        while len(body) < size:
            body += s.recv(size - len(body))
        correlation, error, count = struct.unpack(">ihi", body[:10])
        assert (correlation, error, count) == (9, 33, 1)  # UNSUPPORTED_SASL_MECHANISM
        assert body[12:] == b"PLAIN"
        assert closed(s)


def test_a_session_re_authenticates_and_keeps_being_served(broker):
    """connections.max.reauth.ms is 5 s here: librdkafka re-authenticates
    its connections before their sessions end and keeps consuming."""
    topic = unique("sasl-reauth")
    admin = AdminClient(plain(broker))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer(plain(broker))
    c = Consumer({**plain(broker), "group.id": unique("sasl-group"), "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + 12  # two sessions and more
    i = 0
    while time.monotonic() < deadline:
        p.produce(topic, f"r-{i}".encode())
        p.flush(10)
        i += 1
        m = c.poll(0.3)
        if m is not None and not m.error():
            got.append(m.value().decode())

    def read_the_rest():
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
        return len(got) >= i

    wait_until(read_the_rest, 30, "every record read")
    c.close()
    assert got == [f"r-{n}" for n in range(i)]
    assert "ended (connections.max.reauth.ms) without re-authentication" not in broker.log_text()


def test_a_sasl_listener_without_users_is_refused_at_start(tmp_path):
    b = Gregor(tmp_path, props={"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
                                "sasl.enabled.mechanisms": "PLAIN"})
    b.write_config()
    out = subprocess.run([str(GREGOR_BIN), "broker", str(b.config)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "PLAIN needs its users" in out.stderr + out.stdout

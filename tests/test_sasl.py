"""SASL on Gregor's listeners with Kafka's settings: a SASL_PLAINTEXT
listener offering PLAIN (users from its JAAS configuration) and
SCRAM-SHA-256/512 (users created with `kafka-configs`, kept in the metadata
quorum) served to real clients (confluent-kafka, kcat, kafka-python, Apache Kafka's
console tools with a --command-config), wrong passwords and out-of-place
requests refused with Kafka's errors, logged with the principal and peer
and counted, and sessions that must re-authenticate (KIP-368)."""

import itertools
import json
import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from certs import Authority
from conftest import GREGOR_BIN, Gregor, GregorCluster, kafka_tool, unique, wait_until

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_alice="alice-secret" user_bob="bob-secret";')


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker whose EXTERNAL listener (its bootstrap) is SASL_PLAINTEXT
    with PLAIN; sessions last 5 s before clients must re-authenticate."""
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
             "listener.name.external.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
             "listener.name.external.plain.sasl.jaas.config": JAAS,
             "listener.name.external.connections.max.reauth.ms": "5000"}
    b = Gregor(tmp_path_factory.mktemp("sasl-broker"), props=props, http=True)
    b.start()
    yield b
    b.stop()


def plain(broker, user="alice", password="alice-secret", mechanism="PLAIN"):
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}


def command_config(path, mechanism, user, password):
    """A Java client's --command-config for SASL_PLAINTEXT."""
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    path.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\n"
                    f'sasl.jaas.config={module} required username="{user}" password="{password}";\n')
    return path


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

    config = command_config(tmp_path / "client.properties", "PLAIN", "alice", "alice-secret")
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
    wait_until(lambda: "Metadata request before SASL authentication" in broker.log_text(), 10, "the log line")
    line = next(x for x in broker.log_text().splitlines() if "Metadata request before SASL authentication" in x)
    assert "peer=127.0.0.1" in line and "principal=User:ANONYMOUS" in line, line
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
    mechanism = b"GSSAPI"
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame_of(17, 1, 9, struct.pack(">h", len(mechanism)) + mechanism))
        size = struct.unpack(">i", s.recv(4))[0]
        body = b""
        while len(body) < size:
            body += s.recv(size - len(body))
        correlation, error, count = struct.unpack(">ihi", body[:10])
        assert (correlation, error, count) == (9, 33, 3)  # UNSUPPORTED_SASL_MECHANISM
        names, rest = [], body[10:]
        while rest:
            n = struct.unpack(">h", rest[:2])[0]
            names.append(rest[2:2 + n].decode())
            rest = rest[2 + n:]
        assert names == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
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


def test_scram_users_made_with_kafka_configs_authenticate_and_can_be_removed(broker, tmp_path):
    """kafka-configs --alter --add-config 'SCRAM-SHA-512=[...]' stores the
    credential in the metadata quorum (AlterUserScramCredentials); clients
    then log in with SCRAM; a removed credential no longer works."""
    admin_config = command_config(tmp_path / "admin.properties", "PLAIN", "alice", "alice-secret")
    kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap, "--command-config", admin_config,
               "--alter", "--entity-type", "users", "--entity-name", "carol",
               "--add-config", "SCRAM-SHA-256=[iterations=4096,password=carol-256],SCRAM-SHA-512=[password=carol-512]")
    admin = AdminClient(plain(broker))
    described = admin.describe_user_scram_credentials(["carol"])["carol"].result(30)
    assert sorted((c.mechanism, c.iterations) for c in described.scram_credential_infos) == [
        (ScramMechanism.SCRAM_SHA_256, 4096), (ScramMechanism.SCRAM_SHA_512, 4096)]

    topic = unique("sasl-scram")
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer(plain(broker, "carol", "carol-512", "SCRAM-SHA-512"))
    p.produce(topic, b"librdkafka-512")
    assert p.flush(30) == 0
    kcat = ["kcat", "-b", broker.bootstrap, "-X", "security.protocol=sasl_plaintext",
            "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", "sasl.username=carol", "-X", "sasl.password=carol-256"]
    subprocess.run([*kcat, "-P", "-t", topic], input="kcat-256\n", text=True, check=True, timeout=60)
    scram_config = command_config(tmp_path / "scram.properties", "SCRAM-SHA-512", "carol", "carol-512")
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                     "--from-beginning", "--max-messages", "2", "--timeout-ms", "30000",
                     "--command-config", scram_config).stdout
    assert out.split() == ["librdkafka-512", "kcat-256"]
    # kafka-python, with SCRAM-SHA-256.
    kp = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                       sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="carol", sasl_plain_password="carol-256",
                       auto_offset_reset="earliest", consumer_timeout_ms=10000)
    assert [m.value for m in itertools.islice(kp, 2)] == [b"librdkafka-512", b"kcat-256"]
    kp.close()

    # A wrong SCRAM password: Kafka's generic answer, logged and counted.
    before = failed_authentications(broker)
    errors = []
    wrong = Producer({**plain(broker, "carol", "nope", "SCRAM-SHA-512"), "error_cb": errors.append})
    wait_until(lambda: wrong.poll(0.2) is not None or errors, 30, "the authentication error")
    assert any("invalid credentials with SASL mechanism SCRAM-SHA-512" in e.str() for e in errors), errors
    wait_until(lambda: failed_authentications(broker) > before, 10, "the refusal to be counted")

    # Removed: SCRAM-SHA-256 no longer logs carol in; SCRAM-SHA-512 still does.
    admin.alter_user_scram_credentials(
        [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)])["carol"].result(30)
    removed = subprocess.run([*kcat, "-L"], capture_output=True, text=True, timeout=60)
    assert removed.returncode != 0 and "SCRAM-SHA-256" in removed.stderr, removed.stderr
    still = AdminClient(plain(broker, "carol", "carol-512", "SCRAM-SHA-512"))
    assert topic in still.list_topics(timeout=30).topics
    for secret in ("carol-256", "carol-512"):
        assert secret not in broker.log_text()


def test_scram_credential_changes_are_checked(broker):
    """Kafka's per-user errors: an unknown user described, a credential
    deleted that does not exist, too few iterations."""
    admin = AdminClient(plain(broker))
    with pytest.raises(Exception, match="does not exist"):
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(30)
    with pytest.raises(Exception, match="does not exist"):
        admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion("nobody", ScramMechanism.SCRAM_SHA_512)])["nobody"].result(30)
    with pytest.raises(Exception, match="Too few iterations"):
        admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 100), b"pw")])["dave"].result(30)


def test_scram_users_given_at_format_time_exist_from_the_first_start(tmp_path):
    """`gregor format --add-scram`, as kafka-storage format: the user logs
    in with SCRAM on the cluster's first start, nothing run beforehand;
    a directory that already holds a cluster is not formatted again."""
    b = Gregor(tmp_path, props={"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
                                "sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    b.write_config()
    fmt = [str(GREGOR_BIN), "format", "--config", str(b.config),
           "--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret,iterations=8192]"]
    out = subprocess.run(fmt, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "admin-secret" not in (b.data / "__cluster_metadata-0" / "bootstrap.json").read_text()
    b.start()
    try:
        admin = AdminClient(plain(b, "admin", "admin-secret", "SCRAM-SHA-512"))
        described = admin.describe_user_scram_credentials(["admin"])["admin"].result(30)
        assert [(c.mechanism, c.iterations) for c in described.scram_credential_infos] == [
            (ScramMechanism.SCRAM_SHA_512, 8192)]
    finally:
        b.stop()
    again = subprocess.run(fmt, capture_output=True, text=True, timeout=30)
    assert again.returncode != 0 and "already holds a cluster" in again.stderr, again.stderr
    bad = subprocess.run([*fmt[:4], "--add-scram", "SCRAM-SHA-512=[name=x,password=top-secret,iterations=1]"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "Too few iterations" in bad.stderr and "top-secret" not in bad.stderr, bad.stderr


def test_a_cluster_replicates_over_a_scram_inter_broker_listener(tmp_path):
    """INTERNAL (inter-broker) is SASL_PLAINTEXT with SCRAM-SHA-512 only:
    followers log in as the broker user given at format time, and log in
    again before their 3 s sessions end; acks=all with min.insync.replicas=3
    proves every record reached all three brokers."""
    scram = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
             'username="broker" password="broker-secret";')
    props = {"listener.security.protocol.map": "INTERNAL:SASL_PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
             "listener.name.internal.sasl.enabled.mechanisms": "SCRAM-SHA-512",
             "listener.name.internal.scram-sha-512.sasl.jaas.config": scram,
             "listener.name.internal.connections.max.reauth.ms": "3000",
             "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
             # Followers fetch with CLUSTER_ACTION: only because User:broker
             # is a super user (the test's plaintext clients are anonymous).
             "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
             "super.users": "User:broker;User:ANONYMOUS"}
    cluster = GregorCluster(tmp_path / "cluster", props=props)
    for b in cluster.brokers:
        b.write_config()
        subprocess.run([str(GREGOR_BIN), "format", "--config", str(b.config),
                        "--add-scram", "SCRAM-SHA-512=[name=broker,password=broker-secret]"], check=True, timeout=30)
    cluster.start()
    try:
        topic = unique("sasl-replicated")
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "3"})])[topic].result(30)
        p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
        delivered = []
        deadline = time.monotonic() + 8  # past two inter-broker sessions
        i = 0
        while time.monotonic() < deadline:
            p.produce(topic, value=str(i).encode(), on_delivery=lambda err, m: delivered.append(err))
            p.poll(0.05)
            i += 1
        assert p.flush(60) == 0
        assert delivered == [None] * i
        parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
        assert all(sorted(part.isrs) == [1, 2, 3] for part in parts.values()), parts
        for b in cluster.brokers:
            log = b.log_text()
            assert "cannot log in to leader" not in log and "SASL authentication failed" not in log
            assert "without re-authentication" not in log
            assert "broker-secret" not in log
    finally:
        cluster.stop()


def test_an_inter_broker_sasl_listener_needs_the_brokers_credentials(tmp_path):
    b = Gregor(tmp_path, props={"listener.security.protocol.map": "INTERNAL:SASL_PLAINTEXT,EXTERNAL:PLAINTEXT",
                                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                                "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512"})
    b.write_config()
    out = subprocess.run([str(GREGOR_BIN), "broker", str(b.config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "give username and password in listener.name.internal.scram-sha-512.sasl.jaas.config" in out.stderr


def test_sasl_ssl_encrypts_and_authenticates(tmp_path):
    """SASL_SSL: a TLS handshake first (the broker's certificate, no client
    certificate asked), then SCRAM-SHA-512 inside it; confluent-kafka and
    Kafka's console tools with a PEM trust store."""
    ca = Authority("Gregor SASL_SSL CA")
    store, _, _ = ca.issue("broker").write(tmp_path, "broker")
    trust = ca.write_trust_store(tmp_path / "ca.pem")
    b = Gregor(tmp_path / "broker", props={
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL",
        "listener.name.external.ssl.keystore.type": "PEM",
        "listener.name.external.ssl.keystore.location": str(store),
        "listener.name.external.sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    b.write_config()
    subprocess.run([str(GREGOR_BIN), "format", "--config", str(b.config),
                    "--add-scram", "SCRAM-SHA-512=[name=erin,password=erin-secret]"], check=True, timeout=30)
    b.start()
    try:
        conf = {**plain(b, "erin", "erin-secret", "SCRAM-SHA-512"), "security.protocol": "SASL_SSL",
                "ssl.ca.location": str(trust)}
        topic = unique("sasl-ssl")
        admin = AdminClient(conf)
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        p = Producer(conf)
        p.produce(topic, b"over-sasl-ssl")
        assert p.flush(30) == 0
        config = tmp_path / "client.properties"
        config.write_text("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
                          "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                          'username="erin" password="erin-secret";\n'
                          f"ssl.truststore.type=PEM\nssl.truststore.location={trust}\n")
        out = kafka_tool("kafka-console-consumer", "--bootstrap-server", b.bootstrap, "--topic", topic,
                         "--from-beginning", "--max-messages", "1", "--timeout-ms", "30000",
                         "--command-config", config).stdout
        assert out.split() == ["over-sasl-ssl"]
    finally:
        b.stop()

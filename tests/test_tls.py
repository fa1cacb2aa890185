"""TLS on Gregor's listeners with Kafka's `ssl.*` settings and PEM or
PKCS12 stores: real clients (confluent-kafka, kcat, Apache Kafka's console
tools) over SSL with client certificates, refusals logged with the peer and
counted, certificates renewed on disk without a restart, and a three-broker
cluster that replicates over an SSL inter-broker listener."""

import json
import re
import shlex
import socket
import ssl
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import wire
from certs import Authority, keytool
from conftest import (GREGOR_BIN, Gregor, GregorCluster, kafka_tool, unique, wait_until)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca, stranger = Authority("Gregor test CA"), Authority("Stranger CA")
    keys = SimpleNamespace(dir=d, ca=ca, trust=ca.write_trust_store(d / "ca.pem"))
    for stem, leaf in [("broker", ca.issue("broker")), ("client", ca.issue("alice")),
                       ("untrusted", stranger.issue("mallory")), ("expired", ca.issue("old", expired=True))]:
        setattr(keys, stem, leaf.write(d, stem))
    return keys


def ssl_listener(pki, listener="external", client_auth="required", key_store=None):
    """Settings of one SSL listener, given per listener as Kafka allows."""
    prefix = f"listener.name.{listener}."
    return {
        prefix + "ssl.keystore.type": "PEM",
        prefix + "ssl.keystore.location": str(key_store or pki.broker[0]),
        prefix + "ssl.truststore.type": "PEM",
        prefix + "ssl.truststore.location": str(pki.trust),
        prefix + "ssl.client.auth": client_auth,
    }


def secured_broker(workdir, pki, **kwargs):
    """A broker whose EXTERNAL listener (its bootstrap) is SSL."""
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SSL", **ssl_listener(pki, **kwargs)}
    return Gregor(workdir, props=props, http=True).start()


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki):
    b = secured_broker(tmp_path_factory.mktemp("tls-broker"), pki)
    yield b
    b.stop()


def librdkafka(broker, pki, cert="client", trust=None):
    """confluent-kafka settings for `broker` over SSL with `cert`'s key
    store (None: no certificate) trusting `trust` (a CA PEM file)."""
    conf = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SSL",
            "ssl.ca.location": str(trust or pki.trust)}
    if cert:
        _, key, crt = getattr(pki, cert)
        conf.update({"ssl.certificate.location": str(crt), "ssl.key.location": str(key)})
    return conf


def failed_authentications(broker):
    return broker.metrics()["gregor_failed_authentication_total"]


def test_clients_produce_and_consume_over_tls(broker, pki, tmp_path):
    topic = unique("tls")
    admin = AdminClient(librdkafka(broker, pki))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

    # confluent-kafka (librdkafka) with a client certificate.
    p = Producer({**librdkafka(broker, pki), "linger.ms": 0})
    for i in range(10):
        p.produce(topic, value=f"librdkafka-{i}".encode())
    assert p.flush(30) == 0

    # kcat, the same settings as -X properties.
    _, key, crt = pki.client
    kcat = ["kcat", "-b", broker.bootstrap, "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={pki.trust}",
            "-X", f"ssl.certificate.location={crt}", "-X", f"ssl.key.location={key}"]
    subprocess.run([*kcat, "-P", "-t", topic], input="kcat-0\nkcat-1\n", text=True, check=True, timeout=60)
    listed = json.loads(subprocess.run([*kcat, "-L", "-J", "-t", topic], capture_output=True, text=True,
                                       check=True, timeout=60).stdout)
    assert [t["topic"] for t in listed["topics"]] == [topic]

    # Apache Kafka's console tools with a --command-config of PEM stores.
    config = tmp_path / "client.properties"
    config.write_text(f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={pki.trust}\n"
                      f"ssl.keystore.type=PEM\nssl.keystore.location={pki.client[0]}\n")
    kafka_tool("kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
               "--command-config", config, input="java-0\njava-1\n")
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                     "--from-beginning", "--max-messages", "14", "--timeout-ms", "30000",
                     "--command-config", config).stdout
    want = [f"librdkafka-{i}" for i in range(10)] + ["kcat-0", "kcat-1", "java-0", "java-1"]
    assert out.split() == want

    c = Consumer({**librdkafka(broker, pki), "group.id": unique("tls-group"), "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []

    def read_all():
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
        return len(got) == len(want)

    wait_until(read_all, 30, "every record read over TLS")
    c.close()
    assert got == want


@pytest.mark.parametrize("case", ["no certificate", "untrusted certificate", "expired certificate",
                                  "plaintext client"])
def test_a_refused_client_is_logged_counted_and_others_are_served(broker, pki, case):
    before = failed_authentications(broker)
    log_before = len(broker.log_text())
    if case == "plaintext client":
        host, port = broker.bootstrap.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            # An ApiVersions request (key 18, v0) without TLS.
            s.sendall(wire.frame(wire.header(18, 0)))
            answer = b""
            while chunk := s.recv(1024):
                answer += chunk
        # No Kafka answer: at most a TLS alert record (type 21), then EOF.
        assert answer == b"" or answer[0] == 21, answer
    else:
        cert = {"no certificate": None, "untrusted certificate": "untrusted",
                "expired certificate": "expired"}[case]
        admin = AdminClient({**librdkafka(broker, pki, cert=cert), "socket.timeout.ms": 5000})
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=5)
    wait_until(lambda: failed_authentications(broker) > before, 30, "the refusal to be counted")
    refusal = [line for line in broker.log_text()[log_before:].splitlines() if "TLS handshake failed" in line]
    assert refusal, broker.log_text()[log_before:]
    assert "peer=127.0.0.1" in refusal[0] and "listener=EXTERNAL" in refusal[0], refusal[0]
    # Everyone else is still served.
    assert AdminClient(librdkafka(broker, pki)).list_topics(timeout=10).brokers


def test_a_tls_client_on_a_plaintext_port_is_closed_and_the_port_keeps_serving(broker):
    host, port = broker.internal_bootstrap.rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with context.wrap_socket(raw, server_hostname=host):
                pass
    assert AdminClient({"bootstrap.servers": broker.internal_bootstrap}).list_topics(timeout=10).brokers


def test_renewed_certificates_are_served_without_a_restart(tmp_path, pki):
    store = tmp_path / "renewed"
    store.mkdir()
    key_store, _, _ = pki.ca.issue("broker").write(store, "broker")
    broker = secured_broker(tmp_path / "broker", pki, key_store=key_store)
    try:
        new_ca = Authority("Renewed CA")
        new_trust = new_ca.write_trust_store(tmp_path / "new-ca.pem")

        def served(trust):
            try:
                AdminClient({**librdkafka(broker, pki, trust=trust), "socket.timeout.ms": 3000}).list_topics(
                    timeout=3)
                return True
            except KafkaException:
                return False

        assert served(pki.trust) and not served(new_trust)
        new_ca.issue("broker").write(store, "broker")
        wait_until(lambda: served(new_trust), 60, "the renewed certificate to be served")
        assert not served(pki.trust)
        assert "TLS certificates renewed from disk" in broker.log_text()
        assert broker.alive()
    finally:
        broker.stop()


def test_unusable_tls_settings_stop_the_broker_with_the_reason(tmp_path, pki):
    cases = [
        ({"listener.name.external.ssl.keystore.location": str(tmp_path / "missing.pem")}, 1,
         ["EXTERNAL", "missing.pem"]),
        ({"listener.name.external.ssl.keystore.location": str(pki.trust)}, 1, ["EXTERNAL", "no PRIVATE KEY"]),
        ({"listener.name.external.ssl.keystore.type": "JKS"}, 2, ["ssl.keystore.type", "keytool -importkeystore"]),
        ({"listener.name.external.ssl.truststore.location": None}, 2, ["EXTERNAL", "trust store"]),
    ]
    for i, (change, code, words) in enumerate(cases):
        proc = refused_start(tmp_path / f"bad-{i}", ssl_listener(pki), change)
        assert proc.returncode == code, (change, proc.stderr)
        for w in words:
            assert w in proc.stderr, (change, proc.stderr)
        assert "BEGIN PRIVATE KEY" not in proc.stderr


def refused_start(workdir, listener, change):
    """Starts a broker whose EXTERNAL listener is SSL with the `listener`
    settings, changed by `change` (None removes a key); the finished
    process, which should have refused to start."""
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SSL", **listener}
    for k, v in change.items():
        if v is None:
            props.pop(k)
        else:
            props[k] = v
    b = Gregor(workdir, props=props)
    b.write_config()
    return subprocess.run([str(GREGOR_BIN), "broker", str(b.config)], capture_output=True, text=True, timeout=60)


BROKER_PASSWORD, CLIENT_PASSWORD, TRUST_PASSWORD = "broker-store-pw", "alice-store-pw", "trust-store-pw"


@pytest.fixture(scope="module")
def p12(pki):
    """PKCS12 stores written by the JDK's keytool, certificates of `pki`'s
    CA: the broker's and alice's key stores and the CA's trust store, each
    with its password, and the CA's trust store without one."""
    d, ca = pki.dir, pki.ca
    return SimpleNamespace(
        broker=ca.issue("broker").write_pkcs12(d / "broker.p12", BROKER_PASSWORD),
        client=ca.issue("alice").write_pkcs12(d / "alice.p12", CLIENT_PASSWORD),
        trust=ca.write_pkcs12_trust_store(d / "truststore.p12", TRUST_PASSWORD),
        open_trust=ca.write_pkcs12_trust_store(d / "open-truststore.p12"))


def pkcs12_listener(p12, listener="external"):
    """Settings of an SSL listener with PKCS12 stores and client
    certificates required, as a Kafka broker would have them (the key's
    password given too, the store's)."""
    prefix = f"listener.name.{listener}."
    return {prefix + k: v for k, v in {
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(p12.broker),
        "ssl.keystore.password": BROKER_PASSWORD,
        "ssl.key.password": BROKER_PASSWORD,
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.location": str(p12.trust),
        "ssl.truststore.password": TRUST_PASSWORD,
        "ssl.client.auth": "required",
    }.items()}


def java_pkcs12_config(path, p12, trust_password=TRUST_PASSWORD, trust=None):
    """A --command-config of alice's PKCS12 key store and the CA's trust
    store (with no ssl.truststore.password when `trust_password` is None)."""
    lines = ["security.protocol=SSL", "ssl.keystore.type=PKCS12", f"ssl.keystore.location={p12.client}",
             f"ssl.keystore.password={CLIENT_PASSWORD}", f"ssl.key.password={CLIENT_PASSWORD}",
             "ssl.truststore.type=PKCS12", f"ssl.truststore.location={trust or p12.trust}"]
    if trust_password:
        lines.append(f"ssl.truststore.password={trust_password}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pkcs12_stores_made_by_keytool_serve_java_and_librdkafka_clients(tmp_path, pki, p12):
    """The EXTERNAL listener takes its key store and trust store as PKCS12
    files keytool wrote, with Kafka's password settings, and requires
    client certificates: Apache Kafka's console tools with PKCS12 stores in
    their --command-config, and confluent-kafka with alice's PKCS12 key
    store, produce and consume."""
    broker = Gregor(tmp_path / "broker", props={"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SSL",
                                                **pkcs12_listener(p12)}).start()
    try:
        topic = unique("pkcs12")
        rdkafka = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SSL",
                   "ssl.ca.location": str(pki.trust), "ssl.keystore.location": str(p12.client),
                   "ssl.keystore.password": CLIENT_PASSWORD}
        admin = AdminClient(rdkafka)
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        p = Producer({**rdkafka, "linger.ms": 0})
        for i in range(3):
            p.produce(topic, value=f"librdkafka-{i}".encode())
        assert p.flush(30) == 0

        config = java_pkcs12_config(tmp_path / "client.properties", p12)
        kafka_tool("kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                   "--command-config", config, input="java-0\njava-1\n")
        want = ["librdkafka-0", "librdkafka-1", "librdkafka-2", "java-0", "java-1"]
        out = kafka_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                         "--from-beginning", "--max-messages", len(want), "--timeout-ms", "30000",
                         "--command-config", config).stdout
        assert out.split() == want

        c = Consumer({**rdkafka, "group.id": unique("pkcs12-group"), "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        got = []

        def read_all():
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value().decode())
            return len(got) == len(want)

        wait_until(read_all, 30, "every record read by confluent-kafka")
        c.close()
        assert got == want
        # Without a client certificate the listener is closed to it.
        with pytest.raises(KafkaException):
            AdminClient({**librdkafka(broker, pki, cert=None), "socket.timeout.ms": 5000}).list_topics(timeout=5)
    finally:
        broker.stop()


def test_a_pkcs12_trust_store_without_password_is_one_without_protection(tmp_path, pki, p12):
    """keytool writes a trust store with no integrity check and no
    encryption when told to (its NONE algorithms), which Java reads with no
    ssl.truststore.password: Gregor reads it so too, and a Java client with
    the same store and no password is served."""
    prefix = "listener.name.external."
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SSL", **pkcs12_listener(p12),
             prefix + "ssl.truststore.location": str(p12.open_trust)}
    props.pop(prefix + "ssl.truststore.password")
    broker = Gregor(tmp_path / "broker", props=props).start()
    try:
        config = java_pkcs12_config(tmp_path / "client.properties", p12, trust_password=None, trust=p12.open_trust)
        topic = unique("open-trust")
        kafka_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", topic,
                   "--partitions", "1", "--replication-factor", "1", "--command-config", config)
        listed = kafka_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--list",
                            "--command-config", config).stdout
        assert topic in listed.split()
    finally:
        broker.stop()


def test_unusable_pkcs12_settings_stop_the_broker_with_the_reason(tmp_path, pki, p12):
    """Wrong passwords, a missing one, a store of the wrong kind and a JKS
    store each stop the broker with a message naming the setting and file,
    never a password; the keytool command the JKS refusal gives converts
    the store into one the broker starts with."""
    jks = pki.ca.issue("broker").write_pkcs12(tmp_path / "broker.jks", BROKER_PASSWORD, store_type="JKS")
    e = "listener.name.external."
    cases = [
        ({e + "ssl.keystore.password": "wrong-password", e + "ssl.key.password": None}, 1,
         ["listener EXTERNAL", str(p12.broker), "ssl.keystore.password does not open it"]),
        ({e + "ssl.truststore.password": "wrong-password"}, 1,
         ["listener EXTERNAL", str(p12.trust), "ssl.truststore.password does not open it"]),
        ({e + "ssl.truststore.password": None}, 1, [str(p12.trust), "set ssl.truststore.password"]),
        ({e + "ssl.keystore.password": None, e + "ssl.key.password": None}, 2,
         [str(p12.broker), "set ssl.keystore.password"]),
        ({e + "ssl.key.password": "wrong-password"}, 2, ["ssl.key.password", "differs from ssl.keystore.password"]),
        ({e + "ssl.keystore.location": str(p12.trust), e + "ssl.keystore.password": TRUST_PASSWORD,
          e + "ssl.key.password": None}, 1, [str(p12.trust), "no private key"]),
        ({e + "ssl.keystore.type": "JKS", e + "ssl.keystore.location": str(jks)}, 2,
         ["ssl.keystore.type", f"keytool -importkeystore -srckeystore {jks}"]),
    ]
    for i, (change, code, words) in enumerate(cases):
        proc = refused_start(tmp_path / f"bad-{i}", pkcs12_listener(p12), change)
        assert proc.returncode == code, (change, proc.stderr)
        for w in words:
            assert w in proc.stderr, (change, proc.stderr)
        for password in ["wrong-password", BROKER_PASSWORD, TRUST_PASSWORD]:
            assert password not in proc.stderr, (change, proc.stderr)

    command = re.search(r"`(keytool -importkeystore [^`]*)`", proc.stderr).group(1)
    converted = Path(shlex.split(command)[shlex.split(command).index("-destkeystore") + 1])
    keytool(*shlex.split(command)[1:], "-srcstorepass", BROKER_PASSWORD, "-deststorepass", BROKER_PASSWORD)
    broker = Gregor(tmp_path / "converted", props={
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SSL",
        **pkcs12_listener(p12), e + "ssl.keystore.location": str(converted)}).start()
    try:
        assert AdminClient({"bootstrap.servers": broker.bootstrap, "security.protocol": "SSL",
                            "ssl.ca.location": str(pki.trust), "ssl.keystore.location": str(p12.client),
                            "ssl.keystore.password": CLIENT_PASSWORD}).list_topics(timeout=10).brokers
    finally:
        broker.stop()


def controller_call(port, message, context=None):
    """One message on a controller listener (4-byte length, JSON), over TLS
    when `context` is given; the answer, or None when the node closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        s = context.wrap_socket(raw, server_hostname="localhost") if context else raw
        body = json.dumps(message).encode()
        s.sendall(struct.pack(">I", len(body)) + body)
        head = s.recv(4)
        if len(head) < 4:
            return None
        (size,) = struct.unpack(">I", head)
        data = b""
        while len(data) < size:
            chunk = s.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return json.loads(data)


def closed_without_answer(port, message, context=None):
    """Whether the controller listener at `port` closed (or reset) the
    connection, or failed the TLS handshake, instead of answering."""
    try:
        return controller_call(port, message, context) is None
    except OSError:  # ssl.SSLError is one too
        return True


def test_a_cluster_whose_inter_broker_and_controller_traffic_is_tls_only(tmp_path, pki):
    """INTERNAL (inter-broker) and CONTROLLER are SSL with client
    certificates required, and the StandardAuthorizer lets only the
    brokers' certificate principal use the controller listener: the quorum
    forms, followers fetch over TLS, and the controller port refuses a
    plaintext peer, an untrusted certificate and a trusted principal
    without CLUSTER_ACTION, each logged with the peer (and principal) and
    counted, while the cluster keeps serving."""
    broker_principal = "User:CN=broker,O=Gregor tests"
    props = {"listener.security.protocol.map": "INTERNAL:SSL,EXTERNAL:PLAINTEXT,CONTROLLER:SSL",
             "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
             # The test's own clients come in plaintext on EXTERNAL.
             "super.users": f"{broker_principal};User:ANONYMOUS",
             **ssl_listener(pki, listener="internal"), **ssl_listener(pki, listener="controller")}
    cluster = GregorCluster(tmp_path / "cluster", props=props, http=True).start()
    try:
        topic = unique("tls-replicated")
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "3"})])[topic].result(30)

        def produce(count):
            p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
            delivered = []
            for i in range(count):
                p.produce(topic, value=str(i).encode(), on_delivery=lambda err, m: delivered.append(err))
            assert p.flush(60) == 0
            # acks=all with min.insync.replicas=3: each record reached all three.
            assert delivered == [None] * count

        produce(300)
        parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
        assert all(sorted(part.isrs) == [1, 2, 3] for part in parts.values()), parts

        victim = cluster.broker(1)
        port = int(victim.props["listeners"].rsplit(":", 1)[1])
        pre_vote = {"PreVote": {"candidate": 9, "last_log": None}}
        # Plaintext bytes are not a TLS ClientHello.
        assert closed_without_answer(port, pre_vote)
        stranger = ssl.create_default_context(cafile=str(pki.trust))
        _, key, crt = pki.untrusted
        stranger.load_cert_chain(str(crt), str(key))
        assert closed_without_answer(port, pre_vote, stranger)
        alice = ssl.create_default_context(cafile=str(pki.trust))
        _, key, crt = pki.client
        alice.load_cert_chain(str(crt), str(key))
        answer = controller_call(port, pre_vote, alice)
        assert "CN=alice" in answer["Refused"], answer

        def logged(words):
            return [line for line in victim.log_text().splitlines() if all(w in line for w in words)]

        wait_until(lambda: len(logged(["controller listener failed", "peer=127.0.0.1"])) >= 2, 10,
                   "both failed handshakes in the log")
        denied = logged(["ClusterAction", "principal=User:CN=alice,O=Gregor tests", "peer=127.0.0.1"])
        assert denied and "PreVote" in denied[0], victim.log_text()[-3000:]
        assert victim.metrics()["gregor_controller_listener_refused_total"] >= 3
        # The brokers were never refused, and still replicate.
        for b in cluster.brokers:
            assert f"principal={broker_principal}" not in b.log_text()
        produce(100)
        for b in cluster.brokers:
            assert "cannot reach leader" not in b.log_text()
    finally:
        cluster.stop()


def test_a_client_certificate_names_the_principal(tmp_path, pki):
    """The principal of a client with a certificate is its subject (RFC 2253:
    CN=alice,O=Gregor tests) through ssl.principal.mapping.rules; the broker
    names it when it refuses that client something (here an unknown API)."""
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SSL",
             "listener.name.external.ssl.principal.mapping.rules": "RULE:^CN=([^,]*),O=Gregor tests$/$1/U, DEFAULT",
             **ssl_listener(pki)}
    broker = Gregor(tmp_path, props=props).start()
    try:
        host, port = broker.bootstrap.split(":")
        _, key, crt = pki.client
        context = ssl.create_default_context(cafile=str(pki.trust))
        context.load_cert_chain(str(crt), str(key))
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(struct.pack(">ihhi", 8, 999, 0, 1))  # API key 999: unknown
                assert s.recv(1) == b""
        wait_until(lambda: "unknown API key 999" in broker.log_text(), 10, "the refusal in the log")
        line = next(x for x in broker.log_text().splitlines() if "unknown API key 999" in x)
        assert "principal=User:ALICE" in line, line
    finally:
        broker.stop()

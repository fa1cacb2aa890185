"""ACLs with Kafka's tools and rules: a broker configured with Kafka's
StandardAuthorizer class name, ACLs made and removed with `kafka-acls`,
kept in the metadata quorum across a restart, and enforced on real clients
(confluent-kafka, kcat, kafka-python, Apache Kafka's console tools): a user
limited to one topic and one group is served there and refused elsewhere
with TOPIC_AUTHORIZATION_FAILED / GROUP_AUTHORIZATION_FAILED, topics it may
not see are left out of its metadata, and every refusal is logged with the
principal and peer."""

import json
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kafka.errors import TopicAuthorizationFailedError
from kafka.protocol.admin import CreateTopicsRequest, CreateTopicsResponse
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.sasl import (SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
                                 SaslHandshakeResponse)

import wire
from conftest import Gregor, java_command, kafka_tool, unique, wait_until

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker whose EXTERNAL listener (its bootstrap) is SASL_PLAINTEXT
    with PLAIN users admin (a super user), alice and bob, and whose INTERNAL
    listener is plaintext (clients there are User:ANONYMOUS)."""
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
             "listener.name.external.sasl.enabled.mechanisms": "PLAIN",
             "listener.name.external.plain.sasl.jaas.config": JAAS,
             "authorizer.class.name": AUTHORIZER,
             "super.users": "User:admin",
             # Quota rates over 5 windows of 1 s: throttling settles within
             # seconds instead of Kafka's default 11.
             "quota.window.num": "5"}
    b = Gregor(tmp_path_factory.mktemp("acl-broker"), props=props, http=True)
    b.start()
    yield b
    b.stop()


def client(broker, user, **extra):
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": USERS[user], **extra}


def command_config(tmp_path, user):
    path = tmp_path / f"{user}.properties"
    path.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                    "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                    f'username="{user}" password="{USERS[user]}";\n')
    return path


def acls(broker, tmp_path, *args, user="admin", check=True):
    return kafka_tool("kafka-acls", "--bootstrap-server", broker.bootstrap,
                      "--command-config", command_config(tmp_path, user), *args, check=check)


def create_topics(broker, *names):
    admin = AdminClient(client(broker, "admin"))
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(30)


def produce_errors(broker, user, topic, count=3):
    """Produces as `user`; the delivery errors (None for a delivered record)."""
    results = []
    p = Producer(client(broker, user, **{"message.timeout.ms": 15000}))
    for i in range(count):
        p.produce(topic, f"{user}-{i}".encode(), on_delivery=lambda err, m: results.append(err))
    p.flush(30)
    return results


def denials(broker, principal):
    return [line for line in broker.log_text().splitlines()
            if f"Principal = {principal} is Denied" in line]


def test_a_user_limited_to_one_topic_and_group_is_served_there_and_refused_elsewhere(broker, tmp_path):
    orders, secret, group = unique("orders"), unique("secret"), unique("orders-app")
    create_topics(broker, orders, secret)
    acls(broker, tmp_path, "--add", "--allow-principal", "User:alice", "--producer", "--topic", orders)
    acls(broker, tmp_path, "--add", "--allow-principal", "User:alice", "--consumer", "--topic", orders,
         "--group", group)
    listed = acls(broker, tmp_path, "--list", "--topic", orders).stdout
    for operation in ("WRITE", "READ", "DESCRIBE", "CREATE"):
        assert f"principal=User:alice, host=*, operation={operation}, permissionType=ALLOW" in listed, listed

    # Java's console producer is idempotent: InitProducerId is allowed by
    # WRITE on some topic (KIP-679), no IDEMPOTENT_WRITE ACL needed.
    alice = command_config(tmp_path, "alice")
    kafka_tool("kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", orders,
               "--command-config", alice, input="java-0\njava-1\n")
    assert produce_errors(broker, "alice", orders) == [None] * 3
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", orders,
                     "--group", group, "--from-beginning", "--max-messages", "5", "--timeout-ms", "30000",
                     "--command-config", alice).stdout
    assert sorted(out.split()) == ["alice-0", "alice-1", "alice-2", "java-0", "java-1"]

    errors = produce_errors(broker, "alice", secret)
    assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3, errors

    consumer = Consumer(client(broker, "alice", **{"group.id": unique("other-group"),
                                                   "auto.offset.reset": "earliest"}))
    consumer.subscribe([orders])
    try:
        seen = []
        wait_until(lambda: seen.append(consumer.poll(1)) or any(
            m is not None and m.error() is not None for m in seen), 30, "the group refusal")
        codes = [m.error().code() for m in seen if m is not None and m.error() is not None]
        assert KafkaError.GROUP_AUTHORIZATION_FAILED in codes, codes
    finally:
        consumer.close()

    # Metadata leaves out what alice may not describe; kcat sees the same.
    assert orders in AdminClient(client(broker, "alice")).list_topics(timeout=30).topics
    assert secret not in AdminClient(client(broker, "alice")).list_topics(timeout=30).topics
    kcat = subprocess.run(["kcat", "-b", broker.bootstrap, "-X", "security.protocol=sasl_plaintext",
                           "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice",
                           "-X", "sasl.password=alice-secret", "-L", "-J"],
                          capture_output=True, text=True, check=True, timeout=60)
    kcat_topics = [t["topic"] for t in json.loads(kcat.stdout)["topics"]]
    assert orders in kcat_topics and secret not in kcat_topics, kcat_topics

    # Named explicitly, a hidden topic is refused (kafka-python too).
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="PLAIN", sasl_plain_username="alice",
                      sasl_plain_password="alice-secret", max_block_ms=10000)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            p.send(secret, b"kafka-python").get(timeout=15)
    finally:
        p.close()

    refusals = denials(broker, "User:alice")
    assert any(f"resource = Topic:LITERAL:{secret}" in line and "operation = Describe" in line
               and "host = 127.0.0.1" in line and "peer=127.0.0.1" in line for line in refusals), refusals
    assert any("resource = Group:LITERAL:" in line for line in refusals), refusals
    assert "alice-secret" not in broker.log_text()


def test_prefixed_allows_and_a_deny_that_wins(broker, tmp_path):
    prefix = unique("team")
    open_topic, frozen = f"{prefix}-open", f"{prefix}-frozen"
    create_topics(broker, open_topic, frozen)
    acls(broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "All",
         "--topic", f"{prefix}-", "--resource-pattern-type", "prefixed")
    acls(broker, tmp_path, "--add", "--deny-principal", "User:bob", "--operation", "Write", "--topic", frozen)

    assert produce_errors(broker, "bob", open_topic) == [None] * 3
    errors = produce_errors(broker, "bob", frozen)
    assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3, errors
    # A DENY of WRITE does not deny DESCRIBE: the topic is still listed.
    topics = AdminClient(client(broker, "bob")).list_topics(timeout=30).topics
    assert open_topic in topics and frozen in topics

    matching = acls(broker, tmp_path, "--list", "--topic", frozen, "--resource-pattern-type", "match").stdout
    assert f"name={prefix}-, patternType=PREFIXED" in matching, matching
    assert f"name={frozen}, patternType=LITERAL" in matching, matching


def test_only_a_principal_with_alter_on_the_cluster_changes_acls(broker, tmp_path):
    refused = acls(broker, tmp_path, "--add", "--allow-principal", "User:alice", "--operation", "All",
                   "--topic", "*", user="alice", check=False)
    assert refused.returncode != 0
    assert "ClusterAuthorizationException" in refused.stdout + refused.stderr, refused
    listed = acls(broker, tmp_path, "--list", user="bob", check=False)
    assert "ClusterAuthorizationException" in listed.stdout + listed.stderr, listed
    assert "topic=*" not in acls(broker, tmp_path, "--list").stdout
    assert denials(broker, "User:alice") and any(
        "resource = Cluster:LITERAL:kafka-cluster" in line for line in denials(broker, "User:alice"))


def test_an_unauthenticated_client_is_denied_by_default(broker):
    topic = unique("anon")
    create_topics(broker, topic)
    anonymous = {"bootstrap.servers": broker.internal_bootstrap}
    assert topic not in AdminClient(anonymous).list_topics(timeout=30).topics
    results = []
    p = Producer({**anonymous, "message.timeout.ms": 15000})
    p.produce(topic, b"x", on_delivery=lambda err, m: results.append(err))
    p.flush(30)
    assert [e.code() for e in results] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], results
    assert denials(broker, "User:ANONYMOUS")


def test_acls_survive_a_restart_and_removing_them_takes_access_away(broker, tmp_path):
    topic = unique("kept")
    create_topics(broker, topic)
    acls(broker, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Write",
         "--operation", "Describe", "--topic", topic, "--allow-host", "127.0.0.1")
    before = acls(broker, tmp_path, "--list", "--topic", topic).stdout
    broker.restart()
    after = acls(broker, tmp_path, "--list", "--topic", topic).stdout
    # kafka-acls prints a set: compare the lines, not their order.
    assert sorted(before.splitlines()) == sorted(after.splitlines()), (before, after)
    assert "host=127.0.0.1, operation=WRITE" in after, after
    assert produce_errors(broker, "bob", topic) == [None] * 3

    acls(broker, tmp_path, "--remove", "--force", "--allow-principal", "User:bob",
         "--allow-host", "127.0.0.1", "--operation", "Write", "--topic", topic)
    left = acls(broker, tmp_path, "--list", "--topic", topic).stdout
    assert "operation=WRITE" not in left and "host=127.0.0.1, operation=DESCRIBE" in left, left
    errors = produce_errors(broker, "bob", topic, count=1)
    assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors


def configs(broker, tmp_path, *args, user="admin", check=True):
    return kafka_tool("kafka-configs", "--bootstrap-server", broker.bootstrap,
                      "--command-config", command_config(tmp_path, user), *args, check=check)


def test_client_quotas_are_kept_listed_and_checked(broker, tmp_path):
    """kafka-configs sets, lists and removes quotas of users, client ids,
    both, their defaults and IPs (AlterClientQuotas/DescribeClientQuotas,
    kept in the metadata quorum); bad keys and values are refused with
    Kafka's errors; only ALTER_CONFIGS on the cluster may change them."""
    configs(broker, tmp_path, "--alter", "--entity-type", "users", "--entity-name", "alice",
            "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152,request_percentage=12.5")
    configs(broker, tmp_path, "--alter", "--entity-type", "users", "--entity-name", "alice",
            "--entity-type", "clients", "--entity-name", "orders-app", "--add-config", "producer_byte_rate=4096")
    configs(broker, tmp_path, "--alter", "--entity-type", "users", "--entity-default",
            "--add-config", "consumer_byte_rate=65536")
    configs(broker, tmp_path, "--alter", "--entity-type", "ips", "--entity-name", "10.1.2.3",
            "--add-config", "connection_creation_rate=10")

    alice = configs(broker, tmp_path, "--describe", "--entity-type", "users", "--entity-name", "alice").stdout
    assert "user-principal 'alice'" in alice, alice
    for setting in ("producer_byte_rate=1048576.0", "consumer_byte_rate=2097152.0", "request_percentage=12.5"):
        assert setting in alice, alice
    both = configs(broker, tmp_path, "--describe", "--entity-type", "users", "--entity-name", "alice",
                   "--entity-type", "clients", "--entity-name", "orders-app").stdout
    assert "producer_byte_rate=4096.0" in both, both
    default = configs(broker, tmp_path, "--describe", "--entity-type", "users", "--entity-default").stdout
    assert "consumer_byte_rate=65536.0" in default, default
    ips = configs(broker, tmp_path, "--describe", "--entity-type", "ips", "--entity-name", "10.1.2.3").stdout
    assert "connection_creation_rate=10" in ips, ips

    configs(broker, tmp_path, "--alter", "--entity-type", "users", "--entity-name", "alice",
            "--delete-config", "request_percentage")
    alice = configs(broker, tmp_path, "--describe", "--entity-type", "users", "--entity-name", "alice").stdout
    assert "request_percentage" not in alice and "producer_byte_rate=1048576.0" in alice, alice

    broker.restart()
    kept = configs(broker, tmp_path, "--describe", "--entity-type", "users", "--entity-default").stdout
    assert "consumer_byte_rate=65536.0" in kept, kept

    fraction = configs(broker, tmp_path, "--alter", "--entity-type", "users", "--entity-name", "bob",
                       "--add-config", "producer_byte_rate=10.5", check=False)
    assert fraction.returncode != 0 and "whole number" in fraction.stdout + fraction.stderr, fraction
    wrong_key = configs(broker, tmp_path, "--alter", "--entity-type", "ips", "--entity-name", "10.1.2.3",
                        "--add-config", "producer_byte_rate=1", check=False)
    assert wrong_key.returncode != 0, wrong_key
    refused = configs(broker, tmp_path, "--alter", "--entity-type", "users", "--entity-name", "alice",
                      "--add-config", "producer_byte_rate=1", user="alice", check=False)
    assert "ClusterAuthorizationException" in refused.stdout + refused.stderr, refused
    listed = configs(broker, tmp_path, "--describe", "--entity-type", "users", user="bob", check=False)
    assert "ClusterAuthorizationException" in listed.stdout + listed.stderr, listed


def test_only_alter_configs_on_the_cluster_changes_replication_throttles(broker, tmp_path):
    """The dynamic broker settings take ALTER_CONFIGS on the cluster to
    change and DESCRIBE_CONFIGS on it to read, as in Kafka."""
    default = ("--entity-type", "brokers", "--entity-default")
    refused = configs(broker, tmp_path, "--alter", *default,
                      "--add-config", "follower.replication.throttled.rate=1000", user="alice", check=False)
    assert "ClusterAuthorizationException" in refused.stdout + refused.stderr, refused
    listed = configs(broker, tmp_path, "--describe", *default, user="alice", check=False)
    assert "ClusterAuthorizationException" in listed.stdout + listed.stderr, listed
    configs(broker, tmp_path, "--alter", *default, "--add-config", "follower.replication.throttled.rate=1000")
    assert "follower.replication.throttled.rate=1000" in configs(broker, tmp_path, "--describe", *default).stdout
    refused = configs(broker, tmp_path, "--alter", *default,
                      "--delete-config", "follower.replication.throttled.rate", user="alice", check=False)
    assert "ClusterAuthorizationException" in refused.stdout + refused.stderr, refused
    configs(broker, tmp_path, "--alter", *default, "--delete-config", "follower.replication.throttled.rate")
    assert "follower.replication" not in configs(broker, tmp_path, "--describe", *default).stdout


def slope(points, after):
    """Bytes per second over (seconds, cumulative bytes) points from `after` on."""
    tail = [(t, b) for t, b in points if t >= after]
    (t0, b0), (t1, b1) = tail[0], tail[-1]
    return (b1 - b0) / (t1 - t0)


def test_producers_and_consumers_are_held_to_their_byte_rates(broker, tmp_path):
    """A user and client id's producer_byte_rate and consumer_byte_rate throttle a
    client that sends or fetches as fast as it can: past the first windows'
    credit its rate stays within 20 % of the quota (Kafka's throttling: the
    answer carries the time to wait, the connection is muted meanwhile)."""
    topic, client_id, rate = unique("quota"), unique("quota-probe"), 400_000
    create_topics(broker, topic)
    # On the user and client id together: the most specific entity wins
    # over the default user quota another test sets.
    configs(broker, tmp_path, "--alter", "--entity-type", "users", "--entity-name", "admin",
            "--entity-type", "clients", "--entity-name", client_id,
            "--add-config", f"producer_byte_rate={rate},consumer_byte_rate={rate}")

    value = b"x" * 10_000
    delivered, start = [], time.monotonic()
    # Batches small next to the quota, so each throttle is short next to
    # the window; a local queue deep enough to keep requests coming.
    p = Producer(client(broker, "admin", **{"client.id": client_id, "linger.ms": 5, "batch.size": 50_000,
                                            "queue.buffering.max.kbytes": 4096}))

    def on_delivery(err, _msg):
        if err is None:
            delivered.append(time.monotonic() - start)
        else:
            assert err.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT), err

    while time.monotonic() - start < 12:
        try:
            p.produce(topic, value, on_delivery=on_delivery)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    # What is still queued or in flight is not needed: the rate is measured.
    p.purge()
    p.flush(30)
    sent = [(t, (i + 1) * len(value)) for i, t in enumerate(delivered)]
    produced = slope([(t, b) for t, b in sent if t <= 12], after=6)
    assert abs(produced - rate) <= 0.2 * rate, f"produced {produced:.0f} B/s against a quota of {rate}"

    c = Consumer(client(broker, "admin", **{"client.id": client_id, "group.id": unique("quota-group"),
                                            "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                            "max.partition.fetch.bytes": 100_000}))
    c.subscribe([topic])
    got, start = [], time.monotonic()
    try:
        while time.monotonic() - start < 12:
            for m in c.consume(100, timeout=0.5):
                assert m.error() is None, m.error()
                got.append((time.monotonic() - start, (len(got) + 1) * len(m.value())))
    finally:
        c.close()
    assert len(got) < len(delivered), "the consumer was not held back"
    fetched = slope(got, after=6)
    assert abs(fetched - rate) <= 0.2 * rate, f"fetched {fetched:.0f} B/s against a quota of {rate}"


def metadata_v4(correlation_id, client_id):
    """A Metadata v4 request for every topic, creating none."""
    return wire.frame(wire.header(3, 4, correlation_id, client_id) + struct.pack(">i?", -1, False))


def request_back_to_back(broker, client_id, enough_throttles, limit=2000, seconds=40):
    """Sends Metadata requests one after another from `client_id` on the
    plaintext listener: each answer's throttle time, and for each answer
    that followed a throttled one, (the throttle in ms, how long that next
    request took in ms)."""
    conn = wire.Connection(broker.internal_bootstrap)
    throttles, after_throttle = [], []
    deadline = time.monotonic() + seconds
    try:
        for i in range(limit):
            if time.monotonic() > deadline or len(after_throttle) >= enough_throttles:
                break
            sent = time.monotonic()
            conn.send(metadata_v4(i, client_id))
            correlation, throttle = struct.unpack(">ii", conn.response()[:8])
            assert correlation == i
            if throttles and throttles[-1] > 0:
                after_throttle.append((throttles[-1], (time.monotonic() - sent) * 1000))
            throttles.append(throttle)
    finally:
        conn.close()
    return throttles, after_throttle


def test_a_client_is_held_to_its_request_percentage(broker, tmp_path):
    """request_percentage (KIP-124) on a client id: a client sending
    requests back to back is answered with throttle times once the broker's
    time on its requests passes its share of a thread (0.05 %: half a
    millisecond a second), and its connection takes nothing more until that
    time has passed; a client without the quota is never throttled."""
    limited, free = unique("busy-client"), unique("free-client")
    configs(broker, tmp_path, "--alter", "--entity-type", "clients", "--entity-name", limited,
            "--add-config", "request_percentage=0.05")
    throttled_before = broker.metrics().get("gregor_throttled_requests_total", 0)
    throttles, after_throttle = request_back_to_back(broker, limited, enough_throttles=3)
    assert len(after_throttle) >= 3, f"{len(throttles)} requests, throttles {sorted(set(throttles))}"
    for throttle_ms, took_ms in after_throttle:
        # The connection was muted for the throttle time before this
        # request was read.
        assert took_ms >= 0.8 * throttle_ms, after_throttle
    assert broker.metrics()["gregor_throttled_requests_total"] >= throttled_before + 3

    throttles, _ = request_back_to_back(broker, free, enough_throttles=1, limit=len(throttles) * 2)
    assert set(throttles) == {0}


THROTTLING_QUOTA_EXCEEDED = 89


class AdminWire:
    """A connection to the SASL PLAIN listener that sends kafka-python's
    request messages at the versions a test picks."""

    def __init__(self, broker, user, client_id):
        self.conn, self.client_id, self.correlation = wire.Connection(broker.bootstrap), client_id, 0
        assert self.call(SaslHandshakeRequest(mechanism="PLAIN"), SaslHandshakeResponse, 1).error_code == 0
        login = f"\0{user}\0{USERS[user]}".encode()
        assert self.call(SaslAuthenticateRequest(auth_bytes=login), SaslAuthenticateResponse, 1).error_code == 0

    def call(self, request, response_class, version):
        self.correlation += 1
        request.with_header(self.correlation, self.client_id)
        self.conn.send(request.encode(version=version, header=True, framed=True))
        return response_class.decode(self.conn.response(), version=version, header=True)

    def create_topics(self, topics, version=7):
        """CreateTopics of {name: partitions}: (throttle ms, {name: (error code, message)})."""
        request = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
            name=name, num_partitions=n, replication_factor=1, assignments=[], configs=[])
            for name, n in topics.items()], timeout_ms=30000, validate_only=False)
        response = self.call(request, CreateTopicsResponse, version)
        return response.throttle_time_ms, {t.name: (t.error_code, t.error_message) for t in response.topics}

    def close(self):
        self.conn.close()


def test_topic_mutations_are_held_to_the_controller_mutation_rate(broker, tmp_path):
    """controller_mutation_rate (KIP-599) on a user and client id: 2
    partitions a second, a bucket of 10 (5 windows of 1 s). A strict
    CreateTopics (v7) is served topic by topic until the client is over its
    quota (the topic that takes it over is made whole), then refused with
    THROTTLING_QUOTA_EXCEEDED and the time to wait, and its connection
    takes nothing more meanwhile; an old, permissive version (v5) is served
    in full and told to wait. Kafka's kafka-topics, which asks its admin
    client not to retry, reports the refusal and succeeds once the client
    has waited; a client without the quota is never throttled."""
    limited, free = unique("mutator"), unique("free-mutator")
    configs(broker, tmp_path, "--alter", "--entity-type", "users", "--entity-name", "admin",
            "--entity-type", "clients", "--entity-name", limited, "--add-config", "controller_mutation_rate=2")
    first, second, third, fourth, by_java = (
        unique(n) for n in ("first", "second", "third", "fourth", "by-java"))
    java_config = command_config(tmp_path, "admin")
    java_config.write_text(java_config.read_text() + f"client.id={limited}\n")
    kafka_topics = ("kafka-topics", "--bootstrap-server", broker.bootstrap, "--command-config", java_config,
                    "--create", "--topic", by_java, "--partitions", "2", "--replication-factor", "1")

    strict = AdminWire(broker, "admin", limited)
    try:
        # 10 tokens: `first` takes them all, `second` is admitted while
        # none are owed and leaves 12 owed (6 s); `third` is refused.
        throttle, results = strict.create_topics({first: 10, second: 12, third: 2})
        assert results[first][0] == 0 and results[second][0] == 0, results
        code, message = results[third]
        assert code == THROTTLING_QUOTA_EXCEEDED and "controller_mutation_rate" in message, results
        assert 5000 <= throttle <= 6000, throttle

        # Kafka's tool on the same quota, meanwhile: refused.
        java = subprocess.Popen(java_command(*kafka_topics), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

        # The connection was muted for the throttle time; once read, a
        # permissive request is served in full, though it takes the
        # client over again, and told how long to wait.
        sent = time.monotonic()
        throttle_after, results = strict.create_topics({third: 2, fourth: 2}, version=5)
        assert (time.monotonic() - sent) * 1000 >= 0.8 * throttle
        assert all(code == 0 for code, _ in results.values()), results
        assert 1000 <= throttle_after <= 2000, throttle_after
    finally:
        strict.close()
    out, _ = java.communicate(timeout=120)
    assert java.returncode != 0 and "ThrottlingQuotaExceededException" in out, out
    time.sleep(throttle_after / 1000)
    assert f"Created topic {by_java}." in kafka_tool(*kafka_topics).stdout
    topics = AdminClient(client(broker, "admin")).list_topics(timeout=30).topics
    assert {first, second, third, fourth, by_java} <= set(topics)

    unlimited = AdminWire(broker, "admin", free)
    try:
        throttle, results = unlimited.create_topics({unique("free-a"): 12, unique("free-b"): 12})
        assert throttle == 0 and all(code == 0 for code, _ in results.values()), (throttle, results)
    finally:
        unlimited.close()

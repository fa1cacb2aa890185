"""SASL OAUTHBEARER with Kafka's broker settings: tokens from a small
OAuth identity provider of the test's own (client credentials grant, RS256
JWTs, its JWKS as a file or served over HTTPS) used by Apache Kafka's
console tools (OAuthBearerLoginCallbackHandler), confluent-kafka (an
oauth_cb, and librdkafka's own OIDC login), the token's subject
being the principal ACLs name; tokens with a stranger's key, the wrong
issuer or audience, or unsigned (kcat's), are refused, logged with the
peer and counted; a
rotated key set is picked up without a restart (from the file, and from
the HTTPS endpoint as soon as a token names the new key); a broker whose
provider is down starts, refuses OAUTHBEARER logins saying why, and
accepts them once the provider is up; a session ends with its token and
the client re-authenticates."""

import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)

from certs import Authority
from conftest import Gregor, GregorCluster, free_port, kafka_tool, unique, wait_until
from idp import AUDIENCE, ISSUER, SigningKey, TokenEndpoint, write_jwks


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    d = tmp_path_factory.mktemp("idp")
    key = SigningKey("k1")
    jwks = d / "jwks.json"
    write_jwks(jwks, key)
    endpoint = TokenEndpoint(key, {"svc-orders": "orders-secret"})
    yield type("Idp", (), {"key": key, "jwks": jwks, "endpoint": endpoint, "dir": d})
    endpoint.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory, idp):
    """A broker whose EXTERNAL listener (its bootstrap) is SASL_PLAINTEXT
    with OAUTHBEARER, configured as a Kafka broker would be."""
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
             "listener.name.external.sasl.enabled.mechanisms": "OAUTHBEARER",
             "listener.name.external.oauthbearer.sasl.server.callback.handler.class":
                 "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
             "listener.name.external.oauthbearer.sasl.jaas.config":
                 "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
             "sasl.oauthbearer.jwks.endpoint.url": f"file://{idp.jwks}",
             "sasl.oauthbearer.expected.audience": AUDIENCE,
             "sasl.oauthbearer.expected.issuer": ISSUER,
             # ACLs on, open where none are set: the principal shows in refusals.
             "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
             "allow.everyone.if.no.acl.found": "true"}
    b = Gregor(tmp_path_factory.mktemp("oauth-broker"), props=props, http=True)
    b.start()
    yield b
    b.stop()


def bearer(broker, token_of, **extra):
    """confluent-kafka settings that log in with the tokens `token_of()`
    returns."""
    calls = []

    def oauth_cb(_config):
        calls.append(time.time())
        token, lifetime = token_of()
        return token, time.time() + lifetime

    conf = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER", "oauth_cb": oauth_cb, **extra}
    return conf, calls


def admin(conf):
    """An admin client that has its token: librdkafka calls oauth_cb from
    poll."""
    a = AdminClient(conf)
    a.poll(1)
    return a


def failed_authentications(broker):
    return broker.metrics()["gregor_failed_authentication_total"]


def test_kafkas_console_tools_log_in_with_tokens_from_the_token_endpoint(broker, idp, tmp_path):
    config = tmp_path / "client.properties"
    config.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n"
        "sasl.login.callback.handler.class="
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n"
        f"sasl.oauthbearer.token.endpoint.url={idp.endpoint.url}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
        'clientId="svc-orders" clientSecret="orders-secret";\n')
    # Kafka 4 clients reach only the OAuth endpoints listed here.
    jvm = [f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={idp.endpoint.url}"]
    topic = unique("oauth-tools")
    kafka_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--command-config", config,
               "--create", "--topic", topic, "--partitions", 1, jvm=jvm)
    kafka_tool("kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
               "--command-config", config, input="a\nb\nc\n", jvm=jvm)
    out = kafka_tool("kafka-console-consumer", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                     "--command-config", config, "--from-beginning", "--max-messages", 3,
                     "--timeout-ms", 30000, jvm=jvm).stdout
    assert out.split() == ["a", "b", "c"]


def test_confluent_kafka_produces_and_consumes_with_a_bearer_token(broker, idp):
    topic = unique("oauth-py")
    conf, _ = bearer(broker, lambda: (idp.key.token("svc-billing"), 300))
    client = admin(conf)
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer(conf)
    for i in range(5):
        p.produce(topic, str(i).encode())
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < 5 and time.time() < deadline:
        m = c.poll(1)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert got == ["0", "1", "2", "3", "4"]

    # The token's subject is the principal ACLs name.
    deny = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:svc-blocked", "*",
                      AclOperation.WRITE, AclPermissionType.DENY)
    client.create_acls([deny])[deny].result(30)
    blocked, _ = bearer(broker, lambda: (idp.key.token("svc-blocked"), 300))
    results = []
    q = Producer(blocked)
    q.produce(topic, b"no", on_delivery=lambda err, m: results.append(err))
    q.flush(30)
    assert results and results[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, results
    wait_until(lambda: "Principal = User:svc-blocked is Denied" in broker.log_text(), 10,
               "the refusal naming the token's subject")


@pytest.mark.parametrize("case", ["stranger's key", "wrong issuer", "wrong audience", "expired"])
def test_a_bad_token_is_refused_logged_and_counted_and_others_are_served(broker, idp, case):
    stranger = SigningKey("k1")
    token = {"stranger's key": lambda: stranger.token("mallory"),
             "wrong issuer": lambda: idp.key.token("mallory", issuer="http://evil.test"),
             "wrong audience": lambda: idp.key.token("mallory", audience="other"),
             "expired": lambda: idp.key.token("mallory", lifetime=-120)}[case]
    before = failed_authentications(broker)
    errors = []
    conf, _ = bearer(broker, lambda: (token(), 300), error_cb=errors.append)
    with pytest.raises(KafkaException):
        admin(conf).list_topics(timeout=5)
    assert any("Authentication failed" in str(e) or "SASL" in str(e) for e in errors), errors
    wait_until(lambda: failed_authentications(broker) > before, 10, "the refusal counted")
    refusals = [line for line in broker.log_text().splitlines()
                if "OAUTHBEARER" in line and "peer=127.0.0.1" in line]
    assert refusals, broker.log_text()[-2000:]
    # Others are still served.
    good, _ = bearer(broker, lambda: (idp.key.token("svc-billing"), 300))
    assert admin(good).list_topics(timeout=10).brokers


def test_a_rotated_key_set_is_picked_up_without_a_restart(broker, idp):
    new = SigningKey("k2")
    conf, _ = bearer(broker, lambda: (new.token("svc-new"), 300))
    with pytest.raises(KafkaException):
        admin(conf).list_topics(timeout=5)
    write_jwks(idp.jwks, idp.key, new)

    def accepted():
        try:
            return bool(admin(conf).list_topics(timeout=3).brokers)
        except KafkaException:
            return False

    wait_until(accepted, 40, "a token of the new key accepted")
    assert "OAUTHBEARER keys renewed" in broker.log_text()


def test_a_session_ends_with_its_token_and_the_client_logs_in_again(broker, idp):
    """Tokens good for 6 s: the broker gives the session that lifetime
    (KIP-368), so librdkafka fetches a new token and re-authenticates
    while it keeps producing."""
    topic = unique("oauth-reauth")
    conf, calls = bearer(broker, lambda: (idp.key.token("svc-short", lifetime=6), 6))
    client = admin(conf)
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer(conf)
    delivered = []
    end = time.time() + 15
    while time.time() < end:
        p.produce(topic, b"x", on_delivery=lambda err, m: delivered.append(err))
        p.poll(0.2)
    assert p.flush(30) == 0
    assert delivered and all(err is None for err in delivered), delivered[:5]
    assert len(calls) >= 2, calls


OIDC_ISSUER_CA = "Gregor test identity provider CA"


def jwks_url_broker(workdir, url, trust, **extra):
    """A broker whose EXTERNAL listener takes OAUTHBEARER tokens checked
    against the key set at `url`, trusting the provider's CA `trust`
    through the JAAS line as Kafka does."""
    props = {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
             "listener.name.external.sasl.enabled.mechanisms": "OAUTHBEARER",
             "listener.name.external.oauthbearer.sasl.jaas.config":
                 "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                 f'ssl.truststore.type="PEM" ssl.truststore.location="{trust}";',
             "sasl.oauthbearer.jwks.endpoint.url": url,
             "sasl.oauthbearer.expected.audience": AUDIENCE,
             "sasl.oauthbearer.expected.issuer": ISSUER,
             **extra}
    return Gregor(workdir, props=props, http=True)


@pytest.fixture(scope="module")
def https_idp(tmp_path_factory):
    """The provider with its key set at an https: URL under a CA of its
    own, and a broker that fetches it."""
    d = tmp_path_factory.mktemp("https-idp")
    ca = Authority(OIDC_ISSUER_CA)
    store, _, _ = ca.issue("idp").write(d, "idp")
    key = SigningKey("h1")
    # The key set over HTTPS for the broker; the same provider's token
    # endpoint over HTTP for the clients (kcat's librdkafka takes no CA
    # for it).
    endpoint = TokenEndpoint(key, {}, tls=store)
    tokens = TokenEndpoint(key, {"svc-oidc": "oidc-secret"})
    broker = jwks_url_broker(d / "broker", endpoint.jwks_url, ca.write_trust_store(d / "ca.pem")).start()
    yield type("HttpsIdp", (), {"endpoint": endpoint, "tokens": tokens, "broker": broker, "dir": d})
    broker.stop()
    endpoint.close()
    tokens.close()


def oidc(broker, endpoint, client="svc-oidc", secret="oidc-secret"):
    """librdkafka's own OAUTHBEARER login: tokens from the token endpoint."""
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.client.id": client, "sasl.oauthbearer.client.secret": secret,
            "sasl.oauthbearer.token.endpoint.url": endpoint.url}


def test_keys_fetched_over_https_check_librdkafkas_oidc_tokens_and_refuse_unsigned_ones(https_idp):
    broker, endpoint = https_idp.broker, https_idp.endpoint
    topic = unique("oidc")
    conf = oidc(broker, https_idp.tokens)
    client = AdminClient(conf)
    client.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer(conf)
    p.produce(topic, b"librdkafka")
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = None
    deadline = time.time() + 30
    while got is None and time.time() < deadline:
        m = c.poll(1)
        if m is not None and not m.error():
            got = m.value()
    c.close()
    assert got == b"librdkafka"

    # kcat as Debian builds it has no OIDC login, only librdkafka's
    # unsecured tokens (alg none): refused, and the broker says so.
    before = failed_authentications(broker)
    kcat = subprocess.run(["kcat", "-b", broker.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
                           "-X", "sasl.mechanisms=OAUTHBEARER", "-X", "enable.sasl.oauthbearer.unsecure.jwt=true",
                           "-X", "sasl.oauthbearer.config=principal=mallory", "-L", "-m", "5"],
                          capture_output=True, text=True, timeout=60)
    assert kcat.returncode != 0 and "Authentication failed" in kcat.stderr, kcat.stderr
    wait_until(lambda: failed_authentications(broker) > before, 10, "the refusal counted")
    assert endpoint.asked_for_keys >= 1



def test_a_token_of_a_new_key_makes_the_broker_fetch_the_key_set_at_once(https_idp):
    """The key set is refreshed hourly (the default); a provider that
    rotates its key is followed at the first token naming the new key."""
    broker, endpoint = https_idp.broker, https_idp.endpoint
    rotated = SigningKey("h2")
    endpoint.published = [endpoint.key, rotated]
    before = endpoint.asked_for_keys
    conf, _ = bearer(broker, lambda: (rotated.token("svc-rotated"), 300))

    def accepted():
        try:
            return bool(admin(conf).list_topics(timeout=3).brokers)
        except KafkaException:
            return False

    wait_until(accepted, 40, "a token of the rotated key accepted")
    assert endpoint.asked_for_keys > before
    assert "OAUTHBEARER keys renewed" in broker.log_text()


def test_a_broker_whose_provider_is_down_starts_and_takes_tokens_once_it_is_up(tmp_path):
    ca = Authority(OIDC_ISSUER_CA)
    store, _, _ = ca.issue("idp").write(tmp_path, "idp")
    port = free_port()
    broker = jwks_url_broker(tmp_path / "broker", f"https://127.0.0.1:{port}/jwks",
                             ca.write_trust_store(tmp_path / "ca.pem"),
                             **{"sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": "1000"}).start()
    key = SigningKey("d1")
    endpoint = None
    try:
        # The plaintext listener serves while the provider is down.
        plain = AdminClient({"bootstrap.servers": broker.internal_bootstrap})
        assert plain.list_topics(timeout=10).brokers
        conf, _ = bearer(broker, lambda: (key.token("svc-early"), 300))
        with pytest.raises(KafkaException):
            admin(conf).list_topics(timeout=5)
        wait_until(lambda: "have not been fetched yet" in broker.log_text(), 10,
                   "the refusal saying the keys are not there yet")
        assert "OAUTHBEARER has no keys yet" in broker.log_text()

        endpoint = TokenEndpoint(key, {}, tls=store, port=port)

        def accepted():
            try:
                return bool(admin(conf).list_topics(timeout=3).brokers)
            except KafkaException:
                return False

        wait_until(accepted, 30, "a token accepted once the provider is up")
    finally:
        broker.stop()
        if endpoint:
            endpoint.close()


def test_a_cluster_replicates_with_brokers_logging_in_with_their_own_tokens(tmp_path):
    """INTERNAL (inter-broker) is SASL_PLAINTEXT with OAUTHBEARER only:
    followers get tokens from the provider's HTTPS token endpoint with the
    JAAS line's client id and secret (Kafka's OAuthBearerLoginCallbackHandler
    settings) and the leaders check them against the key set fetched over
    HTTPS. Tokens last 4 s, so every follower logs in again with new tokens
    while acks=all with min.insync.replicas=3 keeps all three in the ISR."""
    ca = Authority(OIDC_ISSUER_CA)
    store, _, _ = ca.issue("idp").write(tmp_path, "idp")
    trust = ca.write_trust_store(tmp_path / "ca.pem")
    provider = TokenEndpoint(SigningKey("b1"), {"svc-broker": "broker-secret"}, tls=store, lifetime=4)
    jaas = ("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            f'clientId="svc-broker" clientSecret="broker-secret" scope="kafka" ssl.truststore.location="{trust}";')
    props = {"listener.security.protocol.map": "INTERNAL:SASL_PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
             "listener.name.internal.sasl.enabled.mechanisms": "OAUTHBEARER",
             "listener.name.internal.oauthbearer.sasl.jaas.config": jaas,
             "listener.name.internal.oauthbearer.sasl.login.callback.handler.class":
                 "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
             "listener.name.internal.oauthbearer.sasl.server.callback.handler.class":
                 "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
             "sasl.oauthbearer.token.endpoint.url": provider.url,
             "sasl.oauthbearer.jwks.endpoint.url": provider.jwks_url,
             "sasl.oauthbearer.expected.audience": AUDIENCE,
             "sasl.oauthbearer.expected.issuer": ISSUER,
             "sasl.mechanism.inter.broker.protocol": "OAUTHBEARER",
             # Followers fetch with CLUSTER_ACTION: only because the token's
             # subject is a super user (the test's plaintext clients are anonymous).
             "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
             "super.users": "User:svc-broker;User:ANONYMOUS"}
    cluster = GregorCluster(tmp_path / "cluster", props=props)
    cluster.start()
    try:
        topic = unique("oauth-replicated")
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "3"})])[topic].result(30)
        p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
        delivered = []
        given = provider.tokens_given
        deadline = time.monotonic() + 10  # past two token lifetimes
        i = 0
        while time.monotonic() < deadline:
            p.produce(topic, value=str(i).encode(), on_delivery=lambda err, m: delivered.append(err))
            p.poll(0.05)
            i += 1
        assert p.flush(60) == 0
        assert delivered == [None] * i
        # Every broker follows two leaders, and asked for new tokens.
        assert provider.tokens_given >= given + 3, (given, provider.tokens_given)
        parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
        assert all(sorted(part.isrs) == [1, 2, 3] for part in parts.values()), parts
        for b in cluster.brokers:
            log = b.log_text()
            assert "cannot log in to leader" not in log and "SASL authentication failed" not in log
            assert "broker-secret" not in log
    finally:
        cluster.stop()
        provider.close()

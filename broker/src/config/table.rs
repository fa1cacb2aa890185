//! Every broker setting Gregor accepts, declared once. A key that is not
//! here is refused at start; every key here is checked against its
//! declaration, reported by DescribeConfigs and listed in the reference
//! page (`gregor config-docs`).
//!
//! Types, defaults and update modes are Kafka's. Bounds are Kafka's unless
//! Gregor needs others (noted in the line).

use super::setting::{Kind, Setting, Update};

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// The broker's settings, in the order the reference page lists them.
pub static BROKER: &[Setting] = &[
    // The node and the metadata quorum.
    Setting::new(
        "node.id",
        Kind::int(0),
        "This node's id, unique in the cluster. Required (or `broker.id`).",
    ),
    Setting::new(
        "broker.id",
        Kind::ANY_INT,
        "The older name of `node.id`, used when `node.id` is absent.",
    ),
    Setting::new(
        "process.roles",
        Kind::List,
        "`broker`, `controller` or both: whether this node serves clients, votes in the metadata quorum, or does both.",
    )
    .default("broker,controller"),
    Setting::new(
        "controller.listener.names",
        Kind::List,
        "The listener the metadata quorum uses (the first name); without it, a listener named CONTROLLER if there is one.",
    ),
    Setting::new(
        "controller.quorum.voters",
        Kind::List,
        "The quorum's voters as `id@host:port`, the same on every node. Without it, this node alone.",
    ),
    Setting::new(
        "controller.quorum.bootstrap.servers",
        Kind::List,
        "Refused: the quorum's voters are fixed, so list them in `controller.quorum.voters`.",
    ),
    Setting::new(
        "controller.quorum.election.timeout.ms",
        Kind::int(10),
        "How long a voter waits for the leader before it calls an election (Gregor needs at least 10).",
    )
    .default("1000"),
    Setting::new(
        "broker.session.timeout.ms",
        Kind::int(1),
        "Silence after which the controller fences a broker.",
    )
    .default("9000"),
    Setting::new(
        "broker.heartbeat.interval.ms",
        Kind::int(1),
        "How often a broker heartbeats to the controller.",
    )
    .default("2000"),
    Setting::new(
        "broker.rack",
        Kind::Text,
        "This broker's rack; replicas of a partition are spread over racks. Cannot be empty.",
    ),
    Setting::new(
        "metadata.log.dir",
        Kind::Text,
        "Where the metadata quorum's log lives; by default the first of `log.dirs`.",
    ),
    // Listeners.
    Setting::new(
        "listeners",
        Kind::List,
        "Where to bind, as `NAME://host:port`; an empty host binds every interface.",
    )
    .default("PLAINTEXT://:9092")
    .update(Update::PerBroker),
    Setting::new(
        "advertised.listeners",
        Kind::List,
        "What clients are told, as `NAME://host:port`; listeners left out advertise their bound address.",
    ),
    Setting::new(
        "listener.security.protocol.map",
        Kind::Text,
        "The security protocol of each listener name, as `NAME:PROTOCOL`. Gregor serves PLAINTEXT and SSL so far.",
    )
    .default("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL")
    .update(Update::PerBroker),
    Setting::new(
        "inter.broker.listener.name",
        Kind::Text,
        "The listener brokers reach each other on; by default the first that is not the controller's.",
    ),
    Setting::new(
        "socket.request.max.bytes",
        Kind::int(64),
        "The largest request accepted; a larger frame closes the connection (Gregor needs at least 64).",
    )
    .default("104857600"),
    Setting::new(
        "http.listener",
        Kind::Text,
        "Gregor's own: `[host]:port` serving `/livez`, `/readyz` and `/metrics`. Off when unset.",
    ),
    // TLS, for the listeners whose protocol is SSL; each may also be given
    // per listener as `listener.name.<listener>.<key>`.
    Setting::new(
        "ssl.keystore.type",
        Kind::OneOf(&["JKS", "PKCS12", "PEM"]),
        "The format of the key store: PKCS12 (a file, with `ssl.keystore.password`) or PEM (a file, or text in `ssl.keystore.key`). JKS, Kafka's default, is refused with the keytool command that converts it to PKCS12.",
    )
    .default("JKS")
    .per_listener(),
    Setting::new(
        "ssl.keystore.location",
        Kind::Text,
        "The key store file: PKCS12 holding one private key and its certificate chain, or PEM holding the key and the chain; reloaded when it changes.",
    )
    .per_listener(),
    Setting::new(
        "ssl.keystore.certificate.chain",
        Kind::Text,
        "This broker's certificate chain as PEM text, instead of `ssl.keystore.location`.",
    )
    .per_listener(),
    Setting::new(
        "ssl.keystore.key",
        Kind::Text,
        "This broker's private key as PEM text (PKCS#8, or an ENCRYPTED PRIVATE KEY opened with `ssl.key.password`), instead of `ssl.keystore.location`.",
    )
    .sensitive()
    .per_listener(),
    Setting::new(
        "ssl.keystore.password",
        Kind::Text,
        "The PKCS12 key store's password, required with it. Refused with PEM, which has none (as in Kafka).",
    )
    .sensitive()
    .per_listener(),
    Setting::new(
        "ssl.key.password",
        Kind::Text,
        "The private key's password. With PEM: opens an ENCRYPTED PRIVATE KEY (PKCS#8), and is refused with a key that is not encrypted. With PKCS12: must be `ssl.keystore.password`, which it defaults to (keytool and openssl give the key the store's password).",
    )
    .sensitive()
    .per_listener(),
    Setting::new(
        "ssl.truststore.type",
        Kind::OneOf(&["JKS", "PKCS12", "PEM"]),
        "The format of the trust store: PKCS12 (a file) or PEM (a file, or text in `ssl.truststore.certificates`). JKS, Kafka's default, is refused with the keytool command that converts it to PKCS12.",
    )
    .default("JKS")
    .per_listener(),
    Setting::new(
        "ssl.truststore.location",
        Kind::Text,
        "The trust store file (PKCS12, or PEM certificates): the certificate authorities client certificates, and other brokers', must chain to; every certificate in it is trusted. Reloaded when it changes.",
    )
    .per_listener(),
    Setting::new(
        "ssl.truststore.certificates",
        Kind::Text,
        "The trusted certificate authorities as PEM text, instead of `ssl.truststore.location`.",
    )
    .per_listener(),
    Setting::new(
        "ssl.truststore.password",
        Kind::Text,
        "The PKCS12 trust store's password. Without it only a store with no integrity check and no encryption is read (Java skips the check instead, and reads the certificates that are not encrypted). Refused with PEM, which has none.",
    )
    .sensitive()
    .per_listener(),
    Setting::new(
        "ssl.client.auth",
        Kind::OneOf(&["required", "requested", "none"]),
        "Whether clients must present a certificate the trust store accepts (required), may (requested), or are not asked (none).",
    )
    .default("none")
    .per_listener(),
    Setting::new(
        "ssl.enabled.protocols",
        Kind::ListOf(&["TLSv1.2", "TLSv1.3"]),
        "The TLS versions accepted (TLSv1 and TLSv1.1 are not offered).",
    )
    .default("TLSv1.2,TLSv1.3")
    .per_listener(),
    Setting::new(
        "ssl.cipher.suites",
        Kind::List,
        "The cipher suites accepted, by their IANA names (e.g. TLS_AES_256_GCM_SHA384); unset for every suite Gregor offers.",
    )
    .per_listener(),
    Setting::new(
        "ssl.protocol",
        Kind::Text,
        "The TLS version a Java broker asks its SSL engine for; Gregor follows `ssl.enabled.protocols` instead.",
    )
    .default("TLSv1.3")
    .per_listener()
    .ignored(),
    Setting::new(
        "ssl.endpoint.identification.algorithm",
        Kind::Text,
        "How a broker checks the host name of another broker's certificate when it connects to it: https (the name must match) or empty (not checked).",
    )
    .default("https")
    .per_listener(),
    Setting::new(
        "ssl.principal.mapping.rules",
        Kind::Text,
        "How a client certificate's subject (as RFC 2253 writes it, e.g. CN=alice,OU=eng) becomes its user: RULE:pattern/replacement/[LU] rules, the first whose pattern matches the whole name rewrites it; DEFAULT keeps the name.",
    )
    .default("DEFAULT")
    .per_listener(),
    // SASL, for the listeners whose protocol is SASL_PLAINTEXT or SASL_SSL;
    // each may also be given per listener as `listener.name.<listener>.<key>`.
    Setting::new(
        "sasl.enabled.mechanisms",
        Kind::List,
        "The SASL mechanisms a SASL listener offers: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (Kafka's default, GSSAPI, is not offered: set this).",
    )
    .default("GSSAPI")
    .per_listener(),
    Setting::new(
        "plain.sasl.jaas.config",
        Kind::Text,
        "PLAIN's users: a PlainLoginModule with a `user_<name>=\"<password>\"` option per user (and `username`/`password`, this broker's own). Given per listener: `listener.name.<listener>.plain.sasl.jaas.config`.",
    )
    .per_listener()
    .sensitive(),
    Setting::new(
        "scram-sha-256.sasl.jaas.config",
        Kind::Text,
        "A ScramLoginModule with the `username`/`password` this broker logs in to other brokers with over SCRAM-SHA-256. Given per listener.",
    )
    .per_listener()
    .sensitive(),
    Setting::new(
        "scram-sha-512.sasl.jaas.config",
        Kind::Text,
        "As `scram-sha-256.sasl.jaas.config`, for SCRAM-SHA-512.",
    )
    .per_listener()
    .sensitive(),
    Setting::new(
        "oauthbearer.sasl.jaas.config",
        Kind::Text,
        "An OAuthBearerLoginModule, as Kafka asks of an OAUTHBEARER listener. Its ssl.truststore.location option (a PEM file) is trusted, next to the system's roots, for the identity provider's https: endpoints; on the inter-broker listener its clientId, clientSecret and optional scope are what the broker asks the token endpoint for its own tokens with. Given per listener.",
    )
    .per_listener()
    .sensitive(),
    Setting::new(
        "oauthbearer.sasl.server.callback.handler.class",
        Kind::Text,
        "Kafka's OAuthBearerValidatorCallbackHandler, whose checks Gregor makes (JWKS signature, exp, iat, issuer, audience, subject); the unsecured validator is refused. Given per listener.",
    )
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.jwks.endpoint.url",
        Kind::Text,
        "Where the identity provider's signing keys (a JWKS) are: a file: URL, read again when the file changes, or an https: (or http:) URL, fetched every sasl.oauthbearer.jwks.endpoint.refresh.ms and early when a token names an unknown key. The broker starts when the provider cannot be reached and refuses OAUTHBEARER logins until it can. Needed when OAUTHBEARER is enabled.",
    )
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.token.endpoint.url",
        Kind::Text,
        "The identity provider's token endpoint (https: or http:), where a broker whose sasl.mechanism.inter.broker.protocol is OAUTHBEARER gets its tokens (client credentials grant), each used until 80% of its lifetime.",
    )
    .per_listener(),
    Setting::new(
        "oauthbearer.sasl.login.callback.handler.class",
        Kind::Text,
        "Kafka's OAuthBearerLoginCallbackHandler, whose token requests Gregor makes; no other class is loaded. Given per listener.",
    )
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.expected.audience",
        Kind::List,
        "Audiences a token's aud claim must name one of. Needed unless sasl.oauthbearer.allow.unverified.audience is true.",
    )
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.expected.issuer",
        Kind::Text,
        "The issuer a token's iss claim must be. Needed unless sasl.oauthbearer.allow.unverified.issuer is true.",
    )
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.allow.unverified.audience",
        Kind::Bool,
        "Accept tokens for any audience when sasl.oauthbearer.expected.audience is not set.",
    )
    .default("false")
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.allow.unverified.issuer",
        Kind::Bool,
        "Accept tokens from any issuer when sasl.oauthbearer.expected.issuer is not set.",
    )
    .default("false")
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.sub.claim.name",
        Kind::Text,
        "The claim whose value is the user a token authenticates (User:<value>).",
    )
    .default("sub")
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.scope.claim.name",
        Kind::Text,
        "The claim Kafka reads scopes from; Gregor's authorization uses ACLs, not scopes.",
    )
    .default("scope")
    .per_listener()
    .ignored(),
    Setting::new(
        "sasl.oauthbearer.clock.skew.seconds",
        Kind::int(0),
        "How far a token's exp, nbf and iat may be off this broker's clock.",
    )
    .default("30")
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        Kind::long(1),
        "How often an http(s): JWKS is fetched again.",
    )
    .default("3600000")
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
        Kind::long(1),
        "The wait after a failed JWKS fetch, doubled after each further failure.",
    )
    .default("100")
    .per_listener(),
    Setting::new(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
        Kind::long(1),
        "The longest wait between failed JWKS fetches.",
    )
    .default("10000")
    .per_listener(),
    Setting::new(
        "sasl.mechanism.inter.broker.protocol",
        Kind::Text,
        "The mechanism brokers log in to each other with when the inter-broker listener is SASL.",
    )
    .default("GSSAPI"),
    Setting::new(
        "connections.max.reauth.ms",
        Kind::ANY_LONG,
        "How long a SASL session lasts: a client must authenticate again before it ends (KIP-368), or its connection is closed. 0: no limit.",
    )
    .default("0")
    .per_listener(),
    Setting::new(
        "sasl.server.max.receive.size",
        Kind::int(1),
        "The largest frame accepted before a client has authenticated.",
    )
    .default("524288"),
    Setting::new(
        "connection.failed.authentication.delay.ms",
        Kind::int(0),
        "How long the broker waits before it closes a connection whose authentication failed, to slow down guessing.",
    )
    .default("100"),
    // Authorization.
    Setting::new(
        "authorizer.class.name",
        Kind::Text,
        "Turns on ACL authorization: org.apache.kafka.metadata.authorizer.StandardAuthorizer (Kafka's name; Gregor follows its rules). Empty: every request is allowed.",
    )
    .default(""),
    Setting::new(
        "super.users",
        Kind::Text,
        "Principals allowed everything whatever the ACLs say, separated by semicolons: User:admin;User:broker. The brokers' own principal belongs here (they replicate with ClusterAction).",
    )
    .default(""),
    Setting::new(
        "allow.everyone.if.no.acl.found",
        Kind::Bool,
        "Whether a resource that has no ACL at all is open to everyone; otherwise only super users reach it.",
    )
    .default("false"),
    // Client quotas.
    Setting::new(
        "quota.window.num",
        Kind::int(1),
        "How many sample windows a client quota's rate is measured over; a controller_mutation_rate quota allows a burst of what it admits over all of them.",
    )
    .default("11"),
    Setting::new(
        "quota.window.size.seconds",
        Kind::int(1),
        "How long each sample window of a client quota's rate is.",
    )
    .default("1"),
    // Replication throttles (their rates are dynamic: see `dynamic`).
    Setting::new(
        "replication.quota.window.num",
        Kind::int(1),
        "How many sample windows the rate of a replication throttle (`leader.replication.throttled.rate`, `follower.replication.throttled.rate`) is measured over.",
    )
    .default("11"),
    Setting::new(
        "replication.quota.window.size.seconds",
        Kind::int(1),
        "How long each sample window of a replication throttle's rate is.",
    )
    .default("1"),
    // Storage.
    Setting::new(
        "log.dirs",
        Kind::List,
        "The directories partitions are stored in. Required (or `log.dir`).",
    ),
    Setting::new(
        "log.dir",
        Kind::List,
        "The older name of `log.dirs`, used when `log.dirs` is absent.",
    ),
    Setting::new(
        "log.segment.bytes",
        Kind::int(14),
        "Default `segment.bytes`: a segment larger than this is rolled.",
    )
    .default("1073741824")
    .update(Update::ClusterWide),
    Setting::new(
        "log.roll.ms",
        Kind::ANY_LONG,
        "Default `segment.ms`: a segment older than this is rolled. Wins over `log.roll.hours`.",
    )
    .update(Update::ClusterWide),
    Setting::new(
        "log.roll.hours",
        Kind::int(1),
        "`log.roll.ms` in hours, used when `log.roll.ms` is absent.",
    )
    .default("168")
    .synonym_of("log.roll.ms", MS_PER_HOUR),
    Setting::new(
        "log.retention.ms",
        Kind::ANY_LONG,
        "Default `retention.ms`: segments whose newest record is older are deleted; -1 keeps them. Wins over minutes and hours.",
    )
    .update(Update::ClusterWide),
    Setting::new(
        "log.retention.minutes",
        Kind::ANY_INT,
        "`log.retention.ms` in minutes, used when `log.retention.ms` is absent.",
    )
    .synonym_of("log.retention.ms", MS_PER_MINUTE),
    Setting::new(
        "log.retention.hours",
        Kind::int(-1),
        "`log.retention.ms` in hours, used when neither milliseconds nor minutes are given.",
    )
    .default("168")
    .synonym_of("log.retention.ms", MS_PER_HOUR),
    Setting::new(
        "log.retention.bytes",
        Kind::long(-1),
        "Default `retention.bytes`: the oldest segments are deleted beyond this size per partition; -1: no limit.",
    )
    .default("-1")
    .update(Update::ClusterWide),
    Setting::new(
        "log.retention.check.interval.ms",
        Kind::long(1),
        "How often retention is applied.",
    )
    .default("300000"),
    Setting::new(
        "producer.id.expiration.ms",
        Kind::int(1),
        "How long a partition leader keeps an idle producer's sequence state (for de-duplication) after its last write; never while it has a transaction open there. Also changeable at run time (see Dynamic broker settings).",
    )
    .default("86400000")
    .update(Update::ClusterWide),
    Setting::new(
        "producer.id.expiration.check.interval.ms",
        Kind::int(1),
        "How often partitions forget producers idle for longer than producer.id.expiration.ms.",
    )
    .default("600000"),
    Setting::new(
        "log.cleanup.policy",
        Kind::ListOf(&["delete", "compact"]),
        "Default `cleanup.policy`: `delete` old segments, `compact` them to the latest record of each key, or both.",
    )
    .default("delete")
    .update(Update::ClusterWide),
    Setting::new(
        "log.cleaner.enable",
        Kind::Bool,
        "Run the log cleaner, which compacts topics of `cleanup.policy=compact`.",
    )
    .default("true"),
    Setting::new(
        "log.cleaner.threads",
        Kind::int(0),
        "Threads cleaning logs side by side, each with its share of the dedupe buffer.",
    )
    .default("1")
    .update(Update::ClusterWide),
    Setting::new(
        "log.cleaner.dedupe.buffer.size",
        Kind::long(0),
        "Memory for the keys of one cleaning, shared by the cleaner threads (24 bytes a key); a log with more keys is cleaned in several passes. Taken as needed, not reserved.",
    )
    .default("134217728")
    .update(Update::ClusterWide),
    Setting::new(
        "log.cleaner.io.max.bytes.per.second",
        Kind::Double { fraction: false },
        "Bytes the cleaner threads together read and write per second at most.",
    )
    .default("1.7976931348623157E308")
    .update(Update::ClusterWide),
    Setting::new(
        "log.cleaner.backoff.ms",
        Kind::long(0),
        "How long a cleaner thread sleeps when no log needs cleaning.",
    )
    .default("15000")
    .update(Update::ClusterWide),
    Setting::new(
        "log.cleaner.min.cleanable.ratio",
        Kind::Double { fraction: true },
        "Default `min.cleanable.dirty.ratio`.",
    )
    .default("0.5")
    .update(Update::ClusterWide),
    Setting::new(
        "log.cleaner.delete.retention.ms",
        Kind::long(0),
        "Default `delete.retention.ms`.",
    )
    .default("86400000")
    .update(Update::ClusterWide),
    Setting::new(
        "log.cleaner.min.compaction.lag.ms",
        Kind::long(0),
        "Default `min.compaction.lag.ms`.",
    )
    .default("0")
    .update(Update::ClusterWide),
    Setting::new(
        "log.cleaner.max.compaction.lag.ms",
        Kind::long(1),
        "Default `max.compaction.lag.ms`.",
    )
    .default("9223372036854775807")
    .update(Update::ClusterWide),
    Setting::new(
        "log.index.interval.bytes",
        Kind::int(0),
        "Default `index.interval.bytes`: bytes between entries of the sparse offset index.",
    )
    .default("4096")
    .update(Update::ClusterWide),
    Setting::new(
        "log.flush.interval.messages",
        Kind::long(1),
        "Default `flush.messages`: fsync a partition after this many records.",
    )
    .default("9223372036854775807")
    .update(Update::ClusterWide),
    Setting::new(
        "log.flush.interval.ms",
        Kind::long(0),
        "Default `flush.ms`: fsync a partition when its unflushed records are this old.",
    )
    .update(Update::ClusterWide),
    Setting::new(
        "log.message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        "Default `message.timestamp.type`: keep the producer's timestamps or stamp the time of the append.",
    )
    .default("CreateTime")
    .update(Update::ClusterWide),
    Setting::new(
        "message.max.bytes",
        Kind::int(0),
        "Default `max.message.bytes`: the largest record batch accepted, as sent (compressed).",
    )
    .default("1048588")
    .update(Update::ClusterWide),
    Setting::new(
        "max.decompressed.message.bytes",
        Kind::int_between(1, 2_147_483_639),
        "Default `max.decompressed.message.bytes`: the largest record accepted once its batch is decompressed.",
    )
    .default("2147483639")
    .update(Update::ClusterWide),
    // Topics.
    Setting::new(
        "num.partitions",
        Kind::int(1),
        "Partitions of a topic created without a count, auto-created ones included.",
    )
    .default("1"),
    Setting::new(
        "default.replication.factor",
        Kind::int_between(1, i16::MAX as i64),
        "Replicas of a topic created without a replication factor, auto-created ones included.",
    )
    .default("1"),
    Setting::new(
        "min.insync.replicas",
        Kind::int(1),
        "Default `min.insync.replicas`: in-sync replicas an `acks=all` produce needs.",
    )
    .default("1")
    .update(Update::ClusterWide),
    Setting::new(
        "auto.create.topics.enable",
        Kind::Bool,
        "Create a topic when a client's metadata request names one that does not exist.",
    )
    .default("true"),
    Setting::new(
        "delete.topic.enable",
        Kind::Bool,
        "Whether DeleteTopics may delete topics.",
    )
    .default("true"),
    Setting::new(
        "max.request.partition.size.limit",
        Kind::int(1),
        "The most partitions one DescribeTopicPartitions answer holds (`kafka-topics --describe` pages through more); a request asking for fewer gets fewer.",
    )
    .default("2000"),
    // Replication and leadership.
    Setting::new(
        "replica.lag.time.max.ms",
        Kind::long(1),
        "A follower that has not caught up for this long leaves the ISR.",
    )
    .default("30000"),
    Setting::new(
        "replica.fetch.wait.max.ms",
        Kind::int(0),
        "How long a follower's fetch waits at the leader for new records.",
    )
    .default("500"),
    Setting::new(
        "max.incremental.fetch.session.cache.slots",
        Kind::int(0),
        "Incremental fetch sessions (KIP-227) this broker keeps, of consumers and followers; a fetcher refused one is served full fetches.",
    )
    .default("1000"),
    Setting::new(
        "min.incremental.fetch.session.eviction.ms",
        Kind::int(0),
        "How long a new fetch session is safe from being evicted for another; a session unused this long may be evicted by any new one.",
    )
    .default("120000"),
    Setting::new(
        "replica.fetch.max.bytes",
        Kind::int(1),
        "Bytes a follower asks for per partition in one fetch (Gregor needs at least 1).",
    )
    .default("1048576"),
    Setting::new(
        "replica.fetch.response.max.bytes",
        Kind::int(1),
        "Bytes a follower asks for in one fetch over all partitions (Gregor needs at least 1).",
    )
    .default("10485760"),
    Setting::new(
        "auto.leader.rebalance.enable",
        Kind::Bool,
        "Move leadership back to each partition's preferred replica.",
    )
    .default("true"),
    Setting::new(
        "leader.imbalance.check.interval.seconds",
        Kind::long(1),
        "How often the controller looks for leaders to move back.",
    )
    .default("300"),
    // Consumer groups.
    Setting::new(
        "offsets.topic.num.partitions",
        Kind::int(1),
        "Partitions of `__consumer_offsets`, fixed once the topic exists.",
    )
    .default("50"),
    Setting::new(
        "offsets.topic.replication.factor",
        Kind::short(1),
        "Replicas of `__consumer_offsets`; a node without other voters keeps one.",
    )
    .default("3"),
    Setting::new(
        "offsets.topic.segment.bytes",
        Kind::int(1),
        "`segment.bytes` of `__consumer_offsets`, set when the topic is created.",
    )
    .default("104857600"),
    Setting::new(
        "group.initial.rebalance.delay.ms",
        Kind::int(0),
        "How long a new classic group waits for more members before its first rebalance.",
    )
    .default("3000"),
    Setting::new(
        "group.min.session.timeout.ms",
        Kind::int(1),
        "The shortest session a classic group member may ask for.",
    )
    .default("6000"),
    Setting::new(
        "group.max.session.timeout.ms",
        Kind::int(1),
        "The longest session a classic group member may ask for.",
    )
    .default("1800000"),
    Setting::new(
        "group.consumer.session.timeout.ms",
        Kind::int(1),
        "Session of a member of a consumer-protocol (KIP-848) group.",
    )
    .default("45000"),
    Setting::new(
        "group.consumer.heartbeat.interval.ms",
        Kind::int(1),
        "Heartbeat interval given to members of consumer-protocol (KIP-848) groups.",
    )
    .default("5000"),
    // Transactions.
    Setting::new(
        "transaction.state.log.num.partitions",
        Kind::int(1),
        "Partitions of `__transaction_state`, fixed once the topic exists.",
    )
    .default("50"),
    Setting::new(
        "transaction.state.log.replication.factor",
        Kind::short(1),
        "Replicas of `__transaction_state`, created when a producer first looks for its transaction coordinator; a node without other voters keeps one.",
    )
    .default("3"),
    Setting::new(
        "transaction.state.log.min.isr",
        Kind::int(1),
        "`min.insync.replicas` of `__transaction_state`; a node without other voters uses one.",
    )
    .default("2"),
    Setting::new(
        "transaction.state.log.segment.bytes",
        Kind::int(1),
        "`segment.bytes` of `__transaction_state`, set when the topic is created.",
    )
    .default("104857600"),
    Setting::new(
        "transaction.max.timeout.ms",
        Kind::int(1),
        "The longest `transaction.timeout.ms` a producer may ask for.",
    )
    .default("900000"),
    Setting::new(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Kind::int(1),
        "How often the coordinator aborts transactions that outlived their timeout.",
    )
    .default("10000"),
    Setting::new(
        "transactional.id.expiration.ms",
        Kind::int(1),
        "How long a transactional id with no transaction under way is kept after its last use.",
    )
    .default("604800000"),
    Setting::new(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Kind::int(1),
        "How often the coordinator forgets expired transactional ids.",
    )
    .default("3600000"),
    Setting::new(
        "transaction.partition.verification.enable",
        Kind::Bool,
        "Whether a partition leader asks the transaction's coordinator, before a producer's first transactional batch there, that the partition is in the transaction (KIP-890), so a late or stray batch cannot open a transaction nobody will end. Producers of transaction version 2 are asked for whatever it says (their partitions are added that way). Also changeable at run time (see Dynamic broker settings).",
    )
    .default("true")
    .update(Update::ClusterWide),
    Setting::new(
        "add.partitions.to.txn.retry.backoff.ms",
        Kind::int(1),
        "How long a partition leader waits before asking the transaction's coordinator again to add a partition to the transaction of a producer of transaction version 2 (Produce v12 and later) when the coordinator answered CONCURRENT_TRANSACTIONS (the producer's previous transaction still completing, say).",
    )
    .default("20"),
    Setting::new(
        "add.partitions.to.txn.retry.backoff.max.ms",
        Kind::int(0),
        "How long after its first ask a partition leader stops asking again (every add.partitions.to.txn.retry.backoff.ms) and answers the Produce CONCURRENT_TRANSACTIONS, which the producer retries; 0: it never asks again. At most 30000 takes effect (Kafka's default request.timeout.ms). Verifications for older producers and the group coordinator's adds for TxnOffsetCommit are not asked again, as in Kafka.",
    )
    .default("100"),
    // Kafka's tuning knobs, of no use to Gregor.
    Setting::new(
        "num.network.threads",
        Kind::int(1),
        "Accepted and ignored: Gregor runs one task per connection.",
    )
    .default("3")
    .update(Update::ClusterWide)
    .ignored(),
    Setting::new(
        "num.io.threads",
        Kind::int(1),
        "Accepted and ignored: requests are served on the async runtime's threads.",
    )
    .default("8")
    .update(Update::ClusterWide)
    .ignored(),
    Setting::new(
        "queued.max.requests",
        Kind::int(1),
        "Accepted and ignored: each connection bounds its own in-flight requests.",
    )
    .default("500")
    .ignored(),
    Setting::new(
        "num.replica.fetchers",
        Kind::int(1),
        "Accepted and ignored: one fetcher per leader broker.",
    )
    .default("1")
    .update(Update::ClusterWide)
    .ignored(),
    Setting::new(
        "num.recovery.threads.per.data.dir",
        Kind::int(1),
        "Threads per log directory that open the logs at start and flush and snapshot them at shutdown. A value set at run time counts at the next shutdown.",
    )
    .default("2")
    .update(Update::ClusterWide),
    Setting::new(
        "background.threads",
        Kind::int(1),
        "Accepted and ignored.",
    )
    .default("10")
    .update(Update::ClusterWide)
    .ignored(),
    Setting::new(
        "log.cleaner.io.buffer.size",
        Kind::int(0),
        "Accepted and ignored: the cleaner reads segments 1 MiB at a time and writes through a buffer of the same size.",
    )
    .default("524288")
    .update(Update::ClusterWide)
    .ignored(),
    Setting::new(
        "log.cleaner.io.buffer.load.factor",
        Kind::Double { fraction: false },
        "Accepted and ignored: the cleaner's key map grows as keys come, up to `log.cleaner.dedupe.buffer.size`.",
    )
    .default("0.9")
    .update(Update::ClusterWide)
    .ignored(),
    Setting::new(
        "socket.send.buffer.bytes",
        Kind::ANY_INT,
        "Accepted and ignored: the operating system's socket buffer sizes are used.",
    )
    .default("102400")
    .ignored(),
    Setting::new(
        "socket.receive.buffer.bytes",
        Kind::ANY_INT,
        "Accepted and ignored: the operating system's socket buffer sizes are used.",
    )
    .default("102400")
    .ignored(),
    Setting::new(
        "transaction.state.log.load.buffer.size",
        Kind::int(1),
        "Accepted and ignored: a coordinator reads its transaction log 1 MiB at a time.",
    )
    .default("5242880")
    .ignored(),
    Setting::new(
        "share.coordinator.state.topic.replication.factor",
        Kind::short(1),
        "Accepted and ignored: share groups are not built yet.",
    )
    .default("3")
    .ignored(),
    Setting::new(
        "share.coordinator.state.topic.min.isr",
        Kind::short(1),
        "Accepted and ignored: share groups are not built yet.",
    )
    .default("2")
    .ignored(),
];

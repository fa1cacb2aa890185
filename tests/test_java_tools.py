"""Apache Kafka's own command-line tools against one Gregor broker: those of
the reference version, and the core ones also of the previous release."""

import json
import os
import re
import uuid
from functools import partial

import pytest

import wire
from conftest import KAFKA_CLIENT_VERSIONS, kafka_tool, unique

# Users upgrade clients and brokers separately, so the core tools run from
# each client version's jars.
each_client_version = pytest.mark.parametrize("version", KAFKA_CLIENT_VERSIONS)


def topics(broker, *args, **kw):
    return kafka_tool("kafka-topics", "--bootstrap-server", broker.bootstrap, *args, **kw)


@each_client_version
def test_topic_lifecycle(gregor, version):
    name = unique("life")
    out = topics(gregor, "--create", "--topic", name, "--partitions", "3", version=version).stdout
    assert f"Created topic {name}." in out
    assert name in topics(gregor, "--list", version=version).stdout.split()

    desc = topics(gregor, "--describe", "--topic", name, version=version).stdout
    assert "PartitionCount: 3" in desc and "ReplicationFactor: 1" in desc
    assert len(re.findall(r"Partition: \d+\s+Leader: 1\s+Replicas: 1\s+Isr: 1", desc)) == 3

    dup = topics(gregor, "--create", "--topic", name, "--partitions", "1", check=False, version=version)
    assert dup.returncode != 0 and "already exists" in dup.stdout + dup.stderr
    # The topic existing is the answer whatever else is wrong with the
    # request, as Kafka answers it (tools create their topics idempotently).
    for wrong in (["--config", "cleanup.policy=compact"], ["--replication-factor", "7"]):
        dup = topics(gregor, "--create", "--topic", name, *wrong, check=False, version=version)
        assert dup.returncode != 0 and "already exists" in dup.stdout + dup.stderr, (wrong, dup.stderr)

    topics(gregor, "--alter", "--topic", name, "--partitions", "5", version=version)
    assert "PartitionCount: 5" in topics(gregor, "--describe", "--topic", name, version=version).stdout
    shrink = topics(gregor, "--alter", "--topic", name, "--partitions", "2", check=False, version=version)
    assert shrink.returncode != 0
    assert "PartitionCount: 5" in topics(gregor, "--describe", "--topic", name, version=version).stdout

    topics(gregor, "--delete", "--topic", name, version=version)
    assert name not in topics(gregor, "--list", version=version).stdout.split()


# One partition line of kafka-topics --describe.
PARTITION_LINE = re.compile(r"Topic: (\S+)\s+Partition: (\d+)\s+Leader: (\S+)\s+Replicas: (\S*)\s+Isr: (\S*)"
                            r"\s+Elr: (\S*)\s+LastKnownElr: (\S*)")


def test_describe_pages_through_a_thousand_partitions(gregor_factory):
    """kafka-topics --describe of 1,000 partitions over three topics.
    Kafka 4's tool asks DescribeTopicPartitions, whose answers hold at most
    the broker's max.request.partition.size.limit partitions (300 here;
    the tool asks for 2,000) or the tool's own limit, and follows each
    answer's cursor: every partition is listed once, led by the broker, in
    sync, with empty ELR lists (N/A would mean the tool fell back to
    Metadata). A topic filter lists that topic only."""
    broker = gregor_factory(props={"max.request.partition.size.limit": "300"})
    sizes = {unique("wide-a"): 500, unique("wide-b"): 320, unique("wide-c"): 180}
    for name, count in sizes.items():
        topics(broker, "--create", "--topic", name, "--partitions", str(count), timeout=300)

    def described(*args):
        out = topics(broker, "--describe", *args, timeout=300).stdout
        lines = PARTITION_LINE.findall(out)
        assert all(line[2:] == ("1", "1", "1", "", "") for line in lines), \
            [line for line in lines if line[2:] != ("1", "1", "1", "", "")][:5]
        listed = sorted((t, int(p)) for t, p, *_ in lines)
        assert len(listed) == len(set(listed)), "a partition listed twice"
        return listed

    every = sorted((t, p) for t, n in sizes.items() for p in range(n))
    assert described("--exclude-internal") == every
    # Pages of 67: cursors inside every topic.
    assert described("--exclude-internal", "--partition-size-limit-per-response", "67") == every
    [middle] = [t for t, n in sizes.items() if n == 320]
    assert described("--topic", middle) == [(middle, p) for p in range(320)]


def test_invalid_topics_are_refused(gregor):
    for args, expect in [
        (["--topic", "bad/name", "--partitions", "1"], "InvalidTopicException"),
        (["--topic", unique("zero"), "--partitions", "0"], "partitions"),
        (["--topic", unique("rf"), "--partitions", "1", "--replication-factor", "3"], "replication factor"),
    ]:
        proc = topics(gregor, "--create", *args, check=False)
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0, text
        assert expect.lower() in text.lower(), text
    assert topics(gregor, "--list", "--exclude-internal").stdout.split() == []


def test_topic_configs_describe_and_alter(gregor):
    name = unique("cfg")
    topics(gregor, "--create", "--topic", name, "--partitions", "1", "--config", "retention.ms=60000")

    def describe():
        return kafka_tool(
            "kafka-configs", "--bootstrap-server", gregor.bootstrap,
            "--entity-type", "topics", "--entity-name", name, "--describe", "--all",
        ).stdout

    out = describe()
    assert "retention.ms=60000" in out
    assert "segment.bytes=1073741824" in out
    kafka_tool(
        "kafka-configs", "--bootstrap-server", gregor.bootstrap,
        "--entity-type", "topics", "--entity-name", name, "--alter",
        "--add-config", "retention.ms=120000,max.message.bytes=2048",
    )
    out = describe()
    assert "retention.ms=120000" in out and "max.message.bytes=2048" in out
    kafka_tool(
        "kafka-configs", "--bootstrap-server", gregor.bootstrap,
        "--entity-type", "topics", "--entity-name", name, "--alter",
        "--delete-config", "retention.ms",
    )
    assert "retention.ms=604800000" in describe()
    bad = kafka_tool(
        "kafka-configs", "--bootstrap-server", gregor.bootstrap,
        "--entity-type", "topics", "--entity-name", name, "--alter",
        "--add-config", "retention.ms=soon", check=False,
    )
    assert bad.returncode != 0 and "retention.ms" in bad.stdout + bad.stderr


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_replication_throttles_are_dynamic_settings(gregor):
    """The replication throttles are set at run time as in Kafka: the rates
    as every broker's default (--entity-default) and per broker
    (--entity-name), the broker's own value first; they survive a restart
    and are deleted again, and AlterConfigs replaces a broker's whole set.
    Other broker settings stay read-only. A topic's throttled replicas are
    `partition:broker` pairs or `*`."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    def configs(*args, check=True):
        return kafka_tool("kafka-configs", "--bootstrap-server", gregor.bootstrap, *args, check=check)

    def described(*entity):
        out = configs("--describe", *entity).stdout
        return [line.strip() for line in out.splitlines()[1:] if line.strip()]

    default = ("--entity-type", "brokers", "--entity-default")
    broker = ("--entity-type", "brokers", "--entity-name", "1")
    assert described(*default) == [] and described(*broker) == []
    out = configs("--alter", *default, "--add-config",
                  "follower.replication.throttled.rate=1000,leader.replication.throttled.rate=2000").stdout
    assert "Completed updating default config for brokers in the cluster." in out, out
    out = configs("--alter", *broker, "--add-config", "follower.replication.throttled.rate=500").stdout
    assert "Completed updating config for broker 1." in out, out
    defaults = [
        "follower.replication.throttled.rate=1000 sensitive=false "
        "synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:follower.replication.throttled.rate=1000}",
        "leader.replication.throttled.rate=2000 sensitive=false "
        "synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:leader.replication.throttled.rate=2000}",
    ]
    own = ["follower.replication.throttled.rate=500 sensitive=false "
           "synonyms={DYNAMIC_BROKER_CONFIG:follower.replication.throttled.rate=500, "
           "DYNAMIC_DEFAULT_BROKER_CONFIG:follower.replication.throttled.rate=1000}"]

    def as_set():
        assert described(*default) == defaults
        # Without --all, the tool shows what is set on the broker itself.
        assert described(*broker) == own
        everything = described(*broker, "--all")
        assert own[0] in everything and defaults[1] in everything, everything
        assert "num.partitions=1 sensitive=false synonyms={STATIC_BROKER_CONFIG:num.partitions=1, " \
               "DEFAULT_CONFIG:num.partitions=1}" in everything

    as_set()
    gregor.restart()
    as_set()

    for setting, says in [
        ("follower.replication.throttled.rate=-1", "must be at least 0"),
        ("leader.replication.throttled.rate=fast", "expected an integer"),
        ("num.partitions=3", "`num.partitions` cannot be changed at run time"),
        ("no.such.setting=1", "unknown broker config `no.such.setting`"),
    ]:
        bad = configs("--alter", *broker, "--add-config", setting, check=False)
        text = bad.stdout + bad.stderr
        assert bad.returncode != 0 and "InvalidRequestException" in text and says in text, text
    assert described(*broker) == own

    # AlterConfigs (the older request) replaces the broker's whole set.
    admin = AdminClient({"bootstrap.servers": gregor.bootstrap})
    res = ConfigResource("broker", "1", set_config={"leader.replication.throttled.rate": "3000"})
    admin.alter_configs([res])[res].result(30)
    assert described(*broker) == [
        "leader.replication.throttled.rate=3000 sensitive=false "
        "synonyms={DYNAMIC_BROKER_CONFIG:leader.replication.throttled.rate=3000, "
        "DYNAMIC_DEFAULT_BROKER_CONFIG:leader.replication.throttled.rate=2000}"]

    configs("--alter", *broker, "--delete-config", "leader.replication.throttled.rate")
    configs("--alter", *default, "--delete-config",
            "follower.replication.throttled.rate,leader.replication.throttled.rate")
    assert described(*default) == [] and described(*broker) == []

    name = unique("lists")
    topics(gregor, "--create", "--topic", name, "--partitions", "2")
    topic = ("--entity-type", "topics", "--entity-name", name)
    configs("--alter", *topic, "--add-config",
            "leader.replication.throttled.replicas=[0:1,1:1],follower.replication.throttled.replicas=*")
    assert described(*topic) == [
        "follower.replication.throttled.replicas=* sensitive=false "
        "synonyms={DYNAMIC_TOPIC_CONFIG:follower.replication.throttled.replicas=*}",
        "leader.replication.throttled.replicas=0:1,1:1 sensitive=false "
        "synonyms={DYNAMIC_TOPIC_CONFIG:leader.replication.throttled.replicas=0:1,1:1}",
    ]
    for value in ["[0:x]", "[0:1,*]", "[1]"]:
        bad = configs("--alter", *topic, "--add-config", f"leader.replication.throttled.replicas={value}",
                      check=False)
        text = bad.stdout + bad.stderr
        assert bad.returncode != 0 and "InvalidConfigurationException" in text and "is not a replica" in text, text
    configs("--alter", *topic, "--delete-config",
            "leader.replication.throttled.replicas,follower.replication.throttled.replicas")
    assert described(*topic) == []


@each_client_version
def test_console_producer_and_consumer(gregor, version):
    tool = partial(kafka_tool, version=version)
    name = unique("console")
    topics(gregor, "--create", "--topic", name, "--partitions", "2", version=version)
    lines = [f"k{i}:value-{i}" for i in range(200)]
    tool(
        "kafka-console-producer", "--bootstrap-server", gregor.bootstrap, "--topic", name,
        "--reader-property", "parse.key=true", "--reader-property", "key.separator=:",
        input="\n".join(lines) + "\n",
    )
    out = tool(
        "kafka-console-consumer", "--bootstrap-server", gregor.bootstrap, "--topic", name,
        "--from-beginning", "--max-messages", "200", "--timeout-ms", "30000",
        "--formatter-property", "print.key=true", "--formatter-property", "key.separator=:",
    ).stdout.split()
    assert sorted(out) == sorted(lines)

    offsets = tool(
        "kafka-get-offsets", "--bootstrap-server", gregor.bootstrap, "--topic", name,
    ).stdout.split()
    ends = {line.rsplit(":", 2)[1]: int(line.rsplit(":", 2)[2]) for line in offsets}
    assert sum(ends.values()) == 200 and set(ends) == {"0", "1"}

    # Reading one partition from an offset.
    out = tool(
        "kafka-console-consumer", "--bootstrap-server", gregor.bootstrap, "--topic", name,
        "--partition", "0", "--offset", str(ends["0"] - 3), "--max-messages", "3",
        "--timeout-ms", "30000",
    ).stdout.split()
    assert len(out) == 3 and all(v.startswith("value-") for v in out)

    earliest = tool(
        "kafka-get-offsets", "--bootstrap-server", gregor.bootstrap, "--topic", name,
        "--time", "-2",
    ).stdout.split()
    assert sorted(earliest) == [f"{name}:0:0", f"{name}:1:0"]


@each_client_version
def test_consumer_groups_tool(gregor, version):
    tool = partial(kafka_tool, version=version)
    name = unique("groups")
    group = unique("g")
    topics(gregor, "--create", "--topic", name, "--partitions", "3", version=version)
    tool(
        "kafka-console-producer", "--bootstrap-server", gregor.bootstrap, "--topic", name,
        input="".join(f"m{i}\n" for i in range(30)),
    )
    tool(
        "kafka-console-consumer", "--bootstrap-server", gregor.bootstrap, "--topic", name,
        "--group", group, "--from-beginning", "--max-messages", "30", "--timeout-ms", "30000",
    )
    groups = tool("kafka-consumer-groups", "--bootstrap-server", gregor.bootstrap, "--list").stdout
    assert group in groups.split()
    desc = tool(
        "kafka-consumer-groups", "--bootstrap-server", gregor.bootstrap, "--describe", "--group", group,
    ).stdout
    rows = [line.split() for line in desc.splitlines() if line.startswith(group)]
    assert len(rows) == 3
    assert sum(int(r[3]) for r in rows) == 30 and all(r[5] == "0" for r in rows)

    tool(
        "kafka-consumer-groups", "--bootstrap-server", gregor.bootstrap, "--group", group,
        "--topic", name, "--reset-offsets", "--to-earliest", "--execute",
    )
    desc = tool(
        "kafka-consumer-groups", "--bootstrap-server", gregor.bootstrap, "--describe", "--group", group,
    ).stdout
    rows = [line.split() for line in desc.splitlines() if line.startswith(group)]
    assert all(r[3] == "0" for r in rows) and sum(int(r[5]) for r in rows) == 30

    tool("kafka-consumer-groups", "--bootstrap-server", gregor.bootstrap, "--delete", "--group", group)
    groups = tool("kafka-consumer-groups", "--bootstrap-server", gregor.bootstrap, "--list").stdout
    assert group not in groups.split()


def test_delete_records_tool(gregor, tmp_path):
    name = unique("delrec")
    topics(gregor, "--create", "--topic", name, "--partitions", "1")
    kafka_tool(
        "kafka-console-producer", "--bootstrap-server", gregor.bootstrap, "--topic", name,
        input="".join(f"r{i}\n" for i in range(10)),
    )
    spec = tmp_path / "delete.json"
    spec.write_text('{"partitions":[{"topic":"%s","partition":0,"offset":4}],"version":1}' % name)
    out = kafka_tool(
        "kafka-delete-records", "--bootstrap-server", gregor.bootstrap, "--offset-json-file", spec,
    ).stdout
    assert "low_watermark: 4" in out
    out = kafka_tool(
        "kafka-console-consumer", "--bootstrap-server", gregor.bootstrap, "--topic", name,
        "--from-beginning", "--max-messages", "6", "--timeout-ms", "30000",
    ).stdout.split()
    assert out == [f"r{i}" for i in range(4, 10)]


def test_producer_perf_test(gregor):
    name = unique("perf")
    topics(gregor, "--create", "--topic", name, "--partitions", "2")
    out = kafka_tool(
        "kafka-producer-perf-test", "--topic", name, "--num-records", "20000",
        "--record-size", "100", "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={gregor.bootstrap}", "acks=all",
    ).stdout
    assert re.search(r"20000 records sent", out), out
    ends = kafka_tool(
        "kafka-get-offsets", "--bootstrap-server", gregor.bootstrap, "--topic", name,
    ).stdout.split()
    assert sum(int(line.rsplit(":", 1)[1]) for line in ends) == 20000


def test_kafka_dump_log_reads_gregors_segments_and_indexes(gregor_factory):
    broker = gregor_factory(props={"log.segment.bytes": "1500", "log.index.interval.bytes": "1"})
    name = unique("dump")
    topics(broker, "--create", "--topic", name, "--partitions", "1")
    for i in range(8):
        kafka_tool(
            "kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", name,
            "--compression-codec", "gzip",
            input="".join(f"batch{i}-record{j}-{uuid.uuid4().hex}\n" for j in range(10)),
        )
    broker.stop()
    segments = sorted((broker.data / f"{name}-0").glob("*.log"))
    assert len(segments) >= 2
    sealed = segments[0]

    out = kafka_tool("kafka-dump-log", "--files", sealed, "--print-data-log", "--deep-iteration").stdout
    offsets = [int(m) for m in re.findall(r"\| offset: (\d+) ", out)]
    assert offsets and offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    assert "batch0-record0-" in out and "compresscodec: gzip" in out
    assert "isvalid: true" in out and "isvalid: false" not in out

    out = kafka_tool("kafka-dump-log", "--files", sealed.with_suffix(".index"), "--index-sanity-check").stdout
    assert "passed sanity check" in out, out
    out = kafka_tool("kafka-dump-log", "--files", sealed.with_suffix(".index")).stdout
    entries = re.findall(r"offset: (\d+) position: (\d+)", out)
    assert len(entries) >= 2
    out = kafka_tool("kafka-dump-log", "--files", sealed.with_suffix(".timeindex")).stdout
    assert len(re.findall(r"timestamp: \d+ offset: \d+", out)) == len(entries)


def test_kafka_log_dirs_reports_partition_sizes(gregor_factory, tmp_path):
    first, second = tmp_path / "disk-a", tmp_path / "disk-b"
    broker = gregor_factory(props={"log.dirs": f"{first},{second}"})
    name = unique("dirs")
    topics(broker, "--create", "--topic", name, "--partitions", "2")
    kafka_tool(
        "kafka-console-producer", "--bootstrap-server", broker.bootstrap, "--topic", name,
        input="".join(f"record-{i}\n" for i in range(100)),
    )
    out = kafka_tool("kafka-log-dirs", "--bootstrap-server", broker.bootstrap, "--describe",
                     "--topic-list", name).stdout
    report = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    [b] = report["brokers"]
    dirs = {d["logDir"]: d for d in b["logDirs"]}
    assert set(dirs) == {str(first), str(second)}
    sizes = {p["partition"]: p["size"] for d in dirs.values() for p in d["partitions"]}
    assert set(sizes) == {f"{name}-0", f"{name}-1"}
    on_disk = {f"{name}-{i}": sum(f.stat().st_size for f in d.glob(f"{name}-{i}/*.log"))
               for i in (0, 1) for d in (first, second) if (d / f"{name}-{i}").exists()}
    assert sizes == on_disk and sum(sizes.values()) > 100 * len("record-00")
    # DescribeLogDirs v4 (KIP-827) also gives each directory's file system
    # size and free space, as statvfs sees them.
    conn = wire.Connection(broker.bootstrap)
    conn.send(wire.describe_log_dirs_v4())
    described = wire.describe_log_dirs_v4_dirs(conn.response())
    conn.close()
    assert set(described) == {str(first), str(second)}
    for d, (error, total, usable) in described.items():
        fs = os.statvfs(d)
        assert error == 0 and total == fs.f_blocks * fs.f_frsize
        assert 0 < usable <= total and abs(usable - fs.f_bavail * fs.f_frsize) < total // 100

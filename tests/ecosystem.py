"""Kafka ecosystem applications as real processes, for tests/test_ecosystem.py:
Kafka Connect workers in distributed mode, a Kafka Streams application
compiled here from tests/streams-app, and Apicurio Registry with its
Kafka-backed storage. Each talks to whatever cluster its bootstrap names.

Connect and Streams are Apache Kafka ECOSYSTEM_VERSION's own (the jars of
tests/kafka-jars/<version>: connect-file is not published for 4.4.0);
Apicurio Registry is its Quarkus distribution from Maven Central
(tests/apicurio/pom.xml), unpacked by .ci/install.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from conftest import ROOT, free_port, kafka_libs, wait_for_port, wait_until

ECOSYSTEM_VERSION = "4.3.1"
ECOSYSTEM_LIBS = kafka_libs(ECOSYSTEM_VERSION)
STREAMS_APP = ROOT / "tests" / "streams-app"
APICURIO = ROOT / ".cache" / "apicurio"

# A REST client that ignores any proxy of the environment: everything it
# talks to is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, timeout=30):
    """(status, decoded JSON body or text) of one HTTP request."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


def answers(url):
    """True once an HTTP server answers `url` with 2xx."""
    try:
        return 200 <= http("GET", url, timeout=5)[0] < 300
    except OSError:
        return False


def _log4j(path, level="INFO"):
    """A reload4j configuration that logs at `level` to stdout (which the
    helpers below send to the process's log file)."""
    path.write_text(
        f"log4j.rootLogger={level}, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        # The clients' configuration dumps make the logs hard to read.
        "log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN\n"
        "log4j.logger.org.apache.kafka.clients.consumer.ConsumerConfig=WARN\n"
        "log4j.logger.org.apache.kafka.clients.producer.ProducerConfig=WARN\n"
        "log4j.logger.org.apache.kafka.clients.admin.AdminClientConfig=WARN\n"
        "log4j.logger.org.reflections=ERROR\n")
    return path


class JavaProcess:
    """A JVM started with its output in `workdir`/`name`.log."""

    def __init__(self, workdir, name):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = self.workdir / f"{name}.log"
        self.proc = None

    def launch(self, command, env=None):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         env={**os.environ, **(env or {})})
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def died(self):
        """For wait_until's `failed`: why the process is gone, if it is."""
        if self.proc is not None and self.proc.poll() is not None:
            return f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
        return None

    def log_tail(self, chars=6000):
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout=60):
        """SIGTERM, as a service manager stops it (shutdown hooks run)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} did not stop within {timeout}s of SIGTERM")

    def kill(self):
        """kill -9: no shutdown hook, no goodbye."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()


class ConnectWorker(JavaProcess):
    """A Kafka Connect worker in distributed mode (ConnectDistributed): the
    workers given the same `group` form one Connect cluster, which keeps
    its connectors' configs, source offsets and statuses in the three
    internal topics it creates itself with `replication` replicas."""

    def __init__(self, workdir, name, bootstrap, group, replication):
        super().__init__(workdir, name)
        self.port = free_port()
        self.group = group
        self.topics = {kind: f"{group}-{kind}" for kind in ("configs", "offsets", "status")}
        self.props = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "config.storage.topic": self.topics["configs"],
            "offset.storage.topic": self.topics["offsets"],
            "status.storage.topic": self.topics["status"],
            "config.storage.replication.factor": replication,
            "offset.storage.replication.factor": replication,
            "status.storage.replication.factor": replication,
            "offset.storage.partitions": 5,
            "status.storage.partitions": 1,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "listeners": f"http://127.0.0.1:{self.port}",
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": self.port,
            # Source offsets are committed every second, so a task that
            # moves resumes close to where it was.
            "offset.flush.interval.ms": 1000,
            # A worker that is gone is noticed within seconds and its tasks
            # are given to the others at once (the default waits 5 minutes
            # for it to come back).
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "scheduled.rebalance.max.delay.ms": 0,
            # The file connectors are on the classpath with their service
            # manifests: no scanning of the jars for plugins.
            "plugin.discovery": "service_load",
        }

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def worker_id(self):
        """How the Connect REST API names this worker."""
        return f"127.0.0.1:{self.port}"

    def start(self):
        config = self.workdir / f"{self.name}.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        log4j = _log4j(self.workdir / f"{self.name}-log4j.properties")
        self.launch(["java", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                     f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{ECOSYSTEM_LIBS}/*",
                     "org.apache.kafka.connect.cli.ConnectDistributed", str(config)])
        return self

    def wait_ready(self, timeout=120):
        """Until its REST API answers (it has joined its Connect cluster
        and read the config topic)."""
        wait_until(lambda: answers(f"{self.url}/connectors"), timeout,
                   f"Connect worker {self.name} to serve its REST API", failed=self.died, step=0.5)
        return self

    def rest(self, method, path, body=None):
        return http(method, f"{self.url}{path}", body)


def compile_java(source_dir, cache_name):
    """The Java sources of `source_dir` compiled against the Kafka jars of
    ECOSYSTEM_VERSION, cached under .cache/`cache_name` by the hash of the
    sources and the jars' version: the directory to put on the classpath."""
    sources = sorted(Path(source_dir).glob("*.java"))
    digest = hashlib.sha256(ECOSYSTEM_VERSION.encode())
    for s in sources:
        digest.update(s.read_bytes())
    out = ROOT / ".cache" / cache_name / digest.hexdigest()[:16]
    if not (out / ".complete").exists():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        proc = subprocess.run(["javac", "-d", str(tmp), "-cp", f"{ECOSYSTEM_LIBS}/*", *map(str, sources)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"javac failed:\n{proc.stdout}\n{proc.stderr}"
        (tmp / ".complete").write_text("")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


def compile_streams_app():
    """tests/streams-app compiled (see compile_java)."""
    return compile_java(STREAMS_APP, "streams-app")


class StreamsApp(JavaProcess):
    """tests/streams-app/WordCount.java: counts the words of `input` in a
    persistent state store and writes every new count to `output` (key:
    the word, value: its count in decimal)."""

    def __init__(self, workdir, name, bootstrap, app_id, input, output, replication):
        super().__init__(workdir, name)
        self.state_dir = self.workdir / f"{name}-state"
        self.props = {
            "application.id": app_id,
            "bootstrap.servers": bootstrap,
            "state.dir": self.state_dir,
            "replication.factor": replication,
            "processing.guarantee": "at_least_once",
            # Every update of the store is forwarded and committed soon.
            "statestore.cache.max.bytes": 0,
            "commit.interval.ms": 500,
            "num.stream.threads": 1,
        }
        self.input, self.output = input, output

    def start(self):
        config = self.workdir / f"{self.name}.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        log4j = _log4j(self.workdir / f"{self.name}-log4j.properties")
        classes = compile_streams_app()
        self.launch(["java", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                     f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{classes}:{ECOSYSTEM_LIBS}/*",
                     "WordCount", str(config), self.input, self.output])
        return self

    def state_transitions(self):
        """The KafkaStreams states it has reported, in order."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return re.findall(r"^STATE \S+ -> (\S+)$", text, re.M)


def java_at_least(major):
    """A `java` of at least that major version: the one on PATH, else a JDK
    under /usr/lib/jvm (these machines have a Temurin 25 beside Debian's
    OpenJDK 17)."""
    candidates = [shutil.which("java"), *sorted(map(str, Path("/usr/lib/jvm").glob("*/bin/java")), reverse=True)]
    for java in filter(None, candidates):
        proc = subprocess.run([java, "-XshowSettings:properties", "-version"], capture_output=True, text=True)
        m = re.search(r"java\.specification\.version = (\d+)", proc.stderr)
        if m and int(m.group(1)) >= major:
            return java
    raise AssertionError(f"no Java {major} or newer (looked at {candidates})")


def apicurio_dir():
    """The unpacked Quarkus application of Apicurio Registry (.ci/install)."""
    runners = sorted(APICURIO.glob("*/quarkus-run.jar"))
    assert runners, f"Apicurio Registry is not unpacked under {APICURIO}: run .ci/install"
    return runners[-1].parent


class SchemaRegistry(JavaProcess):
    """Apicurio Registry with its "kafkasql" storage: every change is a
    record of the `kafkasql-journal` topic it creates on `bootstrap`, and a
    starting registry rebuilds its schemas by reading that journal. Its
    Confluent-compatible API is at `ccompat_url`."""

    def __init__(self, workdir, name, bootstrap, topic):
        super().__init__(workdir, name)
        self.port = free_port()
        self.management_port = free_port()
        self.bootstrap = bootstrap
        self.topic = topic

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ccompat_url(self):
        return f"{self.url}/apis/ccompat/v7"

    def start(self):
        app = apicurio_dir()
        env = {
            "APICURIO_STORAGE_KIND": "kafkasql",
            "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS": self.bootstrap,
            "APICURIO_KAFKASQL_TOPIC": self.topic,
            "APICURIO_KAFKASQL_SNAPSHOTS_TOPIC": f"{self.topic}-snapshots",
            "QUARKUS_HTTP_HOST": "127.0.0.1",
            "QUARKUS_HTTP_PORT": str(self.port),
            "QUARKUS_MANAGEMENT_HOST": "127.0.0.1",
            "QUARKUS_MANAGEMENT_PORT": str(self.management_port),
        }
        # Quarkus 3.33 needs Java 21.
        self.launch([java_at_least(21), "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                     "-jar", str(app / "quarkus-run.jar")], env=env)
        return self

    def wait_ready(self, timeout=180):
        """Until it reports ready (its storage has read the journal) and its
        API answers."""
        wait_for_port(self.port, self.proc, self.log, timeout=timeout)
        wait_until(lambda: answers(f"http://127.0.0.1:{self.management_port}/health/ready")
                   and answers(f"{self.ccompat_url}/subjects"), timeout,
                   f"schema registry {self.name} to be ready", failed=self.died, step=0.5)
        return self

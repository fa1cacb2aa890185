"""What security costs: Gregor side by side with Apache Kafka (the tests'
reference version, KAFKA_VERSION in tests/conftest.py), each one broker
with two client listeners, PLAINTEXT and SASL_SSL (TLS with a PEM key
store, SCRAM-SHA-512 users made with kafka-configs), the same workloads on
both listeners. Writes the median of the runs, their range and
Gregor/Kafka ratios to bench/results/security.md and .json (--quick:
security-quick.*). These are measures, never assertions.

Every run starts a fresh broker of each kind. Workloads, on each listener:

- produce: 1 KiB records, acks=1, 6 partitions (kafka-producer-perf-test);
- consume: those records read back from the beginning
  (kafka-consumer-perf-test);

and on the SASL_SSL listener only:

- handshakes: THREADS client threads (Python, OpenSSL) each opening
  connections one after the other for HANDSHAKE_SECONDS: TCP connect, TLS
  1.3 handshake, SaslHandshake, two SaslAuthenticate rounds of
  SCRAM-SHA-512 (the server's signature checked), close. The clients keep
  each salted password once computed, so the broker's work, not the
  client's PBKDF2, bounds the rate; connections are closed with a reset
  so that the client's ports are not held in TIME_WAIT.

Broker CPU seconds come from /proc (user + system of the broker process)
per GB of records moved, or per thousand handshakes.
"""

import argparse
import base64
import hashlib
import hmac
import os
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from cluster import GREGOR_BIN, Cluster, java, run
from bench import consumer_perf, measured, producer_perf
from report import compare, header, spread, write

import wire  # noqa: E402 - tests/ is on the path cluster.py sets
from certs import Authority  # noqa: E402

SECURE = "SECURE"
USER, PASSWORD = "bench", "bench-secret"
MECHANISM = "SCRAM-SHA-512"
THREADS = 4
SIZES = {
    "full": {"runs": 3, "records": 500_000, "handshake_seconds": 10},
    "quick": {"runs": 1, "records": 20_000, "handshake_seconds": 2},
}
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36


def broker_settings(store, trust):
    """The SASL_SSL listener's properties, the same on both kinds."""
    return {
        "sasl.enabled.mechanisms": MECHANISM,
        f"listener.name.{SECURE.lower()}.{MECHANISM.lower()}.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        f"listener.name.{SECURE.lower()}.ssl.keystore.type": "PEM",
        f"listener.name.{SECURE.lower()}.ssl.keystore.location": store,
        f"listener.name.{SECURE.lower()}.ssl.truststore.type": "PEM",
        f"listener.name.{SECURE.lower()}.ssl.truststore.location": trust,
    }


def client_settings(trust):
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": MECHANISM,
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
                            f'username="{USER}" password="{PASSWORD}";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": trust,
    }


class ScramClient:
    """Logs in over TLS with SCRAM-SHA-512, by hand (RFC 5802 over Kafka's
    SaslHandshake v1 and SaslAuthenticate v1)."""

    def __init__(self, address, ca_file):
        host, port = address.rsplit(":", 1)
        self.address = (host, int(port))
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.salted = {}
        self.lock = threading.Lock()

    def login(self):
        raw = socket.create_connection(self.address, timeout=10)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self.context.wrap_socket(raw, server_hostname=self.address[0]) as tls:
            def call(api_key, correlation_id, body):
                tls.sendall(wire.frame(wire.header(api_key, 1, correlation_id) + body))
                (size,) = struct.unpack(">i", recv_exact(tls, 4))
                reader = wire.Reader(recv_exact(tls, size), 4)
                if (error := reader.take(">h")) != 0:
                    raise RuntimeError(f"api {api_key} answered error {error}")
                return reader

            call(SASL_HANDSHAKE, 1, wire.string(MECHANISM))
            nonce = base64.b64encode(os.urandom(18)).decode()
            first_bare = f"n={USER},r={nonce}"
            reader = call(SASL_AUTHENTICATE, 2, bytes_field(f"n,,{first_bare}".encode()))
            reader.string()
            server_first = reader.bytes().decode()
            fields = dict(kv.split("=", 1) for kv in server_first.split(","))
            if not fields["r"].startswith(nonce):
                raise RuntimeError("the server's nonce does not extend ours")
            salted = self.salted_password(base64.b64decode(fields["s"]), int(fields["i"]))
            final_bare = f"c=biws,r={fields['r']}"
            auth_message = f"{first_bare},{server_first},{final_bare}".encode()
            client_key = hmac.digest(salted, b"Client Key", "sha512")
            signature = hmac.digest(hashlib.sha512(client_key).digest(), auth_message, "sha512")
            proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
            reader = call(SASL_AUTHENTICATE, 3, bytes_field(f"{final_bare},p={proof}".encode()))
            reader.string()
            server_final = reader.bytes().decode()
            expected = hmac.digest(hmac.digest(salted, b"Server Key", "sha512"), auth_message, "sha512")
            if server_final != f"v={base64.b64encode(expected).decode()}":
                raise RuntimeError(f"the server's signature is wrong: {server_final}")

    def salted_password(self, salt, iterations):
        with self.lock:
            if (salt, iterations) not in self.salted:
                self.salted[(salt, iterations)] = hashlib.pbkdf2_hmac(
                    "sha512", PASSWORD.encode(), salt, iterations)
            return self.salted[(salt, iterations)]


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed by the broker")
        out += chunk
    return out


def bytes_field(b):
    return struct.pack(">i", len(b)) + b


def handshakes(cluster, ca_file, seconds):
    """Logins per second of THREADS threads for `seconds`, and the
    broker's CPU milliseconds per login."""
    client = ScramClient(cluster.bootstraps[SECURE], ca_file)
    client.login()  # the salted password, once
    counts, errors = [0] * THREADS, []
    before = cluster.cpu()
    deadline = time.monotonic() + seconds

    def work(i):
        try:
            while time.monotonic() < deadline:
                client.login()
                counts[i] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        raise RuntimeError(f"a login failed: {errors[0]}")
    total = sum(counts)
    return {"logins/s": total / elapsed, "broker CPU ms/login": (cluster.cpu() - before) * 1000 / total}


def run_once(kind, n, workdir, store, trust):
    cluster = Cluster(kind, 1, workdir, settings=broker_settings(store, trust), listeners={SECURE: "SASL_SSL"})
    try:
        cluster.start()
        run(java("org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", cluster.bootstrap, "--alter",
                 "--entity-type", "users", "--entity-name", USER,
                 "--add-config", f"{MECHANISM}=[password={PASSWORD}]"))
        secure_config = workdir / "client.properties"
        secure_config.write_text("".join(f"{k}={v}\n" for k, v in client_settings(trust).items()))
        out = {}
        for name, bootstrap, config in [("PLAINTEXT", cluster.bootstrap, None),
                                        ("SASL_SSL", cluster.bootstraps[SECURE], secure_config)]:
            topic = f"bench-{name.lower()}"
            cluster.create_topic(topic, 6, 1)
            records = n["records"]
            out[f"produce 1 KiB, acks=1, {name}"] = measured(cluster, records * 1024, lambda: producer_perf(
                cluster, topic, records, 1024, 1, bootstrap=bootstrap, config=config))
            out[f"consume 1 KiB, {name}"] = measured(cluster, records * 1024, lambda: consumer_perf(
                cluster, topic, records, bootstrap=bootstrap, config=config))
        out["TLS 1.3 + SCRAM-SHA-512 logins"] = handshakes(cluster, trust, n["handshake_seconds"])
        return out
    finally:
        cluster.stop()


SHOWN = {"MB/s": True, "broker CPU s/GB": False, "logins/s": True, "broker CPU ms/login": False}


def table(results):
    """One row per workload and metric: medians (range) of the runs and
    Gregor / Kafka."""
    rows = ["| Workload | Metric | Gregor | Kafka | Gregor / Kafka | Better |", "|---|---|---|---|---|---|"]
    ok = {kind: [r for r in runs if "error" not in r] for kind, runs in results.items()}
    workloads = next(iter(ok["gregor"] + ok["kafka"]), {})
    for workload, metrics in workloads.items():
        for metric, higher_is_better in SHOWN.items():
            if metric not in metrics:
                continue
            values = {kind: [r[workload][metric] for r in runs] for kind, runs in ok.items()}
            ratio, better = compare(values["gregor"], values["kafka"], higher_is_better)
            rows.append(f"| {workload} | {metric} | {spread(values['gregor'])} | {spread(values['kafka'])} "
                        f"| {ratio} | {better} |")
    return "\n".join(rows)


def cost_of_security(results):
    """Per kind, SASL_SSL throughput as a share of PLAINTEXT's (medians)."""
    lines = []
    for kind, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            continue
        shares = []
        for workload in ("produce 1 KiB, acks=1", "consume 1 KiB"):
            plain = sorted(r[f"{workload}, PLAINTEXT"]["MB/s"] for r in ok)[len(ok) // 2]
            secure = sorted(r[f"{workload}, SASL_SSL"]["MB/s"] for r in ok)[len(ok) // 2]
            shares.append(f"{workload.split(' ')[0]} {secure / plain:.2f}")
        lines.append(f"- {kind}: SASL_SSL / PLAINTEXT throughput: {', '.join(shares)}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short run: checks that everything runs")
    parser.add_argument("--runs", type=int, help="runs of each kind (default 3, --quick 1)")
    args = parser.parse_args()
    n = SIZES["quick" if args.quick else "full"]
    runs = args.runs or n["runs"]
    workdir = Path(tempfile.mkdtemp(prefix="gregor-security-"))
    results = {"gregor": [], "kafka": []}
    try:
        ca = Authority("bench CA")
        store, _, _ = ca.issue("broker").write(workdir, "broker")
        trust = ca.write_trust_store(workdir / "ca.pem")
        for kind in results:
            for i in range(runs):
                print(f"{kind}: run {i + 1} of {runs}...", file=sys.stderr, flush=True)
                try:
                    result = run_once(kind, n, workdir / f"{kind}-{i + 1}", store, trust)
                except Exception as e:  # noqa: BLE001 - reported, the other runs go on
                    result = {"error": f"{type(e).__name__}: {e}"}
                print(f"  {result}", file=sys.stderr, flush=True)
                results[kind].append(result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [f"- {kind} run {i + 1} failed: {r['error']}" for kind, rs in results.items()
              for i, r in enumerate(rs) if "error" in r]
    command = "bench/run security" + "".join(f" {a}" for a in sys.argv[1:])
    note = "quick: one short run, checks that everything runs" if args.quick else ""
    markdown = (header(command, note)
                + f"One broker of each kind; its own defaults otherwise. Gregor binary: `{GREGOR_BIN}`. "
                  f"{n['records']:,} records per workload; {THREADS} login threads for "
                  f"{n['handshake_seconds']} s. Values: median of {runs} run(s) (min-max). The workloads "
                  "are defined in bench/security.py's docstring.\n\n"
                + table(results) + "\n\n" + cost_of_security(results) + "\n"
                + ("\n" + "\n".join(failed) + "\n" if failed else ""))
    write("security-quick" if args.quick else "security", markdown,
          {"records": n["records"], "runs": runs, "threads": THREADS, "results": results})
    print(markdown)
    if failed and args.quick:
        sys.exit(1)


if __name__ == "__main__":
    main()

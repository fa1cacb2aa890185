"""A real Kubernetes control plane for the operator tests: etcd,
kube-apiserver, kube-controller-manager and kube-scheduler built from their
published Go modules by tests/kube/build, with their own PKI, on this
machine. kubectl and helm (built there too) talk to it through a kubeconfig
with an admin client certificate. The nodes are in node.py."""

import json
import os
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
KUBE_CACHE = ROOT / ".cache" / "kube"
KUBE_BIN = KUBE_CACHE / "bin"
KUBE_SOURCES = ROOT / "tests" / "kube"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def stop(proc, grace=20):
    """Stops a process started in a session of its own: SIGTERM to its
    group, SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def issue_cert(d, name, subject, ext="extendedKeyUsage=clientAuth"):
    """A key and a certificate for `subject` signed by the CA in `d`
    (a client certificate unless `ext` says otherwise); their paths."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject, cwd=d)
    (d / f"{name}.ext").write_text(ext + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
            "-extfile", f"{name}.ext", cwd=d)
    return d / f"{name}.key", d / f"{name}.crt"


def make_pki(d, server_ips):
    """A CA, the API server's serving certificate, client certificates for
    an admin and the scheduler, and the service-account signing key."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.crt", "-days", "2", "-subj", "/CN=gregor-test-ca", cwd=d)
    sans = ",".join(
        ["DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
         "DNS:kubernetes.default.svc"] + [f"IP:{ip}" for ip in server_ips])
    issue_cert(d, "apiserver", "/CN=kube-apiserver", f"subjectAltName={sans}")
    issue_cert(d, "admin", "/O=system:masters/CN=admin")
    issue_cert(d, "scheduler", "/CN=system:kube-scheduler")
    openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
    cleaned up on stop(). Nodes reach the API server at `node_server`."""

    def __init__(self, workdir, advertise_ip, ports):
        self.dir = Path(workdir)
        self.ip = advertise_ip
        self.etcd_port, self.etcd_peer_port, self.api_port = ports
        self.procs = []
        self.pki = self.dir / "pki"
        make_pki(self.pki, ["127.0.0.1", advertise_ip, "10.96.0.1"])
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.node_server = f"https://{advertise_ip}:{self.api_port}"
        self.kubeconfig = self.dir / "admin.kubeconfig"
        self.write_kubeconfig(self.kubeconfig, self.server, {
            "client-certificate": str(self.pki / "admin.crt"),
            "client-key": str(self.pki / "admin.key"),
        })
        self.ssl = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        self.ssl.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))

    def write_kubeconfig(self, path, server, user):
        path.write_text(json.dumps({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {
                "server": server, "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user"}}],
            "current-context": "test",
        }))

    def spawn(self, name, argv):
        log = open(self.dir / f"{name}.log", "w")
        proc = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc, log))
        return proc

    def start(self):
        self.spawn("etcd", [
            KUBE_BIN / "etcd", "--data-dir", self.dir / "etcd",
            "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{self.etcd_peer_port}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ])
        p = self.pki
        self.spawn("kube-apiserver", [
            KUBE_BIN / "kube-apiserver",
            "--etcd-servers", f"http://127.0.0.1:{self.etcd_port}",
            "--bind-address", "0.0.0.0", "--secure-port", self.api_port,
            "--advertise-address", self.ip,
            "--tls-cert-file", p / "apiserver.crt", "--tls-private-key-file", p / "apiserver.key",
            "--client-ca-file", p / "ca.crt",
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", p / "sa.pub",
            "--service-account-signing-key-file", p / "sa.key",
            "--service-cluster-ip-range", "10.96.0.0/16",
            "--service-node-port-range", "30000-32767",
            "--authorization-mode", "Node,RBAC",
            "--enable-admission-plugins", "NodeRestriction",
            "--kubelet-client-certificate", p / "admin.crt", "--kubelet-client-key", p / "admin.key",
            "--kubelet-preferred-address-types", "InternalIP",
            "--allow-privileged=true",
            "--cert-dir", self.dir / "apiserver-certs",
        ])
        self.wait_ready("/readyz", 120)
        self.spawn("kube-controller-manager", [
            KUBE_BIN / "kube-controller-manager",
            "--kubeconfig", self.kubeconfig,
            "--leader-elect=false",
            # No cloud: no routes, load balancers or cloud node lifecycle;
            # the nodes' pod ranges are set in their network configuration.
            "--controllers", "*,-nodeipam,-cloud-node-lifecycle,-route,-service-lb-controller",
            "--service-account-private-key-file", p / "sa.key",
            "--root-ca-file", p / "ca.crt",
            "--bind-address", "127.0.0.1", "--secure-port", "0",
            "--concurrent-statefulset-syncs", "2",
        ])
        scheduler = self.dir / "scheduler.kubeconfig"
        self.write_kubeconfig(scheduler, self.server, {
            "client-certificate": str(p / "scheduler.crt"), "client-key": str(p / "scheduler.key")})
        self.spawn("kube-scheduler", [
            KUBE_BIN / "kube-scheduler", "--kubeconfig", scheduler, "--leader-elect=false",
            "--bind-address", "127.0.0.1", "--secure-port", "0",
        ])
        # The controller manager is up when it has made the default
        # namespace's service account.
        self.wait(lambda: self.get("/api/v1/namespaces/default/serviceaccounts/default"), 120,
                  "the controller manager to create service accounts")

    def wait_ready(self, path, timeout):
        def ok():
            try:
                return self.request("GET", path, raw=True) == b"ok"
            except (OSError, urllib.error.URLError):
                return False
        self.wait(ok, timeout, f"kube-apiserver {path}")

    def wait(self, check, timeout, what):
        wait_until(check, timeout, what, self.failed)

    def failed(self):
        """The first process of the control plane that exited, with its log."""
        for name, proc, _ in self.procs:
            if proc.poll() is not None:
                return f"{name} exited {proc.returncode}:\n{self.log(name)[-3000:]}"
        return None

    def log(self, name):
        return (self.dir / f"{name}.log").read_text(errors="replace")

    def request(self, method, path, body=None, raw=False, content_type="application/json"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, context=self.ssl, timeout=30) as resp:
            out = resp.read()
        return out if raw else json.loads(out)

    def get(self, path):
        """The object at `path`, or None if there is none."""
        try:
            return self.request("GET", path)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def kubectl(self, *args, input=None, check=True):
        proc = subprocess.run([str(KUBE_BIN / "kubectl"), "--kubeconfig", str(self.kubeconfig), *map(str, args)],
                              input=input, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(map(str, args))} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def helm(self, *args, check=True):
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "HELM_CACHE_HOME": str(self.dir / "helm-cache"),
               "HELM_CONFIG_HOME": str(self.dir / "helm-config"),
               "HELM_DATA_HOME": str(self.dir / "helm-data")}
        proc = subprocess.run([str(KUBE_BIN / "helm"), *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(map(str, args))} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def stop(self):
        for _, proc, log in reversed(self.procs):
            stop(proc)
            log.close()
        self.procs.clear()

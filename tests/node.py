"""Real Kubernetes nodes for the operator tests: each node is a kubelet, a
containerd (with runc and the CNI plugins) and a kube-proxy, all built from
their published modules by tests/kube/build, running as plain processes in a
network namespace of the node's own, the way kind runs a node in a
container.

The layout, on one machine:

    host bridge kn<tag>  10.X.Y.1  (the API server's address)
      ├─ node-1 netns    10.X.Y.11   pods 10.244.1.0/24 on its bridge cni0
      ├─ node-2 netns    10.X.Y.12   pods 10.244.2.0/24
      ├─ node-3 netns    10.X.Y.13   pods 10.244.3.0/24
      └─ client netns    10.X.Y.100  resolves through the cluster DNS

Each node routes the other nodes' pod ranges to them (as a host-gateway
network plugin would) and runs its own kube-proxy, so Service IPs work from
pods and from the client namespace, and node ports from the host too. Each node
carries a zone label (zone-a, zone-b, zone-c) for rack awareness and spread.
Pods get local PersistentVolumes of their node through a `local` storage
class bound when the scheduler places the pod (WaitForFirstConsumer).

The machine has no systemd and a cgroup v1 hybrid hierarchy: the kubelets
use the cgroupfs driver, each under a cgroup root of its own. No container
registry is reachable: the images (the pod sandbox and CoreDNS from
tests/kube, Gregor's from image/build) are imported into every node's
containerd and run with IfNotPresent."""

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import yaml

from conftest import wait_until
from kube import KUBE_BIN, KUBE_CACHE, KUBE_SOURCES, issue_cert, stop
from netns import add_bridge, add_namespace, sh

CNI_BIN = KUBE_CACHE / "cni"
IMAGES = KUBE_CACHE / "images"
SANDBOX_IMAGE = "localhost/gregor-test/pause:3.10"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
DNS_IP = "10.96.0.10"
ZONES = ["zone-a", "zone-b", "zone-c"]
# Claims per node the local storage class can bind.
VOLUMES_PER_NODE = 4
CGROUP_V1 = Path("/sys/fs/cgroup")


def nsenter(netns, argv):
    """`argv` in network namespace `netns` only: unlike `ip netns exec`, the
    mounts (/sys and its cgroups) stay the host's."""
    return ["nsenter", f"--net=/var/run/netns/{netns}", "--", *map(str, argv)]


class Network:
    """The host bridge, a namespace per node and one for clients."""

    def __init__(self, nodes):
        self.tag = f"{random.randrange(1 << 16):04x}"
        self.subnet = f"10.{random.randrange(64, 250)}.{random.randrange(1, 250)}"
        self.bridge = f"kn{self.tag}"
        self.host_ip = f"{self.subnet}.1"
        self.nodes = nodes
        self.client_ns = f"kc{self.tag}"
        add_bridge(self.bridge, self.host_ip)
        for n in range(1, nodes + 1):
            ns = self.node_ns(n)
            add_namespace(ns, self.bridge, f"kv{self.tag}{n}", f"kp{self.tag}{n}", self.node_ip(n))
            sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", self.host_ip)
            for sysctl in ["net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1",
                           "net.ipv4.conf.all.route_localnet=1"]:
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", sysctl)
            for m in range(1, nodes + 1):
                if m != n:
                    sh("ip", "netns", "exec", ns, "ip", "route", "add", self.pod_cidr(m),
                       "via", self.node_ip(m))
            # The host keeps no routes to the cluster's ranges (they could
            # clash with the machine's own): pods reach the API server on
            # the host with their node's address.
            sh("ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "POSTROUTING",
               "-s", CLUSTER_CIDR, "-d", self.host_ip, "-j", "MASQUERADE")
        # The client namespace reaches pods on their node, and Service IPs
        # through node 1's kube-proxy.
        add_namespace(self.client_ns, self.bridge, f"kv{self.tag}c", f"kp{self.tag}c", self.client_ip)
        for n in range(1, nodes + 1):
            sh(*self.client(), "ip", "route", "add", self.pod_cidr(n), "via", self.node_ip(n))
        sh(*self.client(), "ip", "route", "add", SERVICE_CIDR, "via", self.node_ip(1))
        Path(f"/etc/netns/{self.client_ns}").mkdir(parents=True, exist_ok=True)
        Path(f"/etc/netns/{self.client_ns}/resolv.conf").write_text(
            f"nameserver {DNS_IP}\nsearch svc.cluster.local cluster.local\noptions ndots:5\n")

    @property
    def client_ip(self):
        return f"{self.subnet}.100"

    def node_ns(self, n):
        return f"kn{self.tag}-{n}"

    def node_ip(self, n):
        return f"{self.subnet}.{10 + n}"

    @staticmethod
    def pod_cidr(n):
        return f"10.244.{n}.0/24"

    def client(self):
        """A command prefix for programs that should see the cluster as a
        pod does: its DNS names, Service IPs and pod IPs."""
        return ["ip", "netns", "exec", self.client_ns]

    def close(self):
        for n in range(1, self.nodes + 1):
            subprocess.run(["ip", "netns", "del", self.node_ns(n)], capture_output=True)
            subprocess.run(["ip", "link", "del", f"kv{self.tag}{n}"], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.client_ns], capture_output=True)
        subprocess.run(["ip", "link", "del", f"kv{self.tag}c"], capture_output=True)
        shutil.rmtree(f"/etc/netns/{self.client_ns}", ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class Node:
    """One node: containerd, kubelet and kube-proxy in the node's network
    namespace, with their state under `dir`."""

    def __init__(self, cp, net, n, base):
        self.cp = cp
        self.net = net
        self.n = n
        self.name = f"node-{n}"
        self.ip = net.node_ip(n)
        self.ns = net.node_ns(n)
        # Short paths: containerd's sockets live here and a Unix socket's
        # path is limited to 107 bytes.
        self.dir = Path(base) / f"n{n}"
        self.cgroup = f"gregor-{net.tag}-{self.name}"
        self.procs = []
        self.sock = self.dir / "containerd.sock"

    # --- start -------------------------------------------------------------

    def start_runtime(self):
        """containerd, and the images every node holds."""
        self.dir.mkdir(parents=True)
        cni = self.dir / "net.d"
        cni.mkdir()
        (cni / "10-gregor-test.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0",
            "name": "gregor-test",
            "plugins": [
                {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": str(self.dir / "ipam"),
                          "ranges": [[{"subnet": self.net.pod_cidr(self.n)}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }, indent=1))
        config = self.dir / "containerd.toml"
        config.write_text(CONTAINERD_CONFIG.format(
            root=self.dir / "root", state=self.dir / "state", sock=self.sock,
            sandbox=SANDBOX_IMAGE, runc=shutil.which("runc"), cni_bin=CNI_BIN, cni_conf=cni,
            opt=self.dir / "opt"))
        self.spawn("containerd", [KUBE_BIN / "containerd", "--config", config])
        self.wait(lambda: self.ctr("version", check=False).returncode == 0, 60, "containerd")

    def import_images(self, archives):
        for archive in archives:
            self.ctr("images", "import", "--local", archive)

    def start_kubelet(self, pki):
        for controller in cgroup_controllers():
            (CGROUP_V1 / controller / self.cgroup).mkdir(exist_ok=True)
        kubeconfig = self.dir / "kubelet.kubeconfig"
        key, cert = issue_cert(pki, f"kubelet-{self.name}", f"/O=system:nodes/CN=system:node:{self.name}")
        self.cp.write_kubeconfig(kubeconfig, self.cp.node_server, {
            "client-certificate": str(cert), "client-key": str(key)})
        serving_key, serving_cert = issue_cert(
            pki, f"kubelet-serving-{self.name}", f"/CN={self.name}",
            f"subjectAltName=IP:{self.ip},DNS:{self.name}")
        resolv = self.dir / "resolv.conf"
        resolv.write_text("".join(line + "\n" for line in Path("/etc/resolv.conf").read_text().splitlines()
                                  if line.startswith("nameserver")))
        config = self.dir / "kubelet.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.ip,
            "readOnlyPort": 0,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(serving_cert), "tlsPrivateKeyFile": str(serving_key),
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup}",
            # This machine's cgroups are v1 (a hybrid hierarchy).
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.sock}",
            "clusterDNS": [DNS_IP],
            "clusterDomain": "cluster.local",
            "resolvConf": str(resolv),
            "podLogsDir": str(self.dir / "logs"),
            "volumePluginDir": str(self.dir / "volume-plugins"),
            "serializeImagePulls": False,
            "maxPods": 40,
            # The shared disk is not the node's to police, and there is no
            # systemd to delay shutdown through.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "shutdownGracePeriod": "0s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "0s",
        }))
        self.spawn("kubelet", [
            KUBE_BIN / "kubelet", "--config", config, "--kubeconfig", kubeconfig,
            "--root-dir", self.dir / "kubelet", "--cert-dir", self.dir / "kubelet-pki",
            "--hostname-override", self.name, "--node-ip", self.ip,
            "--node-labels", f"topology.kubernetes.io/zone={ZONES[(self.n - 1) % len(ZONES)]}",
        ], netns=True)

    def start_proxy(self, pki):
        kubeconfig = self.dir / "kube-proxy.kubeconfig"
        key, cert = issue_cert(pki, f"kube-proxy-{self.name}", "/CN=system:kube-proxy")
        self.cp.write_kubeconfig(kubeconfig, self.cp.node_server, {
            "client-certificate": str(cert), "client-key": str(key)})
        config = self.dir / "kube-proxy.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": self.name,
            "mode": "iptables",
            "clusterCIDR": CLUSTER_CIDR,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # No kernel modules to tune here: leave conntrack's settings.
            "conntrack": {"maxPerCore": 0, "min": 0,
                          "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"syncPeriod": "30s", "minSyncPeriod": "1s"},
        }))
        self.spawn("kube-proxy", [KUBE_BIN / "kube-proxy", "--config", config], netns=True)

    # --- processes ---------------------------------------------------------

    def spawn(self, name, argv, netns=True):
        log = open(self.dir / f"{name}.log", "w")
        env = {**os.environ, "PATH": f"{KUBE_BIN}:{os.environ['PATH']}"}
        proc = subprocess.Popen(nsenter(self.ns, argv) if netns else [str(a) for a in argv],
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        self.procs.append((name, proc, log))
        return proc

    def ctr(self, *args, check=True):
        proc = subprocess.run([str(KUBE_BIN / "ctr"), "--address", str(self.sock), "--namespace", "k8s.io",
                               *map(str, args)], capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"ctr {' '.join(map(str, args))} on {self.name} exited "
                                 f"{proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def failed(self):
        """The first of this node's processes that exited, with its log."""
        for name, proc, _ in self.procs:
            if proc.poll() is not None:
                return f"{name} on {self.name} exited {proc.returncode}:\n{self.log(name)[-3000:]}"
        return None

    def wait(self, check, timeout, what):
        wait_until(check, timeout, f"{what} on {self.name}", self.failed)

    def log(self, name):
        return (self.dir / f"{name}.log").read_text(errors="replace")

    # --- containers --------------------------------------------------------

    def task_pid(self, container_id):
        """The host PID of a container's main process."""
        for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == container_id:
                return int(fields[1])
        raise AssertionError(f"no running task {container_id} on {self.name}")

    # --- stop --------------------------------------------------------------

    def stop(self):
        """Stops the node and everything it ran, and removes its state."""
        for name in ["kube-proxy", "kubelet"]:
            self.stop_process(name)
        # Every container process lives in the kubelet's cgroups.
        kill_cgroup_tree([CGROUP_V1 / c / self.cgroup for c in cgroup_controllers()])
        self.stop_process("containerd")
        subprocess.run(["pkill", "-KILL", "-f", f"containerd-shim-runc-v2.*{self.sock}"], capture_output=True)
        remove_cgroup_tree([CGROUP_V1 / c / self.cgroup for c in cgroup_controllers()])
        # Pod network namespaces are mounted under the state folder too.
        unmount_under(self.dir)
        for _, _, log in self.procs:
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop_process(self, name):
        for n, proc, _ in self.procs:
            if n == name:
                stop(proc, grace=10)


def cgroup_controllers():
    """The v1 controllers mounted here (each is its own hierarchy)."""
    return [c for c in ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                        "pids", "systemd"] if (CGROUP_V1 / c / "cgroup.procs").exists()]


def kill_cgroup_tree(roots):
    """SIGKILLs every process in the cgroups under `roots`, thawing frozen
    ones first, until none is left."""
    for _ in range(50):
        pids = set()
        for root in roots:
            if root.exists():
                for procs in root.rglob("cgroup.procs"):
                    pids.update(int(p) for p in procs.read_text().split())
                for state in root.rglob("freezer.state"):
                    try:
                        state.write_text("THAWED")
                    except OSError:
                        pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def remove_cgroup_tree(roots):
    for root in roots:
        if root.exists():
            for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    d.rmdir()
                except OSError:
                    pass
            try:
                root.rmdir()
            except OSError:
                pass


def unmount_under(path):
    """Unmounts everything mounted below `path`, deepest first."""
    prefix = str(path) + "/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)


class Cluster:
    """A control plane with `nodes` real nodes, the cluster DNS and local
    storage: what a user's cluster gives the operator."""

    def __init__(self, cp, net, base, nodes):
        self.cp = cp
        self.net = net
        self.base = Path(base)
        self.nodes = [Node(cp, net, n, self.base) for n in range(1, nodes + 1)]

    def start(self, images):
        """Starts the nodes with `images` (podman image names) imported
        alongside the sandbox and CoreDNS images."""
        self.base.mkdir(parents=True)
        archives = [IMAGES / "pause.tar", IMAGES / "coredns.tar"]
        if images:
            gregor = self.base / "gregor-images.tar"
            subprocess.run(["podman", "save", "--quiet", "--multi-image-archive",
                            "--format", "docker-archive", "-o", gregor, *images], check=True)
            archives.append(gregor)
        for node in self.nodes:
            node.start_runtime()
            node.import_images(archives)
        for node in self.nodes:
            node.start_kubelet(self.cp.pki)
            node.start_proxy(self.cp.pki)
        self.wait(lambda: all(self.node_ready(node.name) for node in self.nodes), 120, "the nodes to be Ready")
        self.cp.kubectl("apply", "-f", "-", input=self.addons())
        self.wait(lambda: self.cp.kubectl(
            "get", "deployment", "coredns", "-n", "kube-system",
            "-o", "jsonpath={.status.readyReplicas}", check=False).stdout == "1", 120, "CoreDNS to be ready")

    def node_ready(self, name):
        node = self.cp.get(f"/api/v1/nodes/{name}")
        return node is not None and any(
            c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))

    def addons(self):
        """The cluster DNS and the local volumes, as manifests."""
        docs = [d for d in yaml.safe_load_all((KUBE_SOURCES / "cluster-dns.yaml").read_text()) if d]
        docs.append({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "local", "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Retain",
        })
        for node in self.nodes:
            for i in range(VOLUMES_PER_NODE):
                path = node.dir / "volumes" / f"pv{i}"
                path.mkdir(parents=True)
                docs.append({
                    "apiVersion": "v1", "kind": "PersistentVolume",
                    "metadata": {"name": f"{node.name}-pv{i}"},
                    "spec": {
                        "capacity": {"storage": "100Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": "local",
                        "local": {"path": str(path)},
                        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In",
                             "values": [node.name]}]}]}},
                    },
                })
        return "\n---\n".join(json.dumps(d) for d in docs)

    def wait(self, check, timeout, what):
        wait_until(check, timeout, what, self.failed, step=0.5)

    def failed(self):
        for node in self.nodes:
            if (failure := node.failed()) is not None:
                return failure
        return None

    def node_of(self, namespace, pod):
        """The Node running a pod, and the pod's container id."""
        obj = self.cp.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")
        node = next(n for n in self.nodes if n.name == obj["spec"]["nodeName"])
        container_id = obj["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
        return node, container_id

    def signal(self, namespace, pod, sig):
        """Sends `sig` to a pod's (first) container's main process."""
        node, container_id = self.node_of(namespace, pod)
        os.kill(node.task_pid(container_id), sig)

    def isolate(self, namespace, pod):
        """Cuts a pod off from every other pod and Service; its own node (the
        kubelet's probes) still reaches it."""
        node, container_id = self.node_of(namespace, pod)
        pid = node.task_pid(container_id)
        gateway = self.net.pod_cidr(node.n).replace(".0/24", ".1")
        for argv in [["ip", "route", "add", f"{gateway}/32", "dev", "eth0"],
                     ["ip", "route", "add", "blackhole", CLUSTER_CIDR],
                     ["ip", "route", "add", "blackhole", SERVICE_CIDR]]:
            sh("nsenter", "-t", pid, "-n", *argv)

    def stop(self):
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)


CONTAINERD_CONFIG = """\
version = 3
root = "{root}"
state = "{state}"

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

# Each node's containerd is its own: no shared NRI socket.
[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{sandbox}"

[plugins."io.containerd.cri.v1.runtime"]
  # Pod network namespaces under this node's state, not /var/run/netns.
  netns_mounts_under_state_dir = true
  # Root here lacks CAP_SYS_RESOURCE, so no process may lower its OOM
  # score below its parent's: containers get at least containerd's (0)
  # instead of the kubelet's negative scores for sandboxes and guaranteed
  # pods. Which container the kernel kills first on a full machine is all
  # this changes; a container's own memory limit is enforced as usual.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{cni_conf}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""

"""The node of the operator tests: a stand-in for the scheduler and the
kubelet, since this machine runs no container runtime.

It registers one Node, binds every pod to it, and runs each pod's container
as a real process: in a network namespace of its own with its own pod IP on
a bridge (the host side of the bridge is the node's IP), with the pod's host
name (a UTS namespace), in a mount namespace where the pod's volumes are bind-mounted at their mount paths
(ConfigMaps as files, PersistentVolumeClaims and emptyDirs as folders, the
service-account token where in-cluster clients look for it), with the
environment the pod spec asks for (values, `fieldRef`s, `$(VAR)` expansion
in args). Images are mapped to the binaries built in target/release. It
probes readiness and liveness as the pod says (tcpSocket, httpGet),
restarts a container that fails liveness, reports pod status, stops a
deleted pod's process with SIGTERM and its grace period, and restarts a
process that exits. Pod DNS names (`<pod>.<subdomain>.<ns>.svc`) resolve
through each namespace's /etc/hosts (`/etc/netns/<name>/hosts`).

Like kube-proxy for this one node, it forwards each NodePort (on the node's
IP) to a ready pod the Service selects, so clients outside reach brokers at
the addresses they advertise. Service cluster IPs do not route.

What it does not do: pull images, enforce resources or run-as users."""

import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from netns import add_bridge, add_namespace, sh

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
NODE = "node-1"
# Probes go straight to the pod, whatever proxy the environment names.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def image_binary(image):
    """The local binary standing in for an image."""
    name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    if name == "gregor-operator":
        return RELEASE / "gregor-operator"
    if name == "gregor":
        return RELEASE / "gregor"
    raise AssertionError(f"the test node has no binary for image {image}")


class Network:
    """A bridge whose host side is the node's IP, and a namespace per pod."""

    def __init__(self):
        self.tag = f"{random.randrange(1 << 16):04x}"
        self.subnet = f"10.{random.randrange(64, 250)}.{random.randrange(1, 250)}"
        self.bridge = f"kb{self.tag}"
        self.node_ip = f"{self.subnet}.1"
        self.free = [f"{self.subnet}.{n}" for n in range(2, 250)]
        self.links = {}
        self.count = 0
        add_bridge(self.bridge, self.node_ip)

    def add(self, name):
        """A namespace `name` with an IP of its own; returns the IP."""
        ip = self.free.pop(0)
        self.count += 1
        host, peer = f"kh{self.tag}{self.count}", f"kp{self.tag}{self.count}"
        add_namespace(name, self.bridge, host, peer, ip)
        sh("ip", "netns", "exec", name, "ip", "route", "add", "default", "via", self.node_ip)
        Path(f"/etc/netns/{name}").mkdir(parents=True, exist_ok=True)
        Path(f"/etc/netns/{name}/hosts").write_text("127.0.0.1 localhost\n")
        self.links[name] = (host, ip)
        return ip

    def remove(self, name):
        host, ip = self.links.pop(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["rm", "-rf", f"/etc/netns/{name}"], capture_output=True)
        self.free.append(ip)

    def write_hosts(self, lines):
        text = "127.0.0.1 localhost\n" + "".join(f"{l}\n" for l in lines)
        for name in list(self.links):
            # Written in place: running processes see the file bind-mounted
            # over their /etc/hosts, so its inode must stay.
            with open(f"/etc/netns/{name}/hosts", "w") as f:
                f.write(text)

    def close(self):
        for name in list(self.links):
            self.remove(name)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def terminate(proc, grace):
    """Stops a container's processes as the kubelet does: SIGTERM, then
    SIGKILL after `grace` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        # A frozen container is thawed to see its signal.
        os.killpg(proc.pid, signal.SIGCONT)
        proc.wait(timeout=max(grace, 0.1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class Pod:
    """One running pod: its namespace, process and volumes."""

    def __init__(self, obj, netns, ip):
        self.obj = obj
        self.uid = obj["metadata"]["uid"]
        self.netns = netns
        self.ip = ip
        self.proc = None
        self.restarts = 0
        self.ready = False
        self.started_at = None
        self.terminating = False
        self.exited_at = None
        self.next_probe = 0.0
        self.probe_failures = 0
        self.next_liveness = 0.0
        self.liveness_failures = 0
        # Set while a container that failed liveness is being stopped.
        self.stopping = False
        # Probes running now ("readiness", "liveness").
        self.probing = set()


class Kubelet:
    """Runs the pods of a ControlPlane on one node, in a background thread."""

    def __init__(self, cp, net, workdir, zone="zone-a"):
        self.cp = cp
        self.dir = Path(workdir)
        self.net = net
        self.zone = zone
        self.pods = {}
        self.stopping = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        # Node port -> (pod IP, port) it currently forwards to.
        self.routes = {}
        self.forwarders = {}

    # --- the API -----------------------------------------------------------

    def start(self):
        self.cp.request("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE, "labels": {
                "kubernetes.io/hostname": NODE,
                "topology.kubernetes.io/zone": self.zone}},
        })
        self.cp.request("PATCH", f"/api/v1/nodes/{NODE}/status", {"status": {
            "addresses": [{"type": "InternalIP", "address": self.net.node_ip},
                          {"type": "Hostname", "address": NODE}],
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "test node", "lastHeartbeatTime": now(),
                            "lastTransitionTime": now()}],
        }}, content_type="application/merge-patch+json")
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=120)
        for f in self.forwarders.values():
            f.close()
        for pod in list(self.pods.values()):
            self.kill(pod, grace=10)
        self.net.close()

    def run(self):
        while not self.stopping.is_set():
            try:
                self.sync()
            except Exception as e:  # noqa: BLE001 - reported to the test
                self.error = e
                (self.dir / "kubelet-error.log").write_text(repr(e))
            time.sleep(0.3)

    def sync(self):
        listed = self.cp.request("GET", "/api/v1/pods")["items"]
        seen = set()
        for obj in listed:
            meta, spec = obj["metadata"], obj["spec"]
            if not spec.get("nodeName"):
                self.bind(obj)
                continue
            if spec["nodeName"] != NODE:
                continue
            seen.add(meta["uid"])
            pod = self.pods.get(meta["uid"])
            if meta.get("deletionTimestamp"):
                if pod is None:
                    self.finish_delete(obj)
                elif not pod.terminating:
                    pod.terminating = True
                    threading.Thread(target=self.delete, args=(pod, obj), daemon=True).start()
                continue
            if pod is None:
                pod = self.launch(obj)
            elif pod.proc.poll() is not None and not pod.terminating and not pod.stopping:
                # Restart with the kubelet's doubling back-off (capped low).
                pod.exited_at = pod.exited_at or time.monotonic()
                if time.monotonic() - pod.exited_at >= min(2 ** pod.restarts, 10):
                    pod.restarts += 1
                    pod.exited_at = None
                    self.start_process(pod)
            self.probe(pod)
            self.report(pod)
        for uid in [u for u in list(self.pods) if u not in seen]:
            pod = self.pods.get(uid)
            if pod is not None:
                self.kill(pod, grace=0)
        self.write_dns(listed)
        self.sync_node_ports(listed)

    def sync_node_ports(self, pods):
        """Opens a forwarder for every node port of every Service."""
        services = self.cp.request("GET", "/api/v1/services")["items"]
        wanted = {}
        for svc in services:
            selector = svc["spec"].get("selector") or {}
            for port in svc["spec"].get("ports", []):
                if port.get("nodePort"):
                    wanted[port["nodePort"]] = (svc["metadata"]["namespace"], selector,
                                                port.get("targetPort", port["port"]))
        self.routes = {}
        for obj in pods:
            meta = obj["metadata"]
            pod = self.pods.get(meta["uid"])
            if pod is None or not pod.ready or meta.get("deletionTimestamp"):
                continue
            labels = meta.get("labels") or {}
            for node_port, (ns, selector, target) in wanted.items():
                if selector and ns == meta["namespace"] and all(labels.get(k) == v for k, v in selector.items()):
                    self.routes.setdefault(node_port, (pod.ip, int(target)))
        for node_port in wanted:
            if node_port not in self.forwarders:
                self.forwarders[node_port] = NodePort(self, node_port)

    def bind(self, obj):
        meta = obj["metadata"]
        try:
            self.cp.request("POST", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", {
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
            })
        except urllib.error.HTTPError as e:
            if e.code not in (404, 409):
                raise

    def report(self, pod):
        meta = pod.obj["metadata"]
        ready = "True" if pod.ready else "False"
        container = pod.obj["spec"]["containers"][0]
        running = pod.proc is not None and pod.proc.poll() is None
        status = {
            "phase": "Running",
            "hostIP": self.net.node_ip, "hostIPs": [{"ip": self.net.node_ip}],
            "podIP": pod.ip, "podIPs": [{"ip": pod.ip}],
            "startTime": pod.started_at,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": ready},
                {"type": "Ready", "status": ready},
            ],
            "containerStatuses": [{
                "name": container["name"], "image": container.get("image", ""),
                "imageID": "", "ready": pod.ready, "restartCount": pod.restarts,
                "started": running,
                "state": {"running": {"startedAt": pod.started_at}} if running
                else {"waiting": {"reason": "CrashLoopBackOff"}},
            }],
        }
        key = json.dumps(status, sort_keys=True)
        if getattr(pod, "reported", None) == key:
            return
        try:
            self.cp.request("PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                            {"status": status}, content_type="application/merge-patch+json")
            pod.reported = key
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise

    # --- pods ---------------------------------------------------------------

    def launch(self, obj):
        meta = obj["metadata"]
        netns = f"kp{self.net.tag}-{len(self.pods)}-{random.randrange(1 << 16):04x}"
        ip = self.net.add(netns)
        pod = Pod(obj, netns, ip)
        pod.dir = self.dir / "pods" / meta["uid"]
        pod.dir.mkdir(parents=True)
        self.pods[pod.uid] = pod
        self.start_process(pod)
        return pod

    def volume_dirs(self, pod):
        """Host folders for the pod's volumes, filled as the kubelet would."""
        meta, spec = pod.obj["metadata"], pod.obj["spec"]
        ns = meta["namespace"]
        out = {}
        for vol in spec.get("volumes", []):
            name = vol["name"]
            if "configMap" in vol:
                d = pod.dir / "volumes" / name
                d.mkdir(parents=True, exist_ok=True)
                cm = self.cp.get(f"/api/v1/namespaces/{ns}/configmaps/{vol['configMap']['name']}")
                for key, value in ((cm or {}).get("data") or {}).items():
                    (d / key).write_text(value)
            elif "persistentVolumeClaim" in vol:
                d = self.dir / "claims" / ns / vol["persistentVolumeClaim"]["claimName"]
                d.mkdir(parents=True, exist_ok=True)
            elif "projected" in vol and any("serviceAccountToken" in s for s in vol["projected"]["sources"]):
                d = pod.dir / "volumes" / name
                d.mkdir(parents=True, exist_ok=True)
                sa = spec.get("serviceAccountName", "default")
                token = self.cp.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", {
                    "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {"expirationSeconds": 86400, "boundObjectRef": {
                        "apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}},
                })["status"]["token"]
                (d / "token").write_text(token)
                (d / "ca.crt").write_text((self.cp.pki / "ca.crt").read_text())
                (d / "namespace").write_text(ns)
            else:
                d = pod.dir / "volumes" / name
                d.mkdir(parents=True, exist_ok=True)
            out[name] = d
        return out

    def env(self, pod, container):
        meta = pod.obj["metadata"]
        out = {"PATH": "/usr/local/bin:/usr/bin:/bin",
               "KUBERNETES_SERVICE_HOST": self.net.node_ip,
               "KUBERNETES_SERVICE_PORT": str(self.cp.api_port)}
        fields = {
            "metadata.name": meta["name"],
            "metadata.namespace": meta["namespace"],
            "metadata.uid": meta["uid"],
            "status.hostIP": self.net.node_ip,
            "status.podIP": pod.ip,
            "spec.nodeName": NODE,
        }
        for e in container.get("env", []):
            if "value" in e:
                out[e["name"]] = expand(e["value"], out)
            elif "fieldRef" in e["valueFrom"]:
                path = e["valueFrom"]["fieldRef"]["fieldPath"]
                if path.startswith("metadata.annotations['"):
                    # Read at container start, like the kubelet.
                    current = self.cp.get(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}")
                    key = path[len("metadata.annotations['"):-2]
                    out[e["name"]] = ((current or meta)["metadata"].get("annotations") or {}).get(key, "")
                else:
                    out[e["name"]] = fields[path]
        return out

    def start_process(self, pod):
        container = pod.obj["spec"]["containers"][0]
        env = self.env(pod, container)
        argv = [str(image_binary(container["image"]))]
        argv += [expand(a, env) for a in container.get("command", [])[1:]]
        argv += [expand(a, env) for a in container.get("args", [])]
        dirs = self.volume_dirs(pod)
        binds = []
        for m in container.get("volumeMounts", []):
            Path(m["mountPath"]).mkdir(parents=True, exist_ok=True)
            binds.append(f"mount --bind {dirs[m['name']]} {m['mountPath']}")
        hostname = pod.obj["spec"].get("hostname", pod.obj["metadata"]["name"])
        script = " && ".join([f"hostname {hostname}"] + binds + ['exec "$@"'])
        log = open(pod.dir / f"container-{pod.restarts}.log", "w")
        pod.proc = subprocess.Popen(
            ["ip", "netns", "exec", pod.netns, "unshare", "--mount", "--uts", "--propagation", "private",
             "sh", "-c", script, "sh", *argv],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pod.log = log
        pod.ready = False
        pod.next_probe = 0.0
        pod.probe_failures = 0
        live = pod.obj["spec"]["containers"][0].get("livenessProbe") or {}
        pod.next_liveness = time.monotonic() + live.get("initialDelaySeconds", 0)
        pod.liveness_failures = 0
        pod.started_at = now()

    def probe(self, pod):
        """Runs the container's probes on their periods, each in a thread of
        its own so a probe waiting out its timeout holds up nothing else.
        Readiness: ready after a success, not ready after `failureThreshold`
        failures in a row. Liveness: after `failureThreshold` failures in a
        row the container is stopped (SIGTERM, then SIGKILL after the pod's
        grace) and restarted in the same pod."""
        container = pod.obj["spec"]["containers"][0]
        if pod.proc.poll() is not None or pod.stopping:
            pod.ready = False
            return
        now = time.monotonic()
        readiness = container.get("readinessProbe")
        if readiness is None:
            pod.ready = True
        elif now >= pod.next_probe and "readiness" not in pod.probing:
            # Until the first success, look often: that is when a pod
            # becomes ready, and only start-up time is at stake.
            pod.next_probe = now + (readiness.get("periodSeconds", 10) if pod.ready else 0.5)
            self.start_probe(pod, "readiness", readiness)
        liveness = container.get("livenessProbe")
        if liveness is not None and now >= pod.next_liveness and "liveness" not in pod.probing:
            pod.next_liveness = now + liveness.get("periodSeconds", 10)
            self.start_probe(pod, "liveness", liveness)

    def start_probe(self, pod, kind, probe):
        proc = pod.proc
        pod.probing.add(kind)

        def run():
            ok = self.check(pod, probe)
            pod.probing.discard(kind)
            if proc is not pod.proc or pod.stopping:
                return  # the container changed meanwhile
            threshold = probe.get("failureThreshold", 3)
            if kind == "readiness":
                pod.probe_failures = 0 if ok else pod.probe_failures + 1
                if ok:
                    pod.ready = True
                elif pod.probe_failures >= threshold:
                    pod.ready = False
                return
            pod.liveness_failures = 0 if ok else pod.liveness_failures + 1
            if pod.liveness_failures >= threshold:
                pod.stopping = True
                pod.ready = False
                self.stop_container(pod, pod.obj["spec"].get("terminationGracePeriodSeconds", 30))
        threading.Thread(target=run, daemon=True).start()

    def check(self, pod, probe):
        """One probe: tcpSocket (the port accepts) or httpGet (a status
        from 200 to 399), each within `timeoutSeconds`."""
        container = pod.obj["spec"]["containers"][0]
        timeout = probe.get("timeoutSeconds", 1)

        def port(p):
            named = {c.get("name"): c["containerPort"] for c in container.get("ports", [])}
            return int(named.get(p, p))
        if "tcpSocket" in probe:
            try:
                with socket.create_connection((pod.ip, port(probe["tcpSocket"]["port"])), timeout=timeout):
                    return True
            except OSError:
                return False
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://{pod.ip}:{port(get['port'])}{get.get('path', '/')}"
            try:
                with NO_PROXY.open(url, timeout=timeout) as r:
                    return 200 <= r.status < 400
            except (OSError, urllib.error.HTTPError):
                return False
        raise AssertionError(f"the test node runs tcpSocket and httpGet probes, not {probe}")

    def stop_container(self, pod, grace):
        """Stops a container that failed its liveness probe; the sync loop
        then restarts it with the usual back-off."""
        terminate(pod.proc, grace)
        pod.stopping = False

    def delete(self, pod, obj):
        grace = obj["metadata"].get("deletionGracePeriodSeconds", 30)
        self.kill(pod, grace)
        self.finish_delete(obj)

    def finish_delete(self, obj):
        meta = obj["metadata"]
        try:
            self.cp.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", {
                "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta["uid"]},
            })
        except urllib.error.HTTPError as e:
            if e.code not in (404, 409):
                raise

    def kill(self, pod, grace):
        if pod.proc is not None and pod.proc.poll() is None:
            terminate(pod.proc, grace)
        # Deleting threads and the sync loop may both get here.
        if self.pods.pop(pod.uid, None) is not None:
            self.net.remove(pod.netns)

    def write_dns(self, listed):
        lines = []
        by_uid = {o["metadata"]["uid"]: o for o in listed}
        for uid, pod in list(self.pods.items()):
            obj = by_uid.get(uid)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                continue
            meta, spec = obj["metadata"], obj["spec"]
            if spec.get("subdomain"):
                base = f"{spec.get('hostname', meta['name'])}.{spec['subdomain']}.{meta['namespace']}.svc"
                lines.append(f"{pod.ip} {base}.cluster.local {base}")
        lines.sort()
        if lines != getattr(self, "dns", None):
            self.dns = lines
            self.net.write_hosts(lines)

    def client(self):
        """A namespace on the pod network for test clients; returns the
        command prefix that runs a command in it."""
        name = f"kc{self.net.tag}"
        if name not in self.net.links:
            self.net.add(name)
            self.net.write_hosts(getattr(self, "dns", []))
        return ["ip", "netns", "exec", name]

    def running(self, namespace, name):
        for pod in list(self.pods.values()):
            m = pod.obj["metadata"]
            if (m["namespace"], m["name"]) == (namespace, name) and pod.proc.poll() is None:
                return pod
        raise AssertionError(f"no running pod {namespace}/{name}")

    def signal(self, namespace, name, sig):
        """Sends `sig` to the processes of a running pod."""
        os.killpg(self.running(namespace, name).proc.pid, sig)

    def isolate(self, namespace, name):
        """Cuts a running pod off from every other pod (blackhole routes in
        its network namespace) while the node still reaches it, so its
        probes pass. The pod that replaces it is connected again."""
        target = self.running(namespace, name)
        for pod in list(self.pods.values()):
            if pod is not target:
                sh("ip", "netns", "exec", target.netns, "ip", "route", "add", "blackhole", f"{pod.ip}/32")

    def container_log(self, namespace, name):
        for pod in list(self.pods.values()):
            m = pod.obj["metadata"]
            if (m["namespace"], m["name"]) == (namespace, name):
                return "\n".join(p.read_text(errors="replace") for p in sorted(pod.dir.glob("container-*.log")))
        return ""


class NodePort:
    """A listener on the node's IP forwarding connections to the pod its
    Service currently selects."""

    def __init__(self, node, port):
        self.node = node
        self.port = port
        self.sock = socket.create_server((node.net.node_ip, port))
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            target = self.node.routes.get(self.port)
            if target is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection(target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    def close(self):
        self.sock.close()


def pump(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def expand(text, env):
    """Kubernetes' `$(VAR)` expansion."""
    out = text
    for k, v in env.items():
        out = out.replace(f"$({k})", v)
    return out


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

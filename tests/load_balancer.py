"""A load-balancer controller for the test nodes, standing in for a
cloud's: it gives each LoadBalancer Service of its class an address of
the test network and routes that address, on the host, to a node where a
pod of the Service runs, as a BGP or L2 load balancer would. The node's
kube-proxy does the rest as it does for any load balancer: it forwards the
address's Service port to the pods, honouring the Service's
externalTrafficPolicy and loadBalancerSourceRanges. Clients on the host
(outside the cluster) so reach each broker at its own load balancer's
address and port."""

import subprocess
import threading
import urllib.parse

CLASS = "gregor.dev/test-lb"


class LoadBalancers:
    """Watches the Services of `namespace` (polling the API server) from a
    thread of its own until `stop()`."""

    def __init__(self, cp, net, namespace, first=200):
        self.cp = cp
        self.net = net
        self.namespace = namespace
        self.next = first
        self.addresses = {}  # Service name -> its address
        self.routes = {}  # address -> node IP it is routed to
        self.errors = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.wait(1):
            try:
                self.sync()
            except Exception as e:  # noqa: BLE001 - kept for the test to report
                self.errors.append(repr(e))

    def sync(self):
        ns = self.namespace
        services = self.cp.get(f"/api/v1/namespaces/{ns}/services")["items"]
        for svc in services:
            spec, name = svc["spec"], svc["metadata"]["name"]
            if spec.get("type") != "LoadBalancer" or spec.get("loadBalancerClass") != CLASS:
                continue
            if name not in self.addresses:
                self.addresses[name] = f"{self.net.subnet}.{self.next}"
                self.next += 1
            address = self.addresses[name]
            node = self.node_of(spec.get("selector") or {})
            if node is not None and self.routes.get(address) != node:
                subprocess.run(["ip", "route", "replace", f"{address}/32", "via", node], check=True)
                self.routes[address] = node
            ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if [i.get("ip") for i in ingress] != [address]:
                self.cp.request("PATCH", f"/api/v1/namespaces/{ns}/services/{name}/status",
                                {"status": {"loadBalancer": {"ingress": [{"ip": address}]}}},
                                content_type="application/merge-patch+json")

    def node_of(self, selector):
        """The IP of the node of the first scheduled pod `selector`
        picks."""
        query = urllib.parse.urlencode({"labelSelector": ",".join(f"{k}={v}" for k, v in selector.items())})
        pods = self.cp.get(f"/api/v1/namespaces/{self.namespace}/pods?{query}")["items"]
        ips = sorted((p["metadata"]["name"], p["status"]["hostIP"]) for p in pods
                     if (p.get("status") or {}).get("hostIP"))
        return ips[0][1] if ips else None

    def stop(self):
        self.done.set()
        self.thread.join(timeout=10)

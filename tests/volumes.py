"""A storage provisioner for the test nodes that can grow its volumes,
standing in for a cloud's disks (or a CSI driver) the way load_balancer.py
stands in for a cloud's load balancers. Its StorageClass allows volume
expansion; the Kubernetes parts do what they do with any external
provisioner and resizer: the scheduler picks a node for a pod's unbound
claim and names it on the claim, this controller makes a local volume (a
directory) on that node sized as asked, and the PersistentVolume
controller binds the two. When a claim asks for more, the API server lets
it (the class allows expansion) and the controller manager leaves the
volume to the external resizer, which this is: it grows the volume and
reports the claim's new capacity, as a resizer does for a volume that
needs nothing done on the node. Released volumes are deleted."""

import json
import re
import shutil
import threading
import urllib.parse

CLASS = "expandable"
PROVISIONER = "gregor.test/local-volumes"
SELECTED_NODE = "volume.kubernetes.io/selected-node"

UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
         "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def quantity_bytes(q):
    """Bytes of a Kubernetes quantity such as `1Gi` or `500M`."""
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", q).groups()
    return int(float(number) * UNITS[unit])


def storage_class():
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": CLASS}, "provisioner": PROVISIONER,
            "allowVolumeExpansion": True, "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete"}


class GrowingVolumes:
    """Provisions and grows the volumes of class CLASS on the nodes of
    `cluster` (node.py), polling the API server from a thread of its own
    until `stop()`."""

    def __init__(self, cp, cluster):
        self.cp = cp
        self.nodes = {n.name: n for n in cluster.nodes}
        self.errors = []
        self.grown = []  # (claim, size) in the order they were grown
        cp.kubectl("apply", "-f", "-", input=json.dumps(storage_class()))
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.wait(0.5):
            try:
                self.sync()
            except Exception as e:  # noqa: BLE001 - kept for the test to report
                self.errors.append(repr(e))

    def sync(self):
        volumes = {pv["metadata"]["name"]: pv for pv in self.cp.get("/api/v1/persistentvolumes")["items"]
                   if pv["spec"].get("storageClassName") == CLASS}
        for claim in self.cp.get("/api/v1/persistentvolumeclaims")["items"]:
            if claim["spec"].get("storageClassName") != CLASS:
                continue
            name = f"pvc-{claim['metadata']['uid']}"
            if name not in volumes:
                self.provision(claim, name)
            elif claim["spec"].get("volumeName") == name:
                self.grow(claim, volumes[name])
        for name, pv in volumes.items():
            if pv.get("status", {}).get("phase") == "Released":
                self.cp.request("DELETE", f"/api/v1/persistentvolumes/{name}")
                shutil.rmtree(pv["spec"]["local"]["path"], ignore_errors=True)

    def provision(self, claim, name):
        """A volume for `claim` on the node the scheduler chose for it."""
        node = self.nodes.get(claim["metadata"].get("annotations", {}).get(SELECTED_NODE))
        if node is None:
            return
        path = node.dir / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        meta = claim["metadata"]
        self.cp.request("POST", "/api/v1/persistentvolumes", {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
                "accessModes": claim["spec"]["accessModes"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": CLASS,
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                             "name": meta["name"], "uid": meta["uid"]},
                "local": {"path": str(path)},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node.name]}]}]}},
            },
        })

    def grow(self, claim, pv):
        """The volume and the claim's capacity grown to what it asks."""
        asked = claim["spec"]["resources"]["requests"]["storage"]
        capacity = (claim.get("status") or {}).get("capacity", {}).get("storage")
        if capacity is None or quantity_bytes(capacity) >= quantity_bytes(asked):
            return
        self.cp.request("PATCH", f"/api/v1/persistentvolumes/{pv['metadata']['name']}",
                        {"spec": {"capacity": {"storage": asked}}},
                        content_type="application/merge-patch+json")
        meta = claim["metadata"]
        self.cp.request("PATCH", f"/api/v1/namespaces/{meta['namespace']}/persistentvolumeclaims/"
                        f"{urllib.parse.quote(meta['name'])}/status",
                        {"status": {"capacity": {"storage": asked}}},
                        content_type="application/merge-patch+json")
        self.grown.append((meta["name"], asked))

    def stop(self):
        self.done.set()
        self.thread.join(timeout=10)

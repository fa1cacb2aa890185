"""Pod Security admission checks against a real API server: a namespace
that enforces a Pod Security level, and server-side dry runs of pods made
from the pod templates of Deployments and StatefulSets (workload objects
are only warned about; admission is enforced on pods)."""

import copy
import json


def enforcing_namespace(cp, name, level="restricted"):
    """Creates namespace `name`, enforcing Pod Security `level` at the
    API server's own version of it on pods, and warning about workload
    objects whose pod template falls short of it."""
    cp.kubectl("create", "namespace", name)
    cp.kubectl("label", "namespace", name,
               f"pod-security.kubernetes.io/enforce={level}",
               "pod-security.kubernetes.io/enforce-version=latest",
               f"pod-security.kubernetes.io/warn={level}",
               "pod-security.kubernetes.io/warn-version=latest")


def pod_from(workload, name):
    """The pod a Deployment's or StatefulSet's controller would make from
    its template; a StatefulSet's claim templates become the volumes the
    pod mounts, as the StatefulSet controller names them."""
    spec = copy.deepcopy(workload["spec"]["template"]["spec"])
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        claim_name = claim["metadata"]["name"]
        spec.setdefault("volumes", []).append(
            {"name": claim_name, "persistentVolumeClaim": {"claimName": f"{claim_name}-{name}"}})
    labels = workload["spec"]["template"].get("metadata", {}).get("labels", {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": spec}


def dry_run_create(cp, namespace, obj):
    """`kubectl create --dry-run=server` of `obj` in `namespace`: the
    completed process (returncode 0 when admitted; stderr says why not).
    Nothing is stored, so the same object can be tried again."""
    return cp.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-",
                      input=json.dumps(obj), check=False)

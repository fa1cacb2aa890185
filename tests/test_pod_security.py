"""Pod Security "restricted" by default, judged by a real kube-apiserver
(with etcd and kube-controller-manager, built from their Go modules; no
node is needed): the operator's pod as the Helm chart renders it and the
broker pods of the StatefulSet the operator writes are admitted to a
namespace that enforces "restricted", and pods weakened by one setting are
not. The pull settings and security contexts a user sets reach the pods
and replace the defaults. The chart renders offline (`helm template` with
no cluster and no --kube-version) and installs against the live API
server."""

import copy
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, free_port
from kube import KUBE_BIN, ControlPlane, stop
from podsecurity import dry_run_create, enforcing_namespace, pod_from

OPERATOR_BIN = Path(os.environ.get("TEST_OPERATOR_BIN", ROOT / "target" / "release" / "gregor-operator"))
CHART = ROOT / "charts" / "gregor-operator"
NS = "restricted"
REJECTED = 'violates PodSecurity "restricted:latest"'

# Security contexts as OpenShift wants them: no user, group or fsGroup (the
# platform assigns them from the namespace's range), still "restricted".
OPENSHIFT_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
MINIMAL_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


@pytest.fixture(scope="module")
def cp(tmp_path_factory):
    work = tmp_path_factory.mktemp("pod-security")
    cp = ControlPlane(work, "127.0.0.1", (free_port(), free_port(), free_port()))
    try:
        cp.start()
        cp.kubectl("apply", "--server-side", "-f", ROOT / "crds")
        enforcing_namespace(cp, NS)
        # Pods without a service account of their own run as the
        # namespace's default one, which the controller manager creates.
        cp.wait(lambda: cp.get(f"/api/v1/namespaces/{NS}/serviceaccounts/default"), 60,
                f"the default service account of {NS}")
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def operator(cp):
    """The operator binary, run against the control plane with the admin's
    credentials, watching the restricted namespace; returns its log."""
    path = cp.dir / "gregor-operator.log"
    log = open(path, "w")
    proc = subprocess.Popen([str(OPERATOR_BIN), "--namespace", NS, "--http-address", "127.0.0.1:0"],
                            env={**os.environ, "KUBECONFIG": str(cp.kubeconfig), "RUST_LOG": "info"},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield lambda: path.read_text(errors="replace")[-5000:]
    finally:
        stop(proc)
        log.close()


def wait_for(what, check, explain, timeout=120):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}\n{explain()}")


def helm_offline(cp, *args):
    """The output of helm with no cluster to talk to: a kubeconfig that
    does not exist, helm homes of its own."""
    home = cp.dir / "helm-offline"
    env = {**os.environ, "KUBECONFIG": str(home / "no-kubeconfig"), "HELM_CACHE_HOME": str(home),
           "HELM_CONFIG_HOME": str(home), "HELM_DATA_HOME": str(home)}
    proc = subprocess.run([str(KUBE_BIN / "helm"), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"helm {args} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def rendered(cp, kind, *values):
    """The chart's object of `kind`, rendered offline for namespace NS with
    `values` (--set and -f arguments)."""
    text = helm_offline(cp, "template", "gregor", CHART, "--namespace", NS, *values)
    (obj,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == kind]
    return obj


def events(cp):
    return cp.kubectl("get", "events", "-n", NS, "-o",
                      "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message").stdout


def changed(pod, change, *path):
    """A copy of `pod` with the field at `path` (inside its spec; an int
    picks a list item) removed (`change` None) or set to `change`."""
    pod = copy.deepcopy(pod)
    node = pod["spec"]
    for key in path[:-1]:
        node = node[key]
    if change is None:
        del node[path[-1]]
    else:
        node[path[-1]] = change
    return pod


def assert_admitted(cp, pod):
    proc = dry_run_create(cp, NS, pod)
    assert proc.returncode == 0, f"pod {pod['metadata']['name']} refused:\n{proc.stderr}"


def assert_rejected(cp, pod, why):
    proc = dry_run_create(cp, NS, pod)
    assert proc.returncode != 0 and REJECTED in proc.stderr and why in proc.stderr, \
        f"pod {pod['metadata']['name']} should be refused for {why!r}:\n{proc.stdout}{proc.stderr}"


def test_the_chart_renders_offline_and_installs_against_the_live_api_server(cp):
    # No cluster and no --kube-version: helm renders against a version of
    # its own, which the chart does not refuse; what it renders is
    # accepted as it is (helm template | kubectl apply, GitOps tools), with
    # no Pod Security warning about the Deployment.
    text = helm_offline(cp, "template", "gregor", CHART, "--namespace", NS)
    assert sorted(d["kind"] for d in yaml.safe_load_all(text) if d) == [
        "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding",
        "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "ServiceAccount"], text
    applied = cp.kubectl("apply", "--dry-run=server", "-f", "-", input=text)
    assert "deployment.apps/gregor created (server dry run)" in applied.stdout, applied.stdout
    assert "PodSecurity" not in applied.stderr, applied.stderr
    # Against the live API server the chart checks its version (1.34 here,
    # at least 1.30 needed): a server-side dry run, then the install itself,
    # into the namespace that enforces "restricted", where the ReplicaSet
    # controller can only make the operator's pod if admission lets it in.
    cp.helm("install", "gregor", CHART, "--namespace", NS, "--dry-run=server")
    cp.helm("install", "gregor", CHART, "--namespace", NS)
    wait_for("the operator's pod to be created", lambda: cp.kubectl(
        "get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=gregor-operator", "-o", "name").stdout,
        lambda: events(cp))


def test_the_chart_refuses_a_live_cluster_older_than_it_needs(cp, tmp_path):
    """The version check against a live API server, with the minimum of a
    copy of the chart raised above this server's 1.34: helm refuses to
    install (nothing is created), names both versions, and the same copy
    still renders offline."""
    chart = tmp_path / "gregor-operator"
    shutil.copytree(CHART, chart)
    check = chart / "templates" / "kube-version.yaml"
    text = check.read_text()
    assert text.count('"<1.30.0-0"') == 1, text
    check.write_text(text.replace('"<1.30.0-0"', '"<1.35.0-0"')
                     .replace("needs Kubernetes 1.30 or later", "needs Kubernetes 1.35 or later"))
    refused = cp.helm("install", "too-old", chart, "--namespace", "default", check=False)
    assert refused.returncode != 0, refused.stdout
    assert "gregor-operator needs Kubernetes 1.35 or later; this cluster runs v1.34.4" in refused.stderr, \
        refused.stderr
    assert "too-old" not in cp.helm("list", "--all-namespaces", "-q").stdout
    assert cp.kubectl("get", "deployment", "too-old", "-n", "default", check=False).returncode != 0
    assert "kind: Deployment" in helm_offline(cp, "template", "too-old", chart)


def test_the_operator_pod_meets_restricted_by_default_and_as_overridden(cp):
    # The pod runs as the chart's service account, which must exist.
    cp.kubectl("apply", "-n", NS, "-f", "-", input=json.dumps(rendered(cp, "ServiceAccount")))
    default = pod_from(rendered(cp, "Deployment"), "dry-run-operator")
    assert_admitted(cp, default)
    assert_rejected(cp, changed(default, None, "securityContext", "seccompProfile"), "seccompProfile")
    assert_rejected(cp, changed(default, None, "containers", 0, "securityContext", "capabilities"),
                    "unrestricted capabilities")
    assert "imagePullSecrets" not in default["spec"]
    assert default["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"

    # Values replace the defaults whole: no user is left behind for
    # OpenShift to object to, and no read-only root is added back.
    values = cp.dir / "values.yaml"
    values.write_text(json.dumps({
        "imagePullSecrets": [{"name": "registry"}],
        "image": {"pullPolicy": "Always"},
        "podSecurityContext": OPENSHIFT_POD,
        "securityContext": MINIMAL_CONTAINER,
    }))
    custom = pod_from(rendered(cp, "Deployment", "-f", values), "dry-run-custom-operator")
    assert custom["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    container = custom["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    assert custom["spec"]["securityContext"] == OPENSHIFT_POD
    assert container["securityContext"] == MINIMAL_CONTAINER
    assert_admitted(cp, custom)


def test_broker_pods_meet_restricted(cp, operator):
    cp.kubectl("apply", "-n", NS, "-f", ROOT / "examples" / "kafka-cluster.yaml")
    sts = wait_for("the operator's StatefulSet", lambda: cp.get(
        f"/apis/apps/v1/namespaces/{NS}/statefulsets/demo-broker"), operator)
    pod = pod_from(sts, "dry-run-broker")
    assert_admitted(cp, pod)
    # Each default is needed: without it the pod is refused.
    for change, path, why in [
        (None, ("securityContext", "seccompProfile"), "seccompProfile"),
        (None, ("containers", 0, "securityContext", "capabilities"), "unrestricted capabilities"),
        (True, ("containers", 0, "securityContext", "allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    ]:
        assert_rejected(cp, changed(pod, change, *path), why)
    no_non_root = changed(changed(pod, None, "securityContext", "runAsNonRoot"),
                          None, "containers", 0, "securityContext", "runAsNonRoot")
    assert_rejected(cp, no_non_root, "runAsNonRoot")
    # The StatefulSet controller makes every broker pod: admission let
    # them in (they stay pending: there is no node).
    wait_for("the broker pods to be created", lambda: len(cp.kubectl(
        "get", "pods", "-n", NS, "-l", "gregor.dev/cluster=demo", "-o", "name").stdout.split()) == 3,
        lambda: events(cp))


def test_broker_pull_settings_and_security_contexts_as_the_user_sets_them(cp, operator):
    template = {
        "imagePullSecrets": [{"name": "registry"}],
        "imagePullPolicy": "Always",
        "securityContext": OPENSHIFT_POD,
        "containerSecurityContext": MINIMAL_CONTAINER,
    }
    cluster = {"apiVersion": "gregor.dev/v1alpha1", "kind": "KafkaCluster",
               "metadata": {"name": "custom", "namespace": NS},
               "spec": {"replicas": 1, "storage": {"type": "ephemeral", "size": "1Gi"},
                        "listeners": [{"name": "plain", "port": 9092, "type": "internal"}],
                        "template": template}}
    cp.kubectl("apply", "-f", "-", input=json.dumps(cluster))
    sts = wait_for("the operator's StatefulSet", lambda: cp.get(
        f"/apis/apps/v1/namespaces/{NS}/statefulsets/custom-broker"), operator)
    spec = sts["spec"]["template"]["spec"]
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["containers"][0]["imagePullPolicy"] == "Always"
    # Replaced, not merged: no user, group or fsGroup, and no read-only
    # root file system, since the user's contexts have none.
    assert spec["securityContext"] == OPENSHIFT_POD
    assert spec["containers"][0]["securityContext"] == MINIMAL_CONTAINER
    assert_admitted(cp, pod_from(sts, "dry-run-custom-broker"))

    # A manifest setting another pull policy is refused by the schema.
    cluster["spec"]["template"]["imagePullPolicy"] = "Sometimes"
    proc = cp.kubectl("apply", "-f", "-", input=json.dumps(cluster), check=False)
    assert proc.returncode != 0 and "spec.template.imagePullPolicy" in proc.stderr, proc.stderr

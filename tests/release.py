"""What a release publishes, as the tests see it: the crates' version and
the images image/build makes by default, which carry the release's names
(ghcr.io/gregor-dev/gregor:<version>, .../gregor-operator:<version>;
tests/test_release.py checks that the chart, the operator and the release
workflow name the same). tests/run builds them before the tests, so a test
node's container runtime can import them under exactly these names, e.g.
`podman save -m -o images.tar BROKER_IMAGE OPERATOR_IMAGE` then
`ctr -n k8s.io images import images.tar`. And the release before this one,
which the operator tests upgrade from."""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def crate_versions():
    """{crate name: version} of every crate of the workspace."""
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return {p["name"]: p["version"] for p in json.loads(out)["packages"]}


def default_images():
    """{image name: reference} that `image/build` (no arguments) builds,
    e.g. {"gregor": "ghcr.io/gregor-dev/gregor:0.1.0", ...}."""
    out = subprocess.run([ROOT / "image" / "build", "--dry-run"], check=True, capture_output=True,
                         text=True).stdout
    return {ref.rsplit("/", 1)[1].split(":")[0]: ref for ref in out.split()}


VERSION = crate_versions()["gregor-operator"]
IMAGES = default_images()
BROKER_IMAGE = IMAGES["gregor"]
OPERATOR_IMAGE = IMAGES["gregor-operator"]


def previous_release():
    """The release the operator tests upgrade from (tests/upgrade-from),
    built by tests/previous-release (cached): its operator image's name
    in podman's store, and the folder holding its chart
    (charts/gregor-operator, with its crds/) and example cluster
    (examples/kafka-cluster.yaml)."""
    proc = subprocess.run([ROOT / "tests" / "previous-release"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"tests/previous-release exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    image, tree = proc.stdout.split()
    return image, Path(tree)

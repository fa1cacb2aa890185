"""A release publishes what everything else names: the images and the chart
the release workflow pushes are the ones the chart's values, the
operator's defaults, image/build and the docs name, tagged with the one
version the crates and the chart carry. The workflow itself passes
actionlint (with shellcheck on its scripts), since it only runs on GitHub."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from conftest import ROOT
from release import IMAGES, VERSION, crate_versions

CHART = ROOT / "charts" / "gregor-operator"
WORKFLOWS = ROOT / ".github" / "workflows"
OPERATOR_BIN = Path(os.environ.get("TEST_OPERATOR_BIN", ROOT / "target" / "release" / "gregor-operator"))
ACTIONLINT = ROOT / ".cache" / "actionlint" / "actionlint"


def load(path):
    return yaml.safe_load(path.read_text())


def operator_defaults():
    """{long option: default} from `gregor-operator --help`."""
    help_text = subprocess.run([OPERATOR_BIN, "--help"], check=True, capture_output=True,
                               text=True).stdout
    # An option's line, then its description (wrapped or not) up to its default.
    found = re.findall(r"--([a-z-]+)[^\n]*(?:\n(?!\s*-)[^\n]*)*?\[default: ([^\]]*)\]", help_text)
    return dict(found)


def release_workflow():
    return load(WORKFLOWS / "release.yml")


def test_crates_chart_and_images_carry_one_version():
    assert set(crate_versions().values()) == {VERSION}
    chart = load(CHART / "Chart.yaml")
    assert chart["version"] == VERSION
    assert chart["appVersion"] == VERSION
    # The chart's image tags default to its appVersion.
    values = load(CHART / "values.yaml")
    assert values["image"]["tag"] == ""
    assert values["brokerImage"]["defaultVersion"] == ""
    assert operator_defaults()["default-version"] == VERSION
    assert {ref.rsplit(":", 1)[1] for ref in IMAGES.values()} == {VERSION}


def test_the_release_publishes_the_images_the_chart_and_the_operator_name():
    workflow = release_workflow()
    registry = workflow["env"]["REGISTRY"]
    # PyYAML reads the key `on` as True.
    assert workflow[True]["push"]["tags"] == ["v*"]
    images = workflow["jobs"]["images"]
    assert images["strategy"]["matrix"]["image"] == ["gregor", "gregor-operator"]
    push = images["steps"][-1]["run"]
    assert '--platform linux/amd64,linux/arm64' in push
    assert '--tag "$REGISTRY/$IMAGE:$VERSION" --push' in push
    assert 'oci://$REGISTRY/charts"' in workflow["jobs"]["chart"]["steps"][-1]["run"]

    values = load(CHART / "values.yaml")
    assert values["image"]["repository"] == f"{registry}/gregor-operator"
    assert values["brokerImage"]["repository"] == f"{registry}/gregor"
    assert operator_defaults()["image-repository"] == f"{registry}/gregor"
    assert IMAGES == {"gregor": f"{registry}/gregor:{VERSION}",
                      "gregor-operator": f"{registry}/gregor-operator:{VERSION}"}


def test_docs_and_examples_name_this_version():
    registry = release_workflow()["env"]["REGISTRY"]
    files = [ROOT / "README.md", *sorted((ROOT / "examples").iterdir())]
    # Concrete tags only (not a placeholder such as X.Y.Z).
    named = {(path.name, m.group(0))
             for path in files
             for m in re.finditer(rf"{re.escape(registry)}/gregor(?:-operator)?:\d[\w.-]*", path.read_text())}
    assert named, "the README names the release's images"
    assert {ref for _, ref in named} <= set(IMAGES.values()), named
    readme = (ROOT / "README.md").read_text()
    assert f"oci://{registry}/charts/gregor-operator" in readme


def test_the_workflows_pass_actionlint():
    # Without shellcheck actionlint silently skips the `run:` scripts.
    assert shutil.which("shellcheck"), "shellcheck is not installed (.ci/install installs it)"
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert workflows
    lint = subprocess.run([ACTIONLINT, "-no-color", *workflows], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr

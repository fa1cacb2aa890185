"""What every benchmark report starts with (versions, time, machine, the
command that made it) and where it is written: bench/results/<name>.md and
<name>.json."""

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

from cluster import ROOT

from conftest import KAFKA_VERSION

RESULTS = ROOT / "bench" / "results"


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Linux {platform.release()}"


def header(command, note=""):
    """The report's first lines: what was compared, when, where and how
    (`note`: a caveat on the title line)."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    return (f"Gregor {commit} vs Apache Kafka {KAFKA_VERSION}, {when}"
            f"{f' ({note})' if note else ''}\n\n"
            f"Machine: {machine()}\n\nCommand: `{command}`\n\n")


def write(name, markdown, data):
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(markdown)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")

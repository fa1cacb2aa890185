"""What every benchmark report starts with (versions, time, machine, the
command that made it), how repeated runs are summed up (median, range,
ratio), and where it is written: bench/results/<name>.md and <name>.json."""

import datetime
import json
import os
import platform
import statistics
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


def spread(values):
    """Median (min-max) of the runs; "never" counts the runs in which the
    event did not happen (None)."""
    done = [v for v in values if v is not None]
    never = len(values) - len(done)
    if not done:
        return "never"
    fmt = (lambda v: f"{v:,}") if all(isinstance(v, int) for v in done) else (lambda v: f"{v:,.2f}")
    cell = fmt(statistics.median(done))
    if len(done) > 1:
        cell += f" ({fmt(min(done))}-{fmt(max(done))})"
    return cell + (f", never in {never} of {len(values)}" if never else "")


def median(values):
    done = [v for v in values if v is not None]
    return statistics.median(done) if done else None


def compare(gregor, kafka, higher_is_better=False):
    """Gregor / Kafka of the medians, and which is better; an event that
    never happened is worse than one that did, and when the runs' ranges
    overlap that is said too."""
    g, k = median(gregor), median(kafka)
    if g is None or k is None:
        return "-", "-" if g is k else "Gregor" if k is None else "Kafka"
    ratio = f"{g / k:.2f}" if k else "-"
    gregor_wins = g > k if higher_is_better else g < k
    better = "same" if g == k else "Gregor" if gregor_wins else "Kafka"
    ranges = [[v for v in values if v is not None] for values in (gregor, kafka)]
    if better != "same" and min(map(len, ranges)) > 1 and \
            max(map(min, ranges)) <= min(map(max, ranges)):
        better += " (ranges overlap)"
    return ratio, better

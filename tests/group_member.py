"""A consumer-group member run as its own process, so tests can kill -9 it.

Usage: group_member.py BOOTSTRAP GROUP TOPIC EVENTS_FILE STOP_FILE [key=value ...]

Writes one JSON line per event to EVENTS_FILE: its assignment after every
rebalance ("assigned", with the full current set), and every record it
reads ("record"). It commits each record before reading the next (a commit
that fails, as while the coordinator moves, is written down as
"commit-failed" and the member reads on), and closes cleanly (leaving the
group) when STOP_FILE appears.

Tests drive it through `Member`.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException


class Member:
    """One group_member.py process and what it wrote down."""

    def __init__(self, bootstrap, group, topic, workdir, name, **conf):
        self.events_path = Path(workdir) / f"{name}.events"
        self.stop_path = Path(workdir) / f"{name}.stop"
        extra = [f"{k.replace('_', '.')}={v}" for k, v in conf.items()]
        self.proc = subprocess.Popen([sys.executable, __file__, bootstrap, group, topic,
                                      str(self.events_path), str(self.stop_path), *extra])

    def events(self, kind=None):
        if not self.events_path.exists():
            return []
        out = [json.loads(line) for line in self.events_path.read_text().splitlines() if line.endswith("}")]
        return [e for e in out if kind is None or e["event"] == kind]

    def owned(self):
        assigned = [e for e in self.events() if e["event"] in ("assigned", "revoked")]
        if not assigned:
            return set()
        last = assigned[-1]
        return set(last["partitions"] if last["event"] == "assigned" else last["kept"])

    def records(self):
        return {(e["partition"], e["offset"]): e["value"] for e in self.events("record")}

    def stop(self):
        self.stop_path.touch()
        self.proc.wait(timeout=30)

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def main():
    bootstrap, group, topic, events_path, stop_path, *extra = sys.argv[1:]
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    conf.update(kv.split("=", 1) for kv in extra)
    if conf.get("group.protocol") == "consumer":
        # The broker sets sessions and heartbeats in this protocol.
        del conf["session.timeout.ms"], conf["heartbeat.interval.ms"]
    events = open(events_path, "a", buffering=1)
    owned = set()
    # Assignments change a partition at a time with the cooperative
    # assignor and with the consumer group protocol (KIP-848).
    incremental = (conf.get("partition.assignment.strategy") == "cooperative-sticky"
                   or conf.get("group.protocol") == "consumer")

    def emit(kind, **fields):
        events.write(json.dumps({"event": kind, "t": time.time(), **fields}) + "\n")

    def on_assign(consumer, partitions):
        if incremental:
            consumer.incremental_assign(partitions)
            owned.update(p.partition for p in partitions)
        else:
            owned.clear()
            owned.update(p.partition for p in partitions)
        emit("assigned", partitions=sorted(owned), added=sorted(p.partition for p in partitions))

    def on_revoke(consumer, partitions):
        if incremental:
            consumer.incremental_unassign(partitions)
        owned.difference_update(p.partition for p in partitions)
        emit("revoked", partitions=sorted(p.partition for p in partitions), kept=sorted(owned))

    consumer = Consumer(conf)
    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    emit("started", pid=os.getpid())
    while not os.path.exists(stop_path):
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        emit("record", partition=msg.partition(), offset=msg.offset(), value=msg.value().decode())
        try:
            consumer.commit(message=msg, asynchronous=False)
        except KafkaException as e:
            emit("commit-failed", partition=msg.partition(), offset=msg.offset(), error=str(e.args[0]))
    consumer.close()
    emit("closed")


if __name__ == "__main__":
    main()

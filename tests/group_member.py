"""A consumer-group member run as its own process, so tests can kill -9 it.

Usage: group_member.py BOOTSTRAP GROUP TOPIC EVENTS_FILE STOP_FILE [key=value ...]

Writes one JSON line per event to EVENTS_FILE: its assignment after every
rebalance ("assigned", with the full current set), and every record it
reads ("record"). It commits each record before reading the next, and
closes cleanly (leaving the group) when STOP_FILE appears.
"""

import json
import os
import sys
import time

from confluent_kafka import Consumer


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
    events = open(events_path, "a", buffering=1)
    owned = set()

    def emit(kind, **fields):
        events.write(json.dumps({"event": kind, "t": time.time(), **fields}) + "\n")

    def on_assign(consumer, partitions):
        if conf.get("partition.assignment.strategy") == "cooperative-sticky":
            consumer.incremental_assign(partitions)
            owned.update(p.partition for p in partitions)
        else:
            owned.clear()
            owned.update(p.partition for p in partitions)
        emit("assigned", partitions=sorted(owned), added=sorted(p.partition for p in partitions))

    def on_revoke(consumer, partitions):
        if conf.get("partition.assignment.strategy") == "cooperative-sticky":
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
        consumer.commit(message=msg, asynchronous=False)
    consumer.close()
    emit("closed")


if __name__ == "__main__":
    main()

"""Just enough of the Kafka wire format, by hand, to send requests real
clients never would: malformed, truncated, oversized, corrupt."""

import socket
import struct
import time

from kafka.record.memory_records import MemoryRecordsBuilder

# Record timestamps of the tests: an hour ago, on a whole minute. Records
# older than retention.ms (seven days by default) may be deleted by the
# broker's retention check at any moment, on Gregor as on Kafka.
RECENT_TS = (int(time.time()) // 60 - 60) * 60_000


def string(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def header(api_key, version, correlation_id=1, client_id="wire-test"):
    """Request header v1 (non-flexible)."""
    return struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def batch(values, magic=2):
    builder = MemoryRecordsBuilder(magic=magic, compression_type=0, batch_size=1 << 20)
    for i, v in enumerate(values):
        builder.append(timestamp=RECENT_TS + i, key=None, value=v)
    builder.close()
    return bytes(builder.buffer())


NOT_LEADER_OR_FOLLOWER = 6


def produce_v3(topic, partition, records, acks=-1, correlation_id=1, timeout_ms=10000):
    body = string(None) + struct.pack(">hi", acks, timeout_ms)
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition) + struct.pack(">i", len(records)) + records
    return frame(header(0, 3, correlation_id) + body)


def fetch_v4(topic, offsets, max_wait_ms, min_bytes, max_bytes=1 << 20, partition_max_bytes=1 << 20):
    """Fetch v4 of one topic from `offsets` ({partition: offset})."""
    body = struct.pack(">iiiib", -1, max_wait_ms, min_bytes, max_bytes, 0)
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", len(offsets))
    for p, o in offsets.items():
        body += struct.pack(">iqi", p, o, partition_max_bytes)
    return frame(header(1, 4) + body)


def fetch_v7(topic, offsets, session_id, epoch, forgotten=(), max_wait_ms=0):
    """Fetch v7 (KIP-227 sessions) of one topic from `offsets`
    ({partition: offset}), forgetting the partitions `forgotten`."""
    body = struct.pack(">iiiibii", -1, max_wait_ms, 0, 1 << 20, 0, session_id, epoch)
    body += struct.pack(">i", 1 if offsets else 0)
    if offsets:
        body += string(topic) + struct.pack(">i", len(offsets))
        for p, o in offsets.items():
            body += struct.pack(">iqqi", p, o, -1, 1 << 20)
    body += struct.pack(">i", 1 if forgotten else 0)
    if forgotten:
        body += string(topic) + struct.pack(">i", len(forgotten))
        body += b"".join(struct.pack(">i", p) for p in forgotten)
    return frame(header(1, 7) + body)


def fetch_v7_result(response):
    """(error_code, session_id, {partition: (error_code, high_watermark,
    records)}) of a Fetch v7 response."""
    r = Reader(response, 8)  # after the correlation id and throttle time
    error, session_id = r.take(">hi")
    out = {}
    for _ in range(r.take(">i")):
        r.string()
        for _ in range(r.take(">i")):
            partition, p_error, high_watermark, _lso, _log_start = r.take(">ihqqq")
            aborted = r.take(">i")
            r.pos += max(aborted, 0) * 16
            out[partition] = (p_error, high_watermark, r.bytes() or b"")
    return error, session_id, out


class Connection:
    def __init__(self, bootstrap, timeout=10):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by broker")
            out += chunk
        return out

    def response(self):
        """The next response frame (without its size), or ConnectionError."""
        (size,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(size)

    def closed_by_peer(self, timeout=10):
        """True when the broker closes the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class Reader:
    """Reads big-endian fields off a response body."""

    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def uvarint(self):
        value, shift = 0, 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7

    def compact_string(self):
        n = self.uvarint() - 1
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()

    def bytes(self):
        n = self.take(">i")
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b


def offset_for_leader_epoch_v3(topic, partition, leader_epoch, current_leader_epoch=-1):
    """OffsetForLeaderEpoch v3, as a consumer sends it (replica id -1)."""
    body = struct.pack(">i", -1) + struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", 1) + struct.pack(">iii", partition, current_leader_epoch, leader_epoch)
    return frame(header(23, 3) + body)


def offset_for_leader_epoch_v3_result(response):
    """(error_code, leader_epoch, end_offset) of the single partition."""
    r = Reader(response, 8)  # after the correlation id and throttle time
    assert r.take(">i") == 1
    r.string()
    assert r.take(">i") == 1
    error, _, epoch, end_offset = r.take(">hiiq")
    return error, epoch, end_offset


def produce_v3_error(response):
    """(error_code, base_offset) of the single partition in a Produce v3 response."""
    r = Reader(response, 4)  # after the correlation id
    assert r.take(">i") == 1
    r.string()
    assert r.take(">i") == 1
    _, error, base_offset = r.take(">ihq")
    return error, base_offset


def uvarint(n):
    """An unsigned varint of flexible versions."""
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def compact_string(s):
    """A COMPACT_NULLABLE_STRING of flexible versions (under 127 bytes)."""
    if s is None:
        return b"\0"
    b = s.encode()
    assert len(b) < 127
    return bytes([len(b) + 1]) + b



def produce_v10(topic, partition, records, acks=-1, timeout_ms=10000):
    """Produce v10 (flexible, KIP-951's version) of one batch."""
    data = struct.pack(">i", partition) + uvarint(len(records) + 1) + records + b"\0"
    body = compact_string(None) + struct.pack(">hi", acks, timeout_ms)
    body += b"\x02" + compact_string(topic) + b"\x02" + data + b"\0" + b"\0"
    return frame(header(0, 10) + b"\0" + body)  # flexible header: no tags


def produce_v10_result(response):
    """The single partition's (error_code, current leader (id, epoch) or
    None) of a Produce v10 answer, and its node endpoints as {node id:
    (host, port)}."""
    r = Reader(response, 4)
    r.tagged_fields()
    assert r.uvarint() == 2
    r.compact_string()
    assert r.uvarint() == 2
    _, error = r.take(">ih")
    r.take(">qqq")  # base offset, log append time, log start offset
    for _ in range(r.uvarint() - 1):  # record errors
        r.take(">i")
        r.compact_string()
        r.tagged_fields()
    r.compact_string()  # error message
    leader = None
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        if tag == 0:
            leader = r.take(">ii")
            r.tagged_fields()
        else:
            r.pos += size
    r.tagged_fields()  # the topic's
    r.take(">i")  # throttle time
    endpoints = {}
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        if tag != 0:
            r.pos += size
            continue
        for _ in range(r.uvarint() - 1):
            node = r.take(">i")
            host = r.compact_string()
            port = r.take(">i")
            r.compact_string()  # rack
            r.tagged_fields()
            endpoints[node] = (host, port)
    return error, leader, endpoints

def write_txn_markers(producer_id, epoch, commit, topic, partition=0, coordinator_epoch=0, version=1,
                      transaction_version=0):
    """WriteTxnMarkers (flexible, v1 or v2) of one marker on one partition;
    v2 carries the marker's transaction version (KIP-1228)."""
    marker = struct.pack(">qhb", producer_id, epoch, 1 if commit else 0)
    marker += b"\x02" + compact_string(topic) + b"\x02" + struct.pack(">i", partition) + b"\x00"
    marker += struct.pack(">i", coordinator_epoch)
    if version >= 2:
        marker += struct.pack(">b", transaction_version)
    body = b"\x02" + marker + b"\x00" + b"\x00"
    return frame(header(27, version) + b"\x00" + body)  # flexible header: no tags


def write_txn_markers_error(response, producer_id, topic, partition=0):
    """The one partition's error code of a WriteTxnMarkers answer."""
    r = Reader(response, 4)
    r.tagged_fields()
    assert r.uvarint() == 2
    assert r.take(">q") == producer_id
    assert r.uvarint() == 2
    assert r.compact_string() == topic
    assert r.uvarint() == 2
    assert r.take(">i") == partition
    return r.take(">h")


def api_versions_v5(cluster_id, node_id):
    """ApiVersions v5 (Kafka 4.4, KIP-1242): the client names the cluster and
    the node it means to reach (null and -1: unknown)."""
    body = compact_string("wire-test") + compact_string("1") + compact_string(cluster_id)
    body += struct.pack(">i", node_id) + b"\0"
    return frame(header(18, 5) + b"\0" + body)  # flexible header: no tags


def describe_log_dirs_v4():
    """DescribeLogDirs v4 (flexible) for every topic (a null topic list)."""
    return frame(header(35, 4) + b"\0" + b"\0" + b"\0")  # header tags, null topics, tags


def describe_log_dirs_v4_dirs(response):
    """{log dir: (error_code, total_bytes, usable_bytes)} of a
    DescribeLogDirs v4 response."""
    r = Reader(response, 4)
    r.tagged_fields()
    r.take(">ih")  # throttle time, error code
    dirs = {}
    for _ in range(r.uvarint() - 1):
        error = r.take(">h")
        log_dir = r.compact_string()
        for _ in range(r.uvarint() - 1):
            r.compact_string()
            for _ in range(r.uvarint() - 1):
                r.take(">iqq?")
                r.tagged_fields()
            r.tagged_fields()
        dirs[log_dir] = (error, *r.take(">qq"))
        r.tagged_fields()
    return dirs


def describe_topic_partitions_v0(topics, limit, cursor=None):
    """DescribeTopicPartitions v0 (KIP-966, flexible) of `topics` (empty:
    every topic), at most `limit` partitions, from `cursor` ((topic,
    partition) or None)."""
    body = bytes([len(topics) + 1]) + b"".join(compact_string(t) + b"\0" for t in topics)
    body += struct.pack(">i", limit)
    if cursor is None:
        body += struct.pack(">b", -1)
    else:
        body += struct.pack(">b", 1) + compact_string(cursor[0]) + struct.pack(">i", cursor[1]) + b"\0"
    return frame(header(75, 0) + b"\0" + body + b"\0")  # flexible header: no tags


def describe_topic_partitions_v0_result(response):
    """(topics, next cursor) of a DescribeTopicPartitions v0 response: each
    topic (error, name, topic id, internal, authorized operations,
    partitions), each partition (error, index, leader, leader epoch,
    replicas, isr, eligible leader replicas, last known elr, offline)."""
    r = Reader(response, 4)
    r.tagged_fields()
    r.take(">i")  # throttle time

    def ints(nullable=False):
        n = r.uvarint() - 1
        if n < 0:
            assert nullable
            return None
        return [r.take(">i") for _ in range(n)]

    topics = []
    for _ in range(r.uvarint() - 1):
        error = r.take(">h")
        name = r.compact_string()
        topic_id = r.data[r.pos:r.pos + 16].hex()
        r.pos += 16
        internal = r.take(">?")
        partitions = []
        for _ in range(r.uvarint() - 1):
            error_p, index, leader, epoch = r.take(">hiii")
            partitions.append((error_p, index, leader, epoch, ints(), ints(), ints(True), ints(True), ints()))
            r.tagged_fields()
        operations = r.take(">i")
        r.tagged_fields()
        topics.append((error, name, topic_id, internal, operations, partitions))
    cursor = None
    if r.take(">b") >= 0:
        cursor = (r.compact_string(), r.take(">i"))
        r.tagged_fields()
    return topics, cursor


def api_versions_error(response):
    """Error code of an ApiVersions v0 response."""
    return struct.unpack_from(">h", response, 4)[0]


def fetch_v4_partitions(response):
    """{partition: (error_code, high_watermark, records)} for the single
    topic of a Fetch v4 response."""
    r = Reader(response, 8)  # after the correlation id and throttle time
    assert r.take(">i") == 1
    r.string()
    out = {}
    for _ in range(r.take(">i")):
        partition, error, high_watermark, _last_stable = r.take(">ihqq")
        aborted = r.take(">i")
        r.pos += max(aborted, 0) * 16  # skip the aborted transactions
        out[partition] = (error, high_watermark, r.bytes() or b"")
    return out


def fetch_v4_partition(response):
    """(error_code, high_watermark, records) of the single partition."""
    [result] = fetch_v4_partitions(response).values()
    return result


def fetch_v4_batches(response):
    """{partition: number of batches} for every partition."""
    return {p: batch_count(records) for p, (_, _, records) in fetch_v4_partitions(response).items()}


def batch_count(records):
    """How many record batches a Fetch returned."""
    count, pos = 0, 0
    while pos + 12 <= len(records):
        (length,) = struct.unpack_from(">i", records, pos + 8)
        if pos + 12 + length > len(records):
            break
        count += 1
        pos += 12 + length
    return count


def byte_string(b):
    return struct.pack(">i", len(b)) + b


def join_group_v0(group, member_id="", protocols=(("range", b""),), session_ms=10000, protocol_type="consumer"):
    body = string(group) + struct.pack(">i", session_ms) + string(member_id) + string(protocol_type)
    body += struct.pack(">i", len(protocols))
    for name, metadata in protocols:
        body += string(name) + byte_string(metadata)
    return frame(header(11, 0) + body)


def join_group_v0_result(response):
    """(error, generation, protocol, leader, member_id, member count)."""
    r = Reader(response, 4)
    error, generation = r.take(">hi")
    protocol, leader, member_id = r.string(), r.string(), r.string()
    return error, generation, protocol, leader, member_id, r.take(">i")


def sync_group_v0(group, generation, member_id, assignments=()):
    body = string(group) + struct.pack(">i", generation) + string(member_id)
    body += struct.pack(">i", len(assignments))
    for member, assignment in assignments:
        body += string(member) + byte_string(assignment)
    return frame(header(14, 0) + body)


def sync_group_v0_result(response):
    """(error, assignment)."""
    r = Reader(response, 4)
    return r.take(">h"), r.bytes()


def heartbeat_v0(group, generation, member_id):
    return frame(header(12, 0) + string(group) + struct.pack(">i", generation) + string(member_id))


def error_only(response):
    """The error code right after the correlation id (Heartbeat v0 and the like)."""
    return struct.unpack_from(">h", response, 4)[0]


def offset_commit_v2(group, generation, member_id, topic, partition, offset, metadata=""):
    body = string(group) + struct.pack(">i", generation) + string(member_id) + struct.pack(">q", -1)
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", 1) + struct.pack(">iq", partition, offset) + string(metadata)
    return frame(header(8, 2) + body)


def offset_commit_v2_error(response):
    r = Reader(response, 4)
    assert r.take(">i") == 1
    r.string()
    assert r.take(">i") == 1
    _, error = r.take(">ih")
    return error


def offset_fetch_v1(group, topic, partition):
    body = string(group) + struct.pack(">i", 1) + string(topic) + struct.pack(">i", 1) + struct.pack(">i", partition)
    return frame(header(9, 1) + body)


def offset_fetch_v1_result(response):
    """(offset, metadata, error) of the single partition."""
    r = Reader(response, 4)
    assert r.take(">i") == 1
    r.string()
    assert r.take(">i") == 1
    _, offset = r.take(">iq")
    metadata = r.string()
    return offset, metadata, r.take(">h")


def raw_batch(payload, record_count, attributes=0):
    """A v2 batch around arbitrary record bytes, with a correct CRC: for
    batches whose contents are wrong in ways a checksum cannot catch."""
    from kafka.record._crc32c import crc as crc32c

    after_crc = struct.pack(">hiqqqhii", attributes, record_count - 1, RECENT_TS,
                            RECENT_TS, -1, -1, -1, record_count) + payload
    crc = crc32c(after_crc)
    length = 4 + 1 + 4 + len(after_crc)  # leader epoch, magic, crc, rest
    return struct.pack(">qiibI", 0, length, -1, 2, crc) + after_crc


class Client:
    """kafka-python's request messages (kafka.protocol) at the versions a
    test picks, over one plaintext connection: for requests whose error
    codes a test compares, which real clients would retry or hide."""

    def __init__(self, bootstrap, client_id="wire-test", timeout=30, sasl_plain=None):
        """`sasl_plain`: (user, password) to log in with first, on a
        SASL_PLAINTEXT listener."""
        self.conn, self.client_id, self.correlation = Connection(bootstrap, timeout), client_id, 0
        if sasl_plain:
            from kafka.protocol.sasl import (SaslAuthenticateRequest, SaslAuthenticateResponse,
                                             SaslHandshakeRequest, SaslHandshakeResponse)
            user, password = sasl_plain
            assert self.call(SaslHandshakeRequest(mechanism="PLAIN"), SaslHandshakeResponse, 1).error_code == 0
            login = f"\0{user}\0{password}".encode()
            response = self.call(SaslAuthenticateRequest(auth_bytes=login), SaslAuthenticateResponse, 1)
            assert response.error_code == 0, response

    def call(self, request, response_class, version):
        self.correlation += 1
        request.with_header(self.correlation, self.client_id)
        self.conn.send(request.encode(version=version, header=True, framed=True))
        return response_class.decode(self.conn.response(), version=version, header=True)

    def close(self):
        self.conn.close()

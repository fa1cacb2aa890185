//! A partition's log: a directory of segments holding Kafka record batches
//! exactly as producers sent them (only the base offset and leader epoch are
//! filled in), rolled by size and age, trimmed by retention and
//! DeleteRecords, compacted by the log cleaner (`cleaner`, deciding with
//! `compaction` batch by batch over the keys of an `offset_map`, reading
//! records through `records`), and recovered after a crash by cutting off
//! a torn tail and finishing an interrupted cleaning. Each segment keeps the
//! transactions aborted by the markers it holds (`txn_index`, Kafka's
//! `.txnindex`); `control` reads and writes those markers.

pub mod batch;
pub mod cleaner;
pub mod compaction;
pub mod config;
pub mod control;
pub mod file_slice;
pub mod index;
pub mod offset_map;
pub mod records;
pub mod segment;
pub mod txn_index;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use crate::clock::now_ms;

pub use batch::BatchError;
use batch::BatchHeader;
pub use config::{Cleanup, LogConfig};
use file_slice::FileSlice;
use segment::Segment;
use txn_index::AbortedTxn;

/// Errors of log operations, with the context to act on them.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Disk I/O failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A batch is malformed or fails its checksum.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes={max}")]
    RecordTooLarge {
        /// Batch size.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// The offset is not in the log.
    #[error("offset {requested} is outside the log ({log_start}..{log_end})")]
    OffsetOutOfRange {
        /// Offset asked for.
        requested: i64,
        /// First stored offset.
        log_start: i64,
        /// Next offset to be written.
        log_end: i64,
    },
    /// Stored records could not be decoded.
    #[error("cannot decode stored batch: {0}")]
    Decode(String),
    /// A record without a key sent to a compacted topic.
    #[error("a compacted topic cannot take a record without a key")]
    KeylessOnCompacted,
}

impl LogError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// First offset assigned.
    pub base_offset: i64,
    /// Last offset assigned.
    pub last_offset: i64,
    /// The time the batches were stamped with under
    /// `message.timestamp.type=LogAppendTime`, else -1.
    pub log_append_time: i64,
}

const START_CHECKPOINT: &str = "log-start-offset";

/// One partition's log.
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    unflushed_messages: u64,
    /// When the log was last forced to disk.
    last_flush_ms: i64,
    /// The cleaner's checkpoint: records below it are clean.
    first_dirty: i64,
    /// The earliest delete horizon of the tombstones the cleaner kept.
    delete_horizon: Option<i64>,
}

impl Log {
    /// Opens the log in `dir` (creating it), recovering the active segment.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        cleaner::recover(dir)?;
        let mut bases: Vec<i64> = std::fs::read_dir(dir)
            .map_err(|e| LogError::io(dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse::<i64>().ok()
            })
            .collect();
        bases.sort_unstable();
        let now = now_ms();
        let mut segments = BTreeMap::new();
        let last = bases.last().copied();
        for base in bases {
            let path = dir.join(segment::file_name(base));
            let active = Some(base) == last;
            let (seg, dropped) =
                Segment::open(&path, base, active, config.index_interval_bytes, now)?;
            if dropped > 0 {
                tracing::warn!(
                    log = %dir.display(),
                    segment = %path.display(),
                    position = seg.size(),
                    bytes = dropped,
                    "recovery truncated a torn or corrupt tail of the log"
                );
            }
            segments.insert(base, seg);
        }
        if segments.is_empty() {
            segments.insert(0, Segment::create(dir, 0, now)?);
        }
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let checkpoint = std::fs::read_to_string(dir.join(START_CHECKPOINT))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(first_base);
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: 0,
            unflushed_messages: 0,
            last_flush_ms: now,
            first_dirty: 0,
            delete_horizon: None,
        };
        (log.first_dirty, log.delete_horizon) = cleaner::read_checkpoint(dir);
        log.log_start_offset = checkpoint.max(first_base).min(log.log_end_offset());
        Ok(log)
    }

    fn active(&self) -> &Segment {
        // `open` and every deletion keep at least one segment.
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }

    /// Next offset to be written.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// The base offset of the segment being written: it changes when the
    /// log rolls a new segment.
    pub fn active_base_offset(&self) -> i64 {
        self.active().base_offset
    }

    /// First offset still readable.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes stored.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    /// The settings in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the settings; they apply from the next append or check.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Validates `records` (whole v2 batches as a producer sent them, their
    /// records included), assigns offsets and the leader epoch, and writes
    /// them. The client's bytes are written as they came, each batch's
    /// first bytes (outside its CRC) replaced by its offset and epoch; only
    /// `log.message.timestamp.type=LogAppendTime` rewrites a copy.
    /// Nothing is written if any batch is invalid.
    pub fn append(&mut self, records: Bytes, leader_epoch: i32) -> Result<AppendInfo, LogError> {
        let mut headers = batch::validate_all(&records)?;
        let keyless = headers.iter().try_fold(false, |keyless, h| {
            let batch = records.slice(h.position..h.position + h.size);
            batch::validate_records(batch, h, self.config.max_decompressed_message_bytes)
                .map(|k| keyless | k)
        })?;
        if self.config.cleanup.compact && keyless {
            return Err(LogError::KeylessOnCompacted);
        }
        if let Some(h) = headers
            .iter()
            .find(|h| h.size > self.config.max_message_bytes as usize)
        {
            return Err(LogError::RecordTooLarge {
                size: h.size,
                max: self.config.max_message_bytes,
            });
        }
        let base_offset = self.log_end_offset();
        let log_append_time = if self.config.log_append_time {
            now_ms()
        } else {
            -1
        };
        let records = if log_append_time >= 0 {
            let mut stamped = BytesMut::from(&records[..]);
            for h in headers.iter_mut() {
                batch::stamp_log_append_time(&mut stamped, h, log_append_time);
            }
            stamped.freeze()
        } else {
            records
        };
        let mut next = base_offset;
        let mut prefixes = Vec::with_capacity(headers.len());
        for h in headers.iter_mut() {
            prefixes.push(batch::assigned_prefix(&records, h, next, leader_epoch));
            let count = h.offset_count();
            h.base_offset = next;
            h.last_offset = next + count - 1;
            h.leader_epoch = leader_epoch;
            next += count;
        }
        let pieces: Vec<&[u8]> = headers
            .iter()
            .zip(&prefixes)
            .flat_map(|(h, prefix)| {
                let rest = h.position + batch::ASSIGNED_PREFIX..h.position + h.size;
                [&prefix[..], &records[rest]]
            })
            .collect();
        self.write_active(&pieces, &headers, (next - base_offset) as u64)?;
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time,
        })
    }

    /// Writes batches with assigned offsets, given as consecutive pieces,
    /// to the active segment (rolling first if due) and flushes when
    /// `flush.messages` is reached.
    fn write_active(
        &mut self,
        pieces: &[&[u8]],
        headers: &[BatchHeader],
        messages: u64,
    ) -> Result<(), LogError> {
        let incoming_ts = headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1);
        let size: usize = pieces.iter().map(|p| p.len()).sum();
        self.maybe_roll(size as u64, incoming_ts)?;
        let interval = self.config.index_interval_bytes;
        let active = self
            .segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment");
        active.append(pieces, headers, interval)?;
        self.unflushed_messages += messages;
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends batches copied from the partition leader: their offsets and
    /// leader epochs are kept, and must continue this log, or skip ahead
    /// where the leader's cleaner removed records. Returns their headers.
    pub fn append_replicated(&mut self, records: &[u8]) -> Result<Vec<BatchHeader>, LogError> {
        let headers = batch::validate_stored(records)?;
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Ok(headers);
        };
        let end = self.log_end_offset();
        if first.base_offset < end {
            return Err(LogError::OffsetOutOfRange {
                requested: first.base_offset,
                log_start: self.log_start_offset,
                log_end: end,
            });
        }
        let messages = (last.last_offset + 1 - end) as u64;
        self.write_active(&[records], &headers, messages)?;
        Ok(headers)
    }

    /// Drops every record at or after `offset` (a follower whose log
    /// diverged from its leader's).
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let doomed: Vec<i64> = self
            .segments
            .range(offset.max(0)..)
            .map(|(b, _)| *b)
            .collect();
        for base in doomed {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete()?;
            }
        }
        match self.segments.values_mut().next_back() {
            Some(seg) => seg.truncate_to(offset)?,
            None => {
                let seg = Segment::create(&self.dir, offset, now_ms())?;
                self.segments.insert(offset, seg);
            }
        }
        self.log_start_offset = self.log_start_offset.min(self.log_end_offset());
        Ok(())
    }

    /// Empties the log and restarts it at `offset` (a follower that fell
    /// behind its leader's log start).
    pub fn reset_to(&mut self, offset: i64) -> Result<(), LogError> {
        for (_, seg) in std::mem::take(&mut self.segments) {
            seg.delete()?;
        }
        let seg = Segment::create(&self.dir, offset, now_ms())?;
        self.segments.insert(offset, seg);
        self.log_start_offset = offset;
        std::fs::write(self.dir.join(START_CHECKPOINT), offset.to_string())
            .map_err(|e| LogError::io(&self.dir, e))
    }

    fn maybe_roll(&mut self, incoming: u64, incoming_ts: i64) -> Result<(), LogError> {
        let now = now_ms();
        let active = self.active();
        let full = active.size() > 0 && active.size() + incoming > self.config.segment_bytes;
        let old =
            active.size() > 0 && active.time_filling(now, incoming_ts) > self.config.roll_ms();
        if full || old {
            self.roll(now)?;
        }
        Ok(())
    }

    fn roll(&mut self, now: i64) -> Result<(), LogError> {
        let base = self.log_end_offset();
        self.active().flush()?;
        self.active().write_index_files()?;
        let seg = Segment::create(&self.dir, base, now)?;
        self.segments.insert(base, seg);
        Ok(())
    }

    /// Whole batches starting with the one that holds `offset`, at most
    /// `max_bytes` unless the first batch alone is larger and `min_one` is
    /// set (KIP-74).
    pub fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> Result<Bytes, LogError> {
        self.slice(offset, max_bytes, min_one, i64::MAX)?
            .read()
            .map_err(|e| LogError::io(&self.dir, e))
    }

    /// As [`Log::read`], without reading: where those batches lie, ending
    /// before the first batch that reaches `below` (a high watermark, a
    /// last stable offset).
    pub fn slice(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        below: i64,
    ) -> Result<FileSlice, LogError> {
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: end,
            });
        }
        for (_, seg) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            let slice = seg.slice(offset, max_bytes, min_one, below)?;
            if !slice.is_empty() || seg.next_offset() > offset {
                return Ok(slice);
            }
        }
        Ok(FileSlice::default())
    }

    /// Records a transaction aborted by a marker just written, in the
    /// `.txnindex` of the segment holding the marker, as Kafka does.
    pub fn append_aborted(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        match self.segments.range_mut(..=entry.last_offset).next_back() {
            Some((_, seg)) => seg.append_aborted(entry),
            None => Ok(()),
        }
    }

    /// The aborted transactions a read of `fetch_offset..upper` may hold
    /// records of, from the index of the segment holding `fetch_offset`
    /// and of those after it until one ends the search (see
    /// `txn_index::collect`), as Kafka's `collectAbortedTransactions`.
    pub fn collect_aborted(&self, fetch_offset: i64, upper: i64) -> Vec<AbortedTxn> {
        let mut out = Vec::new();
        let first = self
            .segments
            .range(..=fetch_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(first..).map(|(_, s)| s) {
            if txn_index::collect(seg.aborted(), fetch_offset, upper, &mut out) {
                break;
            }
        }
        out
    }

    /// Whether some segment's aborted transactions are unknown since
    /// `open` (see `restore_aborted`).
    pub fn aborted_unknown(&self) -> bool {
        self.segments.values().any(|s| !s.aborted_known())
    }

    /// The base offset of the first segment whose aborted transactions are
    /// unknown since `open`, if any: a replay that rebuilds them must
    /// start at or below it.
    pub fn first_aborted_unknown(&self) -> Option<i64> {
        self.segments
            .values()
            .find(|s| !s.aborted_known())
            .map(|s| s.base_offset)
    }

    /// Writes the active segment's `.txnindex` whole and syncs it (at
    /// clean shutdown, with the log flushed): the next `open` recovers the
    /// active segment and distrusts its index, but a caller that knows the
    /// segment still ends where it was left may adopt it
    /// (`adopt_active_aborted`).
    pub fn save_active_aborted(&self) -> Result<(), LogError> {
        self.active().save_aborted()
    }

    /// Takes the active segment's `.txnindex` as it is on disk, which
    /// recovery at `open` does not. Only for a caller that knows the
    /// segment ends where `save_active_aborted` left it: the partition
    /// does when it finds the producer snapshot it wrote then at the log
    /// end. `false` (the index stays unknown) when the file is absent,
    /// damaged, or names a marker the log does not hold.
    pub fn adopt_active_aborted(&mut self) -> bool {
        self.segments
            .values_mut()
            .next_back()
            .is_some_and(Segment::adopt_aborted)
    }

    /// Rebuilds the `.txnindex` files left unknown at open from the
    /// transactions a replay of the log found aborted (every one, in
    /// marker order): each segment whose index is unknown takes those whose
    /// marker it holds.
    pub fn restore_aborted(&mut self, aborted: &[AbortedTxn]) -> Result<(), LogError> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for (i, base) in bases.iter().enumerate() {
            let end = bases.get(i + 1).copied().unwrap_or(i64::MAX);
            let Some(seg) = self.segments.get_mut(base) else {
                continue;
            };
            if seg.aborted_known() {
                continue;
            }
            let mine = aborted
                .iter()
                .filter(|e| *base <= e.last_offset && e.last_offset < end)
                .copied()
                .collect();
            seg.set_aborted(mine)?;
        }
        Ok(())
    }

    /// The first record with a timestamp at or after `ts`: its offset and
    /// timestamp.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        for seg in self.segments.values() {
            if let Some(bytes) = seg.batch_reaching(ts)? {
                let found = record_timestamps(
                    Bytes::from(bytes),
                    self.config.max_decompressed_message_bytes,
                )?
                .into_iter()
                .find(|(offset, t)| *t >= ts && *offset >= self.log_start_offset);
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp: its offset and timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let Some(seg) = self
            .segments
            .values()
            .filter(|s| s.size() > 0)
            .max_by_key(|s| s.max_timestamp())
        else {
            return Ok(None);
        };
        let Some(bytes) = seg.max_timestamp_batch()? else {
            return Ok(None);
        };
        let records = record_timestamps(
            Bytes::from(bytes),
            self.config.max_decompressed_message_bytes,
        )?;
        let best = records.iter().map(|(_, t)| *t).max();
        Ok(best.and_then(|max| records.into_iter().find(|(_, t)| *t == max)))
    }

    /// Makes `offset` the new log start (DeleteRecords); whole segments
    /// below it are removed. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let end = self.log_end_offset();
        if offset > end || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: end,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        self.save_start()?;
        if offset == end && self.active().size() > 0 {
            self.roll(now_ms())?;
        }
        self.delete_segments_while(|seg, _| seg.next_offset() <= offset)?;
        Ok(self.log_start_offset)
    }

    /// Deletes old segments by `retention.ms` and `retention.bytes` when
    /// `cleanup.policy` has `delete`, as Kafka does: oldest first, only segments wholly below
    /// `high_watermark`, and the active one too (it is rolled first), so
    /// lowering `retention.ms` empties a topic. Returns how many were
    /// removed.
    pub fn enforce_retention(&mut self, now_ms: i64, high_watermark: i64) -> Result<u64, LogError> {
        // A compact-only log keeps its segments whatever their age or size.
        if !self.config.cleanup.delete {
            return Ok(0);
        }
        let retention_ms = self.config.retention_ms;
        let retention_bytes = self.config.retention_bytes;
        let mut total = self.size_bytes() as i64;
        // Everything below `keep_from` goes, in whole segments.
        let mut keep_from = None;
        for seg in self.segments.values() {
            let expired = retention_ms >= 0 && seg.max_timestamp() < now_ms - retention_ms;
            let oversized = retention_bytes >= 0 && total - seg.size() as i64 >= retention_bytes;
            // An empty sealed segment (all cleaned away) goes with the rest;
            // the empty active one stops it.
            let empty_active = seg.size() == 0 && seg.base_offset == self.active().base_offset;
            if empty_active || seg.next_offset() > high_watermark || !(expired || oversized) {
                break;
            }
            total -= seg.size() as i64;
            keep_from = Some(seg.next_offset());
        }
        let Some(keep_from) = keep_from else {
            return Ok(0);
        };
        if keep_from == self.log_end_offset() {
            self.roll(now_ms)?;
        }
        self.delete_segments_while(|seg, _| seg.next_offset() <= keep_from)
    }

    /// Removes oldest non-active segments while `doomed` says so.
    fn delete_segments_while(
        &mut self,
        mut doomed: impl FnMut(&Segment, i64) -> bool,
    ) -> Result<u64, LogError> {
        let mut deleted = 0;
        while self.segments.len() > 1 {
            let (&base, seg) = self.segments.iter().next().expect("more than one segment");
            if !doomed(seg, base) {
                break;
            }
            let seg = self.segments.remove(&base).expect("just seen");
            seg.delete()?;
            deleted += 1;
        }
        if deleted > 0 {
            let first = self.segments.keys().next().copied().unwrap_or(0);
            if first > self.log_start_offset {
                self.log_start_offset = first;
                self.save_start()?;
            }
        }
        Ok(deleted)
    }

    fn save_start(&self) -> Result<(), LogError> {
        let path = self.dir.join(START_CHECKPOINT);
        let tmp = self.dir.join(format!("{START_CHECKPOINT}.tmp"));
        std::fs::write(&tmp, self.log_start_offset.to_string())
            .map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))
    }

    /// Forces everything written to disk.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.active().flush()?;
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms();
        Ok(())
    }

    /// Flushes when unflushed records are older than `flush.ms`; returns
    /// whether it did.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        if !flush_due(
            self.unflushed_messages,
            self.last_flush_ms,
            self.config.flush_ms,
            now_ms,
        ) {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }
}

/// Whether `flush.ms` asks for a flush now (`i64::MAX`, Kafka's default,
/// means never by time).
fn flush_due(unflushed: u64, last_flush_ms: i64, flush_ms: i64, now_ms: i64) -> bool {
    unflushed > 0 && flush_ms < i64::MAX && now_ms.saturating_sub(last_flush_ms) >= flush_ms
}

/// Offsets and timestamps of every record in one stored batch. A record
/// larger once decompressed than `max_record_bytes`
/// (`max.decompressed.message.bytes`) fails the lookup, as in Kafka. The
/// bytes came from a client, so this is fuzzed.
pub fn record_timestamps(buf: Bytes, max_record_bytes: u32) -> Result<Vec<(i64, i64)>, LogError> {
    let set = batch::decode(buf, 0, max_record_bytes).map_err(|e| match e {
        BatchError::DecompressedTooLarge { .. } => LogError::Batch(e),
        other => LogError::Decode(other.to_string()),
    })?;
    Ok(set
        .records
        .iter()
        .map(|r| (r.offset, r.timestamp))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use batch::tests::encode;
    use kafka_protocol::records::Compression;

    #[test]
    fn flush_ms_table() {
        let never = i64::MAX;
        let cases = [
            (0, 0, 10, 100, false),         // nothing to flush
            (5, 0, 10, 5, false),           // not yet
            (5, 0, 10, 10, true),           // due
            (5, 0, never, i64::MAX, false), // never by time
            (5, 0, 0, 0, true),             // every time
        ];
        for (unflushed, last, flush_ms, now, want) in cases {
            assert_eq!(
                flush_due(unflushed, last, flush_ms, now),
                want,
                "{unflushed} {last} {flush_ms} {now}"
            );
        }
    }

    fn small() -> LogConfig {
        LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 100,
            ..LogConfig::default()
        }
    }

    fn put(log: &mut Log, values: &[&str], ts: &[i64], c: Compression) -> AppendInfo {
        let b = encode(values, ts, c);
        log.append(b.freeze(), 0).expect("append")
    }

    #[test]
    fn a_follower_copies_batches_as_they_are_and_truncates_a_divergent_tail() {
        // Everything from `from`, segment by segment, as fetches would.
        fn copy(from: &Log, to: &mut Log, start: i64) {
            let mut at = start;
            while at < from.log_end_offset() {
                let data = from.read(at, 1 << 20, true).expect("read");
                to.append_replicated(&data).expect("replicate");
                at = to.log_end_offset();
            }
        }
        fn batches(log: &Log) -> Vec<(i64, i32)> {
            let mut out = Vec::new();
            let mut at = 0;
            while at < log.log_end_offset() {
                let data = log.read(at, 1 << 20, true).expect("read");
                for h in batch::validate_all(&data).expect("valid") {
                    out.push((h.base_offset, h.leader_epoch));
                    at = h.last_offset + 1;
                }
            }
            out
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut leader = Log::open(&dir.path().join("l"), small()).expect("open");
        let mut follower = Log::open(&dir.path().join("f"), small()).expect("open");
        for i in 0..10 {
            let b = encode(&["x", "y"], &[i, i], Compression::None);
            leader.append(b.freeze(), (i / 4) as i32).expect("append");
        }
        copy(&leader, &mut follower, 0);
        assert_eq!(follower.log_end_offset(), 20);
        assert_eq!(batches(&follower), batches(&leader));
        assert_eq!(batches(&leader)[9], (18, 2));
        // Offsets must continue the log.
        let again = leader.read(4, 1 << 20, true).expect("read");
        assert!(matches!(
            follower.append_replicated(&again),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        follower.truncate_to(8).expect("truncate");
        assert_eq!(follower.log_end_offset(), 8);
        copy(&leader, &mut follower, 8);
        assert_eq!(batches(&follower), batches(&leader));
        follower.truncate_to(0).expect("truncate all");
        assert_eq!(follower.log_end_offset(), 0);
        drop(follower);
        let reopened = Log::open(&dir.path().join("f"), small()).expect("reopen");
        assert_eq!(reopened.log_end_offset(), 0);
    }

    #[test]
    fn offsets_are_assigned_and_data_reads_back_across_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), small()).expect("open");
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Lz4,
            Compression::Zstd,
            Compression::Snappy,
        ];
        for i in 0..20 {
            let info = put(
                &mut log,
                &["x", "y"],
                &[i, i + 1],
                codecs[i as usize % codecs.len()],
            );
            assert_eq!(info.base_offset, 2 * i);
        }
        assert!(log.segments.len() > 3, "rolled by size");
        assert_eq!(log.log_end_offset(), 40);
        for offset in [0, 7, 21, 39] {
            let data = log.read(offset, 1, true).expect("read");
            let h = batch::validate_all(&data).expect("stored bytes stay valid");
            assert!(h[0].base_offset <= offset && offset <= h[0].last_offset);
        }
        assert!(log.read(40, 1000, true).expect("at end").is_empty());
        assert!(matches!(
            log.read(41, 10, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let big = log.read(0, 1 << 20, false).expect("read");
        assert!(batch::validate_all(&big).expect("valid").len() > 1);
        assert!(log.read(0, 1, false).expect("nothing fits").is_empty());
    }

    #[test]
    fn reopen_keeps_everything_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut log = Log::open(dir.path(), small()).expect("open");
            for i in 0..5 {
                put(&mut log, &["a"], &[i], Compression::None);
            }
        }
        let active = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .max()
            .expect("a segment");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&active)
            .expect("open segment");
        std::io::Write::write_all(&mut f, &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1]).expect("garbage");
        drop(f);
        let mut log = Log::open(dir.path(), small()).expect("recover");
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(
            put(&mut log, &["b"], &[9], Compression::None).base_offset,
            5
        );
    }

    #[test]
    fn a_bad_batch_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), small()).expect("open");
        let mut b = encode(&["a"], &[1], Compression::None);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(
            log.append(b.freeze(), 0),
            Err(LogError::Batch(BatchError::Crc { .. }))
        ));
        let mut cfg = small();
        cfg.max_message_bytes = 10;
        log.set_config(cfg);
        let b = encode(&["a"], &[1], Compression::None);
        assert!(matches!(
            log.append(b.freeze(), 0),
            Err(LogError::RecordTooLarge { .. })
        ));
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(log.size_bytes(), 0);
    }

    #[test]
    fn timestamps_find_the_exact_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), small()).expect("open");
        put(
            &mut log,
            &["a", "b", "c"],
            &[100, 200, 300],
            Compression::Gzip,
        );
        put(&mut log, &["d", "e"], &[400, 150], Compression::None);
        assert_eq!(log.offset_for_timestamp(0).expect("ts"), Some((0, 100)));
        assert_eq!(log.offset_for_timestamp(201).expect("ts"), Some((2, 300)));
        assert_eq!(log.offset_for_timestamp(350).expect("ts"), Some((3, 400)));
        assert_eq!(log.offset_for_timestamp(401).expect("ts"), None);
        assert_eq!(log.max_timestamp().expect("max"), Some((3, 400)));
    }

    #[test]
    fn delete_records_and_retention_move_the_start_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), small()).expect("open");
        // Written now: not yet past the default retention.ms.
        let now = now_ms();
        for _ in 0..20 {
            put(&mut log, &["x", "y"], &[now, now], Compression::None);
        }
        let segments_before = log.segments.len();
        assert_eq!(log.delete_records_before(15).expect("delete"), 15);
        assert!(log.segments.len() < segments_before);
        assert!(matches!(
            log.read(14, 100, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(log.delete_records_before(41).is_err());
        drop(log);
        let mut log = Log::open(dir.path(), small()).expect("reopen");
        assert_eq!(log.log_start_offset(), 15);
        let mut cfg = small();
        cfg.retention_bytes = 400;
        log.set_config(cfg);
        let end = log.log_end_offset();
        assert!(log.enforce_retention(now_ms(), end).expect("by size") > 0);
        assert!(log.size_bytes() <= 400 + 300);
        let mut cfg = small();
        cfg.retention_ms = 1000;
        log.set_config(cfg);
        let later = now + 2000;
        // Nothing above the high watermark goes, whatever its age.
        let first = *log.segments.keys().next().expect("a segment");
        assert_eq!(log.enforce_retention(later, first).expect("by time"), 0);
        // Then everything, the active segment too (rolled first).
        assert!(log.enforce_retention(later, end).expect("by time") > 0);
        assert_eq!(log.log_start_offset(), end);
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(log.size_bytes(), 0);
        assert_eq!(log.enforce_retention(later, end).expect("again"), 0);
    }

    #[test]
    fn segment_ms_counts_by_the_records_times_as_in_kafka() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = LogConfig {
            segment_ms: 60_000,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path(), cfg.clone()).expect("open");
        // Ten minutes apart, written at once: a segment each.
        for t in [0, 600_000, 1_200_000] {
            put(&mut log, &["a"], &[t], Compression::None);
        }
        assert_eq!(log.segments.len(), 3);
        // Within segment.ms of the segment's first batch: no roll, and a
        // reopened log counts from that batch too.
        put(&mut log, &["b"], &[1_230_000], Compression::None);
        drop(log);
        let mut log = Log::open(dir.path(), cfg).expect("reopen");
        put(&mut log, &["c"], &[1_250_000], Compression::None);
        assert_eq!(log.segments.len(), 3);
        put(&mut log, &["d"], &[1_260_001], Compression::None);
        assert_eq!(log.segments.len(), 4);
    }

    #[test]
    fn a_compact_only_log_is_not_trimmed_by_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = small();
        cfg.cleanup = Cleanup {
            delete: false,
            compact: true,
        };
        cfg.retention_ms = 1;
        cfg.retention_bytes = 1;
        let mut log = Log::open(dir.path(), cfg.clone()).expect("open");
        for i in 0..20 {
            put(&mut log, &["x", "y"], &[i, i], Compression::None);
        }
        let end = log.log_end_offset();
        assert_eq!(log.enforce_retention(now_ms(), end).expect("retention"), 0);
        assert_eq!(log.log_start_offset(), 0);
        cfg.cleanup.delete = true;
        log.set_config(cfg);
        assert!(
            log.enforce_retention(now_ms(), end)
                .expect("compact,delete")
                > 0
        );
    }
}

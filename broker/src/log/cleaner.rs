//! Cleaning one compacted log, in three steps so the partition stays
//! writable meanwhile:
//! 1. [`Log::plan_clean`] (under the partition's lock, in memory): which
//!    sealed segments to read and up to which offset records may be
//!    cleaned: below the high watermark, the active segment and
//!    `min.compaction.lag.ms`.
//! 2. [`CleanJob::run`] (no lock; sealed segments do not change): maps each
//!    key of the dirty part to its latest offset, as far as the map's
//!    memory allows, then writes every segment below that point again
//!    through `compaction::filter_batch`, small neighbours merged up to
//!    `segment.bytes`, into `<base>.cleaned` files.
//! 3. [`Log::install_group`] (under the lock, for each group as soon as
//!    it is written, so space is freed as the cleaning goes): if its
//!    segments are still the ones read, swaps the cleaned file in;
//!    [`Log::finish_clean`] then records how far the log is clean.
//!
//! The swap survives a crash at any point: a finished `.cleaned` file is
//! renamed `<first>.<next>.swap`, which says it replaces the segments based
//! in `first..next`; only then are those deleted and the swap file renamed
//! to `<first>.log`. [`recover`] runs when a log opens: it deletes
//! `.cleaned` files (an unfinished cleaning) and completes every swap.
//! Records of aborted transactions (known from the aborted transaction
//! index) are removed and never enter the key map, so an aborted record
//! cannot shadow a committed one. A marker goes once no batch of its
//! transaction is left and its delete horizon has passed
//! (`compaction::filter_marker`), which needs the log read from its start
//! in order, as every cleaning does. A cleaned segment carries the aborted
//! transaction entries of the segments it replaces, less those whose
//! marker went (a consumer told of an aborted transaction skips its
//! producer's batches until the abort marker); its `.txnindex` is written
//! after the swap; a crash before leaves it missing, and the partition
//! rebuilds it.
//! How far the log is clean, and the earliest delete horizon of the
//! tombstones it keeps, are checkpointed in `cleaner-offset-checkpoint`.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::compaction::{self, Outcome, Rules, CONTROL, DELETE_HORIZON};
use super::control;
use super::offset_map::OffsetMap;
use super::records;
use super::segment::{self, Segment};
use super::txn_index::{AbortedBatches, AbortedTxn};
use super::{Log, LogError};

/// Where a log's cleaning stands: `<first dirty offset> <delete horizon>`.
pub const CHECKPOINT: &str = "cleaner-offset-checkpoint";
const CLEANED_SUFFIX: &str = "cleaned";
const SWAP_SUFFIX: &str = "swap";
/// Bytes read from a segment file at a time.
const READ_CHUNK: usize = 1 << 20;

/// How dirty a compacted log is, and whether it is due a cleaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// First offset not yet cleaned.
    pub first_dirty: i64,
    /// First offset that may not be cleaned yet.
    pub first_uncleanable: i64,
    /// Bytes of the segments already clean.
    pub clean_bytes: u64,
    /// Bytes of the segments holding dirty records that may be cleaned.
    pub dirty_bytes: u64,
    /// A dirty record is older than `max.compaction.lag.ms`.
    pub overdue: bool,
    /// A kept tombstone's delete horizon has passed.
    pub horizon_passed: bool,
}

impl Cleanable {
    /// The share of the log that is dirty and cleanable.
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }

    /// Whether a cleaning is due: dirty enough, a record overdue, or a
    /// tombstone to remove.
    pub fn due(&self, min_dirty_ratio: f64) -> bool {
        let dirty = self.dirty_bytes > 0 && self.first_uncleanable > self.first_dirty;
        (dirty && (self.dirty_ratio() >= min_dirty_ratio || self.overdue)) || self.horizon_passed
    }
}

/// What the cleaner knows of a segment when deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentView {
    /// First offset it may hold.
    pub base: i64,
    /// Offset after its last batch.
    pub next_offset: i64,
    /// Bytes.
    pub size: u64,
    /// Its newest record's timestamp.
    pub max_timestamp: i64,
}

/// Decides how much of a log may be cleaned (Kafka's rules): from the
/// checkpointed first dirty offset (the log start if the log no longer
/// holds it) to the first of the high watermark, the active segment
/// (`segments`' last) and the first segment with a record younger than
/// `min.compaction.lag.ms`. `first_dirty_timestamp` is the time of the
/// first dirty record, for `max.compaction.lag.ms`.
#[allow(clippy::too_many_arguments)]
pub fn cleanable(
    segments: &[SegmentView],
    log_start: i64,
    checkpoint: i64,
    high_watermark: i64,
    now_ms: i64,
    min_lag_ms: i64,
    max_lag_ms: i64,
    first_dirty_timestamp: Option<i64>,
    delete_horizon: Option<i64>,
) -> Cleanable {
    let log_end = segments.last().map_or(log_start, |s| s.next_offset);
    let first_dirty = if checkpoint < log_start || checkpoint > log_end {
        log_start
    } else {
        checkpoint
    };
    let active_base = segments.last().map_or(log_end, |s| s.base);
    let young = segments
        .iter()
        .filter(|s| s.next_offset > first_dirty && s.base < active_base)
        .find(|s| min_lag_ms > 0 && s.max_timestamp > now_ms.saturating_sub(min_lag_ms))
        .map(|s| s.base);
    let first_uncleanable = [Some(high_watermark), Some(active_base), young]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(first_dirty)
        .max(first_dirty);
    let clean_bytes = segments
        .iter()
        .filter(|s| s.next_offset <= first_dirty && s.base < active_base)
        .map(|s| s.size)
        .sum();
    let dirty_bytes = segments
        .iter()
        .filter(|s| s.next_offset > first_dirty && s.base < first_uncleanable.min(active_base))
        .map(|s| s.size)
        .sum();
    let overdue = first_uncleanable > first_dirty
        && first_dirty_timestamp.is_some_and(|t| now_ms.saturating_sub(t) > max_lag_ms);
    Cleanable {
        first_dirty,
        first_uncleanable,
        clean_bytes,
        dirty_bytes,
        overdue,
        horizon_passed: delete_horizon.is_some_and(|h| now_ms >= h),
    }
}

/// One segment a job reads.
#[derive(Debug, Clone)]
struct Planned {
    base: i64,
    path: PathBuf,
    size: u64,
    /// Its aborted transaction entries, carried into the cleaned segment.
    aborted: Vec<AbortedTxn>,
}

/// A cleaning to do, taken from a log under its partition's lock.
pub struct CleanJob {
    dir: PathBuf,
    /// Sealed segments from the log's first, in order; the last ones may
    /// be left out once the map's reach is known.
    segments: Vec<Planned>,
    /// Base of the segment after `segments` (the active one at most).
    after: i64,
    first_dirty: i64,
    first_uncleanable: i64,
    /// Base offsets of batches that are their producer's last.
    producers_last: HashSet<i64>,
    /// The batches of aborted transactions in what is read.
    aborted: AbortedBatches,
    rules: Rules,
    segment_bytes: u64,
    index_interval: u32,
}

/// The cleaned replacement of some neighbouring segments.
pub struct CleanedGroup {
    /// The segments it replaces: (base, size) as read.
    replaced: Vec<(i64, u64)>,
    /// Base of the segment after them.
    after: i64,
    /// The cleaned file, named `<first>.cleaned`.
    segment: Segment,
    /// The aborted transaction entries of the segments it replaces.
    aborted: Vec<AbortedTxn>,
}

/// What a cleaning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Bytes of the segments cleaned, before.
    pub bytes_before: u64,
    /// Bytes of the segments cleaned, after.
    pub bytes_after: u64,
    /// Records removed.
    pub records_removed: u64,
    /// Keys in the map.
    pub keys: u64,
    /// Memory of the map at its largest.
    pub map_bytes: u64,
}

/// A finished cleaning, its groups installed one by one as they were
/// written; what is left to record.
pub struct CleanOutput {
    /// The log is clean below this offset now.
    clean_to: i64,
    /// Earliest delete horizon of the tombstones kept.
    delete_horizon: Option<i64>,
    /// Numbers for the logs and metrics.
    pub stats: CleanStats,
}

/// Limits the cleaner's disk traffic to `log.cleaner.io.max.bytes.per.second`.
pub struct Throttle {
    bytes_per_second: f64,
    started: Instant,
    spent: f64,
}

impl Throttle {
    /// A throttle at `bytes_per_second` (`f64::MAX`: none).
    pub fn new(bytes_per_second: f64) -> Throttle {
        Throttle {
            bytes_per_second,
            started: Instant::now(),
            spent: 0.0,
        }
    }

    /// Counts `bytes` moved, sleeping while ahead of the rate.
    fn spend(&mut self, bytes: usize) {
        if self.bytes_per_second >= f64::MAX || self.bytes_per_second <= 0.0 {
            return;
        }
        self.spent += bytes as f64;
        let due = Duration::from_secs_f64(self.spent / self.bytes_per_second);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |e| LogError::io(path, e)
}

/// The throttle and the counts of one cleaning, handed to whatever moves
/// bytes.
struct Meter<'t> {
    throttle: &'t mut Throttle,
    stats: CleanStats,
}

/// Calls `f` with each whole batch of the first `size` bytes of the
/// segment file at `path`, in order, while it returns `true`.
fn each_batch(
    path: &Path,
    size: u64,
    meter: &mut Meter<'_>,
    mut f: impl FnMut(&mut Meter<'_>, &[u8], &BatchHeader) -> Result<bool, LogError>,
) -> Result<(), LogError> {
    let file = File::open(path).map_err(io(path))?;
    let mut pos = 0u64;
    let mut buf = Vec::new();
    while pos < size {
        let want = ((size - pos) as usize).min(READ_CHUNK.max(buf.capacity()));
        buf.resize(want, 0);
        file.read_exact_at(&mut buf, pos).map_err(io(path))?;
        meter.throttle.spend(want);
        let mut at = 0;
        while at + HEADER_LEN <= buf.len() {
            let h = batch::parse_prefix(&buf[at..], at)?;
            if at + h.size > buf.len() {
                break;
            }
            if !f(meter, &buf[at..at + h.size], &h)? {
                return Ok(());
            }
            at += h.size;
        }
        if at == 0 {
            // A batch larger than the chunk: read it whole next time.
            let h = batch::parse_prefix(&buf, 0)?;
            buf.reserve(h.size);
            if h.size as u64 > size - pos {
                return Err(LogError::Decode(format!(
                    "{}: a batch at byte {pos} runs past the segment's end",
                    path.display()
                )));
            }
            continue;
        }
        pos += at as u64;
    }
    Ok(())
}

/// Batch header with positions relative to the batch itself.
fn local(h: &BatchHeader) -> BatchHeader {
    BatchHeader { position: 0, ..*h }
}

impl CleanJob {
    /// Fills `map` with the latest offset of each key in the dirty part,
    /// batch by batch while it has room; returns where it stopped (the
    /// first offset whose key it does not hold).
    fn build_map(&self, map: &mut OffsetMap, meter: &mut Meter<'_>) -> Result<i64, LogError> {
        let mut reached = self.first_dirty;
        for seg in &self.segments {
            if seg.base >= self.first_uncleanable {
                break;
            }
            let mut full = false;
            each_batch(&seg.path, seg.size, meter, |_, bytes, h| {
                if h.last_offset < self.first_dirty {
                    return Ok(true);
                }
                if h.last_offset >= self.first_uncleanable {
                    full = true;
                    return Ok(false);
                }
                // An aborted record must not stand for its key.
                if h.attributes & CONTROL == 0 && h.record_count > 0 && !self.aborted.contains(h) {
                    if !map.is_empty() && map.would_overflow(h.record_count as usize) {
                        full = true;
                        return Ok(false);
                    }
                    let codec = compaction::compression_of(h)?;
                    let section = compaction::inflate(&bytes[HEADER_LEN..], codec)
                        .map_err(|e| LogError::Decode(format!("{e:#}")))?;
                    let all =
                        records::parse(&section).map_err(|e| LogError::Decode(e.to_string()))?;
                    for r in all {
                        if let Some(key) = r.key {
                            map.put(key, h.base_offset + i64::from(r.offset_delta));
                        }
                    }
                }
                reached = h.last_offset + 1;
                Ok(true)
            })?;
            if full {
                break;
            }
        }
        Ok(reached.max(self.first_dirty))
    }

    /// Runs the cleaning with `map` (cleared afterwards) and `throttle`,
    /// handing each cleaned group to `install` as soon as it is written, so
    /// the space of the segments it replaces is freed as the cleaning goes
    /// (`Log::install_group`, under the partition's lock). `None` when
    /// `install` refused a group: the log changed, the rest is not done.
    pub fn run(
        self,
        map: &mut OffsetMap,
        throttle: &mut Throttle,
        install: &mut dyn FnMut(CleanedGroup) -> Result<bool, LogError>,
    ) -> Result<Option<CleanOutput>, LogError> {
        let mut meter = Meter {
            throttle,
            stats: CleanStats::default(),
        };
        let result = self.clean(map, &mut meter, install);
        let mut stats = meter.stats;
        stats.keys = map.len() as u64;
        map.clear();
        let done = result.inspect_err(|_| self.discard())?;
        Ok(done.map(|(clean_to, delete_horizon)| CleanOutput {
            clean_to,
            delete_horizon,
            stats,
        }))
    }

    /// Removes `.cleaned` files left by a failed run.
    fn discard(&self) {
        for seg in &self.segments {
            let _ = std::fs::remove_file(cleaned_path(&self.dir, seg.base));
        }
    }

    fn clean(
        &self,
        map: &mut OffsetMap,
        meter: &mut Meter<'_>,
        install: &mut dyn FnMut(CleanedGroup) -> Result<bool, LogError>,
    ) -> Result<Option<(i64, Option<i64>)>, LogError> {
        let clean_to = self.build_map(map, meter)?;
        meter.stats.map_bytes = map.memory() as u64;
        let segments: Vec<&Planned> = self.segments.iter().filter(|s| s.base < clean_to).collect();
        let mut horizon: Option<i64> = None;
        let mut transactions = compaction::MarkerTracker::default();
        let mut i = 0;
        while i < segments.len() {
            // Neighbours merged while their sizes add up to a segment.
            let mut j = i + 1;
            let mut total = segments[i].size;
            while j < segments.len() && total + segments[j].size <= self.segment_bytes {
                total += segments[j].size;
                j += 1;
            }
            let group = &segments[i..j];
            // `segments` is a prefix of the job's: what follows the group.
            let after = self.segments.get(j).map_or(self.after, |s| s.base);
            let path = cleaned_path(&self.dir, group[0].base);
            let mut out = std::io::BufWriter::with_capacity(
                READ_CHUNK,
                File::create(&path).map_err(io(&path))?,
            );
            // Offsets of the markers this group drops.
            let mut dropped: HashSet<i64> = HashSet::new();
            for seg in group {
                meter.stats.bytes_before += seg.size;
                each_batch(&seg.path, seg.size, meter, |meter, bytes, h| {
                    let f = if h.attributes & CONTROL != 0 {
                        let marker = control::read_marker(bytes, &local(h))?.is_some();
                        let removable = marker && transactions.marker(h.producer_id);
                        let f = compaction::filter_marker(bytes, &local(h), removable, self.rules)?;
                        if f.outcome == Outcome::Drop {
                            dropped.insert(h.last_offset);
                        }
                        f
                    } else {
                        // Every record of an aborted transaction goes.
                        let aborted = self.aborted.contains(h);
                        let latest = |key: &[u8], offset: i64| {
                            !aborted && map.get(key).is_none_or(|l| offset >= l)
                        };
                        let keep_header = self.producers_last.contains(&h.base_offset);
                        let f = compaction::filter_batch(
                            bytes,
                            &local(h),
                            latest,
                            keep_header,
                            self.rules,
                        )?;
                        // A batch dropped now no longer holds its marker:
                        // a later group is installed only after this one.
                        if f.outcome != Outcome::Drop {
                            transactions.data(h);
                        }
                        f
                    };
                    meter.stats.records_removed += f.removed as u64;
                    if let Some(at) = f.delete_horizon {
                        horizon = Some(horizon.map_or(at, |h| h.min(at)));
                    }
                    let written: &[u8] = match &f.outcome {
                        Outcome::Keep => bytes,
                        Outcome::Rewrite(b) => b,
                        Outcome::Drop => &[],
                    };
                    out.write_all(written).map_err(io(&path))?;
                    meter.throttle.spend(written.len());
                    Ok(true)
                })?;
            }
            let file = out
                .into_inner()
                .map_err(|e| LogError::io(&path, e.into_error()))?;
            file.sync_all().map_err(io(&path))?;
            drop(file);
            let (segment, _) = Segment::open(
                &path,
                group[0].base,
                true,
                self.index_interval,
                self.rules.now_ms,
            )?;
            meter.stats.bytes_after += segment.size();
            let cleaned = CleanedGroup {
                replaced: group.iter().map(|s| (s.base, s.size)).collect(),
                after,
                segment,
                aborted: group
                    .iter()
                    .flat_map(|s| s.aborted.iter())
                    .filter(|a| !dropped.contains(&a.last_offset))
                    .cloned()
                    .collect(),
            };
            if !install(cleaned)? {
                return Ok(None);
            }
            i = j;
        }
        Ok(Some((clean_to, horizon)))
    }
}

fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.{CLEANED_SUFFIX}"))
}

fn swap_path(dir: &Path, first: i64, after: i64) -> PathBuf {
    dir.join(format!("{first:020}.{after:020}.{SWAP_SUFFIX}"))
}

/// The range a swap file's name says it replaces.
fn parse_swap(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(&format!(".{SWAP_SUFFIX}"))?;
    let (first, after) = stem.split_once('.')?;
    Some((first.parse().ok()?, after.parse().ok()?))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Deletes the files of the segments based in `first..after`.
fn delete_range(dir: &Path, first: i64, after: i64) -> Result<(), LogError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((base, ext)) = name.split_once('.') else {
            continue;
        };
        let in_range = base.parse::<i64>().is_ok_and(|b| first <= b && b < after);
        if in_range && matches!(ext, "log" | "index" | "timeindex" | "txnindex") {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Finishes what a crash interrupted, before a log opens: unfinished
/// cleanings are dropped, committed swaps completed.
pub fn recover(dir: &Path) -> Result<(), LogError> {
    let mut swaps = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(&format!(".{CLEANED_SUFFIX}")) {
            std::fs::remove_file(&path).map_err(io(&path))?;
        } else if let Some(range) = parse_swap(name) {
            swaps.push((range, path));
        }
    }
    for ((first, after), path) in swaps {
        delete_range(dir, first, after)?;
        let target = dir.join(segment::file_name(first));
        std::fs::rename(&path, &target).map_err(io(&target))?;
        tracing::warn!(log = %dir.display(), first, after, "completed a cleaned segment swap interrupted by a crash");
    }
    sync_dir(dir)
}

/// Reads `cleaner-offset-checkpoint`: the first dirty offset and the
/// earliest delete horizon (`None` when absent).
pub fn read_checkpoint(dir: &Path) -> (i64, Option<i64>) {
    let text = std::fs::read_to_string(dir.join(CHECKPOINT)).unwrap_or_default();
    let mut parts = text.split_whitespace().map(|p| p.parse::<i64>().ok());
    let first_dirty = parts.next().flatten().unwrap_or(0);
    let horizon = parts.next().flatten().filter(|&h| h >= 0);
    (first_dirty, horizon)
}

fn write_checkpoint(dir: &Path, first_dirty: i64, horizon: Option<i64>) -> Result<(), LogError> {
    let path = dir.join(CHECKPOINT);
    let tmp = dir.join(format!("{CHECKPOINT}.tmp"));
    std::fs::write(&tmp, format!("{first_dirty} {}\n", horizon.unwrap_or(-1))).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

impl Log {
    /// How dirty the log is now, if it is compacted; `high_watermark`
    /// bounds what may be cleaned (a partition passes its last stable
    /// offset, which is never above it).
    pub fn cleanable(&self, now_ms: i64, high_watermark: i64) -> Option<Cleanable> {
        if !self.config.cleanup.compact {
            return None;
        }
        let views: Vec<SegmentView> = self
            .segments
            .values()
            .map(|s| SegmentView {
                base: s.base_offset,
                next_offset: s.next_offset(),
                size: s.size(),
                max_timestamp: s.max_timestamp(),
            })
            .collect();
        // Read only when max.compaction.lag.ms is set (never overdue else).
        let first_dirty_ts = (self.config.max_compaction_lag_ms < i64::MAX)
            .then(|| self.first_timestamp_from(self.first_dirty.max(self.log_start_offset)))
            .flatten();
        Some(cleanable(
            &views,
            self.log_start_offset,
            self.first_dirty,
            high_watermark,
            now_ms,
            self.config.min_compaction_lag_ms,
            self.config.max_compaction_lag_ms,
            first_dirty_ts,
            self.delete_horizon,
        ))
    }

    /// The timestamp of the first batch at or after `offset` (its base
    /// timestamp, or its newest for a batch holding a delete horizon).
    fn first_timestamp_from(&self, offset: i64) -> Option<i64> {
        let data = self.read(offset, HEADER_LEN, true).ok()?;
        let h = batch::parse_prefix(&data, 0).ok()?;
        Some(if h.attributes & DELETE_HORIZON != 0 {
            h.max_timestamp
        } else {
            h.base_timestamp
        })
    }

    /// A cleaning of what `cleanable` allows, if it is due.
    /// `producers_last` are the base offsets of each producer's last batch.
    pub fn plan_clean(
        &self,
        now_ms: i64,
        high_watermark: i64,
        producers_last: HashSet<i64>,
    ) -> Option<CleanJob> {
        let c = self.cleanable(now_ms, high_watermark)?;
        if !c.due(self.config.min_cleanable_dirty_ratio) {
            return None;
        }
        let active = self.active().base_offset;
        let segments: Vec<Planned> = self
            .segments
            .values()
            .filter(|s| {
                s.base_offset < active && s.base_offset < c.first_uncleanable.max(c.first_dirty + 1)
            })
            .map(|s| Planned {
                base: s.base_offset,
                path: s.path().to_path_buf(),
                size: s.size(),
                aborted: s.aborted().to_vec(),
            })
            .collect();
        let last = segments.last()?.base;
        let after = self
            .segments
            .range(last + 1..)
            .next()
            .map_or(active, |(b, _)| *b);
        Some(CleanJob {
            dir: self.dir.clone(),
            segments,
            after,
            first_dirty: c.first_dirty,
            first_uncleanable: c.first_uncleanable,
            producers_last,
            // What a consumer of the cleaned range is told was aborted.
            aborted: AbortedBatches::new(
                &self.collect_aborted(self.log_start_offset, c.first_uncleanable),
            ),
            rules: Rules {
                now_ms,
                delete_retention_ms: self.config.delete_retention_ms,
            },
            segment_bytes: self.config.segment_bytes,
            index_interval: self.config.index_interval_bytes,
        })
    }

    /// Swaps a cleaned group in, unless the segments it read changed
    /// meanwhile (retention, DeleteRecords, a follower's truncation): then
    /// its file is dropped and `false` returned.
    pub fn install_group(&mut self, g: CleanedGroup) -> Result<bool, LogError> {
        let first = g.replaced[0].0;
        let now: Vec<(i64, u64)> = self
            .segments
            .range(first..g.after)
            .map(|(b, s)| (*b, s.size()))
            .collect();
        if now != g.replaced || !self.segments.contains_key(&g.after) {
            let path = g.segment.path().to_path_buf();
            drop(g.segment);
            std::fs::remove_file(&path).map_err(io(&path))?;
            return Ok(false);
        }
        let first_of_log = self.segments.keys().next().copied();
        let mut seg = g.segment;
        seg.rename(&swap_path(&self.dir, first, g.after))?;
        sync_dir(&self.dir)?;
        // Committed: from here `recover` finishes the swap after a crash.
        for (base, _) in &g.replaced {
            if let Some(old) = self.segments.remove(base) {
                old.delete()?;
            }
        }
        seg.rename(&self.dir.join(segment::file_name(first)))?;
        sync_dir(&self.dir)?;
        if seg.size() == 0 && Some(first) != first_of_log {
            // Nothing left, and it does not hold the log's start.
            seg.delete()?;
        } else {
            seg.set_aborted(g.aborted)?;
            seg.write_index_files()?;
            self.segments.insert(first, seg);
        }
        Ok(true)
    }

    /// Records a finished cleaning: how far the log is clean, and the
    /// earliest delete horizon of the tombstones it kept.
    pub fn finish_clean(&mut self, out: &CleanOutput) -> Result<(), LogError> {
        self.first_dirty = out.clean_to;
        self.delete_horizon = out.delete_horizon;
        write_checkpoint(&self.dir, self.first_dirty, self.delete_horizon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Cleanup, LogConfig};
    use bytes::Bytes;
    use kafka_protocol::records::Compression;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    /// (offset, key, value, timestamp) as a consumer reads it.
    type Rec = (i64, String, Option<String>, i64);

    fn compacted(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 64,
            cleanup: Cleanup {
                delete: false,
                compact: true,
            },
            min_cleanable_dirty_ratio: 0.0,
            delete_retention_ms: 1000,
            ..LogConfig::default()
        }
    }

    /// Every record of the log, read from its start as a consumer would.
    fn records_of(log: &Log) -> Vec<Rec> {
        let mut out = Vec::new();
        let mut at = log.log_start_offset();
        while at < log.log_end_offset() {
            let data = log.read(at, 1 << 20, true).expect("read");
            let headers = batch::validate_stored(&data).expect("stored batches are valid");
            let Some(last) = headers.last() else { break };
            for h in &headers {
                let one = Bytes::copy_from_slice(&data[h.position..h.position + h.size]);
                for r in batch::decode(one, 0, u32::MAX).expect("decodes").records {
                    let s = |b: &Option<Bytes>| {
                        b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
                    };
                    out.push((
                        r.offset,
                        s(&r.key).expect("keyed"),
                        s(&r.value),
                        r.timestamp,
                    ));
                }
            }
            at = last.last_offset + 1;
        }
        out
    }

    /// Runs `job`, installing what it cleans.
    fn run_and_install(log: &mut Log, job: CleanJob, map_memory: usize) {
        let out = job
            .run(
                &mut OffsetMap::with_memory(map_memory),
                &mut Throttle::new(f64::MAX),
                &mut |g| log.install_group(g),
            )
            .expect("clean")
            .expect("the log stays as planned");
        log.finish_clean(&out).expect("finish");
    }

    /// Cleans until nothing is due (several passes when the map is small).
    fn clean_fully(log: &mut Log, now: i64, map_memory: usize) -> usize {
        let mut passes = 0;
        let end = log.log_end_offset();
        while let Some(job) = log.plan_clean(now, end, HashSet::new()) {
            let before = log.first_dirty;
            run_and_install(log, job, map_memory);
            passes += 1;
            if log.first_dirty == before
                && !log.cleanable(now, end).is_some_and(|c| c.horizon_passed)
            {
                break;
            }
            assert!(passes < 1000, "cleaning does not converge");
        }
        passes
    }

    /// What compaction must leave of `written`, cleaned below `clean_to`:
    /// there, each key's latest record (its tombstone too, before its
    /// horizon); above it, everything.
    fn model(written: &[Rec], clean_to: i64, tombstones_gone: bool) -> Vec<Rec> {
        let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
        for r in written.iter().filter(|r| r.0 < clean_to) {
            latest.insert(&r.1, r.0);
        }
        written
            .iter()
            .filter(|r| {
                r.0 >= clean_to
                    || (latest[r.1.as_str()] == r.0 && (r.2.is_some() || !tombstones_gone))
            })
            .cloned()
            .collect()
    }

    /// Appends random batches of keyed records (some tombstones, every
    /// codec) and returns what was written.
    fn write_random(
        log: &mut Log,
        rng: &mut rand::rngs::StdRng,
        batches: usize,
        keys: u32,
    ) -> Vec<Rec> {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        let mut written = Vec::new();
        for _ in 0..batches {
            let n = rng.gen_range(1..6);
            let base_ts = 1_000 + rng.gen_range(0..1000);
            let recs: Vec<(String, Option<String>, i64)> = (0..n)
                .map(|i| {
                    let key = format!("key-{}", rng.gen_range(0..keys));
                    let value = (!rng.gen_bool(0.15)).then(|| format!("v{}", rng.gen::<u32>()));
                    (key, value, base_ts + i)
                })
                .collect();
            let buf = batch::encode(
                recs.iter().map(|(k, v, t)| {
                    (Some(Bytes::from(k.clone())), v.clone().map(Bytes::from), *t)
                }),
                codecs[rng.gen_range(0..codecs.len())],
            )
            .expect("encode");
            let info = log.append(buf.freeze(), 1).expect("append");
            for (i, (k, v, t)) in recs.into_iter().enumerate() {
                written.push((info.base_offset + i as i64, k, v, t));
            }
        }
        written
    }

    #[test]
    fn compaction_keeps_the_latest_record_of_each_key_by_property() {
        let (mut total_written, mut total_left, mut multi_pass) = (0, 0, 0);
        for seed in 0..40u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let dir = tempfile::tempdir().expect("tempdir");
            let mut log = Log::open(dir.path(), compacted(rng.gen_range(200..2000))).expect("open");
            let keys = rng.gen_range(1..40);
            // A map of a few keys only makes some seeds clean in passes.
            let memory = if seed % 3 == 0 { 5 * 24 } else { 1 << 20 };
            let batches = rng.gen_range(5..120);
            let mut written = write_random(&mut log, &mut rng, batches, keys);
            let now = 10_000;
            if clean_fully(&mut log, now, memory) > 1 {
                multi_pass += 1;
            }
            let active = log.active().base_offset;
            assert_eq!(
                records_of(&log),
                model(&written, active, false),
                "seed {seed}"
            );
            // More writes, cleaned again, against everything written.
            let batches = rng.gen_range(1..60);
            written.extend(write_random(&mut log, &mut rng, batches, keys));
            clean_fully(&mut log, now, memory);
            let active = log.active().base_offset;
            assert_eq!(
                records_of(&log),
                model(&written, active, false),
                "seed {seed}, again"
            );
            // Past the tombstones' horizon, they go too.
            clean_fully(&mut log, now + 1000, memory);
            let after = records_of(&log);
            assert_eq!(
                after,
                model(&written, active, true),
                "seed {seed}, tombstones"
            );
            // What is stored reopens the same, and takes appends after it.
            let end = log.log_end_offset();
            drop(log);
            let mut log = Log::open(dir.path(), compacted(500)).expect("reopen");
            assert_eq!(records_of(&log), after, "seed {seed}, reopened");
            assert_eq!(log.log_end_offset(), end);
            let more = write_random(&mut log, &mut rng, 1, keys);
            assert_eq!(more[0].0, end);
            total_written += written.len();
            total_left += after.len();
        }
        // The runs did compact, and some in several passes.
        assert!(
            total_left * 2 < total_written,
            "{total_left} of {total_written} left"
        );
        assert!(multi_pass > 0);
    }

    #[test]
    fn a_cleaning_interrupted_at_any_step_loses_nothing_and_leaves_no_duplicate() {
        let written_log = |dir: &Path| {
            let mut log = Log::open(dir, compacted(300)).expect("open");
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let written = write_random(&mut log, &mut rng, 60, 8);
            (log, written)
        };
        for step in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let (log, written) = written_log(dir.path());
            let before = records_of(&log);
            let end = log.log_end_offset();
            let job = log.plan_clean(10_000, end, HashSet::new()).expect("due");
            // The first group written, and the cleaning stopped there.
            let mut taken = None;
            let stopped = job
                .run(
                    &mut OffsetMap::with_memory(1 << 20),
                    &mut Throttle::new(f64::MAX),
                    &mut |g| {
                        taken = Some(g);
                        Ok(false)
                    },
                )
                .expect("clean");
            assert!(stopped.is_none());
            let expect_cleaned = model(&written, log.active().base_offset, false);
            let first = taken.expect("a group");
            let (base, after) = (first.replaced[0].0, first.after);
            let cleaned = first.segment.path().to_path_buf();
            drop(log);
            match step {
                // Killed while writing: the cleaned files are dropped.
                0 => {}
                // Killed right after the commit (the swap file named).
                1 => std::fs::rename(&cleaned, swap_path(dir.path(), base, after)).expect("swap"),
                // Killed halfway through deleting the old segments.
                _ => {
                    std::fs::rename(&cleaned, swap_path(dir.path(), base, after)).expect("swap");
                    std::fs::remove_file(dir.path().join(segment::file_name(base))).expect("rm");
                }
            }
            drop(first);
            let log = Log::open(dir.path(), compacted(300)).expect("recover");
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .expect("dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                names
                    .iter()
                    .all(|n| !n.ends_with(".cleaned") && !n.ends_with(".swap")),
                "step {step}: {names:?}"
            );
            // The replaced segments' aborted transaction index went with
            // them: the swapped-in segment's is unknown until rebuilt.
            let index = dir.path().join(format!("{base:020}.txnindex"));
            assert_eq!(index.exists(), step == 0, "step {step}");
            let known = log.segments.get(&base).map(|s| s.aborted_known());
            assert_eq!(known, Some(step == 0), "step {step}");
            let now = records_of(&log);
            if step == 0 {
                assert_eq!(now, before, "an unfinished cleaning changes nothing");
            } else {
                // The first group is cleaned, the rest as written.
                let group_end = after;
                let want: Vec<Rec> = before
                    .iter()
                    .filter(|r| r.0 >= group_end || expect_cleaned.contains(r))
                    .cloned()
                    .collect();
                assert_eq!(now, want, "step {step}");
            }
            // Whatever the step, each key's newest record is there.
            let newest: BTreeMap<&str, &Rec> = written.iter().map(|r| (r.1.as_str(), r)).collect();
            for r in newest.values() {
                assert!(now.contains(r), "step {step}: lost {r:?}");
            }
        }
    }

    #[test]
    fn a_producers_last_batch_keeps_its_header_and_keyless_records_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), compacted(100)).expect("open");
        let one = |k: &str, v: &str| {
            batch::encode(
                [(
                    Some(Bytes::from(k.to_string())),
                    Some(Bytes::from(v.to_string())),
                    1,
                )],
                Compression::None,
            )
            .expect("encode")
        };
        let first = log
            .append(one("a", "1").freeze(), 0)
            .expect("append")
            .base_offset;
        for i in 0..10 {
            log.append(one("a", &format!("{i}")).freeze(), 0)
                .expect("append");
        }
        let end = log.log_end_offset();
        let keep = HashSet::from([first]);
        let job = log.plan_clean(10_000, end, keep).expect("due");
        run_and_install(&mut log, job, 1 << 20);
        let data = log.read(0, 1 << 20, true).expect("read");
        let headers = batch::validate_stored(&data).expect("valid");
        assert_eq!(
            (headers[0].base_offset, headers[0].record_count),
            (first, 0)
        );
        // Once a newer batch is the producer's last, the empty header goes.
        for i in 0..3 {
            log.append(one("b", &format!("{i}")).freeze(), 0)
                .expect("append");
        }
        let end = log.log_end_offset();
        let job = log.plan_clean(10_000, end, HashSet::new()).expect("due");
        run_and_install(&mut log, job, 1 << 20);
        let data = log.read(0, 1 << 20, true).expect("read");
        let headers = batch::validate_stored(&data).expect("valid");
        assert!(headers[0].base_offset > first && headers[0].record_count > 0);
        let keyless =
            batch::encode([(None, Some(Bytes::from("x")), 1)], Compression::Gzip).expect("encode");
        assert!(matches!(
            log.append(keyless.freeze(), 0),
            Err(LogError::KeylessOnCompacted)
        ));
    }

    #[test]
    fn a_marker_goes_after_its_transactions_records_and_then_its_horizon() {
        use crate::log::control::Marker;
        use gregor_client::batch::{encode_for, Transactional};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), compacted(100)).expect("open");
        let record = |k: &str, v: &str| {
            [(
                Some(Bytes::from(k.to_string())),
                Some(Bytes::from(v.to_string())),
                1,
            )]
        };
        let of = |producer_id| {
            Some(Transactional {
                producer_id,
                producer_epoch: 0,
            })
        };
        let append = |log: &mut Log, b: bytes::BytesMut| {
            log.append(b.freeze(), 0).expect("append").base_offset
        };
        let marker = |producer_id, commit| {
            Marker {
                commit,
                coordinator_epoch: 0,
            }
            .encode(producer_id, 0, 1)
            .expect("marker")
        };
        let plain =
            |k: &str, v: &str| encode_for(record(k, v), Compression::None, None).expect("encode");
        // Producer 7 commits a=1; producer 8 aborts b=1; then a=2.
        append(
            &mut log,
            encode_for(record("a", "1"), Compression::None, of(7)).expect("encode"),
        );
        let commit = append(&mut log, marker(7, true));
        let aborted = append(
            &mut log,
            encode_for(record("b", "1"), Compression::None, of(8)).expect("encode"),
        );
        let abort = append(&mut log, marker(8, false));
        log.append_aborted(AbortedTxn {
            producer_id: 8,
            first_offset: aborted,
            last_offset: abort,
            last_stable_offset: abort + 1,
        })
        .expect("index");
        append(&mut log, plain("a", "2"));
        append(&mut log, plain("c", "1"));
        // (offset, has a delete horizon) of each marker.
        let markers = |log: &Log| -> Vec<(i64, bool)> {
            let mut found = Vec::new();
            let mut at = log.log_start_offset();
            while at < log.log_end_offset() {
                let data = log.read(at, 1 << 20, true).expect("read");
                let headers = batch::validate_stored(&data).expect("valid");
                let Some(last) = headers.last() else { break };
                found.extend(
                    headers
                        .iter()
                        .filter(|h| h.attributes & CONTROL != 0)
                        .map(|h| (h.base_offset, h.attributes & DELETE_HORIZON != 0)),
                );
                at = last.last_offset + 1;
            }
            found
        };
        let clean = |log: &mut Log, now: i64| {
            let end = log.log_end_offset();
            let job = log.plan_clean(now, end, HashSet::new()).expect("due");
            run_and_install(log, job, 1 << 20);
        };

        // A transaction with a record left keeps its marker as it is.
        let open = append(
            &mut log,
            encode_for(record("x", "1"), Compression::None, of(9)).expect("encode"),
        );
        let kept = append(&mut log, marker(9, true));
        append(&mut log, plain("c", "2"));
        assert!(open < kept);

        // The transactions' records go (a=1 is shadowed, b=1 aborted), so
        // their markers get a delete horizon; x=1 stays, and its marker.
        clean(&mut log, 10_000);
        assert_eq!(
            markers(&log),
            [(commit, true), (abort, true), (kept, false)]
        );
        assert_eq!(log.collect_aborted(0, log.log_end_offset()).len(), 1);
        // Before it passes, nothing changes; once it passed
        // (delete.retention.ms later) a cleaning is due and drops them,
        // and the aborted transaction's index entry with them.
        append(&mut log, plain("d", "1"));
        clean(&mut log, 10_999);
        assert_eq!(markers(&log).len(), 3);
        clean(&mut log, 10_000 + 1000);
        assert_eq!(markers(&log), [(kept, false)]);
        assert!(log.collect_aborted(0, log.log_end_offset()).is_empty());
        // The data records (not the kept marker's control record).
        let values: Vec<(String, Option<String>)> = records_of(&log)
            .into_iter()
            .filter(|r| !r.1.starts_with('\0'))
            .map(|r| (r.1, r.2))
            .collect();
        let want = [("a", "2"), ("x", "1"), ("c", "2"), ("d", "1")]
            .map(|(k, v)| (k.to_string(), Some(v.to_string())));
        assert_eq!(values, want);
    }

    fn seg(base: i64, next_offset: i64, size: u64, max_timestamp: i64) -> SegmentView {
        SegmentView {
            base,
            next_offset,
            size,
            max_timestamp,
        }
    }

    #[test]
    fn what_may_be_cleaned_table() {
        // Three sealed segments of 100 bytes and the active one.
        let segs = [
            seg(0, 10, 100, 1000),
            seg(10, 20, 100, 2000),
            seg(20, 30, 100, 3000),
            seg(30, 35, 50, 4000),
        ];
        let never = i64::MAX;
        // (checkpoint, hw, now, min lag, max lag, first dirty ts, horizon)
        // -> (first dirty, first uncleanable, clean, dirty, overdue, due at 0.5)
        let cases = [
            // All dirty, up to the active segment.
            (
                (0, 35, 5000, 0, never, Some(1000), None),
                (0, 30, 0, 300, false, true),
            ),
            // The high watermark bounds it.
            (
                (0, 15, 5000, 0, never, Some(1000), None),
                (0, 15, 0, 200, false, true),
            ),
            // Cleaned to 20: a third dirty, under the ratio...
            (
                (20, 35, 5000, 0, never, Some(3000), None),
                (20, 30, 200, 100, false, false),
            ),
            // ... unless overdue by max.compaction.lag.ms ...
            (
                (20, 35, 5000, 0, 1000, Some(3000), None),
                (20, 30, 200, 100, true, true),
            ),
            // ... or a tombstone's horizon has passed.
            (
                (20, 35, 5000, 0, never, Some(3000), Some(4000)),
                (20, 30, 200, 100, false, true),
            ),
            // min.compaction.lag.ms keeps segments with young records.
            (
                (0, 35, 5000, 3500, never, Some(1000), None),
                (0, 10, 0, 100, false, true),
            ),
            // A checkpoint past the log's end (truncated) restarts at the start.
            (
                (99, 35, 5000, 0, never, Some(1000), None),
                (0, 30, 0, 300, false, true),
            ),
            // Nothing sealed is dirty.
            (
                (30, 35, 5000, 0, 1, Some(4000), None),
                (30, 30, 300, 0, false, false),
            ),
        ];
        for ((checkpoint, hw, now, min_lag, max_lag, ts, horizon), want) in cases {
            let c = cleanable(&segs, 0, checkpoint, hw, now, min_lag, max_lag, ts, horizon);
            assert_eq!(
                (
                    c.first_dirty,
                    c.first_uncleanable,
                    c.clean_bytes,
                    c.dirty_bytes,
                    c.overdue,
                    c.due(0.5)
                ),
                want,
                "checkpoint {checkpoint}, hw {hw}, min lag {min_lag}, max lag {max_lag}"
            );
        }
    }

    #[test]
    fn swap_names_round_trip() {
        let p = swap_path(Path::new("/x"), 5, 120);
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(parse_swap(name), Some((5, 120)));
        assert_eq!(parse_swap("00000000000000000005.log"), None);
    }
}

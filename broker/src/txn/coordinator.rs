//! The transaction coordinator: serves the transactional ids of the
//! `__transaction_state` partitions this broker leads (the coordinator
//! epoch is the partition's leader epoch). Each request is decided by the
//! pure transitions of `state` under one std mutex, never held across an
//! await; the decided state is written to the transaction log (`log`) by
//! a task of its own, so a client that goes away mid-write cannot leave
//! the id stuck, and applied once the in-sync replicas hold it. Meanwhile
//! the id is *pending* and other requests on it get
//! CONCURRENT_TRANSACTIONS, as in Kafka. A prepared commit or abort is
//! handed to the marker sender (`markers`), which reports back when every
//! partition has its marker so the transaction can be completed. A timer
//! aborts transactions that outlive their timeout and forgets idle ids.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use super::error::TxnError;
use super::log::{self, TRANSACTION_TOPIC};
use super::markers::MarkerJob;
use super::state::{EndPlan, InitPlan, ProducerIdEpoch, TxnMetadata, TxnState};
use crate::clock::now_ms;
use crate::group::offset_records::partition_for;
use crate::leadership::{Leadership, LoadTicket};
use crate::metadata::quorum::Quorum;
use crate::partition::Partition;
use crate::producer_id::ProducerIdAllocator;
use crate::topic::TopicRegistry;

/// How long a write to the transaction log waits for its replicas
/// (Kafka's coordinator uses `request.timeout.ms`, 30 s by default).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait before writing a completion again after the log
/// refused it.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// The coordinator's settings from the broker configuration.
#[derive(Debug, Clone, Copy)]
pub struct CoordinatorSettings {
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    pub abort_interval: Duration,
    /// `transactional.id.expiration.ms`
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`
    pub expiry_interval: Duration,
    /// `min.insync.replicas` of the transaction log when its topic does
    /// not say.
    pub min_isr: usize,
}

/// One transactional id's state, and whether a write of it is under way.
#[derive(Debug)]
struct Entry {
    meta: TxnMetadata,
    pending: bool,
}

struct Inner {
    txns: HashMap<String, Entry>,
    leadership: Leadership,
    /// Partitions served: index → (the replica, the coordinator epoch).
    served: HashMap<i32, (Arc<Partition>, i32)>,
}

/// A transactional id's state as DescribeTransactions and
/// ListTransactions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its state.
    pub meta: TxnMetadata,
}

/// Coordinates the transactions of this broker's transaction log
/// partitions.
pub struct TransactionCoordinator {
    inner: Mutex<Inner>,
    settings: CoordinatorSettings,
    topics: Arc<TopicRegistry>,
    quorum: Arc<Quorum>,
    producer_ids: Arc<ProducerIdAllocator>,
    markers: mpsc::UnboundedSender<MarkerJob>,
}

/// What one round of InitProducerId comes to.
enum InitStep {
    /// A producer id must be allocated first.
    NeedProducerId,
    /// Write `next` (the id is pending); with `fence`, it aborts a
    /// transaction under way and the producer is told to retry.
    Write {
        served: Served,
        next: TxnMetadata,
        fence: bool,
    },
}

/// Where a transactional id is served from: its partition and the
/// coordinator epoch.
struct Served {
    partition: Arc<Partition>,
    epoch: i32,
}

impl TransactionCoordinator {
    /// A coordinator that hands prepared transactions to `markers` (the
    /// marker sender's queue: one job per prepared transaction, so it is
    /// bounded by the transactional ids this broker coordinates).
    pub fn new(
        settings: CoordinatorSettings,
        topics: Arc<TopicRegistry>,
        quorum: Arc<Quorum>,
        producer_ids: Arc<ProducerIdAllocator>,
        markers: mpsc::UnboundedSender<MarkerJob>,
    ) -> TransactionCoordinator {
        TransactionCoordinator {
            inner: Mutex::new(Inner {
                txns: HashMap::new(),
                leadership: Leadership::default(),
                served: HashMap::new(),
            }),
            settings,
            topics,
            quorum,
            producer_ids,
            markers,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change under the lock is a whole-value replacement, so the
        // state is consistent even after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Partitions of the transaction log (none until it exists), as the
    /// applied metadata has it (the replicas may not have caught up yet).
    pub fn log_partitions(&self) -> Option<i32> {
        self.quorum
            .view()
            .image
            .topics
            .get(TRANSACTION_TOPIC)
            .map(|t| t.partitions.len() as i32)
    }

    /// The transaction log partition of `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> Option<i32> {
        Some(partition_for(transactional_id, self.log_partitions()?))
    }

    fn served(&self, inner: &Inner, transactional_id: &str) -> Result<Served, TxnError> {
        let index = self
            .partition_for(transactional_id)
            .ok_or(TxnError::NotCoordinator)?;
        if let Some((p, epoch)) = inner.served.get(&index) {
            return Ok(Served {
                partition: p.clone(),
                epoch: *epoch,
            });
        }
        // Named leader by the metadata, not yet taken up (the replicas
        // follow the metadata first): about to load, as in Kafka.
        let elected =
            self.quorum
                .view()
                .image
                .is_leader(self.quorum.node_id(), TRANSACTION_TOPIC, index);
        if elected || inner.leadership.is_loading(index) {
            Err(TxnError::LoadInProgress)
        } else {
            Err(TxnError::NotCoordinator)
        }
    }

    fn min_isr(&self) -> usize {
        self.topics
            .get(TRANSACTION_TOPIC)
            .and_then(|t| t.configs.get("min.insync.replicas")?.parse().ok())
            .unwrap_or(self.settings.min_isr)
            .max(1)
    }

    async fn new_producer_id(&self) -> Result<i64, TxnError> {
        self.producer_ids
            .next(&self.quorum)
            .await
            .map_err(|e| TxnError::NotAvailable(format!("no producer id: {e}")))
    }

    /// InitProducerId with a transactional id: the producer id and epoch
    /// the producer writes with from now on. A transaction of an earlier
    /// producer still under way is aborted first (CONCURRENT_TRANSACTIONS
    /// until it is).
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdEpoch>,
    ) -> Result<ProducerIdEpoch, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty transactional id"));
        }
        if timeout_ms <= 0 || timeout_ms > self.settings.max_timeout_ms {
            return Err(TxnError::InvalidTimeout(timeout_ms));
        }
        // A producer id allocated (outside the lock) for a new id or a
        // rotation, used by the next round.
        let mut fresh: Option<i64> = None;
        loop {
            let (served, next, fence) =
                match self.plan_init(transactional_id, timeout_ms, expected, &mut fresh)? {
                    InitStep::NeedProducerId => {
                        fresh = Some(self.new_producer_id().await?);
                        continue;
                    }
                    InitStep::Write {
                        served,
                        next,
                        fence,
                    } => (served, next, fence),
                };
            self.transit(transactional_id, &served, Some(next.clone()))
                .await?;
            if fence {
                tracing::info!(
                    transactional_id,
                    producer_id = next.producer_id,
                    epoch = next.producer_epoch,
                    "a new producer fenced the one whose transaction was under way; aborting it"
                );
                self.send_markers(transactional_id, served.epoch, &next);
                return Err(TxnError::Concurrent);
            }
            tracing::info!(
                transactional_id,
                producer_id = next.producer_id,
                epoch = next.producer_epoch,
                "initialized transactional producer"
            );
            return Ok(ProducerIdEpoch {
                id: next.producer_id,
                epoch: next.producer_epoch,
            });
        }
    }

    /// One round of InitProducerId under the lock: the write to make, or a
    /// producer id to allocate first (taken from `fresh` next round).
    fn plan_init(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdEpoch>,
        fresh: &mut Option<i64>,
    ) -> Result<InitStep, TxnError> {
        let now = now_ms();
        let mut inner = self.lock();
        let served = self.served(&inner, transactional_id)?;
        if !inner.txns.contains_key(transactional_id) {
            let Some(id) = fresh.take() else {
                return Ok(InitStep::NeedProducerId);
            };
            inner.txns.insert(
                transactional_id.to_string(),
                Entry {
                    meta: TxnMetadata::new(id, timeout_ms, now),
                    pending: false,
                },
            );
        }
        let Some(entry) = inner.txns.get_mut(transactional_id) else {
            return Err(TxnError::NotCoordinator);
        };
        let (next, fence) = match entry
            .meta
            .plan_init(timeout_ms, expected, entry.pending, now)?
        {
            InitPlan::Write(m) => (m, false),
            InitPlan::FenceOngoing(m) => (m, true),
            InitPlan::NewProducerId => match fresh.take() {
                Some(id) => (entry.meta.rotated(id, timeout_ms, expected, now), false),
                None => return Ok(InitStep::NeedProducerId),
            },
        };
        entry.pending = true;
        Ok(InitStep::Write {
            served,
            next,
            fence,
        })
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn; from transaction version
    /// 2 a partition leader's or group coordinator's add for the producer):
    /// the partitions join the producer's transaction. `version`: the
    /// transaction version the producer speaks.
    pub async fn add_partitions(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerIdEpoch,
        partitions: BTreeSet<(String, i32)>,
        version: i16,
    ) -> Result<(), TxnError> {
        let decided = self.decide(transactional_id, |m, pending| {
            m.add_partitions(producer, &partitions, pending, now_ms(), version)
        })?;
        match decided {
            Some((served, next)) => self.transit(transactional_id, &served, Some(next)).await,
            None => Ok(()),
        }
    }

    /// Decides, under the lock, the next state of an existing id (Kafka
    /// answers INVALID_PRODUCER_ID_MAPPING for an unknown one) from its
    /// state and whether a write of it is under way; a state to write
    /// makes the id pending. `None`: nothing to write.
    fn decide(
        &self,
        transactional_id: &str,
        next: impl FnOnce(&TxnMetadata, bool) -> Result<Option<TxnMetadata>, TxnError>,
    ) -> Result<Option<(Served, TxnMetadata)>, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty transactional id"));
        }
        let mut inner = self.lock();
        let served = self.served(&inner, transactional_id)?;
        let entry = inner
            .txns
            .get_mut(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        let Some(next) = next(&entry.meta, entry.pending)? else {
            return Ok(None);
        };
        entry.pending = true;
        Ok(Some((served, next)))
    }

    /// KIP-890 part 1: whether each partition is in the producer's
    /// transaction (`Ok(false)`: not added, TRANSACTION_ABORTABLE).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer: ProducerIdEpoch,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty transactional id"));
        }
        let inner = self.lock();
        self.served(&inner, transactional_id)?;
        let entry = inner
            .txns
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        partitions
            .iter()
            .map(|p| entry.meta.verify_partition(producer, p))
            .collect()
    }

    /// EndTxn: commits or aborts the producer's transaction, in `version`
    /// of the transaction protocol. Answered, with the producer id and
    /// epoch the producer goes on with (bumped from version 2), once the
    /// decision is in the transaction log; the markers follow.
    pub async fn end_txn(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerIdEpoch,
        commit: bool,
        version: i16,
    ) -> Result<ProducerIdEpoch, TxnError> {
        // A producer id allocated (outside the lock) for an exhausted
        // epoch, used by the next round.
        let mut fresh = None;
        loop {
            let mut done = None;
            let mut need_id = false;
            let decided = self.decide(transactional_id, |m, pending| {
                match m.end(producer, commit, pending, now_ms(), version, fresh)? {
                    EndPlan::Write(next) => Ok(Some(next)),
                    EndPlan::Done(current) => {
                        done = Some(current);
                        Ok(None)
                    }
                    EndPlan::NewProducerId => {
                        need_id = true;
                        Ok(None)
                    }
                }
            })?;
            let Some((served, next)) = decided else {
                if need_id {
                    fresh = Some(self.new_producer_id().await?);
                    continue;
                }
                return done.ok_or(TxnError::NotCoordinator);
            };
            self.transit(transactional_id, &served, Some(next.clone()))
                .await?;
            self.send_markers(transactional_id, served.epoch, &next);
            return Ok(next.answer());
        }
    }

    /// DescribeTransactions of one id.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnMetadata, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest("empty transactional id"));
        }
        let inner = self.lock();
        self.served(&inner, transactional_id)?;
        inner
            .txns
            .get(transactional_id)
            .filter(|e| e.meta.state != TxnState::Dead)
            .map(|e| e.meta.clone())
            .ok_or(TxnError::NotFound)
    }

    /// Every id coordinated here (ListTransactions); refused while a
    /// partition of the log is being loaded, as Kafka does.
    pub fn list(&self) -> Result<Vec<TxnListing>, TxnError> {
        let inner = self.lock();
        if inner.leadership.any_loading() {
            return Err(TxnError::LoadInProgress);
        }
        let mut all: Vec<TxnListing> = inner
            .txns
            .iter()
            .filter(|(_, e)| e.meta.state != TxnState::Dead)
            .map(|(id, e)| TxnListing {
                transactional_id: id.clone(),
                meta: e.meta.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(all)
    }

    /// Writes the id's next state (`None`: forget the id) in a task of its
    /// own and applies it once the replicas hold it; the id stops being
    /// pending either way.
    async fn transit(
        self: &Arc<Self>,
        transactional_id: &str,
        served: &Served,
        next: Option<TxnMetadata>,
    ) -> Result<(), TxnError> {
        let me = self.clone();
        let id = transactional_id.to_string();
        let partition = served.partition.clone();
        let epoch = served.epoch;
        let task = tokio::spawn(async move {
            let written = log::write(
                &partition,
                epoch,
                &id,
                next.as_ref(),
                me.min_isr(),
                WRITE_TIMEOUT,
            )
            .await;
            me.apply(&id, partition.index, epoch, next, written)
        });
        task.await
            .map_err(|e| TxnError::NotAvailable(format!("transaction log write failed: {e}")))?
    }

    /// Applies a finished write, if this broker still coordinates the id in
    /// the epoch it was written in.
    fn apply(
        &self,
        transactional_id: &str,
        index: i32,
        epoch: i32,
        next: Option<TxnMetadata>,
        written: Result<(), TxnError>,
    ) -> Result<(), TxnError> {
        let mut inner = self.lock();
        let still = inner.served.get(&index).is_some_and(|(_, e)| *e == epoch);
        if !still {
            // The partition moved (its state was dropped or reloaded).
            return Err(TxnError::NotCoordinator);
        }
        let Some(entry) = inner.txns.get_mut(transactional_id) else {
            return written.and(Err(TxnError::NotCoordinator));
        };
        entry.pending = false;
        written?;
        match next {
            Some(m) => entry.meta = m,
            None => {
                inner.txns.remove(transactional_id);
            }
        }
        Ok(())
    }

    /// Hands a prepared transaction to the marker sender.
    fn send_markers(&self, transactional_id: &str, coordinator_epoch: i32, m: &TxnMetadata) {
        let job = MarkerJob {
            transactional_id: transactional_id.to_string(),
            coordinator_epoch,
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit: m.state == TxnState::PrepareCommit,
            // Transaction versions are 0 to 2.
            transaction_version: i8::try_from(m.client_version).unwrap_or(i8::MAX),
            partitions: m.partitions.clone(),
        };
        if self.markers.send(job).is_err() {
            tracing::warn!(
                transactional_id,
                "the marker sender has stopped; the transaction completes when a coordinator loads it again"
            );
        }
    }

    /// Whether the marker job still stands: this broker coordinates the
    /// id in the job's epoch and the transaction is still the one prepared.
    pub fn job_stands(&self, job: &MarkerJob) -> bool {
        let inner = self.lock();
        self.still_prepared(&inner, job)
    }

    fn still_prepared(&self, inner: &Inner, job: &MarkerJob) -> bool {
        let Some(index) = self.partition_for(&job.transactional_id) else {
            return false;
        };
        let served = inner
            .served
            .get(&index)
            .is_some_and(|(_, e)| *e == job.coordinator_epoch);
        let prepared = if job.commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        served
            && inner.txns.get(&job.transactional_id).is_some_and(|e| {
                e.meta.state == prepared
                    && e.meta.producer_id == job.producer_id
                    && e.meta.producer_epoch == job.producer_epoch
            })
    }

    /// Every partition of a prepared transaction has its marker: writes its
    /// completion, retrying while the log cannot take it and this broker
    /// still coordinates the id.
    pub async fn complete(self: &Arc<Self>, job: &MarkerJob) {
        loop {
            let step = {
                let mut inner = self.lock();
                if !self.still_prepared(&inner, job) {
                    return;
                }
                match self.served(&inner, &job.transactional_id) {
                    Ok(served) => inner
                        .txns
                        .get_mut(&job.transactional_id)
                        .filter(|e| !e.pending)
                        .and_then(|e| {
                            let next = e.meta.complete(now_ms())?;
                            e.pending = true;
                            Some((served, next))
                        }),
                    Err(_) => return,
                }
            };
            // None: another write of the id is under way; try again shortly.
            if let Some((served, next)) = step {
                match self
                    .transit(&job.transactional_id, &served, Some(next))
                    .await
                {
                    Ok(()) => {
                        tracing::debug!(transactional_id = %job.transactional_id, commit = job.commit, "transaction complete");
                        return;
                    }
                    Err(TxnError::NotCoordinator) => return,
                    Err(e) => {
                        tracing::warn!(transactional_id = %job.transactional_id, error = %e, "cannot write the transaction's completion; retrying");
                    }
                }
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// Aborts, under a bumped epoch (fencing their producers), the
    /// transactions that outlived their timeout.
    async fn abort_timed_out(self: &Arc<Self>) {
        let now = now_ms();
        let due = self.take_due(|m| m.timed_out(now).then(|| Some(m.fence_and_abort(now))));
        for (id, served, next) in due {
            match self.transit(&id, &served, next.clone()).await {
                Ok(()) => {
                    if let Some(next) = next {
                        tracing::info!(transactional_id = %id, producer_id = next.producer_id, timeout_ms = next.timeout_ms, "aborting a transaction that outlived its timeout");
                        self.send_markers(&id, served.epoch, &next);
                    }
                }
                Err(e) => {
                    tracing::warn!(transactional_id = %id, error = %e, "cannot abort a timed-out transaction; trying again later")
                }
            }
        }
    }

    /// Forgets the ids idle for longer than `transactional.id.expiration.ms`
    /// (a tombstone in the log).
    async fn expire_ids(self: &Arc<Self>) {
        let now = now_ms();
        let expiration = self.settings.id_expiration_ms;
        let due = self.take_due(|m| m.expired(now, expiration).then_some(None));
        for (id, served, _) in due {
            match self.transit(&id, &served, None).await {
                Ok(()) => {
                    tracing::info!(transactional_id = %id, "forgot an expired transactional id")
                }
                Err(e) => {
                    tracing::debug!(transactional_id = %id, error = %e, "cannot expire a transactional id now")
                }
            }
        }
    }

    /// The served ids, not pending, for which `next` decides a state to
    /// write (`Some(None)`: a tombstone); each is marked pending.
    fn take_due(
        &self,
        next: impl Fn(&TxnMetadata) -> Option<Option<TxnMetadata>>,
    ) -> Vec<(String, Served, Option<TxnMetadata>)> {
        let mut inner = self.lock();
        let ids: Vec<String> = inner
            .txns
            .iter()
            .filter(|(_, e)| !e.pending)
            .map(|(id, _)| id.clone())
            .collect();
        let mut due = Vec::new();
        for id in ids {
            let Ok(served) = self.served(&inner, &id) else {
                continue;
            };
            if let Some(e) = inner.txns.get_mut(&id) {
                if let Some(state) = next(&e.meta) {
                    e.pending = true;
                    due.push((id, served, state));
                }
            }
        }
        due
    }

    /// Runs the coordinator's timers until the broker stops.
    pub async fn run_timers(self: Arc<Self>) {
        let mut abort = tokio::time::interval(self.settings.abort_interval);
        let mut expire = tokio::time::interval(self.settings.expiry_interval);
        abort.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = abort.tick() => self.abort_timed_out().await,
                _ = expire.tick() => self.expire_ids().await,
            }
        }
    }

    /// Serves exactly the transactional ids of `led`, the transaction log
    /// partitions this broker leads now: newly led ones are read from their
    /// log (requests for their ids get COORDINATOR_LOAD_IN_PROGRESS
    /// meanwhile) and their prepared transactions are completed; the
    /// others are dropped. Blocking: call it off the request threads.
    pub fn lead(&self, led: &[Arc<Partition>]) {
        for load in self.follow(led) {
            let Some(p) = led.iter().find(|p| p.index == load.index) else {
                continue;
            };
            let read = log::read(p);
            self.finish_load(p, &load, read);
        }
    }

    fn follow(&self, led: &[Arc<Partition>]) -> Vec<LoadTicket> {
        let epochs: Vec<(i32, i32)> = led
            .iter()
            .filter_map(|p| p.leader_epoch().map(|e| (p.index, e)))
            .collect();
        let count = self.log_partitions();
        let mut inner = self.lock();
        let moves = inner.leadership.follow(&epochs);
        for index in moves.resign {
            inner.served.remove(&index);
            if let Some(count) = count {
                inner.txns.retain(|id, _| partition_for(id, count) != index);
            }
            tracing::info!(
                partition = index,
                "no longer coordinating the transactions of this {TRANSACTION_TOPIC} partition"
            );
        }
        moves.load
    }

    fn finish_load(
        &self,
        p: &Arc<Partition>,
        load: &LoadTicket,
        read: Result<HashMap<String, TxnMetadata>, log::LoadError>,
    ) {
        let mut inner = self.lock();
        let txns = match read {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(partition = p.index, error = %e, "cannot load transactions");
                inner.leadership.abandon(load);
                return;
            }
        };
        if !inner.leadership.finish(load, p.leader_epoch()) {
            tracing::info!(
                partition = p.index,
                "leadership moved while loading this {TRANSACTION_TOPIC} partition; its load is dropped"
            );
            return;
        }
        let epoch = load.epoch;
        inner.served.insert(p.index, (p.clone(), epoch));
        let mut prepared = Vec::new();
        let count = txns.len();
        for (id, meta) in txns {
            if meta.state.preparing() {
                prepared.push((id.clone(), meta.clone()));
            }
            inner.txns.insert(
                id,
                Entry {
                    meta,
                    pending: false,
                },
            );
        }
        drop(inner);
        if count > 0 {
            tracing::info!(
                partition = p.index,
                epoch,
                transactional_ids = count,
                prepared = prepared.len(),
                "coordinating the transactions of this {TRANSACTION_TOPIC} partition"
            );
        } else {
            tracing::debug!(
                partition = p.index,
                epoch,
                "coordinating the transactions of this {TRANSACTION_TOPIC} partition"
            );
        }
        // Decided before the coordinator moved: their markers go out again.
        for (id, meta) in prepared {
            self.send_markers(&id, epoch, &meta);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use uuid::Uuid;

    use super::*;
    use crate::metadata::controller::{ControllerRequest, ControllerResponse};
    use crate::metadata::quorum::tests::lone;
    use crate::metadata::records::{Applied, MetadataRecord};
    use crate::topic::config::TopicDefaults;
    use crate::txn::add_retry::{ask_until_taken, AddRetry};
    use crate::txn::verify::Ask;

    /// A coordinator on `dir` leading the one partition of a transaction
    /// log on broker 1, with a one-node quorum for producer ids, and the
    /// queue its marker jobs go to.
    async fn coordinator(
        dir: &Path,
        quorum: Arc<Quorum>,
    ) -> (
        Arc<TransactionCoordinator>,
        mpsc::UnboundedReceiver<MarkerJob>,
    ) {
        let topics = Arc::new(TopicRegistry::new(
            1,
            &[dir.to_path_buf()],
            TopicDefaults::for_tests(),
        ));
        if !quorum.view().image.topics.contains_key(TRANSACTION_TOPIC) {
            let propose = |record| {
                let q = quorum.clone();
                async move {
                    match q
                        .request(ControllerRequest::Propose(record), Duration::from_secs(10))
                        .await
                    {
                        Ok(ControllerResponse::Applied { applied, .. }) => applied,
                        other => panic!("not applied: {other:?}"),
                    }
                }
            };
            let registered = propose(MetadataRecord::RegisterBroker {
                id: 1,
                storage: Uuid::nil(),
                incarnation: Uuid::from_u128(1),
                endpoints: vec![],
                rack: None,
            })
            .await;
            let Applied::BrokerEpoch(epoch) = registered else {
                panic!("not registered: {registered:?}");
            };
            propose(MetadataRecord::UnfenceBroker { id: 1, epoch }).await;
            propose(MetadataRecord::CreateTopic {
                name: TRANSACTION_TOPIC.into(),
                id: Uuid::from_u128(9),
                configs: log::topic_configs(1 << 20, 1),
                assignment: vec![vec![1]],
            })
            .await;
        }
        let view = quorum.view();
        topics.sync(&view.image, view.applied_index);
        let (tx, rx) = mpsc::unbounded_channel();
        let c = Arc::new(TransactionCoordinator::new(
            CoordinatorSettings {
                max_timeout_ms: 60_000,
                abort_interval: Duration::from_secs(10),
                id_expiration_ms: 3_600_000,
                expiry_interval: Duration::from_secs(3600),
                min_isr: 1,
            },
            topics.clone(),
            quorum,
            Arc::new(ProducerIdAllocator::default()),
            tx,
        ));
        let led: Vec<Arc<Partition>> = topics
            .get(TRANSACTION_TOPIC)
            .map(|t| t.local().cloned().collect())
            .unwrap_or_default();
        let lead = c.clone();
        tokio::task::spawn_blocking(move || lead.lead(&led))
            .await
            .expect("load");
        (c, rx)
    }

    fn parts(ps: &[(&str, i32)]) -> BTreeSet<(String, i32)> {
        ps.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[tokio::test]
    async fn an_id_is_loading_while_the_metadata_names_this_broker_its_coordinator() {
        let dir = tempfile::tempdir().expect("dir");
        let (c, _jobs) = coordinator(dir.path(), lone(dir.path()).await).await;
        // Given up while the metadata still names this broker leader of
        // the log's partition (the replicas have not followed it yet):
        // the client is to retry here, not look for another coordinator.
        c.lead(&[]);
        assert_eq!(
            c.init_producer_id("app-1", 30_000, None).await.err(),
            Some(TxnError::LoadInProgress)
        );
    }

    #[tokio::test]
    async fn a_transaction_commits_and_survives_a_reload_of_the_log() {
        let dir = tempfile::tempdir().expect("dir");
        let q = lone(dir.path()).await;
        let (c, mut jobs) = coordinator(dir.path(), q.clone()).await;
        let p = c
            .init_producer_id("app-1", 30_000, None)
            .await
            .expect("init");
        assert_eq!(p.epoch, 0);
        c.add_partitions("app-1", p, parts(&[("t", 0), ("t", 1)]), 0)
            .await
            .expect("add");
        // Adding what is already there writes nothing and succeeds.
        c.add_partitions("app-1", p, parts(&[("t", 1)]), 0)
            .await
            .expect("add again");
        assert_eq!(
            c.end_txn("app-1", p, true, 0).await,
            Ok(p),
            "no bump before version 2"
        );
        assert_eq!(
            c.describe("app-1").expect("described").state,
            TxnState::PrepareCommit
        );
        let job = jobs.recv().await.expect("a marker job");
        assert_eq!(job.partitions, parts(&[("t", 0), ("t", 1)]));
        assert!(job.commit && c.job_stands(&job));
        // A retried EndTxn while the markers go out: retry later.
        assert_eq!(
            c.end_txn("app-1", p, true, 0).await,
            Err(TxnError::Concurrent)
        );
        c.complete(&job).await;
        let done = c.describe("app-1").expect("described");
        assert_eq!(done.state, TxnState::CompleteCommit);
        assert!(done.partitions.is_empty());
        assert!(!c.job_stands(&job));
        // The retry of a completed commit succeeds without a write.
        assert_eq!(
            c.end_txn("app-1", p, true, 0).await,
            Ok(p),
            "a retried commit is answered without a write"
        );
        drop(c);

        let (c, _jobs) = coordinator(dir.path(), q).await;
        let reloaded = c.describe("app-1").expect("reloaded");
        assert_eq!(
            (
                reloaded.producer_id,
                reloaded.producer_epoch,
                reloaded.state
            ),
            (p.id, 0, TxnState::CompleteCommit)
        );
        let again = c
            .init_producer_id("app-1", 30_000, None)
            .await
            .expect("init");
        assert_eq!((again.id, again.epoch), (p.id, 1));
        assert_eq!(
            c.add_partitions("app-1", p, parts(&[("t", 0)]), 0).await,
            Err(TxnError::ProducerFenced),
            "the old epoch is fenced"
        );
    }

    #[tokio::test]
    async fn a_new_producer_aborts_the_transaction_of_the_old_one() {
        let dir = tempfile::tempdir().expect("dir");
        let (c, mut jobs) = coordinator(dir.path(), lone(dir.path()).await).await;
        let old = c
            .init_producer_id("app-2", 30_000, None)
            .await
            .expect("init");
        c.add_partitions("app-2", old, parts(&[("t", 0)]), 0)
            .await
            .expect("add");
        assert_eq!(
            c.init_producer_id("app-2", 30_000, None).await,
            Err(TxnError::Concurrent)
        );
        let abort = jobs.recv().await.expect("abort job");
        assert!(!abort.commit);
        assert_eq!(abort.producer_epoch, old.epoch + 1);
        // Until the abort is complete, the new producer waits.
        assert_eq!(
            c.init_producer_id("app-2", 30_000, None).await,
            Err(TxnError::Concurrent)
        );
        c.complete(&abort).await;
        let new = c
            .init_producer_id("app-2", 30_000, None)
            .await
            .expect("init");
        assert_eq!(new.epoch, old.epoch + 2);
        assert_eq!(
            c.end_txn("app-2", old, true, 0).await,
            Err(TxnError::ProducerFenced)
        );
    }

    #[tokio::test]
    async fn an_expired_transaction_is_aborted_and_its_producer_fenced() {
        let dir = tempfile::tempdir().expect("dir");
        let (c, mut jobs) = coordinator(dir.path(), lone(dir.path()).await).await;
        let p = c.init_producer_id("app-3", 1, None).await.expect("init");
        c.add_partitions("app-3", p, parts(&[("t", 2)]), 0)
            .await
            .expect("add");
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.abort_timed_out().await;
        let abort = jobs.recv().await.expect("abort job");
        assert_eq!((abort.commit, abort.producer_epoch), (false, p.epoch + 1));
        c.complete(&abort).await;
        assert_eq!(
            c.describe("app-3").expect("described").state,
            TxnState::CompleteAbort
        );
        assert_eq!(
            c.end_txn("app-3", p, true, 0).await,
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            c.init_producer_id("app-3", 120_000, None).await,
            Err(TxnError::InvalidTimeout(120_000))
        );
    }

    #[tokio::test]
    async fn from_transaction_version_2_every_end_bumps_the_epoch() {
        let dir = tempfile::tempdir().expect("dir");
        let q = lone(dir.path()).await;
        let (c, mut jobs) = coordinator(dir.path(), q.clone()).await;
        let first = c
            .init_producer_id("app-4", 30_000, None)
            .await
            .expect("init");
        // A partition leader adds for the producer (Produce v12).
        c.add_partitions("app-4", first, parts(&[("t", 0)]), 2)
            .await
            .expect("add");
        let second = c.end_txn("app-4", first, true, 2).await.expect("commit");
        assert_eq!((second.id, second.epoch), (first.id, first.epoch + 1));
        let job = jobs.recv().await.expect("a marker job");
        assert_eq!(
            job.producer_epoch, second.epoch,
            "markers carry the new epoch"
        );
        c.complete(&job).await;
        // The retry of that EndTxn names the old epoch and gets the new one.
        assert_eq!(c.end_txn("app-4", first, true, 2).await, Ok(second));
        // A batch of the ended transaction cannot open another.
        assert_eq!(
            c.add_partitions("app-4", first, parts(&[("t", 1)]), 2)
                .await,
            Err(TxnError::ProducerFenced)
        );
        // An abort with nothing added still bumps, and completes at once.
        let third = c.end_txn("app-4", second, false, 2).await.expect("abort");
        assert_eq!(third.epoch, second.epoch + 1);
        let empty = jobs.recv().await.expect("an empty job");
        assert!(empty.partitions.is_empty());
        c.complete(&empty).await;
        drop(c);

        let (c, _jobs) = coordinator(dir.path(), q).await;
        let reloaded = c.describe("app-4").expect("reloaded");
        assert_eq!(
            (
                reloaded.producer_epoch,
                reloaded.state,
                reloaded.client_version
            ),
            (third.epoch, TxnState::CompleteAbort, 2)
        );
    }

    #[tokio::test]
    async fn a_leader_adds_for_the_next_transaction_once_the_previous_one_completes() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let dir = tempfile::tempdir().expect("dir");
        let (c, mut jobs) = coordinator(dir.path(), lone(dir.path()).await).await;
        let first = c
            .init_producer_id("app-5", 30_000, None)
            .await
            .expect("init");
        c.add_partitions("app-5", first, parts(&[("t", 0)]), 2)
            .await
            .expect("add");
        let second = c.end_txn("app-5", first, true, 2).await.expect("commit");
        let job = jobs.recv().await.expect("a marker job");
        // The producer's next batch reaches a leader while the commit's
        // markers are being written: the coordinator answers
        // CONCURRENT_TRANSACTIONS and the leader asks again until the
        // commit is complete.
        let asked = Arc::new(AtomicUsize::new(0));
        let adding = {
            let (c, asked) = (c.clone(), asked.clone());
            tokio::spawn(async move {
                ask_until_taken(AddRetry::new(1, 30_000), Ask::Add, || {
                    asked.fetch_add(1, SeqCst);
                    let c = c.clone();
                    async move {
                        c.add_partitions("app-5", second, parts(&[("t", 1)]), 2)
                            .await
                            .map(|()| vec![true])
                    }
                })
                .await
            })
        };
        let asked_again = async {
            while asked.load(SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), asked_again)
            .await
            .expect("asked again while the markers go out");
        assert!(!adding.is_finished(), "refused while the markers go out");
        c.complete(&job).await;
        assert_eq!(adding.await.expect("joined"), Ok(vec![true]));
        let now = c.describe("app-5").expect("described");
        assert_eq!(
            (now.state, now.producer_epoch, now.partitions),
            (TxnState::Ongoing, second.epoch, parts(&[("t", 1)]))
        );

        // Markers that do not complete in time: the leader takes the
        // refusal once its time is up. A verification is taken at once.
        let third = c.end_txn("app-5", second, true, 2).await.expect("commit");
        let _held = jobs.recv().await.expect("a marker job");
        let asked = AtomicUsize::new(0);
        let given_up = ask_until_taken(AddRetry::new(1, 20), Ask::Add, || {
            asked.fetch_add(1, SeqCst);
            let c = c.clone();
            async move {
                c.add_partitions("app-5", third, parts(&[("t", 0)]), 2)
                    .await
                    .map(|()| vec![true])
            }
        })
        .await;
        assert_eq!(given_up, Err(TxnError::Concurrent));
        assert!(asked.load(SeqCst) > 1, "asked again before giving up");
        let asked = AtomicUsize::new(0);
        let verified = ask_until_taken(AddRetry::new(1, 30_000), Ask::Verify, || {
            asked.fetch_add(1, SeqCst);
            std::future::ready(c.verify_partitions("app-5", third, &[("t".into(), 0)]))
        })
        .await;
        assert_eq!(
            (verified, asked.load(SeqCst)),
            (Err(TxnError::Concurrent), 1)
        );
    }
}

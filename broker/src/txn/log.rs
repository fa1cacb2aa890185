//! Reading and writing a `__transaction_state` partition: a coordinator
//! that comes to lead one replays it into the state of its transactional
//! ids (read apart from the coordinator's lock); each state change is one
//! record written as leader and confirmed by the in-sync replicas before it
//! counts (Kafka writes the transaction log with `acks=all`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_protocol::records::Compression;

use super::error::TxnError;
use super::records;
use super::state::TxnMetadata;
use crate::clock::now_ms;
use crate::log::batch;
use crate::partition::replay::{replay, ReplayError};
use crate::partition::{Partition, PartitionError, Replication};

/// Name of the internal topic.
pub const TRANSACTION_TOPIC: &str = "__transaction_state";

/// Why a transaction log partition could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the partition failed.
    #[error("{TRANSACTION_TOPIC} partition {partition}: {source}")]
    Partition {
        /// Partition index.
        partition: i32,
        /// Cause.
        source: PartitionError,
    },
    /// Stored records could not be decoded.
    #[error("{TRANSACTION_TOPIC} partition {partition}: undecodable records: {reason}")]
    Decode {
        /// Partition index.
        partition: i32,
        /// What was wrong.
        reason: String,
    },
}

/// Replays partition `p` from its log start: the last state of every
/// transactional id it holds (deleted ones left out).
pub fn read(p: &Partition) -> Result<HashMap<String, TxnMetadata>, LoadError> {
    let mut txns = HashMap::new();
    replay(p, |r| {
        let Some(key) = &r.key else { return Ok(()) };
        let id = records::decode_key(key).map_err(|e| e.to_string())?;
        match records::decode_value(r.value.as_deref())
            .map_err(|e| format!("transactional id {id}: {e}"))?
        {
            Some(m) => txns.insert(id, m),
            None => txns.remove(&id),
        };
        Ok(())
    })
    .map_err(|e| match e {
        ReplayError::Partition(source) => LoadError::Partition {
            partition: p.index,
            source,
        },
        ReplayError::Decode(reason) => LoadError::Decode {
            partition: p.index,
            reason,
        },
    })?;
    Ok(txns)
}

/// Writes `state` (`None`: a tombstone) of `transactional_id` to `p` as its
/// leader in `coordinator_epoch`, and waits until `min_isr` in-sync
/// replicas hold it, as Kafka's coordinator does, mapping failures to the
/// errors its clients expect.
pub async fn write(
    p: &Partition,
    coordinator_epoch: i32,
    transactional_id: &str,
    state: Option<&TxnMetadata>,
    min_isr: usize,
    timeout: Duration,
) -> Result<(), TxnError> {
    match p.in_sync() {
        None => return Err(TxnError::NotCoordinator),
        Some(s) if !s.satisfies(min_isr) => {
            return Err(TxnError::NotAvailable(format!(
                "{} in-sync replica(s) of {TRANSACTION_TOPIC}-{}, {min_isr} needed",
                s.isr, p.index
            )))
        }
        Some(_) => {}
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let record = (
        Some(records::key(transactional_id)),
        state.map(records::value),
        now_ms(),
    );
    let buf = batch::encode([record], Compression::None)
        .map_err(|e| TxnError::NotAvailable(format!("encoding a transaction record: {e}")))?;
    let appended = p.append(buf.freeze(), None).map_err(|e| match e {
        PartitionError::NotLeader { .. }
        | PartitionError::FencedLeaderEpoch { .. }
        | PartitionError::UnknownLeaderEpoch { .. } => TxnError::NotCoordinator,
        other => TxnError::NotAvailable(other.to_string()),
    })?;
    if appended.leader_epoch != coordinator_epoch {
        // Led again in another epoch since the state was loaded: the state
        // this write was decided on may be stale.
        return Err(TxnError::NotCoordinator);
    }
    match p
        .await_replication(appended.leader_epoch, appended.end_offset, deadline)
        .await
    {
        Replication::Done(s) if s.satisfies(min_isr) => Ok(()),
        Replication::Done(s) => Err(TxnError::NotAvailable(format!(
            "written, but only {} replica(s) are in sync",
            s.isr
        ))),
        Replication::LostLeadership => Err(TxnError::NotCoordinator),
        Replication::Pending | Replication::TimedOut => Err(TxnError::NotAvailable(
            "the in-sync replicas did not confirm the write in time".into(),
        )),
    }
}

/// The settings of the transaction log topic, as Kafka creates it:
/// compacted, with its own segment size and minimum ISR (unclean leader
/// election is never done by Gregor).
pub fn topic_configs(segment_bytes: i32, min_isr: i32) -> BTreeMap<String, String> {
    [
        ("cleanup.policy", "compact".to_string()),
        ("segment.bytes", segment_bytes.to_string()),
        ("min.insync.replicas", min_isr.to_string()),
        ("compression.type", "uncompressed".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

//! Hands out producer ids for idempotent producers (InitProducerId without a
//! transactional id). Ids must never repeat anywhere in the cluster, also
//! across restarts, or a new producer would inherit an old one's sequence
//! state; so each broker reserves blocks of ids through the metadata log
//! and hands them out from memory.

use std::time::Duration;

use crate::metadata::controller::{ControllerRequest, ControllerResponse};
use crate::metadata::quorum::{Quorum, QuorumError};
use crate::metadata::records::{Applied, MetadataRecord};

const BLOCK: i64 = 1000;

/// Why no id could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    /// The controller could not be reached.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// The controller answered something else.
    #[error("unexpected answer reserving producer ids: {0:?}")]
    Unexpected(ControllerResponse),
}

/// Allocator of unique producer ids.
#[derive(Default)]
pub struct ProducerIdAllocator {
    /// Next id to hand out, and the end of the reserved block.
    block: tokio::sync::Mutex<(i64, i64)>,
}

impl ProducerIdAllocator {
    /// The next unused id, reserving a new block when this one is used up.
    pub async fn next(&self, quorum: &Quorum) -> Result<i64, ProducerIdError> {
        let mut block = self.block.lock().await;
        if block.0 == block.1 {
            let req =
                ControllerRequest::Propose(MetadataRecord::AllocateProducerIds { count: BLOCK });
            match quorum.request(req, Duration::from_secs(10)).await? {
                ControllerResponse::Applied {
                    applied: Applied::ProducerIds(first),
                    ..
                } => *block = (first, first + BLOCK),
                other => return Err(ProducerIdError::Unexpected(other)),
            }
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}

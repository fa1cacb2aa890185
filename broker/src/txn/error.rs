//! Why the transaction coordinator refuses a request, each reason one of
//! Kafka's error codes.

use kafka_protocol::ResponseError;

/// A refusal of the transaction coordinator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// An empty transactional id, or a request Kafka calls malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// `transaction.timeout.ms` above `transaction.max.timeout.ms` (or not
    /// positive).
    #[error("transaction timeout {0} ms is not within 1..=transaction.max.timeout.ms")]
    InvalidTimeout(i32),
    /// The producer id is not the one the transactional id holds.
    #[error("the producer id is not the transactional id's current one")]
    InvalidProducerIdMapping,
    /// A newer producer took the transactional id (its epoch is higher).
    #[error("the producer was fenced by a newer one with the same transactional id")]
    ProducerFenced,
    /// Another operation on the transaction is under way; retry.
    #[error("another operation on this transaction is under way")]
    Concurrent,
    /// The operation makes no sense in the transaction's state.
    #[error("the transaction is {0}; this operation does not apply")]
    InvalidState(&'static str),
    /// This broker does not coordinate the transactional id.
    #[error("this broker is not the transaction's coordinator")]
    NotCoordinator,
    /// The coordinator is reading its transaction log.
    #[error("the transaction log is being loaded")]
    LoadInProgress,
    /// The transaction log cannot take writes now (too few in-sync
    /// replicas, a timeout, no producer id); retry.
    #[error("the transaction coordinator is not available: {0}")]
    NotAvailable(String),
    /// DescribeTransactions of an id the coordinator does not know.
    #[error("unknown transactional id")]
    NotFound,
}

impl TxnError {
    /// Whether asking again later may succeed: the coordinator is busy
    /// with the transaction, moving, loading, or unreachable.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            TxnError::Concurrent
                | TxnError::NotCoordinator
                | TxnError::LoadInProgress
                | TxnError::NotAvailable(_)
        )
    }

    /// The Kafka error code. Clients older than the fencing error (the
    /// request versions below `fenced_since`) get INVALID_PRODUCER_EPOCH.
    pub fn code(&self, api_version: i16, fenced_since: i16) -> ResponseError {
        match self {
            TxnError::InvalidRequest(_) => ResponseError::InvalidRequest,
            TxnError::InvalidTimeout(_) => ResponseError::InvalidTransactionTimeout,
            TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            TxnError::ProducerFenced if api_version < fenced_since => {
                ResponseError::InvalidProducerEpoch
            }
            TxnError::ProducerFenced => ResponseError::ProducerFenced,
            TxnError::Concurrent => ResponseError::ConcurrentTransactions,
            TxnError::InvalidState(_) => ResponseError::InvalidTxnState,
            TxnError::NotCoordinator => ResponseError::NotCoordinator,
            TxnError::LoadInProgress => ResponseError::CoordinatorLoadInProgress,
            TxnError::NotAvailable(_) => ResponseError::CoordinatorNotAvailable,
            TxnError::NotFound => ResponseError::TransactionalIdNotFound,
        }
    }
}

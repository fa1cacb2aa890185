//! Transactions (exactly-once): the transaction coordinator of the
//! `__transaction_state` partitions this broker leads (`coordinator`),
//! deciding with the pure transitions of `state` and refusing with
//! [`TxnError`]; its records in Kafka's layout (`records`), written to and
//! replayed from the transaction log (`log`); and the marker sender that
//! writes each decided transaction's commit or abort marker to its
//! partitions' leaders (`markers`); and the check, before writing for a
//! transaction, that a partition is in it (`verify`), its asks to other
//! brokers gathered per broker (`asks`), and a leader's adds asked again
//! while the producer's previous transaction completes (`add_retry`). The
//! partitions' side (control batches, the last stable offset, aborted
//! transactions) lives in `partition`; the Kafka requests are translated
//! in `handlers::txn`.

pub mod add_retry;
pub mod asks;
pub mod coordinator;
pub mod error;
pub mod log;
pub mod markers;
pub mod records;
pub mod state;
pub mod verify;

pub use coordinator::TransactionCoordinator;
pub use error::TxnError;
pub use log::TRANSACTION_TOPIC;

//! Consumer groups: the classic protocol's membership state machine
//! (`state`), the next-generation consumer protocol's (`consumer`, with the
//! server-side `assignor`), the coordinator that drives both from requests
//! and timers (`coordinator`, with each protocol's operations in
//! `membership` and `consumer_heartbeat`, the offsets' in `commits`, the
//! administrators' in `admin`), and the committed offsets and group
//! membership, kept in the internal `__consumer_offsets` topic (`offsets`,
//! loaded as `crate::leadership` decides; records in Kafka's layout in
//! `offset_records` and `consumer_records`).
//!
//! The coordinator takes and returns plain data and refuses with
//! [`GroupError`]; the Kafka requests and responses are translated in
//! `handlers::group`.

pub mod admin;
pub mod assignor;
pub mod commits;
pub mod consumer;
pub mod consumer_heartbeat;
pub mod consumer_records;
pub mod coordinator;
pub mod error;
pub mod membership;
pub mod offset_records;
pub mod offsets;
pub mod state;
pub mod subscription;

pub use coordinator::{GroupCoordinator, GroupSettings};
pub use error::GroupError;
pub use offset_records::Committed;

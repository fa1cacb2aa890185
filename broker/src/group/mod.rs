//! Consumer groups: the classic protocol's membership state machine
//! (`state`), the next-generation consumer protocol's (`consumer`, with the
//! server-side `assignor`), the coordinator that drives both from requests
//! and timers (`coordinator`, `heartbeat`), and the committed offsets and
//! group membership, kept in the internal `__consumer_offsets` topic
//! (`offsets`, `offset_records`, `consumer_records`).

pub mod assignor;
pub mod consumer;
pub mod consumer_records;
pub mod coordinator;
pub mod heartbeat;
pub mod leadership;
pub mod offset_records;
pub mod offsets;
pub mod state;

pub use coordinator::{GroupCoordinator, GroupSettings};

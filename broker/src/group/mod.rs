//! Consumer groups: the classic protocol's membership state machine
//! (`state`), the next-generation consumer protocol's (`consumer`, with the
//! server-side `assignor`), the coordinator that drives both from requests
//! and timers (`coordinator`, `heartbeat`), and the durable committed
//! offsets (`offsets`).

pub mod assignor;
pub mod consumer;
pub mod coordinator;
pub mod heartbeat;
pub mod offsets;
pub mod state;

pub use coordinator::{GroupCoordinator, GroupSettings};

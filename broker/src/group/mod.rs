//! Consumer groups: the membership state machine (`state`), the coordinator
//! that drives it from requests and timers (`coordinator`), and the durable
//! committed offsets (`offsets`).

pub mod coordinator;
pub mod offsets;
pub mod state;

pub use coordinator::{GroupCoordinator, GroupSettings};

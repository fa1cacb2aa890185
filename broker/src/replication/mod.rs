//! Replication in Kafka's pull model: followers fetch from the leader,
//! which tracks them, advances the high watermark and changes the ISR
//! through the controller.
//! - [`epochs`] is a log's leader-epoch history (divergence, OffsetForLeaderEpoch);
//! - [`leader`] is the leader's bookkeeping of its followers (pure);
//! - [`fetcher`] is the follower's side: fetch from leaders and append;
//! - [`isr`] sends the leader's ISR changes to the controller.

pub mod epochs;
pub mod fetcher;
pub mod isr;
pub mod leader;

//! Replication in Kafka's pull model, between brokers: followers fetch from
//! the leader, and the leader changes the ISR through the controller. What
//! a leader knows of its followers lives with its replica
//! (`partition::leader`); this module moves data and requests.
//! - [`fetcher`] is the follower's side: fetch from leaders and append,
//!   in the fetch session [`session`] keeps with each leader, each
//!   answer read partition by partition as it arrives ([`answer`]);
//! - [`isr`] sends the leader's ISR changes to the controller;
//! - [`throttle`] decides which replication traffic is throttled
//!   (Kafka's replication quotas) and [`quota`] measures it.

pub mod answer;
pub mod fetcher;
pub mod isr;
pub mod quota;
pub mod session;
pub mod throttle;

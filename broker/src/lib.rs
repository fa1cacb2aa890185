//! Gregor's broker: a Kafka-compatible server.
//!
//! - [`log`] stores each partition as a segmented log of Kafka record batches.

//! What every connection shares: who the broker says it is, the topics,
//! a wake-up for fetches waiting on new data, and producer ids.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::topics::Topics;

/// The cluster id Metadata answers with.
pub const CLUSTER_ID: &str = "null-broker";

/// The only broker of its cluster, as advertised.
#[derive(Debug, Clone)]
pub struct Node {
    /// `node.id`; also the controller's and every partition leader's.
    pub id: i32,
    /// The host clients are told to connect to.
    pub host: String,
    /// The port clients are told to connect to.
    pub port: i32,
}

/// The broker's state.
#[derive(Debug)]
pub struct Broker {
    /// Who it is.
    pub node: Node,
    topics: Mutex<Topics>,
    appended: Notify,
    producer_ids: AtomicI64,
}

impl Broker {
    /// A broker with no topics yet, each to have `partitions` partitions.
    pub fn new(node: Node, partitions: usize) -> Self {
        Self {
            node,
            topics: Mutex::new(Topics::new(partitions)),
            appended: Notify::new(),
            producer_ids: AtomicI64::new(0),
        }
    }

    /// The topics, locked. Held briefly and never across an await; a
    /// panic while holding it leaves nothing half-done that matters.
    pub fn topics(&self) -> MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Completes at the next [`Broker::wake_fetches`] after it was
    /// enabled (or first polled).
    pub fn appended(&self) -> Notified<'_> {
        self.appended.notified()
    }

    /// Wakes the fetches waiting for data: something was appended.
    pub fn wake_fetches(&self) {
        self.appended.notify_waiters();
    }

    /// A producer id never handed out before.
    pub fn next_producer_id(&self) -> i64 {
        self.producer_ids.fetch_add(1, Ordering::Relaxed)
    }
}

//! What every reconcile pass shares: the API client, the event reporter,
//! the operator's settings, the healing memory and which failures were told.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::cluster::failures::Told;
use crate::cluster::health::{Thresholds, Troubles};
use crate::metrics::Metrics;

/// Shared state of the controllers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Who events say they come from.
    pub reporter: Reporter,
    /// Image repository for `spec.version` when a cluster sets no image.
    pub image_repository: String,
    /// Version of the broker image when a cluster names none.
    pub default_version: String,
    /// When troubles turn into restarts.
    pub thresholds: Thresholds,
    /// Healing memory per cluster (`namespace/name`): troubles since when.
    pub troubles: Mutex<BTreeMap<String, Troubles>>,
    /// Per cluster, which broker pods were reported failing how.
    pub told: Mutex<BTreeMap<String, Told>>,
    /// Start of the operator's clock for troubles.
    pub started: Instant,
    /// The operator's own metrics.
    pub metrics: Arc<Metrics>,
}

impl Context {
    /// Publishes an event about `obj` (its `reason` doubles as the action);
    /// a failure to publish is logged, not fatal.
    pub async fn event<K>(&self, obj: &K, warning: bool, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(shortened(note)),
            action: reason.into(),
            secondary: None,
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(e) = recorder.publish(&ev, &obj.object_ref(&())).await {
            let name = obj.meta().name.as_deref().unwrap_or_default();
            tracing::warn!(kind = %K::kind(&()), %name, error = %e, "cannot publish event");
        }
    }

    /// Seconds since the operator started.
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// The longest note the API server takes in an event.
const NOTE_LIMIT: usize = 1024;

/// `note` cut to what an event can hold (a long list of partitions would
/// have the whole event refused), ending in "..." when cut.
fn shortened(mut note: String) -> String {
    if note.len() <= NOTE_LIMIT {
        return note;
    }
    let mut end = NOTE_LIMIT - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note.truncate(end);
    note.push_str("...");
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_to_what_an_event_holds() {
        assert_eq!(shortened("short".into()), "short");
        let exact = "x".repeat(NOTE_LIMIT);
        assert_eq!(shortened(exact.clone()), exact);
        let long = "é".repeat(NOTE_LIMIT);
        let cut = shortened(long);
        assert!(
            cut.len() <= NOTE_LIMIT && cut.ends_with("..."),
            "{}",
            cut.len()
        );
    }
}

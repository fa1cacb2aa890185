//! Status conditions: building them, and keeping a condition's
//! `lastTransitionTime` when its status has not changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition as decided, before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// `Ready`, `Reconciling`, `Degraded`, `CertificatesExpiring`.
    pub kind: &'static str,
    /// True or false.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Sentence for humans.
    pub message: String,
}

impl Decided {
    /// A condition.
    pub fn new(kind: &'static str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Turns decided conditions into API conditions for `generation`, keeping
/// the transition time of those whose status did not change.
pub fn conditions(
    decided: Vec<Decided>,
    previous: &[Condition],
    generation: Option<i64>,
) -> Vec<Condition> {
    let now = Time(Timestamp::now());
    decided
        .into_iter()
        .map(|d| {
            let status = if d.status { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|c| c.type_ == d.kind && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: d.kind.into(),
                status: status.into(),
                reason: d.reason,
                message: d.message,
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_kept_while_status_holds() {
        let first = conditions(
            vec![Decided::new("Ready", false, "Starting", "")],
            &[],
            Some(1),
        );
        let same = conditions(
            vec![Decided::new("Ready", false, "WaitingForBrokers", "")],
            &first,
            Some(2),
        );
        assert_eq!(same[0].last_transition_time, first[0].last_transition_time);
        assert_eq!(same[0].reason, "WaitingForBrokers");
        assert_eq!(same[0].observed_generation, Some(2));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let flipped = conditions(
            vec![Decided::new("Ready", true, "Ready", "")],
            &same,
            Some(2),
        );
        assert_eq!(flipped[0].status, "True");
        assert!(flipped[0].last_transition_time.0 > first[0].last_transition_time.0);
    }
}

//! What a reconcile pass could not do: each failed step with the API's
//! answer. The pass goes on with what does not depend on the failed step,
//! and the trouble ends up in the `Degraded` condition and a Warning event,
//! never only in a log line.

use std::fmt::Display;

/// The failed steps of one pass, in the order they failed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trouble {
    failed: Vec<String>,
}

impl Trouble {
    /// Step `what` failed with `error`.
    pub fn note(&mut self, what: &str, error: &impl Display) {
        tracing::warn!(%what, %error, "reconcile step failed");
        self.failed.push(format!("{what}: {error}"));
    }

    /// What failed, for the condition and the event; `None` when nothing
    /// did.
    pub fn message(&self) -> Option<String> {
        (!self.failed.is_empty()).then(|| format!("could not apply {}", self.failed.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_listed_in_order() {
        let mut t = Trouble::default();
        assert_eq!(t.message(), None);
        t.note("the StatefulSet", &"forbidden");
        t.note("the PodDisruptionBudget", &"timeout");
        assert_eq!(
            t.message().as_deref(),
            Some("could not apply the StatefulSet: forbidden; the PodDisruptionBudget: timeout")
        );
    }
}

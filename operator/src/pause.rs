//! The pause switch: `gregor.dev/pause-reconciliation: "true"` on a
//! `KafkaCluster` or `KafkaTopic` stops the operator from changing
//! anything for it (its objects, its brokers, the topic in Kafka) until
//! the annotation goes; status says so. For maintenance by hand, or to
//! hold a change back.

use kube::ResourceExt;

/// The annotation.
pub const ANNOTATION: &str = "gregor.dev/pause-reconciliation";

/// The reason of the condition a paused resource shows.
pub const REASON: &str = "ReconciliationPaused";

/// Whether `obj` is paused.
pub fn is_paused(obj: &impl ResourceExt) -> bool {
    obj.annotations()
        .get(ANNOTATION)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// What status says of a paused resource.
pub fn message() -> String {
    format!("{ANNOTATION} is \"true\": the operator changes nothing until it is removed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn only_true_pauses() {
        for (value, paused) in [
            (None, false),
            (Some("true"), true),
            (Some("True"), true),
            (Some("false"), false),
            (Some("yes"), false),
        ] {
            let mut obj = ConfigMap::default();
            if let Some(v) = value {
                obj.annotations_mut().insert(ANNOTATION.into(), v.into());
            }
            assert_eq!(is_paused(&obj), paused, "{value:?}");
        }
    }
}

//! Storage changes on a running cluster. The API server refuses any change
//! to a StatefulSet's `volumeClaimTemplates`, so the operator never sends
//! one: a larger `storage.size` is applied to each broker's claim (which
//! the StorageClass expands, or refuses), and every other change is refused
//! in status while the rest of the spec is applied.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

/// What becomes of the spec's storage on the running StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimChange {
    /// The claims stay as they are.
    Same,
    /// The claims grow to `size`; the StatefulSet keeps its template.
    Expand {
        /// The new size, as the spec writes it.
        size: String,
    },
    /// The claims' template changes in a way nothing can apply: the
    /// StatefulSet keeps its template, and status says why.
    Refused(String),
    /// The storage type changes: the StatefulSet is not applied at all
    /// (its pods' volumes would not match), and status says why.
    TypeChanged(String),
}

/// The claim template of `sts`, if it has one.
fn template(sts: &StatefulSet) -> Option<&PersistentVolumeClaim> {
    sts.spec.as_ref()?.volume_claim_templates.as_ref()?.first()
}

/// The storage a claim asks for.
pub fn requested(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.as_str())
}

/// Decides what of `desired`'s claim template can be applied over
/// `current`'s.
pub fn decide(current: Option<&StatefulSet>, desired: &StatefulSet) -> ClaimChange {
    let Some(current) = current else {
        return ClaimChange::Same;
    };
    match (template(current), template(desired)) {
        (None, None) => ClaimChange::Same,
        (Some(_), None) | (None, Some(_)) => ClaimChange::TypeChanged(
            "storage.type cannot change on a running cluster: the brokers would lose their data; set it back, or make a new cluster and move the topics".into(),
        ),
        (Some(have), Some(want)) => {
            let class = |c: &PersistentVolumeClaim| {
                c.spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.clone())
            };
            if class(have) != class(want) {
                return ClaimChange::Refused(format!(
                    "storage.class cannot change on a running cluster (claims of {:?} stay)",
                    class(have).unwrap_or_else(|| "the default class".into())
                ));
            }
            let (Some(from), Some(to)) = (requested(have), requested(want)) else {
                return ClaimChange::Same;
            };
            match (quantity_bytes(from), quantity_bytes(to)) {
                (Some(a), Some(b)) if b > a => ClaimChange::Expand { size: to.into() },
                (Some(a), Some(b)) if b < a => ClaimChange::Refused(format!(
                    "storage.size cannot shrink ({from} to {to}): volumes only grow; the claims stay at {from}"
                )),
                _ => ClaimChange::Same,
            }
        }
    }
}

/// Whether the claim template of `current` asks for another size than
/// `size`: its claims may be growing.
pub fn resized(current: Option<&StatefulSet>, size: &str) -> bool {
    current
        .and_then(template)
        .and_then(requested)
        .and_then(quantity_bytes)
        .is_some_and(|have| quantity_bytes(size) != Some(have))
}

/// Whether `claim` asks for less than `size`.
pub fn needs_expanding(claim: &PersistentVolumeClaim, size: &str) -> bool {
    match (
        requested(claim).and_then(quantity_bytes),
        quantity_bytes(size),
    ) {
        (Some(have), Some(want)) => have < want,
        _ => false,
    }
}

/// Whether the volume under `claim` has reached what it asks for.
pub fn expanded(claim: &PersistentVolumeClaim) -> bool {
    let capacity = claim
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| quantity_bytes(&q.0));
    match (capacity, requested(claim).and_then(quantity_bytes)) {
        (Some(have), Some(want)) => have >= want,
        _ => false,
    }
}

/// Bytes of a Kubernetes quantity (`10Gi`, `500M`, `1e9`, `1073741824`);
/// `None` for what is not a whole number of bytes.
pub fn quantity_bytes(q: &str) -> Option<u128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let multiplier: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        s if s.starts_with(['e', 'E']) => 10u128.checked_pow(s[1..].parse().ok()?)?,
        _ => return None,
    };
    match number.split_once('.') {
        None => number.parse::<u128>().ok()?.checked_mul(multiplier),
        Some((whole, fraction)) => {
            let scale = 10u128.checked_pow(fraction.len() as u32)?;
            let digits: u128 = format!("{whole}{fraction}").parse().ok()?;
            let bytes = digits.checked_mul(multiplier)?;
            (bytes % scale == 0).then_some(bytes / scale)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeMap;

    fn sts(claim: Option<(&str, Option<&str>)>) -> StatefulSet {
        let claims = claim.map(|(size, class)| {
            vec![PersistentVolumeClaim {
                spec: Some(PersistentVolumeClaimSpec {
                    storage_class_name: class.map(String::from),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(size.into()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]
        });
        StatefulSet {
            spec: Some(StatefulSetSpec {
                volume_claim_templates: claims,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_larger_size_reaches_the_claims() {
        let fast = Some("fast");
        let cases = [
            ("a new cluster", None, sts(Some(("10Gi", None))), "same"),
            (
                "unchanged",
                Some(sts(Some(("10Gi", fast)))),
                sts(Some(("10Gi", fast))),
                "same",
            ),
            (
                "the same size written otherwise",
                Some(sts(Some(("1Gi", None)))),
                sts(Some(("1024Mi", None))),
                "same",
            ),
            (
                "larger",
                Some(sts(Some(("10Gi", fast)))),
                sts(Some(("20Gi", fast))),
                "expand 20Gi",
            ),
            (
                "smaller",
                Some(sts(Some(("10Gi", fast)))),
                sts(Some(("5Gi", fast))),
                "refused storage.size cannot shrink",
            ),
            (
                "another class",
                Some(sts(Some(("10Gi", fast)))),
                sts(Some(("10Gi", Some("slow")))),
                "refused storage.class cannot change",
            ),
            (
                "ephemeral to claims",
                Some(sts(None)),
                sts(Some(("10Gi", None))),
                "type",
            ),
            (
                "claims to ephemeral",
                Some(sts(Some(("10Gi", None)))),
                sts(None),
                "type",
            ),
            ("ephemeral both", Some(sts(None)), sts(None), "same"),
        ];
        for (name, current, desired, want) in cases {
            let got = match decide(current.as_ref(), &desired) {
                ClaimChange::Same => "same".to_string(),
                ClaimChange::Expand { size } => format!("expand {size}"),
                ClaimChange::Refused(why) => format!("refused {why}"),
                ClaimChange::TypeChanged(why) => {
                    assert!(why.starts_with("storage.type cannot change"), "{why}");
                    "type".to_string()
                }
            };
            assert!(got.starts_with(want), "{name}: {got}");
        }
    }

    #[test]
    fn claims_are_looked_at_only_after_a_resize() {
        let current = sts(Some(("10Gi", None)));
        assert!(!resized(None, "10Gi"));
        assert!(!resized(Some(&current), "10Gi"));
        assert!(!resized(Some(&current), "10240Mi"));
        assert!(resized(Some(&current), "20Gi"));
        assert!(!resized(Some(&sts(None)), "20Gi"));
    }

    #[test]
    fn quantities_in_bytes() {
        let cases = [
            ("10Gi", Some(10 << 30)),
            ("1.5Gi", Some(3 << 29)),
            ("500M", Some(500_000_000)),
            ("1e9", Some(1_000_000_000)),
            ("123", Some(123)),
            ("0.5", None),
            ("10 Gi", None),
            ("10Xi", None),
            ("", None),
        ];
        for (q, want) in cases {
            assert_eq!(quantity_bytes(q), want, "{q}");
        }
    }
}

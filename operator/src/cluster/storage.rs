//! Storage changes on a running cluster. The API server refuses any change
//! to a StatefulSet's `volumeClaimTemplates`, so the operator never sends
//! one: a larger size of a volume is applied to each broker's claim of it
//! (which the StorageClass expands, or refuses), every other change to a
//! volume is refused in status while the rest of the spec is applied, and
//! a change of the kind of storage or of the set of volumes is refused,
//! the pass going on with the storage the brokers have.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::volumes::{data_volumes, DataVolume};
use crate::crd::cluster::{JbodVolume, Storage, StorageType};

/// What of the spec's storage can reach a running StatefulSet's claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimPlan {
    /// Claim templates whose claims grow, with the size they grow to.
    pub grow: Vec<Growth>,
    /// Changes nothing can apply, each said for status.
    pub refused: Vec<String>,
}

impl ClaimPlan {
    /// Whether the claims stay exactly as they are.
    pub fn is_empty(&self) -> bool {
        self.grow.is_empty() && self.refused.is_empty()
    }
}

/// The claims of one claim template growing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    /// The claim template (the claim of pod `p` is `<template>-<p>`).
    pub template: String,
    /// The new size, as the spec writes it.
    pub size: String,
}

/// The claim templates of `sts`.
fn templates(sts: &StatefulSet) -> &[PersistentVolumeClaim] {
    sts.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default()
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

fn class(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim.spec.as_ref()?.storage_class_name.as_deref()
}

fn name(claim: &PersistentVolumeClaim) -> &str {
    claim.metadata.name.as_deref().unwrap_or_default()
}

/// The storage `sts` was made with: what a running cluster keeps when
/// the spec asks for another kind of storage or another set of volumes
/// (a StatefulSet's claim templates never change once it exists, and a
/// pod's volumes must match them). `spec` fills in what the StatefulSet
/// does not say.
pub fn running_storage(sts: &StatefulSet, spec: &Storage) -> Storage {
    let claims = templates(sts);
    let size = |c: &PersistentVolumeClaim| requested(c).unwrap_or(&spec.size).to_string();
    if claims.is_empty() {
        // An emptyDir: its size limit is the size.
        let size = sts
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.volumes.as_ref())
            .and_then(|v| v.iter().find(|v| v.name == "data"))
            .and_then(|v| v.empty_dir.as_ref()?.size_limit.as_ref())
            .map_or_else(|| spec.size.clone(), |q| q.0.clone());
        return Storage {
            kind: StorageType::Ephemeral,
            size,
            volumes: Vec::new(),
            ..spec.clone()
        };
    }
    if let Some(one) = claims.iter().find(|c| name(c) == "data") {
        return Storage {
            kind: StorageType::PersistentClaim,
            size: size(one),
            class: class(one).map(String::from),
            volumes: Vec::new(),
            ..spec.clone()
        };
    }
    let volumes = claims
        .iter()
        .filter_map(|c| {
            let id = name(c).strip_prefix("data-")?.parse().ok()?;
            Some(JbodVolume {
                id,
                kind: None,
                size: size(c),
                class: class(c).map(String::from),
                delete_claim: None,
            })
        })
        .collect();
    Storage {
        kind: StorageType::Jbod,
        volumes,
        ..spec.clone()
    }
}

/// The storage a pass applies: the spec's, or, when the spec asks for
/// another kind of storage or another set of volumes than the running
/// StatefulSet has, the running one's and why the spec's cannot be.
pub fn kept(current: Option<&StatefulSet>, spec: &Storage) -> Option<(Storage, String)> {
    let current = current?;
    let running = running_storage(current, spec);
    let names = |s: &Storage| {
        data_volumes(s)
            .into_iter()
            .map(|v| v.name)
            .collect::<Vec<_>>()
    };
    if running.kind == spec.kind && names(&running) == names(spec) {
        return None;
    }
    let why = match (running.kind, spec.kind) {
        (StorageType::Jbod, StorageType::Jbod) => format!(
            "storage.volumes cannot be added or removed on a running cluster (its brokers have volumes {}); set them back, or make a new cluster and move the topics",
            names(&running).join(", ")
        ),
        _ => "storage.type cannot change on a running cluster: the brokers would lose their data; set it back, or make a new cluster and move the topics".into(),
    };
    Some((running, why))
}

/// Decides what of `desired`'s claim templates can be applied over
/// `current`'s (the same templates, by [`kept`]; a StatefulSet's
/// templates never change once it exists).
pub fn decide(current: Option<&StatefulSet>, desired: &StatefulSet) -> ClaimPlan {
    let mut plan = ClaimPlan::default();
    let Some(current) = current else {
        return plan;
    };
    for have in templates(current) {
        let Some(want) = templates(desired).iter().find(|c| name(c) == name(have)) else {
            continue;
        };
        // One volume is `storage`; jbod's are named by their template.
        let field = match name(have) {
            "data" => "storage".to_string(),
            other => format!("storage.volumes[{other}]"),
        };
        if class(have) != class(want) {
            plan.refused.push(format!(
                "{field}.class cannot change on a running cluster (claims of {:?} stay)",
                class(have).unwrap_or("the default class")
            ));
            continue;
        }
        let (Some(from), Some(to)) = (requested(have), requested(want)) else {
            continue;
        };
        match (quantity_bytes(from), quantity_bytes(to)) {
            (Some(a), Some(b)) if b > a => plan.grow.push(Growth {
                template: name(have).into(),
                size: to.into(),
            }),
            (Some(a), Some(b)) if b < a => plan.refused.push(format!(
                "{field}.size cannot shrink ({from} to {to}): volumes only grow; the claims stay at {from}"
            )),
            _ => {}
        }
    }
    plan
}

/// The claim templates of `current` that ask for another size than the
/// spec's `volumes`: their claims may be growing.
pub fn resized(current: Option<&StatefulSet>, volumes: &[DataVolume]) -> Vec<String> {
    let Some(current) = current else {
        return Vec::new();
    };
    templates(current)
        .iter()
        .filter(|c| {
            let want = volumes.iter().find(|v| v.name == name(c));
            let have = requested(c).and_then(quantity_bytes);
            have.is_some() && want.is_some_and(|v| quantity_bytes(&v.size) != have)
        })
        .map(|c| name(c).to_string())
        .collect()
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    /// A StatefulSet with claim templates (name, size, class).
    fn sts(claims: &[(&str, &str, Option<&str>)]) -> StatefulSet {
        let claims = claims
            .iter()
            .map(|(name, size, class)| PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    storage_class_name: class.map(String::from),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(size.to_string()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        StatefulSet {
            spec: Some(StatefulSetSpec {
                volume_claim_templates: (!claims.is_empty()).then_some(claims),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_larger_size_reaches_the_claims() {
        let fast = Some("fast");
        let one = |size, class| sts(&[("data", size, class)]);
        let two = |a, b| sts(&[("data-0", a, fast), ("data-1", b, fast)]);
        let cases = [
            ("a new cluster", None, one("10Gi", None), "same"),
            (
                "unchanged",
                Some(one("10Gi", fast)),
                one("10Gi", fast),
                "same",
            ),
            (
                "the same size written otherwise",
                Some(one("1Gi", None)),
                one("1024Mi", None),
                "same",
            ),
            (
                "larger",
                Some(one("10Gi", fast)),
                one("20Gi", fast),
                "grow data 20Gi",
            ),
            (
                "smaller",
                Some(one("10Gi", fast)),
                one("5Gi", fast),
                "refused storage.size cannot shrink",
            ),
            (
                "another class",
                Some(one("10Gi", fast)),
                one("10Gi", Some("slow")),
                "refused storage.class cannot change",
            ),
            (
                "one jbod volume larger, one smaller",
                Some(two("10Gi", "10Gi")),
                two("5Gi", "20Gi"),
                "grow data-1 20Gi; refused storage.volumes[data-0].size cannot shrink",
            ),
            ("ephemeral both", Some(sts(&[])), sts(&[]), "same"),
        ];
        for (name, current, desired, want) in cases {
            let plan = decide(current.as_ref(), &desired);
            let got = match plan.is_empty() {
                true => "same".to_string(),
                false => plan
                    .grow
                    .iter()
                    .map(|g| format!("grow {} {}", g.template, g.size))
                    .chain(plan.refused.iter().map(|r| format!("refused {r}")))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            assert!(got.starts_with(want), "{name}: {got}");
        }
    }

    #[test]
    fn another_kind_of_storage_or_set_of_volumes_keeps_the_running_one() {
        let storage =
            |v: serde_json::Value| -> Storage { serde_json::from_value(v).expect("valid storage") };
        let fast = Some("fast");
        let one = sts(&[("data", "10Gi", fast)]);
        let two = sts(&[("data-0", "10Gi", fast), ("data-3", "20Gi", None)]);
        let jbod = |ids: &[i32]| {
            storage(serde_json::json!({"type": "jbod", "volumes": ids.iter()
                .map(|id| serde_json::json!({"id": id, "size": "30Gi"})).collect::<Vec<_>>()}))
        };
        let claims = storage(serde_json::json!({"size": "30Gi", "deleteClaim": true}));
        let ephemeral = storage(serde_json::json!({"type": "ephemeral", "size": "5Gi"}));
        let cases = [
            ("a new cluster", None, claims.clone(), None),
            ("the same kind", Some(one.clone()), claims.clone(), None),
            ("the same volumes", Some(two.clone()), jbod(&[3, 0]), None),
            (
                "one volume to jbod",
                Some(one.clone()),
                jbod(&[0]),
                Some(("storage.type cannot change", "persistent-claim 10Gi fast")),
            ),
            (
                "a volume added",
                Some(two.clone()),
                jbod(&[0, 1, 3]),
                Some((
                    "storage.volumes cannot be added or removed on a running cluster (its brokers have volumes data-0, data-3)",
                    "jbod data-0 10Gi fast, data-3 20Gi -",
                )),
            ),
            (
                "claims to ephemeral",
                Some(one.clone()),
                ephemeral.clone(),
                Some(("storage.type cannot change", "persistent-claim 10Gi fast")),
            ),
            (
                "ephemeral to claims",
                Some(sts(&[])),
                claims.clone(),
                Some(("storage.type cannot change", "ephemeral 30Gi -")),
            ),
        ];
        let describe = |s: &Storage| match s.kind {
            StorageType::Jbod => format!(
                "jbod {}",
                data_volumes(s)
                    .iter()
                    .map(|v| format!(
                        "{} {} {}",
                        v.name,
                        v.size,
                        v.class.as_deref().unwrap_or("-")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            StorageType::PersistentClaim => format!(
                "persistent-claim {} {}",
                s.size,
                s.class.as_deref().unwrap_or("-")
            ),
            StorageType::Ephemeral => format!("ephemeral {} -", s.size),
        };
        for (name, current, spec, want) in cases {
            let got = kept(current.as_ref(), &spec);
            match (got, want) {
                (None, None) => {}
                (Some((running, why)), Some((reason, storage))) => {
                    assert!(why.starts_with(reason), "{name}: {why}");
                    assert_eq!(describe(&running), storage, "{name}");
                    assert_eq!(running.delete_claim, spec.delete_claim, "{name}");
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn claims_are_looked_at_only_after_a_resize() {
        let volume = |name: &str, size: &str| DataVolume {
            name: name.into(),
            mount: String::new(),
            log_dir: String::new(),
            size: size.into(),
            class: None,
        };
        let current = sts(&[("data-0", "10Gi", None), ("data-1", "10Gi", None)]);
        let same = [volume("data-0", "10Gi"), volume("data-1", "10240Mi")];
        assert!(resized(None, &same).is_empty());
        assert!(resized(Some(&current), &same).is_empty());
        let grown = [volume("data-0", "10Gi"), volume("data-1", "20Gi")];
        assert_eq!(resized(Some(&current), &grown), ["data-1"]);
        assert!(resized(Some(&sts(&[])), &grown).is_empty());
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

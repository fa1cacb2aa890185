//! The PodDisruptionBudget: voluntary evictions (node drains) take at most
//! one broker at a time, like the operator's own restarts.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::Names;

/// The cluster's PodDisruptionBudget.
pub fn pdb(names: &Names, owner: &OwnerReference) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: names.meta(names.statefulset(), owner),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(names.selector()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

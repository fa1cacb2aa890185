//! The ConfigMap holding every broker's properties file.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::names::Names;

/// The ConfigMap with `files` (key: file name, value: properties text).
pub fn configmap(
    names: &Names,
    owner: &OwnerReference,
    files: BTreeMap<String, String>,
) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(names.configmap()),
            namespace: Some(names.namespace.clone()),
            labels: Some(names.labels()),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        data: Some(files),
        ..Default::default()
    }
}

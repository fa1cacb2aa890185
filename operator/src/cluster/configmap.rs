//! The ConfigMap holding every broker's properties file.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::names::Names;

/// The ConfigMap with `files` (key: file name, value: properties text).
pub fn configmap(
    names: &Names,
    owner: &OwnerReference,
    files: BTreeMap<String, String>,
) -> ConfigMap {
    ConfigMap {
        metadata: names.meta(names.configmap(), owner),
        data: Some(files),
        ..Default::default()
    }
}

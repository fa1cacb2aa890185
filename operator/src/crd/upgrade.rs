//! The operator's own CRDs, applied at start (`--apply-crds`). Helm
//! installs a chart's `crds/` on the first install and never upgrades
//! them, so the operator applies the CRDs of its version itself, with
//! server-side apply, before its controllers start: `helm upgrade` then
//! upgrades the CRDs with the operator.
//!
//! Never a downgrade: each CRD carries the version of the operator that
//! made it ([`VERSION_ANNOTATION`]). A CRD from a newer operator is left as
//! it is, and the log says so; one from this version, an older one or none
//! (the chart's first install before the stamp existed) is applied.
//! Applying is idempotent, so replicas starting together agree; the
//! version read is the write's precondition (its `resourceVersion`), so an
//! operator of another version writing in between is read again rather
//! than overwritten.

use std::cmp::Ordering;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionCondition,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use semver::Version;

use super::{definitions, VERSION_ANNOTATION};
use crate::cluster::names::FIELD_MANAGER;

/// How long the API server may take to establish (serve) the CRDs: their
/// conditions are read this often, up to this many times after the first
/// (20 s).
const ESTABLISH_POLL: Duration = Duration::from_millis(250);
const ESTABLISH_POLLS: u32 = 80;
/// Writes of one CRD that may find it changed since it was read, in a row.
const ATTEMPTS: usize = 5;

/// The CRDs could not be applied, or are not served.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The Kubernetes API refused or failed a request about a CRD.
    #[error("CRD {name}: {source}")]
    Kube {
        /// The CRD's name.
        name: String,
        /// What the client or the API server said.
        #[source]
        source: kube::Error,
    },
    /// The CRD changed between every read and write of it.
    #[error("CRD {name} changed under each of {ATTEMPTS} writes")]
    Contended {
        /// The CRD's name.
        name: String,
    },
    /// The API server did not establish the CRD in time.
    #[error("CRD {name} not established within {} s: {conditions}", .waited.as_secs_f64())]
    NotEstablished {
        /// The CRD's name.
        name: String,
        /// How long the operator waited.
        waited: Duration,
        /// Its conditions, as last read.
        conditions: String,
    },
}

/// What to do with one CRD in the cluster.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Apply this version's.
    Apply,
    /// Leave it: it comes from a newer operator, of this version.
    KeepNewer(Version),
}

/// Decides about a CRD stamped with `stamp` (`None`: unstamped, or not in
/// the cluster) for an operator of version `ours`. Versions compare by
/// semver precedence (a pre-release before its release, build metadata
/// ignored); a stamp that is no version is overwritten.
pub fn decide(ours: &Version, stamp: Option<&str>) -> Decision {
    match stamp.map(Version::parse) {
        Some(Ok(theirs)) if theirs.cmp_precedence(ours) == Ordering::Greater => {
            Decision::KeepNewer(theirs)
        }
        _ => Decision::Apply,
    }
}

/// Applies this version's CRDs where the cluster's are not newer, then
/// waits until every one of them is established.
pub async fn apply(client: &Client) -> Result<(), CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Cargo accepts only semver package versions.
    let ours = Version::parse(env!("CARGO_PKG_VERSION")).expect("the crate's version is semver");
    let crds = definitions();
    for crd in &crds {
        apply_one(&api, &ours, crd.clone()).await?;
    }
    for crd in &crds {
        wait_established(&api, &crd.name_any(), ESTABLISH_POLL).await?;
    }
    Ok(())
}

/// Applies `crd` unless the cluster's is newer.
async fn apply_one(
    api: &Api<CustomResourceDefinition>,
    ours: &Version,
    mut crd: CustomResourceDefinition,
) -> Result<(), CrdError> {
    let name = crd.name_any();
    let failed = |source| CrdError::Kube {
        name: name.clone(),
        source,
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for _ in 0..ATTEMPTS {
        let live = api.get_opt(&name).await.map_err(failed)?;
        let stamp = live
            .as_ref()
            .and_then(|l| l.annotations().get(VERSION_ANNOTATION).cloned());
        if let Decision::KeepNewer(theirs) = decide(ours, stamp.as_deref()) {
            tracing::warn!(
                crd = %name, cluster = %theirs, operator = %ours,
                "leaving the CRD as it is: it comes from a newer operator"
            );
            return Ok(());
        }
        // Written only over what was read: a write in between (another
        // operator's) fails the apply with a conflict, and is read again.
        crd.metadata.resource_version = live.and_then(|l| l.metadata.resource_version);
        match api.patch(&name, &params, &Patch::Apply(&crd)).await {
            Ok(_) => {
                tracing::info!(
                    crd = %name, was = stamp.as_deref().unwrap_or("unstamped"), now = %ours,
                    "applied the CRD"
                );
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!(crd = %name, "the CRD changed since it was read; reading it again");
            }
            Err(e) => return Err(failed(e)),
        }
    }
    Err(CrdError::Contended { name })
}

/// Waits until the API server reports CRD `name` established, reading it
/// every `poll`, [`ESTABLISH_POLLS`] times after the first. (Counted rather
/// than timed, so a test can wait a short `poll` the same number of times.)
async fn wait_established(
    api: &Api<CustomResourceDefinition>,
    name: &str,
    poll: Duration,
) -> Result<(), CrdError> {
    let mut polls = 0;
    loop {
        let crd = api.get(name).await.map_err(|source| CrdError::Kube {
            name: name.to_string(),
            source,
        })?;
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            return Ok(());
        }
        if polls == ESTABLISH_POLLS {
            return Err(CrdError::NotEstablished {
                name: name.to_string(),
                waited: poll * polls,
                conditions: describe(&conditions),
            });
        }
        tokio::time::sleep(poll).await;
        polls += 1;
    }
}

/// Conditions as `Type=Status (message)`, for an error.
fn describe(conditions: &[CustomResourceDefinitionCondition]) -> String {
    if conditions.is_empty() {
        return "no conditions yet".into();
    }
    conditions
        .iter()
        .map(|c| match &c.message {
            Some(m) if !m.is_empty() => format!("{}={} ({m})", c.type_, c.status),
            _ => format!("{}={}", c.type_, c.status),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::mock_api::{pair, Call};

    fn version(v: &str) -> Version {
        Version::parse(v).expect("a version")
    }

    #[test]
    fn only_a_newer_operators_crds_are_kept() {
        let ours = version("0.2.0");
        assert_eq!(decide(&ours, None), Decision::Apply);
        assert_eq!(decide(&ours, Some("0.1.9")), Decision::Apply);
        assert_eq!(decide(&ours, Some("0.2.0")), Decision::Apply);
        assert_eq!(
            decide(&ours, Some("0.10.0")),
            Decision::KeepNewer(version("0.10.0"))
        );
        // A release is newer than its release candidates.
        assert_eq!(decide(&ours, Some("0.2.0-rc.1")), Decision::Apply);
        assert_eq!(
            decide(&version("0.2.0-rc.1"), Some("0.2.0")),
            Decision::KeepNewer(version("0.2.0"))
        );
        // Build metadata says nothing about which is newer.
        assert_eq!(decide(&ours, Some("0.2.0+abc")), Decision::Apply);
        // A stamp that is no version is the operator's to overwrite.
        assert_eq!(decide(&ours, Some("latest")), Decision::Apply);
    }

    #[test]
    fn every_definition_is_stamped_with_this_version() {
        let crds = definitions();
        let names: Vec<String> = crds.iter().map(|c| c.name_any()).collect();
        assert_eq!(
            names,
            [
                "kafkaclusters.gregor.dev",
                "kafkanodepools.gregor.dev",
                "kafkatopics.gregor.dev",
                "kafkausers.gregor.dev"
            ]
        );
        for crd in crds {
            assert_eq!(
                crd.annotations()
                    .get(VERSION_ANNOTATION)
                    .map(String::as_str),
                Some(env!("CARGO_PKG_VERSION"))
            );
        }
    }

    const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

    /// CRD `name` as the API server holds it: stamped with `stamp`, at
    /// `resource_version`, established.
    fn live(name: &str, stamp: Option<&str>, resource_version: &str) -> Value {
        let annotations = match stamp {
            Some(v) => json!({ VERSION_ANNOTATION: v }),
            None => json!({}),
        };
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "resourceVersion": resource_version, "annotations": annotations},
            "spec": {"group": "gregor.dev", "scope": "Namespaced", "versions": [],
                     "names": {"plural": name.split('.').next(), "kind": "K"}},
            "status": {"conditions": [{"type": "Established", "status": "True"}]},
        })
    }

    fn established(name: &str) -> Call {
        Call::get(&format!("{CRDS}/{name}"), live(name, None, "9"))
    }

    #[tokio::test]
    async fn older_crds_are_applied_over_what_was_read_and_newer_ones_kept() {
        let (client, server) = pair();
        let [clusters, pools, topics, users] = [
            "kafkaclusters.gregor.dev",
            "kafkanodepools.gregor.dev",
            "kafkatopics.gregor.dev",
            "kafkausers.gregor.dev",
        ]
        .map(|name| (name, format!("{CRDS}/{name}")));
        let script = vec![
            // From the chart's first install, before stamps: applied, the
            // version read as the write's precondition.
            Call::get(&clusters.1, live(clusters.0, None, "7")),
            Call::apply(
                &clusters.1,
                json!({"metadata": {
                "name": clusters.0, "resourceVersion": "7",
                "annotations": {VERSION_ANNOTATION: env!("CARGO_PKG_VERSION")}}}),
            ),
            // This version's: applied again (idempotent).
            Call::get(
                &pools.1,
                live(pools.0, Some(env!("CARGO_PKG_VERSION")), "5"),
            ),
            Call::apply(
                &pools.1,
                json!({"metadata": {"name": pools.0, "resourceVersion": "5"}}),
            ),
            // A newer operator's: left alone.
            Call::get(&topics.1, live(topics.0, Some("999.0.0"), "8")),
            // Not there: created, with no precondition.
            Call::get_missing(&users.1),
            Call::apply(&users.1, json!({"metadata": {"name": users.0}})).check(|body| {
                assert!(body["metadata"].get("resourceVersion").is_none(), "{body}");
            }),
            established(clusters.0),
            established(pools.0),
            established(topics.0),
            established(users.0),
        ];
        let served = server.run(script);
        apply(&client).await.expect("applied");
        served.await.expect("the script ran");
    }

    #[tokio::test]
    async fn a_crd_changed_since_it_was_read_is_read_again() {
        let (client, server) = pair();
        let name = "kafkaclusters.gregor.dev";
        let path = format!("{CRDS}/{name}");
        let script = vec![
            Call::get(&path, live(name, Some("0.0.1"), "7")),
            // A newer operator applied its own in between.
            Call::apply(&path, json!({"metadata": {"resourceVersion": "7"}})).refused(
                409,
                "Conflict",
                "the object has been modified",
            ),
            Call::get(&path, live(name, Some("999.0.0"), "8")),
        ];
        let served = server.run(script);
        let ours = version(env!("CARGO_PKG_VERSION"));
        let crd = definitions().remove(0);
        apply_one(&Api::all(client), &ours, crd)
            .await
            .expect("left alone");
        served.await.expect("the script ran");
    }

    #[tokio::test]
    async fn a_crd_never_established_is_an_error_naming_its_conditions() {
        let (client, server) = pair();
        let name = "kafkaclusters.gregor.dev";
        let mut crd = live(name, None, "7");
        crd["status"]["conditions"] = json!([{"type": "NamesAccepted", "status": "False",
            "message": "\"kc\" is already in use"}]);
        let path = format!("{CRDS}/{name}");
        let reads = ESTABLISH_POLLS + 1;
        let script = (0..reads).map(|_| Call::get(&path, crd.clone())).collect();
        let served = server.run(script);
        let err = wait_established(&Api::all(client), name, Duration::from_millis(1))
            .await
            .expect_err("not established");
        assert_eq!(
            err.to_string(),
            "CRD kafkaclusters.gregor.dev not established within 0.08 s: \
             NamesAccepted=False (\"kc\" is already in use)"
        );
        served.await.expect("the script ran");
    }
}

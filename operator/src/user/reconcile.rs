//! The `KafkaUser` controller's reconcile pass: find the cluster, keep the
//! user's credentials (a SCRAM password or a client certificate of the
//! clients CA) in its Secret and in the cluster, its ACL bindings and its
//! quotas as the spec says, report status. Deletion goes through a
//! finalizer: the user's credentials, ACLs and quotas leave the cluster
//! before the resource is gone (its Secret is the resource's, and goes
//! with it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event};
use kube::{Api, Resource, ResourceExt};

use crate::admin::Admin;
use crate::cluster::certificates::{self, secret_data, SecretData, CA_KEY_KEY};
use crate::cluster::names::{Names, FIELD_MANAGER};
use crate::cluster::security::{self, CA_CERT_KEY};
use crate::cluster::topology;
use crate::conditions::{conditions, Decided};
use crate::context::Context;
use crate::crd::cluster::{AuthenticationType, KafkaCluster};
use crate::crd::user::{KafkaUser, KafkaUserStatus, UserAuthenticationType};
use crate::crd::validate::lifetimes;
use crate::error::Error;
use crate::pki;
use crate::pki::authority::{Authority, LeafRequest, Usage};
use crate::pki::certificate::CertificateInfo;
use crate::pki::renewal::reissue;
use crate::tls;

use super::credentials::{
    generate_password, scram_secret, scram_sha_512, tls_secret, Endpoint, CERT_KEY, KEY_KEY,
    PASSWORD_KEY, SCRAM_ITERATIONS, SCRAM_SHA_512,
};
use super::plan::{acl_changes, bindings, quota_changes, quotas, username};

/// Finalizer that takes a deleted user's access away from the cluster.
pub const FINALIZER: &str = "gregor.dev/user";
/// Label of a user's Secret, with the user's name.
const USER_LABEL: &str = "gregor.dev/kafka-user";
/// How often a user in step is looked at again (a certificate's renewal,
/// changes made by other means).
const RECHECK: Duration = Duration::from_secs(120);
/// How soon a pass that failed is tried again.
const RETRY: Duration = Duration::from_secs(10);

/// Reconciles one `KafkaUser`.
pub async fn reconcile(ku: Arc<KafkaUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = ku.namespace().ok_or(Error::Missing("namespace"))?;
    let api: Api<KafkaUser> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, ku, |event| async {
        match event {
            Event::Apply(ku) => apply(&ku, &ctx, &ns).await,
            Event::Cleanup(ku) => cleanup(&ku, &ctx, &ns).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// What to do when a pass fails: log, and try again soon.
pub fn error_policy(ku: Arc<KafkaUser>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(user = %ku.name_any(), %error, "reconcile failed");
    Action::requeue(RETRY)
}

/// The user's cluster, unless it is gone or going.
async fn cluster(ctx: &Context, ns: &str, name: &str) -> Result<Option<KafkaCluster>, Error> {
    let api: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), ns);
    Ok(api
        .get_opt(name)
        .await?
        .filter(|kc| kc.meta().deletion_timestamp.is_none()))
}

async fn connect(ctx: &Context, kc: &KafkaCluster, names: &Names) -> Result<Admin, Error> {
    let tls = tls::for_cluster(&ctx.client, names).await?;
    let bootstrap = topology::admin_bootstrap(kc, &names.namespace);
    Ok(Admin::connect(&bootstrap, &tls).await?)
}

async fn apply(ku: &KafkaUser, ctx: &Context, ns: &str) -> Result<Action, Error> {
    let status = ku.status.clone().unwrap_or_default();
    let generation = ku.meta().generation;
    let user = username(&ku.name_any(), ku.spec.authentication.kind);
    let (decided, secret, requeue) = match cluster(ctx, ns, &ku.spec.cluster).await? {
        None => (
            Decided::new(
                "Ready",
                false,
                "ClusterNotFound",
                format!("KafkaCluster {ns}/{} does not exist", ku.spec.cluster),
            ),
            None,
            RETRY,
        ),
        Some(kc) => match sync(ku, &kc, ctx, ns, &user).await {
            Ok(secret) => (
                Decided::new(
                    "Ready",
                    true,
                    "Ready",
                    format!("user {user} matches the spec"),
                ),
                secret,
                RECHECK,
            ),
            Err(e) => (
                Decided::new("Ready", false, "NotApplied", e.to_string()),
                status.secret.clone(),
                RETRY,
            ),
        },
    };
    let failed_anew = !decided.status
        && status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| &c.message)
            != Some(&decided.message);
    if failed_anew {
        ctx.event(ku, true, &decided.reason, decided.message.clone())
            .await;
    }
    let next = KafkaUserStatus {
        observed_generation: generation,
        conditions: conditions(vec![decided], &status.conditions, generation),
        username: Some(user),
        secret,
    };
    if next != status {
        let api: Api<KafkaUser> = Api::namespaced(ctx.client.clone(), ns);
        let patch = serde_json::json!({ "status": next });
        api.patch_status(
            &ku.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(Action::requeue(requeue))
}

/// Makes the cluster and the user's Secret match the spec; returns the
/// Secret's name, if the user has one.
async fn sync(
    ku: &KafkaUser,
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
    user: &str,
) -> Result<Option<String>, Error> {
    let names = Names::new(&kc.name_any(), ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let read = |name: String| {
        let secrets = secrets.clone();
        async move { Ok::<_, Error>(secrets.get_opt(&name).await?.map(|s| secret_data(&s))) }
    };
    let cluster_ca = read(names.ca_cert("cluster"))
        .await?
        .and_then(|d| d.get(CA_CERT_KEY).cloned())
        .ok_or_else(|| Error::Certificates("the cluster's CA is not made yet".into()))?;
    let ours = read(ku.name_any()).await?.unwrap_or_default();
    let mut admin = connect(ctx, kc, &names).await?;
    let mechanisms = admin.scram_mechanisms(user).await?;
    let kind = ku.spec.authentication.kind;
    let data = match kind {
        UserAuthenticationType::ScramSha512 => {
            let password = password(ku, &ours, &read).await?;
            let changed = ours.get(PASSWORD_KEY) != Some(&password);
            if changed || !mechanisms.contains(&SCRAM_SHA_512) {
                let (salt, salted) = scram_sha_512(&password)
                    .map_err(|_| Error::Password("no randomness for a salt".into()))?;
                admin
                    .upsert_scram(user, SCRAM_SHA_512, SCRAM_ITERATIONS as i32, salt, salted)
                    .await?;
            }
            let endpoint = endpoint(kc, &names, AuthenticationType::ScramSha512);
            Some(scram_secret(
                user,
                &password,
                endpoint.as_ref(),
                &cluster_ca,
            ))
        }
        UserAuthenticationType::Tls => {
            // A password user turned into a certificate user keeps no
            // password.
            if mechanisms.contains(&SCRAM_SHA_512) {
                admin.delete_scram(user, SCRAM_SHA_512).await?;
            }
            let clients = read(names.ca("clients"))
                .await?
                .ok_or_else(|| Error::Certificates("the clients CA is not made yet".into()))?;
            let (Some(cert), Some(key)) = (clients.get(CA_CERT_KEY), clients.get(CA_KEY_KEY))
            else {
                return Err(Error::Certificates(format!(
                    "the Secret {} lacks {CA_CERT_KEY} or {CA_KEY_KEY}",
                    names.ca("clients")
                )));
            };
            let signing = Authority::load(cert, key)?;
            let life = lifetimes(&kc.spec.clients_ca.clone().unwrap_or_default())
                .map_err(Error::Certificates)?;
            let current = ours
                .get(CERT_KEY)
                .and_then(|c| CertificateInfo::parse(c).ok());
            let now = pki::now();
            let (cert, key) = match reissue(now, life, current.as_ref(), signing.info(), &[]) {
                None => (
                    ours[CERT_KEY].clone(),
                    ours.get(KEY_KEY).cloned().unwrap_or_default(),
                ),
                Some(_) => {
                    let request = LeafRequest {
                        common_name: ku.name_any(),
                        organization: None,
                        names: Vec::new(),
                        usage: Usage::Client,
                    };
                    let issued = signing.issue(&request, now, life.validity)?;
                    (issued.certificate, issued.key)
                }
            };
            let endpoint = endpoint(kc, &names, AuthenticationType::Tls);
            Some(tls_secret(&cert, &key, endpoint.as_ref(), &cluster_ca))
        }
        UserAuthenticationType::TlsExternal => {
            if mechanisms.contains(&SCRAM_SHA_512) {
                admin.delete_scram(user, SCRAM_SHA_512).await?;
            }
            None
        }
    };
    if let Some(data) = &data {
        if *data != ours {
            write_secret(&secrets, ku, data).await?;
        }
    }

    let principal = format!("User:{user}");
    let wanted = bindings(
        ku.spec
            .authorization
            .as_ref()
            .map(|a| a.acls.as_slice())
            .unwrap_or_default(),
    );
    let (create, delete) = acl_changes(&wanted, &admin.acls_of(&principal).await?);
    admin.create_acls(&principal, &create).await?;
    admin.delete_acls(&principal, &delete).await?;
    let changes = quota_changes(
        &quotas(ku.spec.quotas.as_ref()),
        &admin.quotas_of(user).await?,
    );
    admin.alter_quotas(user, &changes).await?;
    Ok(data.map(|_| ku.name_any()))
}

/// The user's password: from the Secret the spec names, else the one it
/// was given before, else a new one.
async fn password<F, Fut>(ku: &KafkaUser, ours: &SecretData, read: &F) -> Result<String, Error>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<SecretData>, Error>>,
{
    if let Some(source) = &ku.spec.authentication.password {
        let r = &source.value_from.secret_key_ref;
        // That Secret is the operator's: written, owned and deleted with
        // the user, it would take the user's own Secret with it.
        if r.name == ku.name_any() {
            return Err(Error::Password(format!(
                "the password cannot come from the Secret {} (the operator writes that one for the user, and deletes it with the user): name another Secret",
                r.name
            )));
        }
        return read(r.name.clone())
            .await?
            .and_then(|d| d.get(&r.key).cloned())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::Password(format!("the Secret {} has no key {}", r.name, r.key)));
    }
    match ours.get(PASSWORD_KEY) {
        Some(p) if !p.is_empty() => Ok(p.clone()),
        _ => generate_password().map_err(|_| Error::Password("no randomness to make one".into())),
    }
}

/// Where clients of this kind of user connect: the first listener that
/// authenticates them so, with its bootstrap addresses from status.
fn endpoint(kc: &KafkaCluster, names: &Names, kind: AuthenticationType) -> Option<Endpoint> {
    let listener = kc
        .spec
        .listeners
        .iter()
        .find(|l| l.authentication.as_ref().is_some_and(|a| a.kind == kind))?;
    let bootstrap = kc
        .status
        .as_ref()
        .and_then(|s| s.listeners.iter().find(|l| l.name == listener.name))
        .map(|l| l.bootstrap.clone())
        .unwrap_or_else(|| format!("{}:{}", names.bootstrap_host(&listener.name), listener.port));
    Some(Endpoint {
        bootstrap,
        tls: security::protocol(listener).ends_with("SSL"),
    })
}

async fn write_secret(
    secrets: &Api<Secret>,
    ku: &KafkaUser,
    data: &SecretData,
) -> Result<(), Error> {
    let owner = ku.controller_owner_ref(&()).ok_or(Error::Missing("uid"))?;
    let metadata = ObjectMeta {
        name: Some(ku.name_any()),
        namespace: ku.namespace(),
        // Not the cluster's label: the Secret is the user's, and goes
        // with it, not with the cluster.
        labels: Some(BTreeMap::from([
            (USER_LABEL.to_string(), ku.name_any()),
            ("app.kubernetes.io/managed-by".into(), FIELD_MANAGER.into()),
        ])),
        owner_references: Some(vec![owner]),
        ..Default::default()
    };
    let secret = certificates::secret(metadata, data);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    secrets
        .patch(&ku.name_any(), &params, &Patch::Apply(&secret))
        .await?;
    Ok(())
}

/// Takes the user's credentials, ACLs and quotas out of its cluster.
async fn cleanup(ku: &KafkaUser, ctx: &Context, ns: &str) -> Result<Action, Error> {
    let Some(kc) = cluster(ctx, ns, &ku.spec.cluster).await? else {
        tracing::info!(user = %ku.name_any(), "cluster gone; releasing the resource");
        return Ok(Action::await_change());
    };
    let names = Names::new(&kc.name_any(), ns);
    let user = username(&ku.name_any(), ku.spec.authentication.kind);
    let principal = format!("User:{user}");
    let mut admin = connect(ctx, &kc, &names).await?;
    admin.delete_scram(&user, SCRAM_SHA_512).await?;
    let existing: Vec<_> = admin.acls_of(&principal).await?.into_iter().collect();
    admin.delete_acls(&principal, &existing).await?;
    let removed: Vec<(String, Option<f64>)> = admin
        .quotas_of(&user)
        .await?
        .into_keys()
        .map(|k| (k, None))
        .collect();
    admin.alter_quotas(&user, &removed).await?;
    ctx.event(
        ku,
        false,
        "Deleted",
        format!("removed user {user} from the cluster"),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(password_secret: Option<&str>) -> KafkaUser {
        let mut auth = serde_json::json!({"type": "scram-sha-512"});
        if let Some(name) = password_secret {
            auth["password"] =
                serde_json::json!({"valueFrom": {"secretKeyRef": {"name": name, "key": "pw"}}});
        }
        let mut ku = KafkaUser::new(
            "alice",
            serde_json::from_value(serde_json::json!({"cluster": "demo", "authentication": auth}))
                .expect("spec"),
        );
        ku.metadata.namespace = Some("kafka".into());
        ku
    }

    #[tokio::test]
    async fn a_password_comes_from_the_named_secret_but_never_the_users_own() {
        let read = |name: String| async move {
            Ok::<_, Error>(
                (name == "vault").then(|| SecretData::from([("pw".into(), "s3cret".into())])),
            )
        };
        let ours = SecretData::from([(PASSWORD_KEY.to_string(), "given-before".to_string())]);
        let cases = [
            (user(Some("vault")), Ok("s3cret")),
            (user(None), Ok("given-before")),
            (
                user(Some("elsewhere")),
                Err("the Secret elsewhere has no key pw"),
            ),
            (
                user(Some("alice")),
                Err("cannot come from the Secret alice"),
            ),
        ];
        for (ku, want) in cases {
            let got = password(&ku, &ours, &read).await;
            match (got, want) {
                (Ok(p), Ok(w)) => assert_eq!(p, w),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{e}"),
                (got, want) => panic!("{got:?} where {want:?} was expected"),
            }
        }
    }
}

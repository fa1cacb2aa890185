//! The operator's TLS identity towards a cluster: the cluster CA's trust
//! bundle and the operator's own certificate (a super user of the
//! cluster), read from the cluster's Secrets, as the rustls client
//! configuration the admin client connects with.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::cluster::certificates::{secret_text, OPERATOR_KEY};
use crate::cluster::names::Names;
use crate::cluster::security::CA_CERT_KEY;
use crate::error::Error;

/// A client configuration trusting the authorities of `bundle` and
/// presenting the key and certificate of `identity` (PEM, key first).
pub fn client_config(bundle: &str, identity: &str) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(bundle.as_bytes()) {
        let cert = cert.map_err(|e| format!("the trust bundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the trust bundle: {e}"))?;
    }
    let chain = CertificateDer::pem_slice_iter(identity.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the operator's certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(identity.as_bytes())
        .map_err(|e| format!("the operator's key: {e}"))?;
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the operator's certificate: {e}"))
}

/// The configuration for cluster `names`, from its Secrets.
pub async fn for_cluster(client: &kube::Client, names: &Names) -> Result<Arc<ClientConfig>, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &names.namespace);
    let text = |secret: Option<Secret>, name: String, key: &str| {
        secret
            .as_ref()
            .and_then(|s| secret_text(s, key))
            .ok_or_else(|| Error::Certificates(format!("the Secret {name} has no {key} yet")))
    };
    let bundle = text(
        secrets.get_opt(&names.ca_cert("cluster")).await?,
        names.ca_cert("cluster"),
        CA_CERT_KEY,
    )?;
    let identity = text(
        secrets.get_opt(&names.operator_certs()).await?,
        names.operator_certs(),
        OPERATOR_KEY,
    )?;
    client_config(&bundle, &identity)
        .map(Arc::new)
        .map_err(Error::Certificates)
}

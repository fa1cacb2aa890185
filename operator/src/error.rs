//! Errors of a reconcile pass. Each is retried with a back-off; the ones a
//! user can fix also show in the resource's status.

use crate::admin::AdminError;

/// A reconcile pass failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("{}", kube_message(.0))]
    Kube(#[from] kube::Error),
    /// The Kafka cluster refused or failed an admin request.
    #[error("Kafka admin: {0}")]
    Admin(#[from] AdminError),
    /// An object could not be turned into JSON (a bug).
    #[error("cannot serialize: {0}")]
    Json(#[from] serde_json::Error),
    /// The resource lacks a namespace or name (a bug or a broken object).
    #[error("resource has no {0}")]
    Missing(&'static str),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The cluster's certificates cannot be made, read or used.
    #[error("certificates: {0}")]
    Certificates(String),
    /// A user's password cannot be found or made.
    #[error("password: {0}")]
    Password(String),
}

/// What the API server said, as it said it, for a refusal; the client's
/// own account otherwise.
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => format!("Kubernetes API: {other}"),
    }
}

impl From<crate::pki::PkiError> for Error {
    fn from(e: crate::pki::PkiError) -> Self {
        Error::Certificates(e.to_string())
    }
}

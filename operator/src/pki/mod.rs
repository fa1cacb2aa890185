//! The cluster's certificates: the authorities the operator makes or is
//! given ([`authority`]), what a certificate says ([`certificate`]), and
//! when to introduce, sign with and retire an authority or renew a
//! certificate ([`renewal`], pure decisions over those facts).

pub mod authority;
pub mod certificate;
pub mod renewal;

/// What making or reading certificates can run into.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A certificate or key cannot be read.
    #[error("unreadable certificate or key: {0}")]
    Unreadable(String),
    /// A subject alternative name is neither an IP address nor a DNS name.
    #[error("{0:?} is not a valid DNS name or IP address for a certificate")]
    BadName(String),
    /// A validity bound is out of range.
    #[error("{0} is not a valid certificate time (seconds since 1970)")]
    BadTime(i64),
    /// rcgen refused to make a key or a certificate.
    #[error("cannot sign a certificate: {0}")]
    Sign(rcgen::Error),
}

/// Now, in seconds since 1970: certificates' times.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

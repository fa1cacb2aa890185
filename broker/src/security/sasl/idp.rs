//! The OAuth identity provider's HTTP endpoints, as the broker reaches
//! them: its key set (`GET sasl.oauthbearer.jwks.endpoint.url`) and its
//! token endpoint (`POST sasl.oauthbearer.token.endpoint.url`, the client
//! credentials grant, for brokers that log in to each other with
//! OAUTHBEARER).
//!
//! The provider is asked rarely (a key refresh an hour, a token every few
//! minutes), so each request is one HTTP/1.1 exchange on a fresh
//! connection, with a deadline and a bounded answer. `https:` certificates
//! are checked against the system's roots (which `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` may name) plus the PEM file the OAUTHBEARER JAAS line's
//! `ssl.truststore.location` option names, as Kafka takes the provider's
//! trust settings from those options. `http:` is allowed, as in Kafka, for
//! providers inside a trusted network.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long one request may take, connection included.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The largest answer read: key sets and tokens are a few KiB.
const MAX_ANSWER: usize = 1 << 20;

/// Why a request to the provider failed. Never carries a secret: the
/// request's credentials are not part of any variant.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// The URL is not an absolute `http:` or `https:` URL.
    #[error("{url}: not an http: or https: URL with a host")]
    Url {
        /// The URL.
        url: String,
    },
    /// The trust store named for the provider cannot be used.
    #[error("trust store {path} for the identity provider: {reason}")]
    TrustStore {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Connecting, the TLS handshake or the exchange failed.
    #[error("{url}: {reason}")]
    Exchange {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// No answer within [`DEADLINE`].
    #[error("{url}: no answer within {}s", DEADLINE.as_secs())]
    Timeout {
        /// The URL.
        url: String,
    },
    /// The provider answered with an error status.
    #[error("{url}: HTTP {status}: {excerpt}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        excerpt: String,
    },
}

/// The provider's client side: where to trust certificates from.
#[derive(Debug, Clone)]
pub struct Idp {
    tls: Arc<ClientConfig>,
}

impl Idp {
    /// A client trusting the system's roots and the PEM certificates of
    /// `trust_store`, if given.
    pub fn new(trust_store: Option<&str>) -> Result<Idp, IdpError> {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped: a trust store given
        // explicitly may be all the provider needs.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = trust_store {
            let refuse = |reason: String| IdpError::TrustStore {
                path: path.to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| refuse(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| refuse(e.to_string()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(refuse("no usable CERTIFICATE in it".into()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| IdpError::TrustStore {
                path: trust_store.unwrap_or("(system roots)").to_string(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Idp { tls: Arc::new(tls) })
    }

    /// `GET url`: the body of a 2xx answer.
    pub async fn get(&self, url: &str) -> Result<Bytes, IdpError> {
        self.exchange(url, "GET", &[], Bytes::new()).await
    }

    /// `POST url` of a form (`application/x-www-form-urlencoded`) with an
    /// `Authorization` header: the body of a 2xx answer.
    pub async fn post_form(
        &self,
        url: &str,
        authorization: &str,
        form: String,
    ) -> Result<Bytes, IdpError> {
        let headers = [
            ("authorization", authorization),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        self.exchange(url, "POST", &headers, Bytes::from(form))
            .await
    }

    async fn exchange(
        &self,
        url: &str,
        method: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Bytes, IdpError> {
        let target = Target::parse(url)?;
        let failed = |reason: String| IdpError::Exchange {
            url: url.to_string(),
            reason,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(target.path.as_str())
            .header("host", target.host_header.as_str())
            .header("accept", "application/json")
            .header("user-agent", concat!("gregor/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        let answer = tokio::time::timeout(DEADLINE, async {
            let response = self.send(&target, request).await.map_err(&failed)?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| failed(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, IdpError>((status, body))
        })
        .await
        .map_err(|_| IdpError::Timeout {
            url: url.to_string(),
        })??;
        match answer {
            (200..=299, body) => Ok(body),
            (status, body) => Err(IdpError::Status {
                url: url.to_string(),
                status,
                excerpt: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            }),
        }
    }

    async fn send(
        &self,
        target: &Target,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        let stream: Box<dyn Io> = if target.tls {
            let tls = gregor_client::dial_tls(&target.address, self.tls.clone())
                .await
                .map_err(|e| e.to_string())?;
            Box::new(tls)
        } else {
            Box::new(
                TcpStream::connect(&target.address)
                    .await
                    .map_err(|e| format!("connecting: {e}"))?,
            )
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        // The connection is driven until the answer is read; it ends with
        // the request (and so does this task).
        tokio::spawn(connection);
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The bytes to and from the provider: TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where a URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// `host:port`, for connecting.
    address: String,
    /// The `Host` header.
    host_header: String,
    /// The path and query.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, IdpError> {
        let bad = || IdpError::Url {
            url: url.to_string(),
        };
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host_header = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        Ok(Target {
            tls,
            address: format!("{host}:{port}"),
            host_header,
            path: uri
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string()),
        })
    }
}

/// Checks that `url` is one the provider can be asked at.
pub fn check_url(url: &str) -> Result<(), IdpError> {
    Target::parse(url).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_where_to_connect_and_what_to_ask() {
        // URL, then TLS, address, Host header and path, or None if refused.
        type Case<'a> = (&'a str, Option<(bool, &'a str, &'a str, &'a str)>);
        let cases: &[Case] = &[
            (
                "https://idp.example/realms/x/certs",
                Some((true, "idp.example:443", "idp.example", "/realms/x/certs")),
            ),
            (
                "http://10.0.0.1:8080/jwks?v=1",
                Some((false, "10.0.0.1:8080", "10.0.0.1:8080", "/jwks?v=1")),
            ),
            (
                "https://[::1]:8443",
                Some((true, "[::1]:8443", "[::1]:8443", "/")),
            ),
            ("file:///etc/jwks.json", None),
            ("idp.example/jwks", None),
            ("https://", None),
        ];
        for (url, want) in cases {
            let got = Target::parse(url).ok();
            let want = want.map(|(tls, address, host, path)| Target {
                tls,
                address: address.into(),
                host_header: host.into(),
                path: path.into(),
            });
            assert_eq!(got, want, "{url}");
        }
    }

    #[test]
    fn a_trust_store_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").expect("write");
        let err = Idp::new(Some(&empty.to_string_lossy())).expect_err("refused");
        assert!(err.to_string().contains("no usable CERTIFICATE"), "{err}");
        assert!(Idp::new(Some("/nonexistent/ca.pem")).is_err());
        assert!(Idp::new(None).is_ok());
    }
}

//! Requests from this broker to another, over `inter.broker.listener.name`
//! as a Kafka broker makes them: TLS with the listener's client side when
//! it is SSL, and a SASL login when it is SASL. One-off requests (the
//! consumer-lag scrape, a partition leader asking a transaction's
//! coordinator) reuse a few idle connections per broker; the transaction
//! markers' senders and the replica fetcher keep their own long-lived
//! connections. A sender whose request has changed between releases asks
//! the other broker which versions it serves ([`negotiate`]), as Kafka's
//! clients do on every connection, so brokers of two releases side by side
//! (a rolling upgrade) still understand each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor_client::{ClientError, Connection};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::time::Instant;

use crate::metadata::image::ClusterImage;
use crate::security::sasl::login::{log_in, Login, LoginError};
use crate::security::tls::ListenerTls;

/// Why another broker could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The broker is fenced, unknown, or has no inter-broker endpoint.
    #[error("broker {0} has no reachable inter-broker endpoint")]
    NoEndpoint(i32),
    /// Connecting or logging in failed.
    #[error(transparent)]
    Connection(#[from] LoginError),
    /// The request failed on the connection.
    #[error(transparent)]
    Request(#[from] ClientError),
}

/// How many idle connections are kept per broker and client id.
const MAX_IDLE: usize = 4;

/// How long after it is made a connection is reused (well under a
/// broker's `connections.max.idle.ms`).
const REUSE_FOR: Duration = Duration::from_secs(60);

/// Idle connections by broker and client id.
type IdlePool = HashMap<(i32, &'static str), Vec<Idle>>;

/// A connection waiting to be reused.
#[derive(Debug)]
struct Idle {
    conn: Connection,
    /// The address it was made to (a broker that moved is dialled anew).
    addr: String,
    /// When it is no longer reused: [`REUSE_FOR`] after it was made, or
    /// sooner when its SASL session ends.
    until: Instant,
}

/// How this broker reaches the others.
#[derive(Debug, Clone)]
pub struct InterBroker {
    /// `inter.broker.listener.name`
    pub listener: String,
    /// That listener's TLS, when it is SSL.
    pub tls: Option<Arc<ListenerTls>>,
    /// How to log in, when it is SASL.
    pub login: Option<Login>,
    /// Idle connections by broker and client id, shared by the clones.
    idle: Arc<Mutex<IdlePool>>,
}

impl InterBroker {
    /// Reaching the others over `listener`.
    pub fn new(listener: String, tls: Option<Arc<ListenerTls>>, login: Option<Login>) -> Self {
        InterBroker {
            listener,
            tls,
            login,
            idle: Arc::default(),
        }
    }

    /// `host:port` of `broker`'s inter-broker listener, if it is unfenced.
    pub fn address(&self, image: &ClusterImage, broker: i32) -> Option<String> {
        image
            .brokers
            .get(&broker)
            .filter(|b| !b.fenced)
            .and_then(|b| b.endpoint(&self.listener))
            .map(|e| format!("{}:{}", e.host, e.port))
    }

    /// A new connection to `broker`, logged in, naming itself `client_id`;
    /// with the SASL session's lifetime (`None`: no limit).
    pub async fn connect(
        &self,
        image: &ClusterImage,
        broker: i32,
        client_id: &str,
    ) -> Result<(Connection, Option<Duration>), DialError> {
        let addr = self
            .address(image, broker)
            .ok_or(DialError::NoEndpoint(broker))?;
        let mut conn = match self.tls.as_ref().and_then(|t| t.client()) {
            Some(tls) => Connection::connect_tls(&addr, tls, client_id).await,
            None => Connection::connect(&addr, client_id).await,
        }
        .map_err(LoginError::from)?;
        let lifetime = match &self.login {
            Some(login) => log_in(&mut conn, login).await?,
            None => None,
        };
        Ok((conn, lifetime))
    }

    /// Sends `request` at `version` to `broker` and reads its answer, on an
    /// idle connection of `client_id` when there is one (a failure on a
    /// reused one, which the other side may have closed, is retried once
    /// on a new connection); the connection is kept for reuse afterwards.
    pub async fn request<R: Request>(
        &self,
        image: &ClusterImage,
        broker: i32,
        client_id: &'static str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, DialError> {
        let addr = self
            .address(image, broker)
            .ok_or(DialError::NoEndpoint(broker))?;
        let key = (broker, client_id);
        if let Some(mut idle) = self.take_idle(key, &addr) {
            if let Ok(answer) = idle.conn.send(request, version).await {
                self.put_idle(key, idle);
                return Ok(answer);
            }
        }
        let (mut conn, lifetime) = self.connect(image, broker, client_id).await?;
        let answer = conn.send(request, version).await?;
        let until = Instant::now() + lifetime.map_or(REUSE_FOR, |l| l.min(REUSE_FOR));
        self.put_idle(key, Idle { conn, addr, until });
        Ok(answer)
    }

    /// An idle connection to `addr` still fit for use, if one is kept.
    fn take_idle(&self, key: (i32, &'static str), addr: &str) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.get_mut(&key)?;
        let now = Instant::now();
        kept.retain(|c| c.until > now && c.addr == addr);
        kept.pop()
    }

    /// Keeps a connection for reuse, unless enough are kept already.
    fn put_idle(&self, key: (i32, &'static str), conn: Idle) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.entry(key).or_default();
        if kept.len() < MAX_IDLE {
            kept.push(conn);
        }
    }
}

/// ApiVersions version asked: 3, the first naming the client's software,
/// which every Kafka 4 broker and Gregor release serves.
const API_VERSIONS_VERSION: i16 = 3;

/// The highest version of `key` that this broker sends and the broker at
/// the other end of `conn` serves, learned with ApiVersions; `None` when
/// they have none in common.
pub async fn negotiate(conn: &mut Connection, key: ApiKey) -> Result<Option<i16>, ClientError> {
    let mut request = ApiVersionsRequest::default();
    request.client_software_name = StrBytes::from_static_str("gregor");
    request.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    let answer = conn.send(&request, API_VERSIONS_VERSION).await?;
    if answer.error_code != 0 {
        return Err(ClientError::BadResponse(format!(
            "ApiVersions refused with error code {}",
            answer.error_code
        )));
    }
    let theirs = answer
        .api_keys
        .iter()
        .find(|k| k.api_key == key as i16)
        .map(|k| (k.min_version, k.max_version));
    Ok(common_version(
        crate::protocol::versions::range(key),
        theirs,
    ))
}

/// The highest version in both ranges (inclusive), if they overlap.
fn common_version(ours: Option<(i16, i16)>, theirs: Option<(i16, i16)>) -> Option<i16> {
    let ((our_min, our_max), (their_min, their_max)) = (ours?, theirs?);
    let highest = our_max.min(their_max);
    (highest >= our_min.max(their_min)).then_some(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_version_both_sides_serve_is_chosen() {
        for (ours, theirs, chosen) in [
            // An earlier release serving WriteTxnMarkers 1 only.
            (Some((1, 2)), Some((1, 1)), Some(1)),
            (Some((1, 2)), Some((1, 2)), Some(2)),
            // A later release, serving more.
            (Some((1, 2)), Some((0, 5)), Some(2)),
            // Ranges apart, or the API not served at all.
            (Some((1, 2)), Some((3, 4)), None),
            (Some((3, 4)), Some((1, 2)), None),
            (Some((1, 2)), None, None),
            (None, Some((1, 2)), None),
        ] {
            assert_eq!(
                common_version(ours, theirs),
                chosen,
                "{ours:?} and {theirs:?}"
            );
        }
    }
}

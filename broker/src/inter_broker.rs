//! Requests from this broker to another, over `inter.broker.listener.name`
//! as a Kafka broker makes them: TLS with the listener's client side when
//! it is SSL, and a SASL login when it is SASL. The consumer-lag scrape and
//! the transaction coordinator's markers dial through it; the replica
//! fetcher keeps its own long-lived connections.

use std::sync::Arc;
use std::time::Duration;

use gregor_client::Connection;

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
}

impl InterBroker {
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
}

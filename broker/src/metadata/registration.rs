//! The broker's side of membership: register with the active controller,
//! heartbeat so it stays unfenced (registering again if the controller lost
//! it), and on shutdown ask to be fenced so its leaderships move first.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use super::controller::{ControllerRequest, ControllerResponse};
use super::quorum::{Quorum, QuorumError};
use super::records::{Applied, BrokerEndpoint, Refusal};

/// Why the broker could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// Another running process holds this node id.
    #[error("broker id {0} is already registered by another running broker; give this one a different node.id")]
    Duplicate(i32),
    /// The controller refused for another reason.
    #[error("registration refused: {0}")]
    Refused(Refusal),
    /// No active controller.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
}

/// What a broker tells the controller about itself.
#[derive(Debug, Clone)]
pub struct Registration {
    /// `node.id`.
    pub id: i32,
    /// This process.
    pub incarnation: Uuid,
    /// Its log directories' id (see `crate::log_dirs`).
    pub storage: Uuid,
    /// Advertised listeners.
    pub endpoints: Vec<BrokerEndpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Its controller listener, when it is not a voter.
    pub controller_address: Option<String>,
}

/// Registers, retrying while no controller is elected. A restart on the
/// same storage replaces the previous process's registration at once; a
/// process of the same id on other storage is refused while the registered
/// one's session lasts (like Kafka), so registration waits for that, up to
/// `patience` from the first refusal (a controller elected only now starts
/// the old session's clock afresh), and then reports a duplicate broker
/// id. Returns the epoch.
pub async fn register(
    quorum: &Quorum,
    me: &Registration,
    patience: Duration,
) -> Result<i64, RegistrationError> {
    let mut give_up = None;
    let mut told = false;
    let req = ControllerRequest::Register {
        id: me.id,
        incarnation: me.incarnation,
        storage: me.storage,
        endpoints: me.endpoints.clone(),
        rack: me.rack.clone(),
        controller_address: me.controller_address.clone(),
    };
    loop {
        match quorum.request(req.clone(), Duration::from_secs(30)).await {
            Ok(ControllerResponse::Applied {
                index,
                applied: Applied::BrokerEpoch(epoch),
            }) => {
                quorum.wait_applied(index, Duration::from_secs(30)).await;
                return Ok(epoch);
            }
            Ok(ControllerResponse::Applied {
                applied: Applied::Refused(Refusal::DuplicateBroker(id)),
                ..
            }) => {
                let now = tokio::time::Instant::now();
                if now >= *give_up.get_or_insert(now + patience) {
                    return Err(RegistrationError::Duplicate(id));
                }
                if !std::mem::replace(&mut told, true) {
                    tracing::info!("this broker id is still registered by an earlier process; waiting for its session to expire");
                }
            }
            Ok(ControllerResponse::Applied {
                applied: Applied::Refused(r),
                ..
            }) => return Err(RegistrationError::Refused(r)),
            Ok(other) => tracing::debug!(?other, "registration not answered yet; retrying"),
            Err(e) => tracing::warn!(error = %e, "waiting for the metadata quorum to register"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Heartbeats every `interval` until `stop` turns true, registering again
/// when the controller no longer knows this broker's epoch.
pub async fn heartbeat(
    quorum: Arc<Quorum>,
    me: Registration,
    epoch: Arc<watch::Sender<i64>>,
    interval: Duration,
    patience: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let req = ControllerRequest::Heartbeat {
            id: me.id,
            epoch: *epoch.borrow(),
            shutting_down: false,
        };
        match quorum
            .request(req, interval.max(Duration::from_secs(1)))
            .await
        {
            Ok(ControllerResponse::Heartbeat {
                registered: false, ..
            }) => {
                tracing::warn!("the controller lost this broker's registration; registering again");
                match register(&quorum, &me, patience).await {
                    Ok(e) => {
                        epoch.send_replace(e);
                    }
                    Err(e) => tracing::error!(error = %e, "cannot register again"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "heartbeat not delivered"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Asks to be fenced (its partitions' leadership moves to other replicas)
/// and waits, at most `timeout`, until the controller confirms.
pub async fn controlled_shutdown(quorum: &Quorum, id: i32, epoch: i64, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        let req = ControllerRequest::Heartbeat {
            id,
            epoch,
            shutting_down: true,
        };
        if let Ok(ControllerResponse::Heartbeat { fenced: true, .. }) =
            quorum.request(req, Duration::from_secs(2)).await
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

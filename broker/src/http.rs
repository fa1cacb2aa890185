//! The HTTP port (`http.listener`) for orchestrators and monitoring:
//! - `GET /livez`: 200 while the process answers at all. It is served from
//!   the first moment, so a long log recovery never looks like a hang.
//! - `GET /readyz`: 200 once the node serves: a broker has registered and
//!   accepts Kafka connections; a dedicated controller knows the quorum's
//!   active controller. 503 with the reason otherwise, and while stopping.
//! - `GET /metrics`: Prometheus metrics (see [`crate::metrics`]).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metadata::quorum::Quorum;
use crate::metrics::{self, BrokerSnapshot};
use crate::node::Node;

/// What the process is doing, as the probes see it.
#[derive(Clone)]
pub enum Stage {
    /// Recovering logs, joining the quorum, registering.
    Starting,
    /// A broker serving Kafka clients.
    Broker(Arc<Node>),
    /// A dedicated controller serving the quorum.
    Controller(Arc<Quorum>),
    /// Shutting down: leadership is moving away.
    Stopping,
}

/// The facts readiness is decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Still starting.
    Starting,
    /// A broker that has registered and serves its listeners.
    Broker,
    /// A dedicated controller: whether it knows the active controller.
    Controller {
        /// The quorum has a leader this node knows of.
        knows_leader: bool,
    },
    /// Shutting down.
    Stopping,
}

/// Ready, or the reason not. A started broker stays ready while fenced:
/// readiness only routes traffic and never restarts anything, and a
/// broker that stays fenced needs a restart, which is the operator's call
/// (it knows whether one is safe); `gregor_broker_fenced` reports it.
pub fn readiness(probe: Probe) -> Result<(), &'static str> {
    match probe {
        Probe::Starting => Err("starting: recovering logs and joining the cluster"),
        Probe::Broker | Probe::Controller { knows_leader: true } => Ok(()),
        Probe::Controller {
            knows_leader: false,
        } => Err("no active controller: the quorum has no majority"),
        Probe::Stopping => Err("shutting down"),
    }
}

fn probe(stage: &Stage) -> Probe {
    match stage {
        Stage::Starting => Probe::Starting,
        Stage::Broker(_) => Probe::Broker,
        Stage::Controller(q) => Probe::Controller {
            knows_leader: q.active_controller().is_some(),
        },
        Stage::Stopping => Probe::Stopping,
    }
}

/// Serves the HTTP port until the task is dropped. `stage` follows the
/// process through its life.
pub async fn serve(listener: TcpListener, stage: watch::Receiver<Stage>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let stage = stage.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let stage = stage.borrow().clone();
                async move { Ok::<_, Infallible>(route(&req, &stage).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(req: &Request<Incoming>, stage: &Stage) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/livez" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match readiness(probe(stage)) {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        },
        "/metrics" => {
            let mut response = text(StatusCode::OK, scrape(stage).await);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /livez, /readyz or /metrics\n".into(),
        ),
    }
}

async fn scrape(stage: &Stage) -> String {
    match stage {
        Stage::Broker(node) => {
            // First, as it may wait on other brokers: the rest is then read
            // as fresh as possible.
            let groups = metrics::lag::collect(node).await;
            let view = node.quorum.view();
            let me = node.config.node_id;
            let log_bytes = node
                .topics
                .all()
                .iter()
                .map(|t| t.local().map(|p| p.disk_usage().0).sum::<u64>())
                .sum();
            metrics::render(&BrokerSnapshot {
                node_id: me,
                metadata: &view,
                active_controller: node.quorum.active_controller(),
                quorum_epoch: node.quorum.epoch(),
                controller_refusals: node.quorum.refusals(),
                counters: Some(&node.metrics),
                partitions: Some(metrics::partition_counts(
                    &view.image,
                    me,
                    node.config.min_insync_replicas,
                )),
                log_bytes: Some(log_bytes),
                fetch_sessions: Some(node.fetch_sessions.size()),
                log_dirs: node
                    .config
                    .log_dirs
                    .iter()
                    .filter_map(|d| metrics::DirSpace::read(d))
                    .collect(),
                groups: Some(&groups),
                process: metrics::ProcessStats::read(),
            })
        }
        Stage::Controller(q) => metrics::render(&BrokerSnapshot {
            node_id: q.node_id(),
            metadata: &q.view(),
            active_controller: q.active_controller(),
            quorum_epoch: q.epoch(),
            controller_refusals: q.refusals(),
            counters: None,
            partitions: None,
            log_bytes: None,
            fetch_sessions: None,
            log_dirs: Vec::new(),
            groups: None,
            process: metrics::ProcessStats::read(),
        }),
        // Nothing to count before the node exists or after it stopped.
        Stage::Starting | Stage::Stopping => "# EOF\n".into(),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_serving() {
        let cases = [
            (Probe::Starting, false),
            (Probe::Broker, true),
            (Probe::Controller { knows_leader: true }, true),
            (
                Probe::Controller {
                    knows_leader: false,
                },
                false,
            ),
            (Probe::Stopping, false),
        ];
        for (probe, ready) in cases {
            assert_eq!(readiness(probe).is_ok(), ready, "{probe:?}");
        }
    }
}

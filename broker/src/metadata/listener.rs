//! The controller listener's server side: accept a connection (a TLS
//! handshake first when the listener is SSL), name the peer's principal
//! (its certificate's subject through `ssl.principal.mapping.rules`, else
//! `User:ANONYMOUS`), and with an authorizer let through only principals
//! allowed CLUSTER_ACTION on the cluster, as Kafka checks every request on
//! its controller listener. A refusal is answered, logged with the
//! principal and peer, counted, and closes the connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use super::network::{self, Request, Response};
use super::quorum::Quorum;
use crate::security::acl::binding::CLUSTER_NAME;
use crate::security::acl::{AclSet, Authorizer, Operation, ResourceType, Subject};
use crate::security::principal::ANONYMOUS;
use crate::security::tls::ListenerTls;

/// How long a peer gets to complete its TLS handshake.
const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(10);

/// Who may use the controller listener and how they prove it.
#[derive(Debug, Clone, Default)]
pub struct ListenerSecurity {
    /// The listener's name, for the log.
    pub name: String,
    /// TLS, when the listener is SSL.
    pub tls: Option<Arc<ListenerTls>>,
    /// The ACL authorizer, when `authorizer.class.name` is set.
    pub authorizer: Option<Authorizer>,
}

/// Who is on the other end of one connection.
#[derive(Debug)]
struct Peer {
    principal: String,
    host: String,
}

/// Whether `peer` may send controller requests: CLUSTER_ACTION on the
/// cluster, or anything without an authorizer. The refusal's log text
/// otherwise.
fn authorize(
    authorizer: Option<&Authorizer>,
    acls: &AclSet,
    principal: &str,
    host: &str,
) -> Result<(), String> {
    let Some(authorizer) = authorizer else {
        return Ok(());
    };
    let who = Subject { principal, host };
    let decision = authorizer.decide(
        acls,
        who,
        Operation::ClusterAction,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    match decision.allowed {
        true => Ok(()),
        false => Err(format!(
            "Principal = {principal} is Denied operation = {} from host = {host} on resource = {}:LITERAL:{CLUSTER_NAME} based on {}",
            Operation::ClusterAction,
            ResourceType::Cluster,
            decision.rule
        )),
    }
}

/// Serves the controller listener; its connections end when this future
/// is dropped.
pub async fn serve(quorum: Arc<Quorum>, listener: TcpListener, security: ListenerSecurity) {
    let security = Arc::new(security);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                while connections.try_join_next().is_some() {}
                connections.spawn(accept(
                    quorum.clone(),
                    stream,
                    addr.ip().to_string(),
                    security.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Completes the TLS handshake, if any, and serves the connection.
async fn accept(
    quorum: Arc<Quorum>,
    stream: TcpStream,
    host: String,
    security: Arc<ListenerSecurity>,
) {
    let Some(tls) = &security.tls else {
        let peer = Peer {
            principal: ANONYMOUS.into(),
            host,
        };
        return serve_connection(quorum, stream, peer, &security).await;
    };
    let refuse = |principal: &str, reason: &str| {
        quorum.count_refusal();
        tracing::warn!(
            peer = %host,
            listener = %security.name,
            principal,
            reason,
            "TLS handshake on the controller listener failed; connection closed"
        );
    };
    match tokio::time::timeout(HANDSHAKE_PATIENCE, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => {
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first());
            let principal = match certificate.map(|der| tls.principal(der)) {
                None => ANONYMOUS.to_string(),
                Some(Ok(principal)) => principal,
                Some(Err(reason)) => return refuse(ANONYMOUS, &reason),
            };
            let peer = Peer {
                principal,
                host: host.clone(),
            };
            serve_connection(quorum, stream, peer, &security).await
        }
        Ok(Err(e)) => refuse(ANONYMOUS, &e.to_string()),
        Err(_) => refuse(
            ANONYMOUS,
            &format!("no TLS handshake within {HANDSHAKE_PATIENCE:?}"),
        ),
    }
}

/// Answers the peer's requests in order until it closes, sends something
/// unreadable, or is refused.
async fn serve_connection(
    quorum: Arc<Quorum>,
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    peer: Peer,
    security: &ListenerSecurity,
) {
    loop {
        let req = match network::read_frame::<Request>(&mut stream).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(peer = %peer.host, error = %e, "bad controller message; closing");
                return;
            }
        };
        // Checked per request: ACLs may change while a connection is open.
        let view = quorum.view();
        if let Err(why) = authorize(
            security.authorizer.as_ref(),
            &view.image.acls,
            &peer.principal,
            &peer.host,
        ) {
            quorum.count_refusal();
            tracing::warn!(
                target: "gregor::authorizer",
                principal = %peer.principal,
                peer = %peer.host,
                listener = %security.name,
                "{why} for controller request {}",
                req.name()
            );
            let refused = Response::Refused(format!(
                "{} may not use the controller listener (CLUSTER_ACTION on the cluster is needed)",
                peer.principal
            ));
            let _ = network::write_frame(&mut stream, &refused).await;
            return;
        }
        let resp = quorum.answer(req).await;
        if network::write_frame(&mut stream, &resp).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::security::acl::binding::{AclBinding, PatternType, Permission};

    fn cluster_acl(principal: &str, host: &str, permission: Permission) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Cluster,
            name: CLUSTER_NAME.into(),
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: host.into(),
            operation: Operation::ClusterAction,
            permission,
        }
    }

    #[test]
    fn only_principals_allowed_cluster_action_get_through() {
        let authorizer = Authorizer {
            super_users: BTreeSet::from(["User:CN=broker".to_string()]),
            allow_if_no_acl: false,
        };
        let mut acls = AclSet::default();
        acls.insert(cluster_acl("User:controller", "*", Permission::Allow));
        acls.insert(cluster_acl("User:controller", "10.0.0.9", Permission::Deny));
        let cases = [
            // (authorizer, principal, host, allowed)
            (None, "User:ANONYMOUS", "10.0.0.1", true),
            (Some(&authorizer), "User:CN=broker", "10.0.0.1", true),
            (Some(&authorizer), "User:controller", "10.0.0.1", true),
            (Some(&authorizer), "User:controller", "10.0.0.9", false),
            (Some(&authorizer), "User:ANONYMOUS", "10.0.0.1", false),
            (Some(&authorizer), "User:alice", "10.0.0.1", false),
        ];
        for (auth, principal, host, allowed) in cases {
            let got = authorize(auth, &acls, principal, host);
            assert_eq!(got.is_ok(), allowed, "{principal} from {host}: {got:?}");
            if let Err(why) = got {
                assert!(why.contains(principal) && why.contains(host), "{why}");
                assert!(why.contains("ClusterAction"), "{why}");
            }
        }
    }
}

//! The controller listener's protocol: Raft's RPCs between controllers and
//! brokers' requests to the active controller, each a length-prefixed JSON
//! message (4-byte big-endian length, then the body) answered in order on
//! the same connection, over TCP or, when the controller listener is SSL,
//! over TLS with this node's certificate.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::security::tls::ListenerTls;

use super::controller::{ControllerRequest, ControllerResponse};
use super::election::PreVote;
use super::TypeConfig;

/// Largest message accepted (snapshots travel in chunks well below this).
const MAX_FRAME: usize = 64 << 20;

/// A message to a controller.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft log replication.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<u64>),
    /// Raft snapshot chunk.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Would the voter vote for this candidate (before its election)?
    PreVote(PreVote),
    /// The voter's vote and the end of its metadata log: asked by a voter
    /// that has an empty log or is copying the one it lost (see `rejoin`).
    LogState,
    /// For the active controller.
    Controller(ControllerRequest),
}

impl Request {
    /// The request's kind, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            Request::AppendEntries(_) => "AppendEntries",
            Request::Vote(_) => "Vote",
            Request::InstallSnapshot(_) => "InstallSnapshot",
            Request::PreVote(_) => "PreVote",
            Request::LogState => "LogState",
            Request::Controller(_) => "Controller",
        }
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// To `AppendEntries`.
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// To `Vote`.
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// To `InstallSnapshot`.
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// To `PreVote`: granted or not.
    PreVote(bool),
    /// To `LogState`.
    LogState(super::rejoin::PeerLog),
    /// To `Controller`.
    Controller(ControllerResponse),
    /// The request was not allowed (the reason); the connection closes.
    Refused(String),
}

/// Reads one message; `None` at a clean end of stream.
pub async fn read_frame<T: for<'de> Deserialize<'de>>(
    stream: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("controller message of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes one message.
pub async fn write_frame<T: Serialize>(
    stream: &mut (impl AsyncWrite + Unpin),
    msg: &T,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    // TLS holds written bytes until flushed.
    stream.flush().await
}

/// The bytes to and from another node: TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// How this node connects to the controller listeners of the others: over
/// TLS with the controller listener's client side when it is SSL.
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    tls: Option<Arc<ListenerTls>>,
}

impl Dialer {
    /// Connects over TLS when `tls` is given, else plain TCP.
    pub fn new(tls: Option<Arc<ListenerTls>>) -> Self {
        Dialer { tls }
    }

    async fn dial(&self, addr: &str) -> std::io::Result<Box<dyn Stream>> {
        // The certificates in force now: a renewal applies to new connections.
        match self.tls.as_ref().and_then(|t| t.client()) {
            Some(config) => gregor_client::dial_tls(addr, config)
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>)
                .map_err(|e| match e {
                    gregor_client::ClientError::Io(e) => e,
                    other => {
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string())
                    }
                }),
            None => {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                Ok(Box::new(tcp))
            }
        }
    }
}

/// A lazily (re)connected client connection to one controller.
pub struct Connection {
    addr: String,
    dialer: Dialer,
    stream: Option<Box<dyn Stream>>,
}

impl Connection {
    /// A client for `addr`, connecting as `dialer` does; nothing is
    /// connected yet.
    pub fn new(addr: String, dialer: Dialer) -> Self {
        Connection {
            addr,
            dialer,
            stream: None,
        }
    }

    /// Sends `req` and waits for its answer, within `timeout`.
    pub async fn call(&mut self, req: &Request, timeout: Duration) -> std::io::Result<Response> {
        let result = tokio::time::timeout(timeout, self.call_inner(req)).await;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("controller {} did not answer in {timeout:?}", self.addr),
            )),
        };
        if result.is_err() {
            // The stream may hold half an answer; start clean next time.
            self.stream = None;
        }
        result
    }

    async fn call_inner(&mut self, req: &Request) -> std::io::Result<Response> {
        if self.stream.is_none() {
            self.stream = Some(self.dialer.dial(&self.addr).await?);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(std::io::Error::other("not connected"));
        };
        write_frame(stream, req).await?;
        match read_frame(stream).await? {
            Some(Response::Refused(reason)) => Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("controller {} refused: {reason}", self.addr),
            )),
            Some(answer) => Ok(answer),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "controller closed the connection",
            )),
        }
    }
}

/// Builds Raft clients for the other voters.
pub struct Network(pub Dialer);

/// Raft's client to one voter.
pub struct Peer {
    target: u64,
    conn: Connection,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        Peer {
            target,
            conn: Connection::new(node.addr.clone(), self.0.clone()),
        }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl Peer {
    async fn send(&mut self, req: Request, option: &RPCOption) -> Result<Response, std::io::Error> {
        self.conn.call(&req, option.hard_ttl()).await
    }

    fn unreachable<E: std::error::Error>(
        e: std::io::Error,
    ) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        if e.kind() == std::io::ErrorKind::InvalidData {
            RPCError::Network(NetworkError::new(&e))
        } else {
            RPCError::Unreachable(Unreachable::new(&e))
        }
    }

    fn unexpected<E: std::error::Error>() -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        RPCError::Network(NetworkError::new(&std::io::Error::other(
            "controller answered with the wrong message type",
        )))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        match self
            .send(Request::AppendEntries(rpc), &option)
            .await
            .map_err(Self::unreachable)?
        {
            Response::AppendEntries(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(Self::unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        match self
            .send(Request::InstallSnapshot(rpc), &option)
            .await
            .map_err(Self::unreachable)?
        {
            Response::InstallSnapshot(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(Self::unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        match self
            .send(Request::Vote(rpc), &option)
            .await
            .map_err(Self::unreachable)?
        {
            Response::Vote(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(Self::unexpected()),
        }
    }
}

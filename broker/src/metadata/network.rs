//! The controller listener's protocol: Raft's RPCs between controllers and
//! brokers' requests to the active controller, each a length-prefixed JSON
//! message (4-byte big-endian length, then the body) answered in order on
//! the same connection.

use std::future::Future;
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::controller::{ControllerRequest, ControllerResponse};
use super::{Snapshot, SnapshotMeta, TypeConfig, Vote};

/// Largest message accepted. A snapshot travels whole in one message, so
/// this also bounds the metadata image a lagging follower can be sent.
const MAX_FRAME: usize = 64 << 20;

/// A message to a controller.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft log replication.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<TypeConfig>),
    /// Would the voter grant this vote? Asked before a candidate raises its
    /// term, so a voter that cannot win (one that was frozen or cut off
    /// while the others kept a leader) does not depose the leader.
    PreVote(VoteRequest<TypeConfig>),
    /// A whole Raft snapshot, for a follower too far behind for the log.
    Snapshot {
        /// The sending leader's vote.
        vote: Vote,
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The serialized image (see `store`).
        data: Vec<u8>,
    },
    /// For the active controller.
    Controller(ControllerRequest),
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// To `AppendEntries`.
    AppendEntries(Result<AppendEntriesResponse<TypeConfig>, RaftError<TypeConfig>>),
    /// To `Vote`.
    Vote(Result<VoteResponse<TypeConfig>, RaftError<TypeConfig>>),
    /// To `PreVote`.
    PreVote(Result<VoteResponse<TypeConfig>, RaftError<TypeConfig>>),
    /// To `Snapshot`.
    Snapshot(Result<SnapshotResponse<TypeConfig>, Fatal<TypeConfig>>),
    /// To `Controller`.
    Controller(ControllerResponse),
}

/// Reads one message; `None` at a clean end of stream.
pub async fn read_frame<T: for<'de> Deserialize<'de>>(
    stream: &mut TcpStream,
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
pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, msg: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await
}

/// A lazily (re)connected client connection to one controller.
pub struct Connection {
    addr: String,
    stream: Option<TcpStream>,
}

impl Connection {
    /// A client for `addr`; nothing is connected yet.
    pub fn new(addr: String) -> Self {
        Connection { addr, stream: None }
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
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(std::io::Error::other("not connected"));
        };
        write_frame(stream, req).await?;
        read_frame(stream).await?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "controller closed the connection",
            )
        })
    }
}

/// Builds Raft clients for the other voters.
pub struct Network;

/// Raft's client to one voter.
pub struct Peer {
    conn: Connection,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, _target: u64, node: &BasicNode) -> Self::Network {
        Peer {
            conn: Connection::new(node.addr.clone()),
        }
    }
}

/// A peer that failed to answer: unreachable (Raft backs off before trying
/// again) unless it answered nonsense.
fn unreachable(e: std::io::Error) -> RPCError<TypeConfig> {
    if e.kind() == std::io::ErrorKind::InvalidData {
        RPCError::Network(NetworkError::new(&e))
    } else {
        RPCError::Unreachable(Unreachable::new(&e))
    }
}

fn unexpected() -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string(
        "controller answered with the wrong message type",
    ))
}

/// A peer whose Raft member has stopped (it is shutting down, or its
/// storage failed) cannot take part until it restarts: back off.
fn stopped(e: Fatal<TypeConfig>) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&e))
}

fn remote<T>(r: Result<T, RaftError<TypeConfig>>) -> Result<T, RPCError<TypeConfig>> {
    r.map_err(|e| match e {
        RaftError::APIError(never) => match never {},
        RaftError::Fatal(f) => stopped(f),
    })
}

impl Peer {
    async fn send(
        &mut self,
        req: Request,
        option: &RPCOption,
    ) -> Result<Response, RPCError<TypeConfig>> {
        self.conn
            .call(&req, option.hard_ttl())
            .await
            .map_err(unreachable)
    }
}

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.send(Request::AppendEntries(rpc), &option).await? {
            Response::AppendEntries(r) => remote(r),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.send(Request::Vote(rpc), &option).await? {
            Response::Vote(r) => remote(r),
            _ => Err(unexpected()),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.send(Request::PreVote(rpc), &option).await? {
            Response::PreVote(r) => remote(r),
            _ => Err(unexpected()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let req = Request::Snapshot {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            resp = self.send(req, &option) => match resp? {
                Response::Snapshot(r) => r.map_err(|f| StreamingError::Unreachable(Unreachable::new(&f))),
                _ => Err(unexpected().into()),
            },
        }
    }
}

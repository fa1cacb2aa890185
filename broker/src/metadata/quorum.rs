//! This node's place in the metadata quorum: it starts the Raft member,
//! serves the controller listener, and routes requests to whichever node is
//! the active controller.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::raft::{AppendEntriesResponse, VoteResponse};
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use super::bootstrap;
use super::controller::{Controller, ControllerRequest, ControllerResponse};
use super::election::{self, LeaderContact, PreVote, Timing, VoterState};
use super::network::{Connection, Dialer, Network, Request, Response};
use super::rejoin::{self, Admission, Answers, PeerLog, Standing, Verdict};
use super::store::{LogStore, MetadataView, StateMachine};
use super::TypeConfig;

/// How this node takes part in the quorum.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    /// `node.id`.
    pub node_id: i32,
    /// `controller.quorum.voters`: id → `host:port` of its controller
    /// listener. A single voter with no address runs without a network.
    pub voters: BTreeMap<i32, String>,
    /// Where the metadata log and snapshots live.
    pub dir: PathBuf,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout: Duration,
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// The id to give the cluster if this node is the first to lead it.
    pub cluster_id: String,
    /// `leader.imbalance.check.interval.seconds` when
    /// `auto.leader.rebalance.enable` is on.
    pub preferred_leader_check: Option<Duration>,
    /// How to reach the other nodes' controller listeners.
    pub dialer: Dialer,
}

impl QuorumSettings {
    fn voter(&self) -> bool {
        self.voters.contains_key(&self.node_id)
    }
}

/// Why the quorum could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The metadata directory cannot be used.
    #[error("metadata log in {dir}: {source}")]
    Storage {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Raft refused its settings or failed.
    #[error("metadata quorum: {0}")]
    Raft(String),
    /// The records given with `gregor format` cannot be read.
    #[error("metadata bootstrap: {0}")]
    Bootstrap(#[from] bootstrap::BootstrapError),
    /// No active controller answered in time.
    #[error("no active controller answered within {0:?} (is a majority of controller.quorum.voters running?)")]
    NoController(Duration),
}

/// Where a request for the active controller goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// This node leads: its own controller answers.
    Here,
    /// The leader's controller listener.
    There(String),
    /// No leader known: any other voter, which knows or will say who.
    Anyone,
}

/// Where to send a request, given the leader as known (its id, and its
/// address when another voter named it).
fn destination(
    me: u64,
    voters: &BTreeMap<u64, String>,
    leader: Option<&(u64, Option<String>)>,
) -> Destination {
    match leader {
        // The leader has this node's id at another address: a second
        // process runs with this node.id and leads (this one is the
        // impostor). Ask it, so that it can refuse this one's registration.
        Some((id, Some(addr))) if *id == me && Some(addr) != voters.get(&me) => {
            Destination::There(addr.clone())
        }
        Some((id, _)) if *id == me => Destination::Here,
        Some((id, addr)) => match addr.clone().or_else(|| voters.get(id).cloned()) {
            Some(addr) => Destination::There(addr),
            None => Destination::Anyone,
        },
        None => Destination::Anyone,
    }
}

/// Which connection a request forwarded to the active controller takes.
/// Heartbeats and registrations have their own, so a broker is never
/// fenced because its heartbeat waited behind its other requests: a
/// restarted broker's leaders may have thousands of ISR changes queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    Liveness,
    Changes,
}

impl Lane {
    fn of(req: &ControllerRequest) -> Lane {
        match req {
            ControllerRequest::Heartbeat { .. } | ControllerRequest::Register { .. } => {
                Lane::Liveness
            }
            _ => Lane::Changes,
        }
    }
}

/// A connection one request at a time holds until it is answered.
type SharedConnection = Arc<tokio::sync::Mutex<Connection>>;

/// This node's quorum member.
pub struct Quorum {
    node_id: i32,
    raft: Raft<TypeConfig>,
    controller: Arc<Controller>,
    voters: BTreeMap<u64, String>,
    view: watch::Receiver<MetadataView>,
    /// Connections to the other controllers, one per address and lane:
    /// a request holds its connection until answered.
    clients: tokio::sync::Mutex<HashMap<(String, Lane), SharedConnection>>,
    /// Whether the active controller's last heartbeat answer said it
    /// takes batches of records (`ControllerRequest::ProposeAll`).
    takes_batches: AtomicBool,
    /// When a leader was last heard from, for pre-votes.
    contact: Arc<LeaderContact>,
    /// No pre-vote is granted within this much of the last leader contact.
    lease: Duration,
    /// How to reach the other nodes' controller listeners.
    dialer: Dialer,
    /// Connections and requests the controller listener refused.
    refused: prometheus_client::metrics::counter::Counter,
    /// Whether this node may vote and campaign (see `rejoin`).
    standing: Arc<watch::Sender<Standing>>,
    /// The other voters' answers while it may not.
    answers: Arc<std::sync::Mutex<Answers>>,
    /// How long a vote request waits for this voter to know its standing.
    patience: Duration,
}

impl Quorum {
    /// Opens the metadata log and joins (or, the first time, forms) the quorum.
    pub async fn start(settings: QuorumSettings) -> Result<Arc<Quorum>, QuorumError> {
        let storage = |source| QuorumError::Storage {
            dir: settings.dir.clone(),
            source,
        };
        let log = LogStore::open(&settings.dir).map_err(storage)?;
        let bootstrap = bootstrap::read(&settings.dir)?;
        let sm = StateMachine::open(&settings.dir).map_err(storage)?;
        let view = sm.subscribe();
        let election = settings.election_timeout.as_millis() as u64;
        let config = openraft::Config {
            cluster_name: "gregor".into(),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            heartbeat_interval: (election / 4).max(10),
            // Elections are called by `election::drive`, after a pre-vote.
            enable_elect: false,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(1000),
            // A follower too far behind gets the snapshot, whose last chunk
            // is answered once installed: with 10,000 partitions that takes
            // longer than openraft's 200 ms default, and a timed-out
            // install starts over, so the follower would never catch up.
            // Kafka gives a snapshot fetch seconds as well.
            install_snapshot_timeout: 10_000,
            max_in_snapshot_log_to_keep: 100,
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::Raft(e.to_string()))?;
        let id = settings.node_id as u64;
        let config = Arc::new(config);
        let raft = Raft::new(
            id,
            config.clone(),
            Network(settings.dialer.clone()),
            log,
            sm,
        )
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))?;
        let voters: BTreeMap<u64, String> = settings
            .voters
            .iter()
            .map(|(k, v)| (*k as u64, v.clone()))
            .collect();
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        let members: BTreeMap<u64, BasicNode> = voters
            .iter()
            .map(|(k, v)| (*k, BasicNode::new(v.clone())))
            .collect();
        // A broker-only node waits to be added as a learner by the active
        // controller when it registers; it never votes. A voter with an
        // empty log first asks the others whether the cluster exists (see
        // `rejoin`); one that was copying a lost log when it stopped goes on
        // copying it.
        let standing = if !settings.voter() {
            Standing::Voting
        } else if !initialized && voters.len() > 1 {
            // Marked first: entries a leader sends meanwhile must not make
            // a voter of it after a crash.
            rejoin::mark(&settings.dir).map_err(storage)?;
            Standing::Asking
        } else if initialized && rejoin::marked(&settings.dir) {
            tracing::warn!("this voter is still copying the metadata log it lost; it takes no part in elections until it has");
            Standing::CatchingUp
        } else {
            Standing::Voting
        };
        if !initialized && standing == Standing::Voting && settings.voter() {
            initialize(&raft, members.clone()).await?;
        }
        let standing = Arc::new(watch::channel(standing).0);
        let answers = Arc::new(std::sync::Mutex::new(Answers::new(voters.len())));
        if voters.len() == 1 && settings.voter() {
            // Alone, there is nobody to wait for: lead at once.
            let _ = raft.trigger().elect().await;
        }
        let contact = Arc::new(LeaderContact::default());
        // openraft's leader lease: it grants no vote this soon after
        // hearing from the leader.
        let lease = Duration::from_millis(config.election_timeout_max);
        if settings.voter() {
            let peers: BTreeMap<u64, String> = voters
                .iter()
                .filter(|(voter, _)| **voter != id)
                .map(|(voter, addr)| (*voter, addr.clone()))
                .collect();
            let timing = Timing {
                lease,
                timeout_min: Duration::from_millis(config.election_timeout_min),
                timeout_max: Duration::from_millis(config.election_timeout_max),
            };
            if *standing.borrow() != Standing::Voting {
                tokio::spawn(rejoin_quorum(
                    raft.clone(),
                    standing.clone(),
                    answers.clone(),
                    peers.clone(),
                    members,
                    settings.dir.clone(),
                    settings.dialer.clone(),
                    timing.timeout_min,
                ));
            }
            tokio::spawn(election::drive(
                raft.clone(),
                id,
                peers,
                contact.clone(),
                timing,
                settings.dialer.clone(),
                standing.subscribe(),
            ));
        }
        let controller = Arc::new(Controller::new(
            raft.clone(),
            view.clone(),
            settings.session_timeout,
            settings.cluster_id.clone(),
            bootstrap,
            settings.preferred_leader_check,
        ));
        tokio::spawn(controller.clone().run());
        Ok(Arc::new(Quorum {
            node_id: settings.node_id,
            raft,
            controller,
            voters,
            view,
            clients: tokio::sync::Mutex::new(HashMap::new()),
            takes_batches: AtomicBool::new(false),
            contact,
            lease,
            dialer: settings.dialer,
            refused: Default::default(),
            standing,
            answers,
            patience: Duration::from_millis(config.election_timeout_min),
        }))
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Whether the active controller takes batches of records, as its
    /// last heartbeat answer said (false until one is answered, and
    /// while an earlier release is the active controller).
    pub fn controller_takes_batches(&self) -> bool {
        self.takes_batches.load(Ordering::Relaxed)
    }

    /// The metadata applied on this node.
    pub fn view(&self) -> MetadataView {
        self.view.borrow().clone()
    }

    /// Follows the metadata applied on this node.
    pub fn subscribe(&self) -> watch::Receiver<MetadataView> {
        self.view.clone()
    }

    /// The active controller, if one is known.
    pub fn active_controller(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(|l| l as i32)
    }

    /// The Raft term this node is in (KRaft's epoch of the quorum): it
    /// grows with every election this node takes part in or learns of.
    pub fn epoch(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The configured voters.
    pub fn voters(&self) -> impl Iterator<Item = i32> + '_ {
        self.voters.keys().map(|k| *k as i32)
    }

    /// Waits until this node has applied the metadata log up to `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        let mut rx = self.view.clone();
        tokio::time::timeout(timeout, rx.wait_for(|v| v.applied_index >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Sends `req` to the active controller, wherever it is, retrying
    /// through elections until `timeout`. Without a known leader any other
    /// voter is asked; its answer names the leader and its address.
    pub async fn request(
        &self,
        req: ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerResponse, QuorumError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let me = self.node_id as u64;
        let others: Vec<String> = self
            .voters
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(_, addr)| addr.clone())
            .collect();
        let mut hint: Option<(u64, Option<String>)> = None;
        let mut asked = 0usize;
        loop {
            let target = hint.take().or_else(|| {
                self.raft
                    .metrics()
                    .borrow()
                    .current_leader
                    .map(|l| (l, None))
            });
            let resp = match destination(me, &self.voters, target.as_ref()) {
                Destination::Here => Some(self.controller.handle(req.clone()).await),
                Destination::There(addr) => self.forward(&addr, &req, deadline).await,
                Destination::Anyone if others.is_empty() => None,
                Destination::Anyone => {
                    asked += 1;
                    let addr = others[asked % others.len()].clone();
                    self.forward(&addr, &req, deadline).await
                }
            };
            match resp {
                Some(ControllerResponse::NotController { leader, address }) => {
                    hint = leader.map(|l| (l, address));
                }
                Some(ControllerResponse::Unavailable(why)) => {
                    tracing::debug!(%why, "active controller could not commit; retrying");
                }
                Some(r) => {
                    if let ControllerResponse::Heartbeat { takes_batches, .. } = &r {
                        self.takes_batches.store(*takes_batches, Ordering::Relaxed);
                    }
                    return Ok(r);
                }
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(QuorumError::NoController(timeout));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn forward(
        &self,
        addr: &str,
        req: &ControllerRequest,
        deadline: tokio::time::Instant,
    ) -> Option<ControllerResponse> {
        let conn = self
            .clients
            .lock()
            .await
            .entry((addr.to_string(), Lane::of(req)))
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Connection::new(
                    addr.to_string(),
                    self.dialer.clone(),
                )))
            })
            .clone();
        let mut conn = conn.lock().await;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match conn
            .call(
                &Request::Controller(req.clone()),
                left.max(Duration::from_millis(100)),
            )
            .await
        {
            Ok(Response::Controller(r)) => Some(r),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(controller = %addr, error = %e, "controller unreachable");
                None
            }
        }
    }

    /// Answers one request that came in on the controller listener.
    pub async fn answer(&self, req: Request) -> Response {
        match req {
            Request::AppendEntries(r) => {
                match self.admit(r.vote.leader_id().term) {
                    Admission::Accept => {}
                    Admission::Deposed(vote) => {
                        return Response::AppendEntries(Ok(AppendEntriesResponse::HigherVote(vote)))
                    }
                    Admission::Unknown => return Response::Refused(CATCHING_UP.into()),
                }
                let answer = self.raft.append_entries(r).await;
                if matches!(&answer, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_))) {
                    self.contact.heard();
                }
                Response::AppendEntries(answer)
            }
            Request::Vote(r) => {
                if self.may_vote().await {
                    Response::Vote(self.raft.vote(r).await)
                } else {
                    tracing::info!(candidate = %r.vote, "refusing to vote: this voter is copying the metadata log it lost");
                    let m = self.raft.metrics();
                    let m = m.borrow();
                    Response::Vote(Ok(VoteResponse {
                        vote: m.vote,
                        vote_granted: false,
                        last_log_id: self.raft.data_metrics().borrow().last_log,
                    }))
                }
            }
            Request::InstallSnapshot(r) => {
                if self.admit(r.vote.leader_id().term) != Admission::Accept {
                    return Response::Refused(CATCHING_UP.into());
                }
                let answer = self.raft.install_snapshot(r).await;
                if answer.is_ok() {
                    self.contact.heard();
                }
                Response::InstallSnapshot(answer)
            }
            Request::PreVote(ask) => {
                let granted = self.may_vote().await && self.pre_vote(&ask);
                Response::PreVote(granted)
            }
            Request::LogState => Response::LogState(log_state(&self.raft)),
            Request::Controller(r) => Response::Controller(self.controller.handle(r).await),
        }
    }

    /// Whether this node may vote now; a voter still asking whether the
    /// cluster exists gets a moment to find out.
    async fn may_vote(&self) -> bool {
        let mut rx = self.standing.subscribe();
        let _ = tokio::time::timeout(self.patience, rx.wait_for(|s| *s != Standing::Asking)).await;
        let standing = *self.standing.borrow();
        standing == Standing::Voting
    }

    /// Whether to take entries from a leader of `term`: always, unless this
    /// voter has lost its log (see `rejoin`).
    fn admit(&self, term: u64) -> Admission {
        if *self.standing.borrow() == Standing::Voting {
            return Admission::Accept;
        }
        let admission = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(term);
        if admission != Admission::Accept {
            tracing::debug!(term, ?admission, "entries refused while catching up");
        }
        admission
    }

    /// Counts a connection or request the controller listener refused.
    pub fn count_refusal(&self) {
        self.refused.inc();
    }

    /// Connections and requests the controller listener refused so far.
    pub fn refusals(&self) -> u64 {
        self.refused.get()
    }

    /// Answers a candidate's pre-vote, and logs why when refused.
    fn pre_vote(&self, ask: &PreVote) -> bool {
        let state = VoterState {
            leading: self.raft.metrics().borrow().state == ServerState::Leader,
            quiet_for: self.contact.quiet_for(),
            last_log: self.raft.data_metrics().borrow().last_log,
        };
        let granted = election::grants(&state, ask.last_log, self.lease);
        tracing::debug!(candidate = ask.candidate, granted, ?state, "pre-vote");
        granted
    }

    /// Stops the Raft member.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum did not stop cleanly");
        }
    }
}

/// Proposes the initial membership of a new cluster. Every voter proposes
/// the same; whichever votes first wins and the others' identical entry is
/// replaced.
async fn initialize(
    raft: &Raft<TypeConfig>,
    members: BTreeMap<u64, BasicNode>,
) -> Result<(), QuorumError> {
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
        Err(e) => Err(QuorumError::Raft(e.to_string())),
    }
}

/// Why a voter that lost its log refuses a leader's entries for now.
const CATCHING_UP: &str =
    "this voter lost its metadata log and does not know the quorum's term yet (too few voters answer)";

/// What this node says of its own log when another voter asks.
fn log_state(raft: &Raft<TypeConfig>) -> PeerLog {
    PeerLog {
        vote: raft.metrics().borrow().vote,
        last_log: raft.data_metrics().borrow().last_log,
    }
}

/// Runs while this voter may not vote (see `rejoin`): asks every other
/// voter about its log, over and over. With an empty log of its own it
/// decides from the answers whether the cluster is new (it joins in
/// forming it) or exists (it lost its log); having lost it, it becomes a
/// voter again once its log and term cover what a majority reported.
#[allow(clippy::too_many_arguments)]
async fn rejoin_quorum(
    raft: Raft<TypeConfig>,
    standing: Arc<watch::Sender<Standing>>,
    answers: Arc<std::sync::Mutex<Answers>>,
    peers: BTreeMap<u64, String>,
    members: BTreeMap<u64, BasicNode>,
    dir: PathBuf,
    dialer: Dialer,
    pace: Duration,
) {
    let mut connections: Vec<(u64, Connection)> = peers
        .iter()
        .map(|(id, addr)| (*id, Connection::new(addr.clone(), dialer.clone())))
        .collect();
    let mut told = false;
    loop {
        if raft.metrics().borrow().running_state.is_err() {
            return;
        }
        let heard = futures_util::future::join_all(
            connections
                .iter_mut()
                .map(|(id, c)| async move { (*id, c.call(&Request::LogState, pace).await) }),
        )
        .await;
        let (verdict, caught_up) = {
            let mut answers = answers.lock().unwrap_or_else(|e| e.into_inner());
            for (id, heard) in heard {
                if let Ok(Response::LogState(log)) = heard {
                    answers.record(id, log);
                }
            }
            let mine = log_state(&raft);
            let verdict = if mine.formed() {
                // A leader sent entries: the cluster exists.
                Some(Verdict::Exists)
            } else {
                answers.verdict()
            };
            (verdict, answers.caught_up(&mine))
        };
        let now = *standing.borrow();
        match (now, verdict) {
            (Standing::Asking, Some(Verdict::Exists)) => {
                tracing::warn!("this voter's metadata log is empty but another voter's is not: it lost its log (a new disk?), and it takes no part in elections until it has copied the log from the active controller");
                standing.send_replace(Standing::CatchingUp);
                continue;
            }
            (Standing::Asking, Some(Verdict::NewCluster)) => {
                // Unmarked before the log exists: stopped in between, it
                // asks again.
                match rejoin::unmark(&dir) {
                    Ok(()) => {
                        tracing::info!(
                            "every voter's metadata log is empty: forming a new cluster"
                        );
                        if let Err(e) = initialize(&raft, members.clone()).await {
                            tracing::error!(error = %e, "cannot form the cluster");
                        }
                        standing.send_replace(Standing::Voting);
                        return;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot remove the catching-up marker"),
                }
            }
            (Standing::Asking, None) if !std::mem::replace(&mut told, true) => {
                tracing::info!("this voter's metadata log is empty: waiting for every other voter to say whether the cluster exists before it votes");
            }
            (Standing::CatchingUp, _) if caught_up => match rejoin::unmark(&dir) {
                Ok(()) => {
                    tracing::info!(last_log = ?log_state(&raft).last_log, "copied the metadata log it lost; this voter takes part in elections again");
                    standing.send_replace(Standing::Voting);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot remove the catching-up marker; this voter still takes no part in elections")
                }
            },
            (Standing::Voting, _) => return,
            _ => {}
        }
        tokio::time::sleep(pace / 4).await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A quorum of this node alone, its log under `dir`, for tests of the
    /// services that ask the controller (ISR changes, producer ids).
    pub(crate) async fn lone(dir: &std::path::Path) -> Arc<Quorum> {
        Quorum::start(QuorumSettings {
            node_id: 1,
            voters: BTreeMap::from([(1, String::new())]),
            dir: dir.join("__cluster_metadata-0"),
            election_timeout: Duration::from_millis(100),
            session_timeout: Duration::from_secs(10),
            cluster_id: "test".into(),
            preferred_leader_check: None,
            dialer: Default::default(),
        })
        .await
        .expect("quorum")
    }

    #[test]
    fn heartbeats_never_share_a_connection_with_changes() {
        let heartbeat = ControllerRequest::Heartbeat {
            id: 1,
            epoch: 1,
            shutting_down: false,
        };
        let record =
            ControllerRequest::Propose(crate::metadata::records::MetadataRecord::FenceBroker {
                id: 2,
                epoch: 1,
            });
        let cases = [
            ("heartbeat", heartbeat, Lane::Liveness),
            ("a proposed record", record, Lane::Changes),
        ];
        for (what, req, lane) in cases {
            assert_eq!(Lane::of(&req), lane, "{what}");
        }
    }

    #[test]
    fn requests_go_to_the_leader_wherever_it_is() {
        let voters = BTreeMap::from([
            (1, "n1:9093".to_string()),
            (2, "n2:9093".to_string()),
            (3, "n3:9093".to_string()),
        ]);
        let there = |a: &str| Destination::There(a.to_string());
        let cases = [
            ("this node leads", Some((2, None)), Destination::Here),
            (
                "named with its own address",
                Some((2, Some("n2:9093".into()))),
                Destination::Here,
            ),
            ("another voter leads", Some((3, None)), there("n3:9093")),
            (
                "named by a voter",
                Some((3, Some("n3b:9093".into()))),
                there("n3b:9093"),
            ),
            (
                "a node not in the voters",
                Some((7, None)),
                Destination::Anyone,
            ),
            ("no leader known", None, Destination::Anyone),
            (
                "another process with this id leads",
                Some((2, Some("elsewhere:9093".into()))),
                there("elsewhere:9093"),
            ),
        ];
        for (what, leader, want) in cases {
            assert_eq!(destination(2, &voters, leader.as_ref()), want, "{what}");
        }
    }
}

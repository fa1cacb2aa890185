//! The classic group protocol's membership: joining (with the rebalance
//! that follows), the leader's assignment, heartbeats and leaving. Callers
//! waiting for a rebalance park on oneshot channels held here; the group's
//! state machine itself is `state`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::coordinator::{lock, GroupCoordinator, Inner};
use super::error::GroupError;
use super::state::{Group, GroupState, Member};

/// A JoinGroup.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Group id.
    pub group_id: String,
    /// Member id; empty on a member's first join.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Protocol type (`consumer`, `connect`, ...).
    pub protocol_type: String,
    /// Supported protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// A new dynamic member must first take its member id and join again
    /// with it (KIP-394).
    pub require_known_member_id: bool,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
}

/// A member as the leader sees it in its join answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A completed join, for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The member's id.
    pub member_id: String,
    /// The new generation.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// Only for the leader: every member, to compute the assignment.
    pub members: Vec<JoinedMember>,
    /// The leader may keep the current assignment instead of computing one
    /// (a static leader rejoining unchanged, KIP-814).
    pub skip_assignment: bool,
}

/// A refused join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRefused {
    /// Why.
    pub error: GroupError,
    /// The member id to answer with: the one given to a new member told to
    /// join again with it, otherwise the one it sent.
    pub member_id: String,
}

/// What a JoinGroup caller gets.
pub type JoinOutcome = Result<Joined, JoinRefused>;

/// How a classic member names itself once it has joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentity {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The generation it joined.
    pub generation: i32,
}

/// A SyncGroup.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// Group id.
    pub group_id: String,
    /// The member.
    pub member: MemberIdentity,
    /// From the leader: each member's assignment.
    pub assignments: Vec<(String, Bytes)>,
}

/// A member's assignment, once the leader has given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The assignment.
    pub assignment: Bytes,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
}

/// A member leaving, by id or (a static member) by instance id alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    /// Member id; may be empty for a static member.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
}

/// A classic group with the clients waiting on it.
pub(super) struct Entry {
    pub(super) group: Group,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: HashSet<String>,
    join_waiters: HashMap<String, oneshot::Sender<JoinOutcome>>,
    sync_waiters: HashMap<String, oneshot::Sender<Result<Bytes, GroupError>>>,
    /// Bumped whenever a rebalance starts, so stale timers do nothing.
    round: u64,
    /// The initial delay of a new group's first rebalance is running.
    delaying: bool,
    /// The membership settled (Stable or Empty) and should be stored.
    pub(super) dirty: bool,
}

impl Entry {
    fn new(id: &str) -> Self {
        Entry::restored(Group::new(id))
    }

    /// A group resumed from its stored membership, nobody waiting yet.
    pub(super) fn restored(group: Group) -> Self {
        Entry {
            group,
            pending: HashSet::new(),
            join_waiters: HashMap::new(),
            sync_waiters: HashMap::new(),
            round: 0,
            delaying: false,
            dirty: false,
        }
    }

    /// Members whose session ran out at `now`. A member parked in
    /// JoinGroup is governed by the rebalance timeout instead.
    pub(super) fn expired(&self, now: Instant) -> Vec<String> {
        self.group
            .members
            .values()
            .filter(|m| !self.join_waiters.contains_key(&m.id))
            .filter(|m| now.duration_since(m.last_seen) > m.session_timeout)
            .map(|m| m.id.clone())
            .collect()
    }
}

fn refused(error: GroupError, member_id: &str) -> JoinRefused {
    JoinRefused {
        error,
        member_id: member_id.to_string(),
    }
}

impl GroupCoordinator {
    /// Joins a member; parks until the rebalance completes.
    pub async fn join_group(&self, req: JoinRequest) -> JoinOutcome {
        let rx = self.join_or_wait(&req).map_err(|e| *e)?;
        match rx.await {
            Ok(outcome) => outcome,
            // The group went away (its partition moved, or it was emptied).
            Err(_) => Err(refused(GroupError::UnknownMember, &req.member_id)),
        }
    }

    fn join_or_wait(
        &self,
        req: &JoinRequest,
    ) -> Result<oneshot::Receiver<JoinOutcome>, Box<JoinRefused>> {
        let fail = |error: GroupError| Box::new(refused(error, &req.member_id));
        let group_id = &req.group_id;
        if group_id.is_empty() {
            return Err(fail(GroupError::InvalidGroupId));
        }
        if req.session_timeout < self.settings.min_session_timeout
            || req.session_timeout > self.settings.max_session_timeout
        {
            return Err(fail(GroupError::InvalidSessionTimeout));
        }
        let mut inner = self.lock();
        inner.check_coordinator(group_id).map_err(fail)?;
        if !req.member_id.is_empty() && !inner.groups.contains_key(group_id) {
            return Err(fail(GroupError::UnknownMember));
        }
        let entry = inner
            .groups
            .entry(group_id.clone())
            .or_insert_with(|| Entry::new(group_id));
        if req.protocol_type.is_empty() || !entry.group.accepts(&req.protocol_type, &req.protocols)
        {
            // An existing member may change its protocols when it is alone.
            let alone =
                entry.group.members.len() == 1 && entry.group.members.contains_key(&req.member_id);
            if req.protocol_type.is_empty() || req.protocols.is_empty() || !alone {
                return Err(fail(GroupError::InconsistentProtocol));
            }
        }

        let mut static_rejoin = false;
        let member_id = if req.member_id.is_empty() {
            // A static member that rejoins keeps its place under a new id.
            let previous = req.instance_id.as_ref().and_then(|inst| {
                entry
                    .group
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(inst))
                    .map(|m| m.id.clone())
            });
            let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            if let Some(old) = previous {
                static_rejoin = true;
                if let Some(mut m) = entry.group.members.remove(&old) {
                    m.id = new_id.clone();
                    entry.group.members.insert(new_id.clone(), m);
                    if entry.group.leader.as_deref() == Some(old.as_str()) {
                        entry.group.leader = Some(new_id.clone());
                    }
                }
                if let Some(w) = entry.join_waiters.remove(&old) {
                    let _ = w.send(Err(refused(GroupError::FencedInstance, &old)));
                }
            } else if req.require_known_member_id && req.instance_id.is_none() {
                entry.pending.insert(new_id.clone());
                return Err(Box::new(refused(GroupError::MemberIdRequired, &new_id)));
            }
            new_id
        } else {
            if !entry.pending.remove(&req.member_id)
                && !entry.group.members.contains_key(&req.member_id)
            {
                return Err(fail(GroupError::UnknownMember));
            }
            req.member_id.clone()
        };

        let now = Instant::now();
        let previous = entry.group.members.get(&member_id);
        let changed = previous.is_none_or(|m| m.protocols != req.protocols);
        let assignment = previous.map(|m| m.assignment.clone()).unwrap_or_default();
        if entry.group.members.is_empty() {
            entry.group.protocol_type = Some(req.protocol_type.clone());
        }
        entry.group.members.insert(
            member_id.clone(),
            Member {
                id: member_id.clone(),
                instance_id: req.instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocols: req.protocols.clone(),
                assignment,
                last_seen: now,
                joined: false,
            },
        );

        let (tx, rx) = oneshot::channel();
        if let Some(old) = entry.join_waiters.insert(member_id.clone(), tx) {
            let _ = old.send(Err(refused(GroupError::RebalanceInProgress, &member_id)));
        }
        match entry.group.state {
            GroupState::PreparingRebalance => {}
            GroupState::Empty => self.start_rebalance(entry, group_id, true),
            GroupState::CompletingRebalance | GroupState::Stable => {
                let is_leader = entry.group.leader.as_deref() == Some(member_id.as_str());
                // A static member coming back unchanged, even the leader,
                // takes its old place without a rebalance (KIP-345).
                let must_rebalance = changed
                    || (is_leader && !static_rejoin)
                    || entry.group.state == GroupState::CompletingRebalance;
                if must_rebalance {
                    self.start_rebalance(entry, group_id, false);
                } else {
                    // A follower rejoining with the same subscription gets the
                    // current generation back without disturbing the others.
                    let tx = entry.join_waiters.remove(&member_id);
                    if let (Some(tx), Some(m)) = (tx, entry.group.members.get_mut(&member_id)) {
                        m.joined = true;
                        let mut joined = joined(&entry.group, &member_id);
                        joined.skip_assignment = is_leader;
                        let _ = tx.send(Ok(joined));
                    }
                    return Ok(rx);
                }
            }
        }
        if let Some(m) = entry.group.members.get_mut(&member_id) {
            m.joined = true;
        }
        if entry.group.all_joined() && !entry.delaying {
            complete_join(entry);
        }
        Ok(rx)
    }

    /// Moves the group to PreparingRebalance and arms its timer.
    fn start_rebalance(&self, entry: &mut Entry, group_id: &str, new_group: bool) {
        for (_, tx) in entry.sync_waiters.drain() {
            let _ = tx.send(Err(GroupError::RebalanceInProgress));
        }
        entry.group.prepare_rebalance();
        entry.round += 1;
        let round = entry.round;
        let rebalance_timeout = entry
            .group
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let inner = self.inner.clone();
        let group_id = group_id.to_string();
        if new_group && !self.settings.initial_rebalance_delay.is_zero() {
            entry.delaying = true;
            let delay = self.settings.initial_rebalance_delay.min(rebalance_timeout);
            let rest = rebalance_timeout.saturating_sub(delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                {
                    let mut guard = lock(&inner);
                    let Some(entry) = guard.groups.get_mut(&group_id) else {
                        return;
                    };
                    if entry.round != round || entry.group.state != GroupState::PreparingRebalance {
                        return;
                    }
                    entry.delaying = false;
                    if entry.group.all_joined() {
                        complete_join(entry);
                        guard.persist(&group_id);
                        return;
                    }
                }
                expire_rebalance(inner, group_id, round, rest).await;
            });
        } else {
            tokio::spawn(expire_rebalance(inner, group_id, round, rebalance_timeout));
        }
    }

    /// Hands a member its assignment: the leader's SyncGroup sets every
    /// member's, followers park until it does.
    pub async fn sync_group(&self, req: SyncRequest) -> Result<Synced, GroupError> {
        let (rx, protocol_type, protocol) = {
            let mut inner = self.lock();
            let group_id = &req.group_id;
            let member_id = &req.member.member_id;
            inner.check_coordinator(group_id)?;
            let Some(entry) = inner.groups.get_mut(group_id) else {
                return Err(GroupError::UnknownMember);
            };
            entry.group.check_member(
                member_id,
                req.member.instance_id.as_deref(),
                req.member.generation,
            )?;
            let synced = |assignment: Bytes, group: &Group| Synced {
                assignment,
                protocol_type: group.protocol_type.clone(),
                protocol: group.protocol.clone(),
            };
            if let Some(m) = entry.group.members.get_mut(member_id) {
                m.last_seen = Instant::now();
            }
            match entry.group.state {
                GroupState::Empty | GroupState::PreparingRebalance => {
                    return Err(GroupError::RebalanceInProgress);
                }
                GroupState::Stable => {
                    let a = assignment_of(&entry.group, member_id);
                    return Ok(synced(a, &entry.group));
                }
                GroupState::CompletingRebalance => {}
            }
            if entry.group.leader.as_deref() == Some(member_id.as_str()) {
                let given: HashMap<&str, &Bytes> = req
                    .assignments
                    .iter()
                    .map(|(id, a)| (id.as_str(), a))
                    .collect();
                for m in entry.group.members.values_mut() {
                    m.assignment = given
                        .get(m.id.as_str())
                        .map(|a| (*a).clone())
                        .unwrap_or_default();
                }
                entry.group.state = GroupState::Stable;
                entry.dirty = true;
                for (id, tx) in entry.sync_waiters.drain() {
                    let _ = tx.send(Ok(assignment_of(&entry.group, &id)));
                }
                let answer = synced(assignment_of(&entry.group, member_id), &entry.group);
                inner.persist(group_id);
                return Ok(answer);
            }
            let (tx, rx) = oneshot::channel();
            entry.sync_waiters.insert(member_id.clone(), tx);
            (
                rx,
                entry.group.protocol_type.clone(),
                entry.group.protocol.clone(),
            )
        };
        match rx.await {
            Ok(result) => result.map(|assignment| Synced {
                assignment,
                protocol_type,
                protocol,
            }),
            Err(_) => Err(GroupError::RebalanceInProgress),
        }
    }

    /// A member's heartbeat: REBALANCE_IN_PROGRESS tells it to join again.
    pub fn heartbeat(&self, group_id: &str, member: &MemberIdentity) -> Result<(), GroupError> {
        let mut inner = self.lock();
        match inner.check_coordinator(group_id) {
            // Kafka answers heartbeats blindly while it loads the group:
            // the member keeps its session and learns of a rebalance later.
            Err(GroupError::LoadInProgress) => return Ok(()),
            checked => checked?,
        }
        let Some(entry) = inner.groups.get_mut(group_id) else {
            return Err(GroupError::UnknownMember);
        };
        entry.group.check_member(
            &member.member_id,
            member.instance_id.as_deref(),
            member.generation,
        )?;
        if let Some(m) = entry.group.members.get_mut(&member.member_id) {
            m.last_seen = Instant::now();
        }
        if entry.group.state == GroupState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Removes members from a group; the rest rebalance. One result per
    /// member, in order.
    pub fn leave_group(
        &self,
        group_id: &str,
        leaving: &[LeavingMember],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let mut inner = self.lock();
        inner.check_coordinator(group_id)?;
        let Some(entry) = inner.groups.get_mut(group_id) else {
            return Err(GroupError::UnknownMember);
        };
        let mut results = Vec::with_capacity(leaving.len());
        for member in leaving {
            // A static member may leave by instance id alone.
            let id = if member.member_id.is_empty() {
                member.instance_id.as_ref().and_then(|inst| {
                    entry
                        .group
                        .members
                        .values()
                        .find(|m| m.instance_id.as_ref() == Some(inst))
                        .map(|m| m.id.clone())
                })
            } else {
                Some(member.member_id.clone())
            };
            results.push(match id {
                Some(id) if entry.group.members.contains_key(&id) => {
                    self.remove_member(entry, group_id, &id);
                    Ok(())
                }
                _ => Err(GroupError::UnknownMember),
            });
        }
        inner.persist(group_id);
        Ok(results)
    }

    /// Removes a member that left or timed out; the rest rebalance.
    pub(super) fn remove_member(&self, entry: &mut Entry, group_id: &str, member_id: &str) {
        if let Some(tx) = entry.join_waiters.remove(member_id) {
            let _ = tx.send(Err(refused(GroupError::UnknownMember, member_id)));
        }
        entry.sync_waiters.remove(member_id);
        let was_preparing = entry.group.state == GroupState::PreparingRebalance;
        entry.group.remove(member_id);
        if entry.group.members.is_empty() {
            entry.dirty = true;
            return;
        }
        if was_preparing {
            if entry.group.all_joined() && !entry.delaying {
                complete_join(entry);
            }
        } else {
            self.start_rebalance(entry, group_id, false);
        }
    }
}

impl Inner {
    /// Touches a classic member's session after a commit it made.
    pub(super) fn saw_member(&mut self, group_id: &str, member_id: &str) {
        if let Some(m) = self
            .groups
            .get_mut(group_id)
            .and_then(|e| e.group.members.get_mut(member_id))
        {
            m.last_seen = Instant::now();
        }
    }
}

/// Completes the join phase once the rebalance timeout passes, dropping
/// members that did not rejoin.
async fn expire_rebalance(inner: Arc<Mutex<Inner>>, group_id: String, round: u64, after: Duration) {
    tokio::time::sleep(after).await;
    let mut guard = lock(&inner);
    if let Some(entry) = guard.groups.get_mut(&group_id) {
        if entry.round == round && entry.group.state == GroupState::PreparingRebalance {
            entry.delaying = false;
            complete_join(entry);
        }
    }
    guard.persist(&group_id);
}

/// Ends the join phase and answers every parked JoinGroup.
fn complete_join(entry: &mut Entry) {
    let gone = entry.group.complete_join();
    if entry.group.members.is_empty() {
        entry.dirty = true;
    }
    for id in gone {
        entry.join_waiters.remove(&id);
    }
    for (id, tx) in entry.join_waiters.drain() {
        let _ = tx.send(Ok(joined(&entry.group, &id)));
    }
    for m in entry.group.members.values_mut() {
        m.last_seen = Instant::now();
    }
}

/// The join answer for one member of a group that just completed a join.
fn joined(group: &Group, member_id: &str) -> Joined {
    let leader = group.leader.clone().unwrap_or_default();
    let members = if leader == member_id {
        group
            .members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: group.metadata_of(m),
            })
            .collect()
    } else {
        Vec::new()
    };
    Joined {
        member_id: member_id.to_string(),
        generation: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol: group.protocol.clone(),
        leader,
        members,
        skip_assignment: false,
    }
}

fn assignment_of(group: &Group, member_id: &str) -> Bytes {
    group
        .members
        .get(member_id)
        .map(|m| m.assignment.clone())
        .unwrap_or_default()
}

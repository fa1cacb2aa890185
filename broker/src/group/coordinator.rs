//! The group coordinator: the classic consumer-group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup) plus committed offsets.
//!
//! State lives in `state::Group` behind one mutex that is never held across
//! an await. Clients waiting for a rebalance to finish park on oneshot
//! channels; timers (initial delay, rebalance timeout) and the session sweeper
//! are tasks that re-take the lock and check they still apply.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::consumer::ConsumerGroup;
use super::offset_records::{Committed, GroupMetadata};
use super::offsets::{OffsetStore, OffsetStoreError};
use super::state::{Group, GroupError, GroupState, Member};
use crate::clock::now_ms;
use crate::partition::{Partition, Replication};
use crate::topic::TopicRegistry;

/// Longest metadata string a commit may carry (Kafka's
/// `offset.metadata.max.bytes` default).
const MAX_OFFSET_METADATA: usize = 4096;

/// Coordinator settings from the broker configuration.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout: Duration,
    /// `group.consumer.session.timeout.ms` (consumer protocol)
    pub consumer_session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms` (consumer protocol)
    pub consumer_heartbeat_interval: Duration,
}

/// Offsets found for OffsetFetch: per topic, per partition, if committed.
type TopicOffsets = Vec<(String, Vec<(i32, Option<Committed>)>)>;

/// What a parked JoinGroup caller receives.
#[derive(Debug, Clone, Default)]
struct JoinOutcome {
    error: i16,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: String,
    member_id: String,
    /// Only for the leader: every member with its metadata.
    members: Vec<(String, Option<String>, Bytes)>,
    /// The leader keeps the current assignment instead of computing one.
    skip_assignment: bool,
}

/// How long an offset commit waits for replication (Kafka's
/// `offsets.commit.timeout.ms` default).
pub(super) const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A group with the clients waiting on it.
struct Entry {
    group: Group,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: HashSet<String>,
    join_waiters: HashMap<String, oneshot::Sender<JoinOutcome>>,
    sync_waiters: HashMap<String, oneshot::Sender<Result<Bytes, i16>>>,
    /// Bumped whenever a rebalance starts, so stale timers do nothing.
    round: u64,
    /// The initial delay of a new group's first rebalance is running.
    delaying: bool,
    /// The membership settled (Stable or Empty) and should be stored.
    dirty: bool,
}

impl Entry {
    fn new(id: &str) -> Self {
        Entry {
            group: Group::new(id),
            pending: HashSet::new(),
            join_waiters: HashMap::new(),
            sync_waiters: HashMap::new(),
            round: 0,
            delaying: false,
            dirty: false,
        }
    }
}

pub(super) struct Inner {
    groups: HashMap<String, Entry>,
    /// Groups of the consumer protocol (KIP-848), see `heartbeat`.
    pub(super) consumer_groups: HashMap<String, ConsumerGroup>,
    pub(super) offsets: OffsetStore,
}

/// Coordinates every consumer group on this broker.
pub struct GroupCoordinator {
    inner: Arc<Mutex<Inner>>,
    pub(super) settings: GroupSettings,
    /// Topic names and ids, partition counts.
    pub(super) topics: Arc<TopicRegistry>,
}

impl GroupCoordinator {
    /// A coordinator over an offsets topic of `partitions` partitions; it
    /// serves the groups of the partitions it is given to lead (`lead`).
    pub fn new(
        partitions: i32,
        settings: GroupSettings,
        topics: Arc<TopicRegistry>,
    ) -> GroupCoordinator {
        GroupCoordinator {
            inner: Arc::new(Mutex::new(Inner {
                groups: HashMap::new(),
                consumer_groups: HashMap::new(),
                offsets: OffsetStore::new(partitions),
            })),
            settings,
            topics,
        }
    }

    /// Serves exactly the groups of `led`, the offsets partitions this
    /// broker leads now: newly led ones are loaded from their log (groups
    /// of both protocols resume with their members, generation or epochs
    /// and assignments, each member with a fresh session), the others are
    /// dropped, so their clients get NOT_COORDINATOR and find the new
    /// coordinator.
    pub fn lead(&self, led: &[Arc<Partition>]) {
        let mut inner = self.lock();
        let now = Instant::now();
        let keep: HashSet<i32> = led.iter().map(|p| p.index).collect();
        let lost: Vec<i32> = inner
            .offsets
            .loaded()
            .filter(|i| !keep.contains(i))
            .collect();
        for index in lost {
            let Inner {
                groups,
                consumer_groups,
                offsets,
            } = &mut *inner;
            offsets.unload(index);
            groups.retain(|g, _| offsets.partition_for(g) != index);
            consumer_groups.retain(|g, _| offsets.partition_for(g) != index);
            tracing::info!(
                partition = index,
                "no longer coordinating the groups of this offsets partition"
            );
        }
        for p in led {
            if inner.offsets.loaded().any(|i| i == p.index) {
                continue;
            }
            if let Err(e) = inner.offsets.load(p.clone()) {
                tracing::error!(partition = p.index, error = %e, "cannot load groups");
                continue;
            }
            let restored: Vec<(String, GroupMetadata)> = inner
                .offsets
                .group_metadata()
                .iter()
                .filter(|(id, _)| inner.offsets.partition_for(id) == p.index)
                .map(|(id, md)| (id.clone(), md.clone()))
                .collect();
            for (id, md) in restored {
                let mut entry = Entry::new(&id);
                entry.group = Group::from_metadata(&id, &md, now);
                inner.groups.insert(id, entry);
            }
            let restored: Vec<ConsumerGroup> = inner
                .offsets
                .consumer_groups()
                .iter()
                .filter(|(id, _)| inner.offsets.partition_for(id) == p.index)
                .map(|(id, stored)| {
                    let name_of = |topic| self.topics.get_by_id(topic).map(|t| t.name.clone());
                    let session = self.settings.consumer_session_timeout;
                    ConsumerGroup::restore(id, stored, name_of, session, now)
                })
                .collect();
            for group in restored {
                inner.consumer_groups.insert(group.id.clone(), group);
            }
            tracing::info!(
                partition = p.index,
                "coordinating the groups of this offsets partition"
            );
        }
    }

    /// NOT_COORDINATOR when this broker does not lead `group`'s partition.
    pub(super) fn check_coordinator(inner: &Inner, group: &str) -> Result<(), ResponseError> {
        if inner.offsets.serves(group) {
            Ok(())
        } else {
            Err(ResponseError::NotCoordinator)
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Handles JoinGroup; parks until the rebalance completes.
    pub async fn join_group(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> JoinGroupResponse {
        let rx = match self.join_or_wait(&req, version, client_id, client_host) {
            Ok(rx) => rx,
            Err(outcome) => return join_response(*outcome),
        };
        match rx.await {
            Ok(outcome) => join_response(outcome),
            Err(_) => join_response(JoinOutcome {
                error: ResponseError::UnknownMemberId.code(),
                generation: -1,
                member_id: req.member_id.to_string(),
                ..Default::default()
            }),
        }
    }

    fn join_or_wait(
        &self,
        req: &JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> Result<oneshot::Receiver<JoinOutcome>, Box<JoinOutcome>> {
        let fail = |code: ResponseError, member: &str| JoinOutcome {
            error: code.code(),
            generation: -1,
            member_id: member.to_string(),
            ..Default::default()
        };
        let group_id = req.group_id.to_string();
        let member_id = req.member_id.to_string();
        if group_id.is_empty() {
            return Err(Box::new(fail(ResponseError::InvalidGroupId, &member_id)));
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if session < self.settings.min_session_timeout
            || session > self.settings.max_session_timeout
        {
            return Err(Box::new(fail(
                ResponseError::InvalidSessionTimeout,
                &member_id,
            )));
        }
        // Before v1 there is no separate rebalance timeout.
        let rebalance = if version >= 1 {
            Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64)
        } else {
            session
        };
        let protocols: Vec<(String, Bytes)> = req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect();
        let protocol_type = req.protocol_type.to_string();
        let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());

        let mut inner = self.lock();
        if let Err(code) = Self::check_coordinator(&inner, &group_id) {
            return Err(Box::new(fail(code, &member_id)));
        }
        if !member_id.is_empty() && !inner.groups.contains_key(&group_id) {
            return Err(Box::new(fail(ResponseError::UnknownMemberId, &member_id)));
        }
        let entry = inner
            .groups
            .entry(group_id.clone())
            .or_insert_with(|| Entry::new(&group_id));
        if protocol_type.is_empty() || !entry.group.accepts(&protocol_type, &protocols) {
            // An existing member may change its protocols when it is alone.
            let alone =
                entry.group.members.len() == 1 && entry.group.members.contains_key(&member_id);
            if protocol_type.is_empty() || protocols.is_empty() || !alone {
                return Err(Box::new(fail(
                    ResponseError::InconsistentGroupProtocol,
                    &member_id,
                )));
            }
        }

        let mut static_rejoin = false;
        let member_id = if member_id.is_empty() {
            // A static member that rejoins keeps its place under a new id.
            let previous = instance_id.as_ref().and_then(|inst| {
                entry
                    .group
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(inst))
                    .map(|m| m.id.clone())
            });
            let new_id = format!("{}-{}", client_id, uuid::Uuid::new_v4());
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
                    let _ = w.send(fail(ResponseError::FencedInstanceId, &old));
                }
            } else if version >= 4 && instance_id.is_none() {
                // KIP-394: the client must come back with the id we give it.
                entry.pending.insert(new_id.clone());
                return Err(Box::new(fail(ResponseError::MemberIdRequired, &new_id)));
            }
            new_id
        } else {
            if !entry.pending.remove(&member_id) && !entry.group.members.contains_key(&member_id) {
                return Err(Box::new(fail(ResponseError::UnknownMemberId, &member_id)));
            }
            member_id
        };

        let now = Instant::now();
        let previous = entry.group.members.get(&member_id);
        let changed = previous.is_none_or(|m| m.protocols != protocols);
        let assignment = previous.map(|m| m.assignment.clone()).unwrap_or_default();
        if entry.group.members.is_empty() {
            entry.group.protocol_type = Some(protocol_type);
        }
        entry.group.members.insert(
            member_id.clone(),
            Member {
                id: member_id.clone(),
                instance_id,
                client_id: client_id.to_string(),
                client_host: client_host.to_string(),
                session_timeout: session,
                rebalance_timeout: rebalance,
                protocols,
                assignment,
                last_seen: now,
                joined: false,
            },
        );

        let (tx, rx) = oneshot::channel();
        if let Some(old) = entry.join_waiters.insert(member_id.clone(), tx) {
            let _ = old.send(fail(ResponseError::RebalanceInProgress, &member_id));
        }
        match entry.group.state {
            GroupState::PreparingRebalance => {}
            GroupState::Empty => self.start_rebalance(entry, &group_id, true),
            GroupState::CompletingRebalance | GroupState::Stable => {
                let is_leader = entry.group.leader.as_deref() == Some(member_id.as_str());
                // A static member coming back unchanged, even the leader,
                // takes its old place without a rebalance (KIP-345).
                let must_rebalance = changed
                    || (is_leader && !static_rejoin)
                    || entry.group.state == GroupState::CompletingRebalance;
                if must_rebalance {
                    self.start_rebalance(entry, &group_id, false);
                } else {
                    // A follower rejoining with the same subscription gets the
                    // current generation back without disturbing the others.
                    let tx = entry.join_waiters.remove(&member_id);
                    if let (Some(tx), Some(m)) = (tx, entry.group.members.get_mut(&member_id)) {
                        m.joined = true;
                        let mut outcome = outcome_for(&entry.group, &member_id);
                        // The leader need not assign again (KIP-814, v9+).
                        outcome.skip_assignment = is_leader && version >= 9;
                        let _ = tx.send(outcome);
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
            let _ = tx.send(Err(ResponseError::RebalanceInProgress.code()));
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

    /// Handles SyncGroup; followers park until the leader's assignment.
    pub async fn sync_group(
        &self,
        req: kafka_protocol::messages::SyncGroupRequest,
        _version: i16,
    ) -> kafka_protocol::messages::SyncGroupResponse {
        let rx = {
            let mut inner = self.lock();
            let group_id = req.group_id.to_string();
            let member_id = req.member_id.to_string();
            if let Err(code) = Self::check_coordinator(&inner, &group_id) {
                return sync_response(Err(code.code()), None, None);
            }
            let Some(entry) = inner.groups.get_mut(&group_id) else {
                return sync_response(Err(ResponseError::UnknownMemberId.code()), None, None);
            };
            let instance = req.group_instance_id.as_deref();
            if let Err(e) = entry
                .group
                .check_member(&member_id, instance, req.generation_id)
            {
                return sync_response(Err(group_error(e)), None, None);
            }
            let ptype = entry.group.protocol_type.clone();
            let proto = entry.group.protocol.clone();
            if let Some(m) = entry.group.members.get_mut(&member_id) {
                m.last_seen = Instant::now();
            }
            match entry.group.state {
                GroupState::Empty | GroupState::PreparingRebalance => {
                    return sync_response(
                        Err(ResponseError::RebalanceInProgress.code()),
                        ptype,
                        proto,
                    );
                }
                GroupState::Stable => {
                    let a = entry
                        .group
                        .members
                        .get(&member_id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    return sync_response(Ok(a), ptype, proto);
                }
                GroupState::CompletingRebalance => {}
            }
            if entry.group.leader.as_deref() == Some(member_id.as_str()) {
                let given: HashMap<String, Bytes> = req
                    .assignments
                    .iter()
                    .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                    .collect();
                for m in entry.group.members.values_mut() {
                    m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                }
                entry.group.state = GroupState::Stable;
                entry.dirty = true;
                for (id, tx) in entry.sync_waiters.drain() {
                    let a = entry
                        .group
                        .members
                        .get(&id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    let _ = tx.send(Ok(a));
                }
                let a = entry
                    .group
                    .members
                    .get(&member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                inner.persist(&group_id);
                return sync_response(Ok(a), ptype, proto);
            }
            let (tx, rx) = oneshot::channel();
            entry.sync_waiters.insert(member_id, tx);
            (rx, ptype, proto)
        };
        let (rx, ptype, proto) = rx;
        match rx.await {
            Ok(result) => sync_response(result, ptype, proto),
            Err(_) => sync_response(Err(ResponseError::RebalanceInProgress.code()), ptype, proto),
        }
    }

    /// Handles Heartbeat.
    pub async fn heartbeat(&self, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
        let mut resp = HeartbeatResponse::default();
        let mut inner = self.lock();
        if let Err(code) = Self::check_coordinator(&inner, req.group_id.as_str()) {
            resp.error_code = code.code();
            return resp;
        }
        let Some(entry) = inner.groups.get_mut(req.group_id.as_str()) else {
            resp.error_code = ResponseError::UnknownMemberId.code();
            return resp;
        };
        let member_id = req.member_id.to_string();
        let instance = req.group_instance_id.as_deref();
        if let Err(e) = entry
            .group
            .check_member(&member_id, instance, req.generation_id)
        {
            resp.error_code = group_error(e);
            return resp;
        }
        if let Some(m) = entry.group.members.get_mut(&member_id) {
            m.last_seen = Instant::now();
        }
        if entry.group.state == GroupState::PreparingRebalance {
            resp.error_code = ResponseError::RebalanceInProgress.code();
        }
        resp
    }

    /// Handles LeaveGroup (one member before v3, a batch from v3).
    pub async fn leave_group(&self, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        use kafka_protocol::messages::leave_group_response::MemberResponse;
        let mut resp = LeaveGroupResponse::default();
        let mut inner = self.lock();
        let group_id = req.group_id.to_string();
        if let Err(code) = Self::check_coordinator(&inner, &group_id) {
            resp.error_code = code.code();
            return resp;
        }
        let leaving: Vec<(String, Option<String>)> = if version < 3 {
            vec![(req.member_id.to_string(), None)]
        } else {
            req.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|s| s.to_string()),
                    )
                })
                .collect()
        };
        let Some(entry) = inner.groups.get_mut(&group_id) else {
            resp.error_code = ResponseError::UnknownMemberId.code();
            return resp;
        };
        let mut any_error = 0;
        for (member_id, instance_id) in leaving {
            // A static member may leave by instance id alone.
            let id = if member_id.is_empty() {
                instance_id.as_ref().and_then(|inst| {
                    entry
                        .group
                        .members
                        .values()
                        .find(|m| m.instance_id.as_ref() == Some(inst))
                        .map(|m| m.id.clone())
                })
            } else {
                Some(member_id.clone())
            };
            let error = match id {
                Some(id) if entry.group.members.contains_key(&id) => {
                    self.remove_member(entry, &group_id, &id);
                    0
                }
                _ => ResponseError::UnknownMemberId.code(),
            };
            if error != 0 {
                any_error = error;
            }
            let mut r = MemberResponse::default();
            r.member_id = StrBytes::from_string(member_id);
            r.group_instance_id = instance_id.map(StrBytes::from_string);
            r.error_code = error;
            resp.members.push(r);
        }
        inner.persist(&group_id);
        if version < 3 {
            resp.error_code = any_error;
            resp.members.clear();
        }
        resp
    }

    /// Removes a member that left or timed out; the rest rebalance.
    fn remove_member(&self, entry: &mut Entry, group_id: &str, member_id: &str) {
        if let Some(tx) = entry.join_waiters.remove(member_id) {
            let _ = tx.send(JoinOutcome {
                error: ResponseError::UnknownMemberId.code(),
                generation: -1,
                member_id: member_id.to_string(),
                ..Default::default()
            });
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

    /// Removes members whose session timed out. Run periodically.
    pub fn expire_sessions(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut changed = Vec::new();
        for (group_id, group) in inner.consumer_groups.iter_mut() {
            let gone = group.expire(now);
            for id in &gone {
                tracing::info!(group = %group_id, member = %id, "member session expired");
            }
            if !gone.is_empty() {
                changed.push(group_id.clone());
            }
        }
        for group_id in changed {
            self.persist_consumer_group(&mut inner, &group_id);
        }
        let ids: Vec<String> = inner.groups.keys().cloned().collect();
        for group_id in ids {
            let Some(entry) = inner.groups.get_mut(&group_id) else {
                continue;
            };
            let expired: Vec<String> = entry
                .group
                .members
                .values()
                // A member parked in JoinGroup is governed by the rebalance timeout.
                .filter(|m| !entry.join_waiters.contains_key(&m.id))
                .filter(|m| now.duration_since(m.last_seen) > m.session_timeout)
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                tracing::info!(group = %group_id, member = %id, "member session expired");
                self.remove_member(entry, &group_id, &id);
            }
            inner.persist(&group_id);
        }
    }

    /// Expires sessions forever.
    pub async fn run_session_sweeper(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            self.expire_sessions();
        }
    }

    /// Handles OffsetCommit.
    pub async fn offset_commit(
        &self,
        req: OffsetCommitRequest,
        _version: i16,
    ) -> OffsetCommitResponse {
        use kafka_protocol::messages::offset_commit_response::{
            OffsetCommitResponsePartition, OffsetCommitResponseTopic,
        };
        let group_id = req.group_id.to_string();
        let (mut resp, pending) = {
            let mut inner = self.lock();
            let group_error_code = if group_id.is_empty() {
                ResponseError::InvalidGroupId.code()
            } else if let Err(code) = Self::check_coordinator(&inner, &group_id) {
                code.code()
            } else if let Some(g) = inner.consumer_groups.get(&group_id) {
                let simple = req.generation_id_or_member_epoch < 0 && req.member_id.is_empty();
                match g.members.get(req.member_id.as_str()) {
                    _ if simple && g.members.is_empty() => 0,
                    None => ResponseError::UnknownMemberId.code(),
                    Some(m) => {
                        let epoch = req.generation_id_or_member_epoch;
                        if epoch == m.epoch || epoch == m.previous_epoch {
                            0
                        } else {
                            ResponseError::StaleMemberEpoch.code()
                        }
                    }
                }
            } else {
                match inner.groups.get(&group_id) {
                    // A simple (non-member) commit needs a group with no members.
                    _ if req.generation_id_or_member_epoch < 0 && req.member_id.is_empty() => {
                        match inner.groups.get(&group_id) {
                            Some(e) if !e.group.members.is_empty() => {
                                ResponseError::UnknownMemberId.code()
                            }
                            _ => 0,
                        }
                    }
                    None => ResponseError::UnknownMemberId.code(),
                    Some(e) => match e.group.check_member(
                        &req.member_id,
                        req.group_instance_id.as_deref(),
                        req.generation_id_or_member_epoch,
                    ) {
                        Err(err) => group_error(err),
                        Ok(()) if e.group.state == GroupState::CompletingRebalance => {
                            ResponseError::RebalanceInProgress.code()
                        }
                        Ok(()) => 0,
                    },
                }
            };
            let mut resp = OffsetCommitResponse::default();
            // Valid commits are written together; their partitions' error codes
            // are filled in once the write is done.
            let mut accepted: Vec<(String, i32, Committed)> = Vec::new();
            for t in req.topics {
                let mut rt = OffsetCommitResponseTopic::default();
                rt.name = t.name.clone();
                for p in t.partitions {
                    let mut rp = OffsetCommitResponsePartition::default();
                    rp.partition_index = p.partition_index;
                    rp.error_code = if group_error_code != 0 {
                        group_error_code
                    } else if !self.topics.exists(&t.name, p.partition_index) {
                        // Like Kafka: the partition must exist in the cluster;
                        // this broker need not store it.
                        ResponseError::UnknownTopicOrPartition.code()
                    } else if p
                        .committed_metadata
                        .as_ref()
                        .is_some_and(|m| m.len() > MAX_OFFSET_METADATA)
                    {
                        ResponseError::OffsetMetadataTooLarge.code()
                    } else {
                        let committed = Committed {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p
                                .committed_metadata
                                .map(|m| m.to_string())
                                .unwrap_or_default(),
                        };
                        accepted.push((t.name.to_string(), p.partition_index, committed));
                        0
                    };
                    rt.partitions.push(rp);
                }
                resp.topics.push(rt);
            }
            if !accepted.is_empty() {
                if let Err(e) = inner.offsets.commit(&group_id, accepted) {
                    tracing::error!(group = %group_id, error = %e, "cannot store committed offsets");
                    for rp in resp.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                        if rp.error_code == 0 {
                            rp.error_code = ResponseError::KafkaStorageError.code();
                        }
                    }
                }
            }
            if group_error_code == 0 {
                if let Some(m) = inner
                    .groups
                    .get_mut(&group_id)
                    .and_then(|e| e.group.members.get_mut(req.member_id.as_str()))
                {
                    m.last_seen = Instant::now();
                }
            }
            // Like a produce with acks=all: the commit is confirmed once the
            // offsets partition's in-sync replicas hold it.
            let pending = inner.offsets.take_last_write();
            (resp, pending)
        };
        if let Some((p, appended)) = pending {
            let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
            let failed = match p
                .await_replication(appended.leader_epoch, appended.end_offset, deadline)
                .await
            {
                Replication::Done(_) => None,
                Replication::Pending | Replication::TimedOut => {
                    tracing::warn!(group = %group_id, "offset commit not replicated in time");
                    Some(ResponseError::RequestTimedOut)
                }
                // The client finds the new coordinator and commits again.
                Replication::LostLeadership => Some(ResponseError::NotCoordinator),
            };
            if let Some(code) = failed {
                for rp in resp.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                    if rp.error_code == 0 {
                        rp.error_code = code.code();
                    }
                }
            }
        }
        resp
    }

    /// Handles OffsetFetch (one group before v8, several from v8).
    pub async fn offset_fetch(&self, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
        use kafka_protocol::messages::offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
            OffsetFetchResponseTopic, OffsetFetchResponseTopics,
        };
        let inner = self.lock();
        let lookup = |group: &str, wanted: Option<Vec<(String, Vec<i32>)>>| -> TopicOffsets {
            let offsets = inner.offsets.group(group);
            match wanted {
                Some(list) => list
                    .into_iter()
                    .map(|(topic, parts)| {
                        let found = parts
                            .into_iter()
                            .map(|p| (p, offsets.and_then(|o| o.get(&(topic.clone(), p)).cloned())))
                            .collect();
                        (topic, found)
                    })
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<String, Vec<(i32, Option<Committed>)>> =
                        BTreeMap::new();
                    for ((topic, p), c) in offsets.into_iter().flatten() {
                        by_topic
                            .entry(topic.clone())
                            .or_default()
                            .push((*p, Some(c.clone())));
                    }
                    by_topic.into_iter().collect()
                }
            }
        };
        let mut resp = OffsetFetchResponse::default();
        if version < 8 {
            if let Err(code) = Self::check_coordinator(&inner, req.group_id.as_str()) {
                resp.error_code = code.code();
                return resp;
            }
            let wanted = req.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            for (topic, parts) in lookup(&req.group_id, wanted) {
                let mut rt = OffsetFetchResponseTopic::default();
                rt.name = TopicName(StrBytes::from_string(topic));
                for (p, c) in parts {
                    let mut rp = OffsetFetchResponsePartition::default();
                    rp.partition_index = p;
                    let c = c.unwrap_or(Committed {
                        offset: -1,
                        leader_epoch: -1,
                        metadata: String::new(),
                    });
                    rp.committed_offset = c.offset;
                    rp.committed_leader_epoch = c.leader_epoch;
                    rp.metadata = Some(StrBytes::from_string(c.metadata));
                    rt.partitions.push(rp);
                }
                resp.topics.push(rt);
            }
        } else {
            for g in req.groups {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes))
                        .collect()
                });
                let mut rg = OffsetFetchResponseGroup::default();
                rg.group_id = g.group_id.clone();
                if let Err(code) = Self::check_coordinator(&inner, g.group_id.as_str()) {
                    rg.error_code = code.code();
                    resp.groups.push(rg);
                    continue;
                }
                for (topic, parts) in lookup(&g.group_id, wanted) {
                    let mut rt = OffsetFetchResponseTopics::default();
                    rt.name = TopicName(StrBytes::from_string(topic));
                    for (p, c) in parts {
                        let mut rp = OffsetFetchResponsePartitions::default();
                        rp.partition_index = p;
                        let c = c.unwrap_or(Committed {
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                        });
                        rp.committed_offset = c.offset;
                        rp.committed_leader_epoch = c.leader_epoch;
                        rp.metadata = Some(StrBytes::from_string(c.metadata));
                        rt.partitions.push(rp);
                    }
                    rg.topics.push(rt);
                }
                resp.groups.push(rg);
            }
        }
        resp
    }

    /// Handles DescribeGroups. Unknown groups are reported as `Dead`.
    pub async fn describe_groups(
        &self,
        req: DescribeGroupsRequest,
        _version: i16,
    ) -> DescribeGroupsResponse {
        use kafka_protocol::messages::describe_groups_response::{
            DescribedGroup, DescribedGroupMember,
        };
        let inner = self.lock();
        let mut resp = DescribeGroupsResponse::default();
        for id in req.groups {
            let mut d = DescribedGroup::default();
            d.group_id = id.clone();
            d.authorized_operations = i32::MIN;
            if let Err(code) = Self::check_coordinator(&inner, id.as_str()) {
                d.error_code = code.code();
                d.group_state = StrBytes::from_static_str("");
                resp.groups.push(d);
                continue;
            }
            match inner.groups.get(id.as_str()) {
                Some(e) => {
                    let g = &e.group;
                    d.group_state = StrBytes::from_static_str(g.state.name());
                    d.protocol_type =
                        StrBytes::from_string(g.protocol_type.clone().unwrap_or_default());
                    d.protocol_data = StrBytes::from_string(g.protocol.clone().unwrap_or_default());
                    for m in g.members.values() {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = StrBytes::from_string(m.id.clone());
                        dm.group_instance_id = m.instance_id.clone().map(StrBytes::from_string);
                        dm.client_id = StrBytes::from_string(m.client_id.clone());
                        dm.client_host = StrBytes::from_string(format!("/{}", m.client_host));
                        dm.member_metadata = g
                            .protocol
                            .as_ref()
                            .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                            .map(|(_, md)| md.clone())
                            .unwrap_or_default();
                        dm.member_assignment = m.assignment.clone();
                        d.members.push(dm);
                    }
                }
                None if inner.offsets.group(id.as_str()).is_some() => {
                    d.group_state = StrBytes::from_static_str(GroupState::Empty.name());
                    d.protocol_type = StrBytes::from_static_str("consumer");
                }
                None => d.group_state = StrBytes::from_static_str("Dead"),
            }
            resp.groups.push(d);
        }
        resp
    }

    /// Handles ListGroups, with the state (v4) and type (v5) filters.
    pub async fn list_groups(&self, req: ListGroupsRequest, _version: i16) -> ListGroupsResponse {
        use kafka_protocol::messages::list_groups_response::ListedGroup;
        let inner = self.lock();
        let mut listed: BTreeMap<String, (String, &'static str, &'static str)> = BTreeMap::new();
        for id in inner.offsets.group_ids() {
            listed.insert(
                id.clone(),
                ("consumer".to_string(), GroupState::Empty.name(), "classic"),
            );
        }
        for (id, e) in &inner.groups {
            if e.group.members.is_empty() && inner.offsets.group(id).is_none() {
                continue;
            }
            let ptype = e
                .group
                .protocol_type
                .clone()
                .unwrap_or_else(|| "consumer".to_string());
            listed.insert(id.clone(), (ptype, e.group.state.name(), "classic"));
        }
        for (id, g) in &inner.consumer_groups {
            listed.insert(id.clone(), ("consumer".to_string(), g.state(), "consumer"));
        }
        let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
        let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
        let mut resp = ListGroupsResponse::default();
        for (id, (ptype, state, kind)) in listed {
            if !states.is_empty() && !states.contains(&state.to_lowercase()) {
                continue;
            }
            if !types.is_empty() && !types.iter().any(|t| t == kind) {
                continue;
            }
            let mut g = ListedGroup::default();
            g.group_id = GroupId(StrBytes::from_string(id));
            g.protocol_type = StrBytes::from_string(ptype);
            g.group_state = StrBytes::from_static_str(state);
            g.group_type = StrBytes::from_static_str(kind);
            resp.groups.push(g);
        }
        resp
    }

    /// Handles DeleteGroups: only groups without members can go.
    pub async fn delete_groups(
        &self,
        req: DeleteGroupsRequest,
        _version: i16,
    ) -> DeleteGroupsResponse {
        use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
        let mut inner = self.lock();
        let mut resp = DeleteGroupsResponse::default();
        for id in req.groups_names {
            if let Err(code) = Self::check_coordinator(&inner, id.as_str()) {
                let mut r = DeletableGroupResult::default();
                r.group_id = id;
                r.error_code = code.code();
                resp.results.push(r);
                continue;
            }
            let known = inner.groups.contains_key(id.as_str())
                || inner.consumer_groups.contains_key(id.as_str())
                || inner.offsets.group(id.as_str()).is_some();
            let busy = inner
                .groups
                .get(id.as_str())
                .is_some_and(|e| !e.group.members.is_empty())
                || inner
                    .consumer_groups
                    .get(id.as_str())
                    .is_some_and(|g| !g.members.is_empty());
            let error = if !known {
                ResponseError::GroupIdNotFound.code()
            } else if busy {
                ResponseError::NonEmptyGroup.code()
            } else {
                inner.groups.remove(id.as_str());
                inner.consumer_groups.remove(id.as_str());
                let stored = inner.offsets.group_metadata().contains_key(id.as_str());
                let forgotten = if stored {
                    inner.offsets.save_group(&id, None)
                } else {
                    Ok(())
                }
                .and_then(|()| inner.offsets.save_consumer_group(&id, None));
                match forgotten.and_then(|()| inner.offsets.drop_group(&id)) {
                    Ok(()) => 0,
                    Err(e) => {
                        tracing::error!(group = %id.as_str(), error = %e, "cannot record a group deletion");
                        ResponseError::KafkaStorageError.code()
                    }
                }
            };
            let mut r = DeletableGroupResult::default();
            r.group_id = id;
            r.error_code = error;
            resp.results.push(r);
        }
        resp
    }

    /// Handles OffsetDelete: refused for topics the live members subscribe to.
    pub async fn offset_delete(
        &self,
        req: OffsetDeleteRequest,
        _version: i16,
    ) -> OffsetDeleteResponse {
        use kafka_protocol::messages::offset_delete_response::{
            OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
        };
        let mut inner = self.lock();
        let mut resp = OffsetDeleteResponse::default();
        let group_id = req.group_id.to_string();
        if let Err(code) = Self::check_coordinator(&inner, &group_id) {
            resp.error_code = code.code();
            return resp;
        }
        let known =
            inner.groups.contains_key(&group_id) || inner.offsets.group(&group_id).is_some();
        if !known {
            resp.error_code = ResponseError::GroupIdNotFound.code();
            return resp;
        }
        let subscribed: HashSet<String> = inner
            .groups
            .get(&group_id)
            .map(|e| subscribed_topics(&e.group))
            .unwrap_or_default();
        for t in req.topics {
            let mut rt = OffsetDeleteResponseTopic::default();
            rt.name = t.name.clone();
            for p in t.partitions {
                let mut rp = OffsetDeleteResponsePartition::default();
                rp.partition_index = p.partition_index;
                rp.error_code = if subscribed.contains(t.name.as_str()) {
                    ResponseError::GroupSubscribedToTopic.code()
                } else {
                    match inner.offsets.delete(&group_id, &t.name, p.partition_index) {
                        Ok(()) => 0,
                        Err(_) => ResponseError::KafkaStorageError.code(),
                    }
                };
                rt.partitions.push(rp);
            }
            resp.topics.push(rt);
        }
        resp
    }

    /// Forces committed offsets to disk (at shutdown).
    pub fn flush(&self) -> Result<(), OffsetStoreError> {
        self.lock().offsets.sync()
    }

    /// Writes the records of a consumer-protocol group's changes (none
    /// when nothing changed); the caller may wait for their replication
    /// (`OffsetStore::take_last_write`).
    pub(super) fn persist_consumer_group(&self, inner: &mut Inner, group_id: &str) {
        let stored = inner
            .consumer_groups
            .get(group_id)
            .map(|g| g.to_stored(|name| self.topics.get(name).map(|t| t.id)));
        if let Err(e) = inner.offsets.save_consumer_group(group_id, stored) {
            tracing::error!(group = %group_id, error = %e, "cannot store group membership");
        }
    }
}

impl Inner {
    /// Stores a group's membership if it settled since it was last stored.
    fn persist(&mut self, group_id: &str) {
        let Some(entry) = self.groups.get_mut(group_id) else {
            return;
        };
        if !entry.dirty {
            return;
        }
        entry.dirty = false;
        let metadata = entry.group.to_metadata(now_ms());
        if let Err(e) = self.offsets.save_group(group_id, Some(metadata)) {
            tracing::error!(group = %group_id, error = %e, "cannot store group membership");
        }
    }

    /// Whether a classic-protocol group of this id has live members.
    pub(super) fn classic_group_has_members(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|e| !e.group.members.is_empty())
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    let ids: Vec<String> = entry.join_waiters.keys().cloned().collect();
    for id in ids {
        if let Some(tx) = entry.join_waiters.remove(&id) {
            let _ = tx.send(outcome_for(&entry.group, &id));
        }
    }
    for m in entry.group.members.values_mut() {
        m.last_seen = Instant::now();
    }
}

/// The JoinGroup answer for one member of a group that just completed a join.
fn outcome_for(group: &Group, member_id: &str) -> JoinOutcome {
    let leader = group.leader.clone().unwrap_or_default();
    let members = if leader == member_id {
        group
            .members
            .values()
            .map(|m| {
                let md = group
                    .protocol
                    .as_ref()
                    .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                (m.id.clone(), m.instance_id.clone(), md)
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinOutcome {
        error: 0,
        generation: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol: group.protocol.clone(),
        leader,
        member_id: member_id.to_string(),
        members,
        skip_assignment: false,
    }
}

fn join_response(o: JoinOutcome) -> JoinGroupResponse {
    use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
    let mut r = JoinGroupResponse::default();
    r.error_code = o.error;
    r.generation_id = o.generation;
    r.protocol_type = o.protocol_type.map(StrBytes::from_string);
    r.protocol_name = Some(StrBytes::from_string(o.protocol.unwrap_or_default()));
    r.leader = StrBytes::from_string(o.leader);
    r.member_id = StrBytes::from_string(o.member_id);
    r.skip_assignment = o.skip_assignment;
    r.members = o
        .members
        .into_iter()
        .map(|(id, inst, md)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = StrBytes::from_string(id);
            m.group_instance_id = inst.map(StrBytes::from_string);
            m.metadata = md;
            m
        })
        .collect();
    r
}

fn sync_response(
    result: Result<Bytes, i16>,
    protocol_type: Option<String>,
    protocol: Option<String>,
) -> kafka_protocol::messages::SyncGroupResponse {
    let mut r = kafka_protocol::messages::SyncGroupResponse::default();
    match result {
        Ok(a) => {
            r.assignment = a;
            r.protocol_type = protocol_type.map(StrBytes::from_string);
            r.protocol_name = protocol.map(StrBytes::from_string);
        }
        Err(code) => r.error_code = code,
    }
    r
}

fn group_error(e: GroupError) -> i16 {
    match e {
        GroupError::UnknownMember => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::FencedInstance => ResponseError::FencedInstanceId,
    }
    .code()
}

/// Topics the members of a `consumer` group subscribe to, from the
/// subscription each member sent in JoinGroup.
fn subscribed_topics(group: &Group) -> HashSet<String> {
    let mut topics = HashSet::new();
    if group.protocol_type.as_deref() != Some("consumer") {
        return topics;
    }
    for m in group.members.values() {
        for (_, md) in &m.protocols {
            let mut buf = md.clone();
            if buf.remaining() < 2 {
                continue;
            }
            let version = buf.get_i16();
            if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3)) {
                topics.extend(sub.topics.iter().map(|t| t.to_string()));
            }
        }
    }
    topics
}

//! The classic group protocol as plain data: members, generation, the
//! chosen protocol and state transitions. No I/O and no waiting; the
//! coordinator holds the channels that answer the waiting clients.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::GroupError;
use super::offset_records::{GroupMetadata, MemberMetadata};

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment delivered.
    Stable,
}

impl GroupState {
    /// The name clients print.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// One group member.
#[derive(Debug, Clone)]
pub struct Member {
    /// Broker-assigned member id.
    pub id: String,
    /// `group.instance.id` for static members.
    pub instance_id: Option<String>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Supported protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Assignment from the last SyncGroup.
    pub assignment: Bytes,
    /// Last sign of life.
    pub last_seen: Instant,
    /// Joined in the current rebalance.
    pub joined: bool,
}

/// A consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// Generation, bumped by every completed join.
    pub generation: i32,
    /// Protocol type (`consumer`).
    pub protocol_type: Option<String>,
    /// Chosen protocol (assignor).
    pub protocol: Option<String>,
    /// Leader's member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
        }
    }

    /// Whether a joining member's protocols fit the group's.
    pub fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(p, _)| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(q, _)| q == p))
            })
    }

    /// Starts a rebalance: every member has to join again.
    pub fn prepare_rebalance(&mut self) {
        self.state = GroupState::PreparingRebalance;
        for m in self.members.values_mut() {
            m.joined = false;
        }
    }

    /// Whether every member has joined.
    pub fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.joined)
    }

    /// Ends the join phase: drops members that did not rejoin, bumps the
    /// generation, picks the protocol and leader. Returns the removed ids.
    pub fn complete_join(&mut self) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.joined)
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.members.remove(id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return gone;
        }
        self.protocol = choose_protocol(self.members.values());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        gone
    }

    /// Checks member, static instance and generation for SyncGroup,
    /// Heartbeat and commits.
    pub fn check_member(
        &self,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance {
            let current = self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance));
            if current.is_some_and(|m| m.id != member) {
                return Err(GroupError::FencedInstance);
            }
        }
        if !self.members.contains_key(member) {
            return Err(GroupError::UnknownMember);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// A member's metadata for the group's chosen protocol.
    pub fn metadata_of(&self, member: &Member) -> Bytes {
        self.protocol
            .as_ref()
            .and_then(|p| member.protocols.iter().find(|(n, _)| n == p))
            .map(|(_, md)| md.clone())
            .unwrap_or_default()
    }

    /// Removes a member; the last one leaving empties the group. Whether
    /// the others must rebalance is the coordinator's call.
    pub fn remove(&mut self, member: &str) -> bool {
        if self.members.remove(member).is_none() {
            return false;
        }
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader = None;
            self.protocol = None;
            self.generation += 1;
        }
        true
    }
}

impl Group {
    /// What is stored of the group once a rebalance settles: members with
    /// the chosen protocol's subscription and their assignment.
    pub fn to_metadata(&self, now_ms: i64) -> GroupMetadata {
        GroupMetadata {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: now_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    subscription: self.metadata_of(m),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// A group as it was stored: Stable with its members (each with a
    /// fresh session) or Empty.
    pub fn from_metadata(id: &str, md: &GroupMetadata, now: Instant) -> Group {
        let mut g = Group::new(id);
        g.generation = md.generation;
        g.protocol_type = Some(md.protocol_type.clone());
        if md.members.is_empty() {
            return g;
        }
        g.state = GroupState::Stable;
        g.protocol = md.protocol.clone();
        g.leader = md.leader.clone();
        for m in &md.members {
            let member = Member {
                id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout: Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                protocols: vec![(
                    md.protocol.clone().unwrap_or_default(),
                    m.subscription.clone(),
                )],
                assignment: m.assignment.clone(),
                last_seen: now,
                joined: true,
            };
            g.members.insert(m.member_id.clone(), member);
        }
        g
    }
}

/// The protocol every member supports that most members rank highest
/// (ties go to the first in the earliest member's list).
pub fn choose_protocol<'a>(members: impl Iterator<Item = &'a Member> + Clone) -> Option<String> {
    let first = members.clone().next()?;
    let common: Vec<&String> = first
        .protocols
        .iter()
        .map(|(p, _)| p)
        .filter(|p| {
            members
                .clone()
                .all(|m| m.protocols.iter().any(|(q, _)| q == *p))
        })
        .collect();
    let mut best: Option<(&String, usize)> = None;
    for p in &common {
        let votes = members
            .clone()
            .filter(|m| {
                m.protocols
                    .iter()
                    .map(|(q, _)| q)
                    .find(|q| common.contains(q))
                    == Some(*p)
            })
            .count();
        if best.is_none_or(|(_, v)| votes > v) {
            best = Some((p, votes));
        }
    }
    best.map(|(p, _)| p.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            last_seen: Instant::now(),
            joined: true,
        }
    }

    #[test]
    fn protocol_choice_table() {
        let cases: [(&[&[&str]], Option<&str>); 4] = [
            (&[&["range", "cooperative-sticky"]], Some("range")),
            (
                &[&["range", "sticky"], &["sticky", "range"], &["sticky"]],
                Some("sticky"),
            ),
            (&[&["a", "b"], &["b", "a"]], Some("a")),
            (&[&["a"], &["b"]], None),
        ];
        for (lists, want) in cases {
            let ms: Vec<Member> = lists
                .iter()
                .enumerate()
                .map(|(i, l)| member(&i.to_string(), l))
                .collect();
            assert_eq!(choose_protocol(ms.iter()).as_deref(), want, "{lists:?}");
        }
    }

    #[test]
    fn join_completion_drops_absent_members_and_keeps_the_leader() {
        let mut g = Group::new("g");
        g.protocol_type = Some("consumer".into());
        for id in ["a", "b", "c"] {
            g.members.insert(id.into(), member(id, &["range"]));
        }
        g.complete_join();
        assert_eq!((g.generation, g.leader.as_deref()), (1, Some("a")));
        assert_eq!(g.state, GroupState::CompletingRebalance);
        g.prepare_rebalance();
        assert!(!g.all_joined());
        for id in ["a", "c"] {
            g.members.get_mut(id).expect("member").joined = true;
        }
        assert_eq!(g.complete_join(), vec!["b".to_string()]);
        assert_eq!((g.generation, g.leader.as_deref()), (2, Some("a")));
        assert_eq!(g.check_member("b", None, 2), Err(GroupError::UnknownMember));
        assert_eq!(
            g.check_member("a", None, 1),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(g.check_member("a", None, 2), Ok(()));
        g.members.get_mut("c").expect("member").instance_id = Some("static-c".into());
        assert_eq!(g.check_member("c", Some("static-c"), 2), Ok(()));
        assert_eq!(
            g.check_member("old-c", Some("static-c"), 2),
            Err(GroupError::FencedInstance)
        );
    }

    #[test]
    fn removing_the_last_member_empties_the_group() {
        let mut g = Group::new("g");
        g.members.insert("a".into(), member("a", &["range"]));
        g.members.insert("b".into(), member("b", &["range"]));
        g.complete_join();
        assert!(g.remove("a"));
        assert_eq!(g.state, GroupState::CompletingRebalance);
        assert!(g.remove("b"));
        assert_eq!(g.state, GroupState::Empty);
        assert!(!g.remove("b"));
    }

    #[test]
    fn a_stable_group_survives_a_round_trip_through_its_metadata() {
        let mut g = Group::new("g");
        g.protocol_type = Some("consumer".into());
        for id in ["a", "b"] {
            let mut m = member(id, &["range", "sticky"]);
            m.assignment = Bytes::from(format!("plan-{id}"));
            g.members.insert(id.into(), m);
        }
        g.complete_join();
        g.state = GroupState::Stable;
        let back = Group::from_metadata("g", &g.to_metadata(1), Instant::now());
        assert_eq!(
            (back.state, back.generation, back.leader.clone()),
            (GroupState::Stable, 1, Some("a".into()))
        );
        assert_eq!(back.protocol.as_deref(), Some("range"));
        assert_eq!(back.members["b"].assignment, Bytes::from("plan-b"));
        assert_eq!(back.check_member("b", None, 1), Ok(()));
        let empty = Group::from_metadata("g", &Group::new("g").to_metadata(1), Instant::now());
        assert_eq!(empty.state, GroupState::Empty);
    }

    #[test]
    fn a_joiner_must_share_a_protocol() {
        let mut g = Group::new("g");
        g.protocol_type = Some("consumer".into());
        g.members.insert("a".into(), member("a", &["range"]));
        let p = |n: &str| vec![(n.to_string(), Bytes::new())];
        assert!(g.accepts("consumer", &p("range")));
        assert!(!g.accepts("consumer", &p("sticky")));
        assert!(!g.accepts("connect", &p("range")));
    }
}

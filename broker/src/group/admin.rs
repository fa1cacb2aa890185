//! Groups as administrators see them: described, listed and deleted, for
//! both group protocols.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::assignor::TopicPartition;
use super::consumer_heartbeat::ASSIGNORS;
use super::coordinator::GroupCoordinator;
use super::error::GroupError;
use super::state::GroupState;

/// The state a group of neither protocol is described with.
const DEAD: &str = "Dead";

/// Protocol type of the groups consumers form.
const CONSUMER: &str = "consumer";

/// A classic group, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State as clients print it (`Dead` for a group that does not exist).
    pub state: &'static str,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// A classic group's member, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

/// Which protocol a group follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    /// JoinGroup and SyncGroup.
    Classic,
    /// ConsumerGroupHeartbeat (KIP-848).
    Consumer,
}

impl GroupType {
    /// The name clients use.
    pub fn name(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
        }
    }
}

/// One group in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type.
    pub protocol_type: String,
    /// State as clients print it.
    pub state: &'static str,
    /// Its protocol.
    pub group_type: GroupType,
}

/// A group as `/metrics` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReport {
    /// Group id.
    pub group_id: String,
    /// State as clients print it.
    pub state: &'static str,
    /// Members now.
    pub members: usize,
    /// Committed offsets: topic, partition, offset.
    pub committed: Vec<(String, i32, i64)>,
}

/// Which groups a listing includes: those in one of `states` and of one of
/// `types` (names as clients write them, in any case; empty: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// States.
    pub states: Vec<String>,
    /// Group types.
    pub types: Vec<String>,
}

impl ListFilter {
    /// Whether `g` is listed.
    pub fn admits(&self, g: &GroupListing) -> bool {
        let any = |names: &[String], name: &str| {
            names.is_empty() || names.iter().any(|n| n.eq_ignore_ascii_case(name))
        };
        any(&self.states, g.state) && any(&self.types, g.group_type.name())
    }
}

/// A consumer-protocol group, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// State as clients print it.
    pub state: &'static str,
    /// Group epoch.
    pub epoch: i32,
    /// Epoch of the target assignment.
    pub assignment_epoch: i32,
    /// The server-side assignor.
    pub assignor: &'static str,
    /// Members.
    pub members: Vec<ConsumerMemberDescription>,
}

/// A consumer-protocol member, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Member epoch.
    pub epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Subscribed topics.
    pub subscriptions: BTreeSet<String>,
    /// What it has been told to own.
    pub assigned: BTreeSet<TopicPartition>,
    /// Its share of the target assignment.
    pub target: BTreeSet<TopicPartition>,
}

impl GroupCoordinator {
    /// Describes a classic group; a group known only by its offsets is
    /// `Empty`, an unknown one `Dead`.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        let inner = self.lock();
        inner.check_coordinator(group_id)?;
        let Some(e) = inner.groups.get(group_id) else {
            let known = inner.offsets.group(group_id).is_some();
            return Ok(GroupDescription {
                state: if known {
                    GroupState::Empty.name()
                } else {
                    DEAD
                },
                protocol_type: if known { CONSUMER } else { "" }.to_string(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        let g = &e.group;
        Ok(GroupDescription {
            state: g.state.name(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: g.protocol.clone().unwrap_or_default(),
            members: g
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: g.metadata_of(m),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Lists the groups this broker coordinates, of both protocols,
    /// ordered by id. Refused while a partition loads: its groups would be
    /// missing.
    pub fn list_groups(&self, filter: &ListFilter) -> Result<Vec<GroupListing>, GroupError> {
        let inner = self.lock();
        if inner.loading() {
            return Err(GroupError::LoadInProgress);
        }
        // A group known only by its offsets is an empty classic group.
        let mut listed: BTreeMap<&str, (String, &'static str, GroupType)> = inner
            .offsets
            .group_ids()
            .map(|id| {
                let empty = GroupState::Empty.name();
                (
                    id.as_str(),
                    (CONSUMER.to_string(), empty, GroupType::Classic),
                )
            })
            .collect();
        for (id, e) in &inner.groups {
            if e.group.members.is_empty() && inner.offsets.group(id).is_none() {
                continue;
            }
            let protocol_type = e
                .group
                .protocol_type
                .clone()
                .unwrap_or_else(|| CONSUMER.to_string());
            let state = e.group.state.name();
            listed.insert(id, (protocol_type, state, GroupType::Classic));
        }
        for (id, g) in &inner.consumer_groups {
            listed.insert(id, (CONSUMER.to_string(), g.state(), GroupType::Consumer));
        }
        Ok(listed
            .into_iter()
            .map(|(id, (protocol_type, state, group_type))| GroupListing {
                group_id: id.to_string(),
                protocol_type,
                state,
                group_type,
            })
            .filter(|g| filter.admits(g))
            .collect())
    }

    /// Every group this broker coordinates, of both protocols, with its
    /// members and committed offsets, ordered by id; nothing while an
    /// offsets partition loads (its groups would be missing or partial).
    pub fn report(&self) -> Vec<GroupReport> {
        let Ok(listed) = self.list_groups(&ListFilter::default()) else {
            return Vec::new();
        };
        let inner = self.lock();
        listed
            .into_iter()
            .map(|g| {
                let members = match g.group_type {
                    GroupType::Classic => inner
                        .groups
                        .get(&g.group_id)
                        .map_or(0, |e| e.group.members.len()),
                    GroupType::Consumer => inner
                        .consumer_groups
                        .get(&g.group_id)
                        .map_or(0, |c| c.members.len()),
                };
                let committed = inner
                    .offsets
                    .group(&g.group_id)
                    .into_iter()
                    .flatten()
                    .map(|((topic, partition), c)| (topic.clone(), *partition, c.offset))
                    .collect();
                GroupReport {
                    group_id: g.group_id,
                    state: g.state,
                    members,
                    committed,
                }
            })
            .collect()
    }

    /// Deletes a group without members, with its offsets.
    pub fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        let mut inner = self.lock();
        inner.check_coordinator(group_id)?;
        let known = inner.groups.contains_key(group_id)
            || inner.consumer_groups.contains_key(group_id)
            || inner.offsets.group(group_id).is_some();
        if !known {
            return Err(GroupError::GroupNotFound);
        }
        let busy = inner.classic_group_has_members(group_id)
            || inner
                .consumer_groups
                .get(group_id)
                .is_some_and(|g| !g.members.is_empty());
        if busy {
            return Err(GroupError::NotEmpty);
        }
        inner.groups.remove(group_id);
        inner.consumer_groups.remove(group_id);
        let offsets = &mut inner.offsets;
        let stored = offsets.group_metadata().contains_key(group_id);
        if stored {
            offsets.save_group(group_id, None)
        } else {
            Ok(())
        }
        .and_then(|()| offsets.save_consumer_group(group_id, None))
        .and_then(|()| offsets.drop_group(group_id))
        .map_err(|e| {
            tracing::error!(group = %group_id, error = %e, "cannot record a group deletion");
            GroupError::Storage
        })
    }

    /// Describes a consumer-protocol group; a group of the classic
    /// protocol, or one known only by its offsets, is not one.
    pub fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, GroupError> {
        let inner = self.lock();
        inner.check_coordinator(group_id)?;
        let g = inner
            .consumer_groups
            .get(group_id)
            .ok_or_else(|| GroupError::NotConsumerGroup(group_id.to_string()))?;
        Ok(ConsumerGroupDescription {
            state: g.state(),
            epoch: g.epoch,
            assignment_epoch: g.epoch,
            assignor: ASSIGNORS[0],
            members: g
                .members
                .values()
                .map(|m| ConsumerMemberDescription {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscriptions: m.subscriptions.clone(),
                    assigned: m.assigned.clone(),
                    target: m.target.clone(),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(state: &'static str, group_type: GroupType) -> GroupListing {
        GroupListing {
            group_id: "g".into(),
            protocol_type: CONSUMER.into(),
            state,
            group_type,
        }
    }

    #[test]
    fn list_filter_table() {
        let filter = |states: &[&str], types: &[&str]| ListFilter {
            states: states.iter().map(|s| s.to_string()).collect(),
            types: types.iter().map(|s| s.to_string()).collect(),
        };
        let cases = [
            (
                filter(&[], &[]),
                listing("Stable", GroupType::Classic),
                true,
            ),
            (
                filter(&["stable"], &[]),
                listing("Stable", GroupType::Classic),
                true,
            ),
            (
                filter(&["Empty"], &[]),
                listing("Stable", GroupType::Classic),
                false,
            ),
            (
                filter(&[], &["Consumer"]),
                listing("Stable", GroupType::Consumer),
                true,
            ),
            (
                filter(&[], &["consumer"]),
                listing("Stable", GroupType::Classic),
                false,
            ),
            (
                filter(&["empty", "stable"], &["classic"]),
                listing("Empty", GroupType::Classic),
                true,
            ),
        ];
        for (f, g, want) in cases {
            assert_eq!(f.admits(&g), want, "{f:?} {g:?}");
        }
    }
}

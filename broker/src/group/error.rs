//! Why the group coordinator refuses a request. One enum for both group
//! protocols and the committed offsets; `handlers::errors::group_error`
//! turns each into the Kafka error code clients act on, and the text is the
//! message of the APIs that carry one.

/// A refusal by the group coordinator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// This broker does not lead the group's `__consumer_offsets` partition.
    #[error("this broker does not coordinate the group")]
    NotCoordinator,
    /// Leadership of the group's partition moved while the request waited
    /// for its records to be replicated.
    #[error("this broker no longer coordinates the group")]
    CoordinatorMoved,
    /// The group's partition is led here but still being loaded.
    #[error("the coordinator is still loading the group")]
    LoadInProgress,
    /// An empty group id in the classic protocol or an offset commit.
    #[error("the group id is empty")]
    InvalidGroupId,
    /// An empty group id in a consumer-protocol heartbeat.
    #[error("group id must not be empty")]
    MissingGroupId,
    /// A session timeout outside `group.min/max.session.timeout.ms`.
    #[error("the session timeout is outside the broker's bounds")]
    InvalidSessionTimeout,
    /// A joining member's protocols fit neither the group's nor any other
    /// member's.
    #[error("the member's protocols do not match the group's")]
    InconsistentProtocol,
    /// A new member must join again with the id it was given (KIP-394).
    #[error("the member must join again with the member id it was given")]
    MemberIdRequired,
    /// The member id is not one of the group's.
    #[error("unknown member")]
    UnknownMember,
    /// A classic member's generation is not the group's.
    #[error("the generation is not the group's current one")]
    IllegalGeneration,
    /// A newer incarnation of the static member took over its place.
    #[error("a newer instance of the static member took over")]
    FencedInstance,
    /// The group is between generations; the member must join again.
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// A consumer-protocol member's epoch is neither its current nor its
    /// previous one: it must drop its partitions and rejoin.
    #[error("member epoch is fenced")]
    FencedMemberEpoch,
    /// An offset commit with an outdated member epoch.
    #[error("the member epoch is stale")]
    StaleMemberEpoch,
    /// Another live member of the consumer protocol uses the instance id.
    #[error("the instance id is still in use")]
    UnreleasedInstance,
    /// A server-side assignor this broker does not have.
    #[error("supported assignors: uniform, range")]
    UnsupportedAssignor,
    /// A joining consumer-protocol member sent no subscription.
    #[error("a joining member must send its subscription")]
    MissingSubscription,
    /// A subscription by regular expression (not supported yet).
    #[error("regular-expression subscriptions are not supported yet")]
    RegexSubscription,
    /// The group does not exist.
    #[error("the group does not exist")]
    GroupNotFound,
    /// A consumer-protocol heartbeat for a group whose classic members are
    /// still there.
    #[error("the group is in use by members of the classic protocol")]
    ClassicGroupInUse,
    /// A consumer-protocol description of a group of another kind.
    #[error("group {0} is not a consumer group")]
    NotConsumerGroup(String),
    /// Deleting a group that still has members.
    #[error("the group still has members")]
    NotEmpty,
    /// Deleting offsets of a topic the group's members subscribe to.
    #[error("the group's members subscribe to the topic")]
    SubscribedToTopic,
    /// An offset commit for a partition the cluster does not have.
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// Offset metadata longer than `offset.metadata.max.bytes`.
    #[error("the offset metadata is too long")]
    MetadataTooLarge,
    /// The group's records were not replicated before the deadline.
    #[error("the group's new state was not replicated in time")]
    ReplicationTimedOut,
    /// Writing the group's records failed (logged where it happened).
    #[error("the group's state could not be stored")]
    Storage,
}

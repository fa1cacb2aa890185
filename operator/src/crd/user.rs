//! The `KafkaUser` resource: a user of a `KafkaCluster`, with its
//! credentials, ACLs and quotas, kept as declared.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user: how it authenticates, what it may do, how much it may use. The
/// operator keeps its credentials in a Secret named after it and its ACLs
/// and quotas in the cluster; the spec wins (ACLs of the user that the
/// spec does not list are removed).
// Clippy takes the `printcolumn(...)` entries, which share keys, for
// repeated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "gregor.dev",
    version = "v1alpha1",
    kind = "KafkaUser",
    namespaced,
    status = "KafkaUserStatus",
    shortname = "ku",
    category = "gregor",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.cluster"),
    printcolumn(
        name = "Authentication",
        type_ = "string",
        json_path = ".spec.authentication.type"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserSpec {
    /// Name of the `KafkaCluster` (in the same namespace) the user belongs to.
    #[x_kube(validation = Rule::new("self == oldSelf").message("a user cannot move to another cluster"))]
    pub cluster: String,
    /// How the user authenticates.
    pub authentication: UserAuthentication,
    /// What the user may do; unset, the user has no ACLs of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<UserAuthorization>,
    /// How much the user may use; unset, the cluster's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<UserQuotas>,
}

/// How a user authenticates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthentication {
    /// The mechanism.
    #[serde(rename = "type")]
    pub kind: UserAuthenticationType,
    /// `scram-sha-512`: take the password from this Secret key rather than
    /// generating one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSource>,
}

/// Authentication mechanisms of a user.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UserAuthenticationType {
    /// A password, with SASL SCRAM-SHA-512; the principal is `User:<name>`.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// A client certificate the operator issues from the clients CA; the
    /// principal is `User:CN=<name>`.
    Tls,
    /// A client certificate issued elsewhere, with the subject `CN=<name>`;
    /// the operator only keeps the user's ACLs and quotas.
    TlsExternal,
}

/// Where a user-provided password is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSource {
    /// The Secret key holding it.
    pub value_from: PasswordSecretRef,
}

/// A Secret key holding a password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSecretRef {
    /// The Secret (in the user's namespace) and key.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key.
    pub key: String,
}

/// A user's ACLs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthorization {
    /// The authorizer: `simple`, Kafka's ACLs.
    #[serde(rename = "type")]
    pub kind: crate::crd::cluster::AuthorizationType,
    /// The ACLs; the user's ACLs in the cluster are exactly these.
    #[serde(default)]
    pub acls: Vec<AclRule>,
}

/// One ACL rule: operations on a resource, allowed or denied, from a host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    /// The resource.
    pub resource: AclResource,
    /// The operations.
    #[schemars(length(min = 1))]
    pub operations: Vec<AclOperation>,
    /// The host they apply from. Default: `*`, any.
    #[serde(default = "any_host")]
    pub host: String,
    /// Allow (the default) or deny.
    #[serde(rename = "type", default)]
    pub kind: AclType,
}

fn any_host() -> String {
    "*".into()
}

/// The resource of an ACL rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclResource {
    /// The kind of resource.
    #[serde(rename = "type")]
    pub kind: AclResourceType,
    /// Its name (or prefix); `*` for all. Not for `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `literal` (the default) or `prefix`.
    #[serde(default)]
    pub pattern_type: AclPatternType,
}

/// Kinds of resources ACLs protect.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum AclResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster.
    Cluster,
    /// A transactional id.
    TransactionalId,
}

/// How an ACL's resource name matches.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AclPatternType {
    /// The name exactly (or `*`).
    #[default]
    Literal,
    /// Every name starting with it.
    Prefix,
}

/// Operations ACLs allow or deny, as Kafka names them.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum AclOperation {
    /// Every operation.
    All,
    /// Read.
    Read,
    /// Write.
    Write,
    /// Create.
    Create,
    /// Delete.
    Delete,
    /// Alter.
    Alter,
    /// Describe.
    Describe,
    /// Cluster actions (brokers').
    ClusterAction,
    /// DescribeConfigs.
    DescribeConfigs,
    /// AlterConfigs.
    AlterConfigs,
    /// IdempotentWrite.
    IdempotentWrite,
}

/// Allow or deny.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AclType {
    /// Allow.
    #[default]
    Allow,
    /// Deny: wins over allow.
    Deny,
}

/// A user's quotas, as Kafka's client quotas name them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserQuotas {
    /// Bytes per second the user may produce (`producer_byte_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub producer_byte_rate: Option<i64>,
    /// Bytes per second the user may fetch (`consumer_byte_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub consumer_byte_rate: Option<i64>,
    /// Percentage of one request handler's time (`request_percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub request_percentage: Option<i64>,
    /// Partitions per second the user may create or delete
    /// (`controller_mutation_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub controller_mutation_rate: Option<i64>,
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, with a reason when it is not.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The user's name in Kafka (its principal without `User:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Secret holding the user's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

//! Authorization: who may do what to which resource. [`binding`] is one ACL
//! and its wire codes, [`filter`] selects ACLs for DescribeAcls and
//! DeleteAcls, [`set`] is the ACLs in force (kept in the metadata image),
//! and [`authorizer`] decides a request the way Kafka's StandardAuthorizer
//! does. The handlers ask through `handlers::authorize`, which also writes
//! the audit line of every refusal; the controller listener asks for
//! CLUSTER_ACTION (`metadata::listener`).

pub mod authorizer;
pub mod binding;
pub mod filter;
pub mod set;

pub use authorizer::{Authorizer, Decision, Subject};
pub use binding::{AclBinding, Operation, PatternType, Permission, ResourceType};
pub use filter::AclFilter;
pub use set::AclSet;

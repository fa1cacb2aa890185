//! Client quotas (KIP-546): [`entity`] is who a quota is for and what it
//! may set, [`store`] the quotas in force as the metadata image keeps them.
//! AlterClientQuotas and DescribeClientQuotas (`handlers::quotas`) change
//! and list them.

pub mod entity;
pub mod store;

//! Client quotas (KIP-546): [`entity`] is who a quota is for and what it
//! may set, [`store`] the quotas in force as the metadata image keeps them,
//! [`rate`] a windowed rate and [`manager`] the throttling of produce and
//! fetch by those rates. AlterClientQuotas and DescribeClientQuotas
//! (`handlers::quotas`) change and list the quotas.

pub mod entity;
pub mod manager;
pub mod rate;
pub mod store;

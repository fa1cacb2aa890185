//! Client quotas (KIP-546): [`entity`] is who a quota is for and what it
//! may set, [`store`] the quotas in force as the metadata image keeps them,
//! [`rate`] a windowed rate and [`manager`] the throttling of produce,
//! fetch and request time by those rates; [`token_bucket`] measures
//! controller mutations, which [`mutation`] admits or refuses topic by
//! topic (KIP-599). AlterClientQuotas and DescribeClientQuotas
//! (`handlers::quotas`) change and list the quotas.

pub mod entity;
pub mod manager;
pub mod mutation;
pub mod rate;
pub mod store;
pub mod token_bucket;

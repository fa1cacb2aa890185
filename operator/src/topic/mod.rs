//! `KafkaTopic`: the plan (pure) and the reconcile pass that carries it out.

pub mod plan;
pub mod reconcile;

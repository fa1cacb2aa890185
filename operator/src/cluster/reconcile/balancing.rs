//! The reconcile pass's balancing step: what `rebalance` decides, done
//! with admin requests (sizes, throttles, reassignments, elections), told
//! in events and returned for status.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use rustls::ClientConfig;

use super::Pass;
use crate::admin::{Admin, AdminError};
use crate::cluster::balance::{self, Brokers};
use crate::cluster::rebalance::{self, Begin, FOLLOWER_REPLICAS, LEADER_REPLICAS, RATES};
use crate::cluster::trouble::Trouble;
use crate::cluster::view::KafkaView;
use crate::crd::cluster::{RebalanceSettings, RebalanceState, RebalanceStatus};
use crate::crd::validate::REPLICATION_PORT;
use crate::error::Error;

impl Pass<'_> {
    /// Balance: begin a rebalance when one is due, or carry its plan on by
    /// a batch. Returns the rebalance status to report. Only called with
    /// every broker of the spec running the current spec and nothing
    /// draining.
    /// `brokers` are the ids of the brokers the spec asks for.
    pub(super) async fn rebalance(
        &self,
        kafka: &KafkaView,
        brokers: &[i32],
        tls: &Arc<ClientConfig>,
        trouble: &mut Trouble,
    ) -> Result<Option<RebalanceStatus>, Error> {
        let settings = self.kc.spec.rebalance.clone().unwrap_or_default();
        let asked = rebalance::asked(self.kc.annotations());
        let previous = self.status.rebalance.clone();
        let count = brokers.len() as i32;
        let status = match rebalance::begin(previous.as_ref(), asked, count, &settings) {
            Begin::Idle(status) => return Ok(Some(status)),
            Begin::Continue => previous.unwrap_or_default(),
            Begin::Plan(reason) => {
                if let Some(why) = rebalance::not_yet(kafka, brokers) {
                    return Ok(previous.map(|s| RebalanceStatus { message: why, ..s }));
                }
                match self.plan_rebalance(kafka, brokers, tls, reason).await {
                    Ok(status) => status,
                    Err(e) => {
                        trouble.note("the rebalance plan", &e);
                        return Ok(previous);
                    }
                }
            }
        };
        match self
            .carry_on(status.clone(), kafka, brokers, tls, &settings)
            .await
        {
            Ok(next) => Ok(Some(next)),
            Err(e) => {
                trouble.note("the rebalance", &e);
                Ok(Some(status))
            }
        }
    }

    /// A plan from the cluster as it is, each partition sized by its
    /// largest replica, recorded and told.
    async fn plan_rebalance(
        &self,
        kafka: &KafkaView,
        brokers: &[i32],
        tls: &Arc<ClientConfig>,
        reason: String,
    ) -> Result<RebalanceStatus, AdminError> {
        let mut sizes: BTreeMap<(String, i32), u64> = BTreeMap::new();
        for &id in brokers {
            let address = format!("{}:{REPLICATION_PORT}", self.names.pod_host(id));
            let mut admin = Admin::connect(&address, tls).await?;
            for (partition, bytes) in admin.partition_sizes().await? {
                let size = sizes.entry(partition).or_default();
                *size = (*size).max(bytes);
            }
        }
        let racks: Brokers = brokers
            .iter()
            .map(|&b| (b, kafka.racks.get(&b).cloned()))
            .collect();
        let before = rebalance::placements(kafka, &sizes);
        let changes = balance::plan(&racks, &before);
        let now = format!("{:.0}", Timestamp::now());
        let count = brokers.len() as i32;
        let status = rebalance::recorded(reason.clone(), count, &before, &changes, &now);
        self.ctx
            .event(
                self.kc,
                false,
                "Rebalancing",
                format!(
                    "{reason}: planned {} partitions, {} bytes to copy",
                    status.planned, status.bytes
                ),
            )
            .await;
        Ok(status)
    }

    /// One pass of the plan in `status`: preferred leaders of finished
    /// moves elected, throttles of finished topics cleared, the next
    /// batch throttled and started; at the end the throttle rates go and
    /// the request annotation with them.
    async fn carry_on(
        &self,
        mut status: RebalanceStatus,
        kafka: &KafkaView,
        brokers: &[i32],
        tls: &Arc<ClientConfig>,
        settings: &RebalanceSettings,
    ) -> Result<RebalanceStatus, Error> {
        let batch = settings.max_concurrent_moves.max(1) as usize;
        let progress = rebalance::progress(&status.moves, kafka, batch);
        let bootstrap = self.names.admin_bootstrap(brokers.iter().copied());
        let mut admin = Admin::connect(&bootstrap, tls).await?;
        if !progress.finished.is_empty() {
            admin.elect_preferred(&progress.finished).await?;
        }
        let lists = [LEADER_REPLICAS.to_string(), FOLLOWER_REPLICAS.to_string()];
        for topic in rebalance::unthrottled(&progress) {
            admin
                .alter_topic_config(&topic, &BTreeMap::new(), &lists)
                .await?;
        }
        if !progress.start.is_empty() {
            let rate = settings.throttle_bytes_per_second.to_string();
            let rates = RATES
                .iter()
                .map(|k| (k.to_string(), rate.clone()))
                .collect();
            admin.alter_broker_defaults(&rates, &[]).await?;
            for (topic, lists) in rebalance::throttled_replicas(&progress.start, kafka) {
                admin.alter_topic_config(&topic, &lists, &[]).await?;
            }
            let moves: Vec<(String, i32, Vec<i32>)> = progress
                .start
                .iter()
                .map(|m| (m.topic.clone(), m.partition, m.replicas.clone()))
                .collect();
            admin.reassign(&moves).await?;
            self.ctx
                .event(self.kc, false, "Rebalancing", progress.message())
                .await;
        }
        status.done = status.planned - progress.remaining.len() as i32;
        status.message = progress.message();
        status.moves = progress.remaining.clone();
        if progress.complete() {
            let rates: Vec<String> = RATES.iter().map(|k| k.to_string()).collect();
            admin
                .alter_broker_defaults(&BTreeMap::new(), &rates)
                .await?;
            status.state = RebalanceState::Balanced;
            status.finished_at = Some(format!("{:.0}", Timestamp::now()));
            self.forget_request().await?;
            self.ctx
                .event(
                    self.kc,
                    false,
                    "Rebalanced",
                    format!(
                        "{}: {} partitions moved, {} bytes copied",
                        status.reason, status.planned, status.bytes
                    ),
                )
                .await;
        }
        Ok(status)
    }

    /// Removes the request annotation, if the cluster carries it.
    async fn forget_request(&self) -> Result<(), Error> {
        if self.kc.annotations().contains_key(rebalance::ANNOTATION) {
            self.clear_annotation(rebalance::ANNOTATION).await?;
        }
        Ok(())
    }
}

//! The operator's own Prometheus metrics: reconcile passes by kind and
//! outcome, their durations, passes under way, leadership, and each
//! cluster's health as its last pass saw it.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A kind of resource reconciled.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// A kind of resource and how a pass over it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PassLabels {
    kind: String,
    result: String,
}

/// One cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    namespace: String,
    cluster: String,
}

/// Every metric, registered.
pub struct Metrics {
    registry: Registry,
    passes: Family<PassLabels, Counter>,
    durations: Family<KindLabels, Histogram>,
    in_flight: Family<KindLabels, Gauge>,
    leader: Gauge,
    ready_brokers: Family<ClusterLabels, Gauge>,
    degraded: Family<ClusterLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gregor_operator");
        let passes = Family::<PassLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconcile passes, by kind of resource and result (ok, error)",
            passes.clone(),
        );
        let durations = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "reconcile_duration_seconds",
            "How long reconcile passes take, by kind of resource",
            durations.clone(),
        );
        let in_flight = Family::<KindLabels, Gauge>::default();
        registry.register(
            "reconciles_in_flight",
            "Reconcile passes under way, by kind of resource",
            in_flight.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease and runs the controllers",
            leader.clone(),
        );
        let ready_brokers = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "cluster_ready_brokers",
            "Ready brokers of each cluster, as its last pass saw them",
            ready_brokers.clone(),
        );
        let degraded = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "cluster_degraded",
            "1 while a cluster's Degraded condition is true",
            degraded.clone(),
        );
        Metrics {
            registry,
            passes,
            durations,
            in_flight,
            leader,
            ready_brokers,
            degraded,
        }
    }
}

impl Metrics {
    /// A pass over a `kind` starts; call [`Metrics::pass_ended`] when it ends.
    pub fn pass_started(&self, kind: &str) {
        self.in_flight.get_or_create(&kind_labels(kind)).inc();
    }

    /// A pass over a `kind` ended after `took`, `ok` or not.
    pub fn pass_ended(&self, kind: &str, ok: bool, took: Duration) {
        let labels = kind_labels(kind);
        self.in_flight.get_or_create(&labels).dec();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        let result = if ok { "ok" } else { "error" };
        self.passes
            .get_or_create(&PassLabels {
                kind: kind.into(),
                result: result.into(),
            })
            .inc();
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Cluster `namespace/cluster` as its pass saw it.
    pub fn cluster_health(&self, namespace: &str, cluster: &str, ready: i32, degraded: bool) {
        let labels = ClusterLabels {
            namespace: namespace.into(),
            cluster: cluster.into(),
        };
        self.ready_brokers
            .get_or_create(&labels)
            .set(i64::from(ready));
        self.degraded
            .get_or_create(&labels)
            .set(i64::from(degraded));
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn kind_labels(kind: &str) -> KindLabels {
    KindLabels { kind: kind.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_and_health_are_exposed() {
        let m = Metrics::default();
        m.pass_started("KafkaCluster");
        m.pass_ended("KafkaCluster", false, Duration::from_millis(20));
        m.set_leader(true);
        m.cluster_health("kafka", "demo", 3, false);
        let text = m.render();
        for line in [
            "gregor_operator_reconciles_total{kind=\"KafkaCluster\",result=\"error\"} 1",
            "gregor_operator_reconciles_in_flight{kind=\"KafkaCluster\"} 0",
            "gregor_operator_reconcile_duration_seconds_count{kind=\"KafkaCluster\"} 1",
            "gregor_operator_leader 1",
            "gregor_operator_cluster_ready_brokers{namespace=\"kafka\",cluster=\"demo\"} 3",
            "gregor_operator_cluster_degraded{namespace=\"kafka\",cluster=\"demo\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}

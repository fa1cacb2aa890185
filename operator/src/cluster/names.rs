//! Names and labels of everything a `KafkaCluster` owns, in one place so
//! the builders, the reconciler and the tests agree.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::validate::REPLICATION_PORT;

/// Label every owned object carries with its cluster's name.
pub const CLUSTER_LABEL: &str = "gregor.dev/cluster";
/// Field manager of the operator's server-side applies.
pub const FIELD_MANAGER: &str = "gregor-operator";

/// The pool of a cluster without node pools: its one StatefulSet is
/// named after it.
pub const SOLE_POOL: &str = "broker";
/// How many node ids each pool has: pool blocks start at multiples of it.
pub const ID_BLOCK: i32 = 1000;

/// Names for one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The `KafkaCluster`'s name.
    pub cluster: String,
    /// Its namespace.
    pub namespace: String,
    /// Each pool's name and first node id: the pool whose block of
    /// [`ID_BLOCK`] ids holds a node's id names its pod.
    pools: Vec<(String, i32)>,
}

impl Names {
    /// Names for cluster `cluster` in `namespace`, without node pools:
    /// every node is a pod of the StatefulSet `<cluster>-broker`.
    pub fn new(cluster: &str, namespace: &str) -> Self {
        Self {
            cluster: cluster.into(),
            namespace: namespace.into(),
            pools: vec![(SOLE_POOL.into(), 0)],
        }
    }

    /// The same names for a cluster whose nodes are in `pools` (name,
    /// first node id).
    pub fn with_pools(mut self, pools: Vec<(String, i32)>) -> Self {
        self.pools = pools;
        self
    }

    /// The StatefulSet of a cluster without node pools, whose name its
    /// PodDisruptionBudget and NetworkPolicy carry with or without pools.
    pub fn statefulset(&self) -> String {
        self.pool_statefulset(SOLE_POOL)
    }

    /// The StatefulSet of node pool `pool`.
    pub fn pool_statefulset(&self, pool: &str) -> String {
        format!("{}-{pool}", self.cluster)
    }

    /// The pool holding node `id`.
    fn pool_of(&self, id: i32) -> &str {
        self.pools
            .iter()
            .find(|(_, first)| (*first..first.saturating_add(ID_BLOCK)).contains(&id))
            .map_or(SOLE_POOL, |(name, _)| name.as_str())
    }

    /// Pod of node `id`: its pool's StatefulSet's pod whose ordinal is the
    /// id.
    pub fn pod(&self, id: i32) -> String {
        format!("{}-{id}", self.pool_statefulset(self.pool_of(id)))
    }

    /// The claim of broker `id` made from claim template `template`, as
    /// the StatefulSet controller names it.
    pub fn claim(&self, template: &str, id: i32) -> String {
        format!("{template}-{}", self.pod(id))
    }

    /// The headless Service giving each pod a DNS name.
    pub fn headless(&self) -> String {
        format!("{}-brokers", self.cluster)
    }

    /// DNS name of broker `id`'s pod.
    pub fn pod_host(&self, id: i32) -> String {
        format!(
            "{}.{}.{}.svc",
            self.pod(id),
            self.headless(),
            self.namespace
        )
    }

    /// The Service clients of `listener` bootstrap from.
    pub fn bootstrap(&self, listener: &str) -> String {
        format!("{}-{listener}-bootstrap", self.cluster)
    }

    /// DNS name of the bootstrap Service of `listener`.
    pub fn bootstrap_host(&self, listener: &str) -> String {
        format!("{}.{}.svc", self.bootstrap(listener), self.namespace)
    }

    /// Broker `id`'s own Service on external listener `listener`.
    pub fn broker_service(&self, id: i32, listener: &str) -> String {
        format!("{}-{listener}", self.pod(id))
    }

    /// The ConfigMap of broker configuration files.
    pub fn configmap(&self) -> String {
        format!("{}-config", self.cluster)
    }

    /// Key of broker `id`'s properties file in the ConfigMap.
    pub fn config_key(&self, id: i32) -> String {
        format!("{}.properties", self.pod(id))
    }

    /// The Secret of authority `which` (`cluster` or `clients`): its
    /// certificate and private key.
    pub fn ca(&self, which: &str) -> String {
        format!("{}-{which}-ca", self.cluster)
    }

    /// The Secret of authority `which`'s trust bundle, for brokers and
    /// clients.
    pub fn ca_cert(&self, which: &str) -> String {
        format!("{}-{which}-ca-cert", self.cluster)
    }

    /// The Secret of the brokers' certificates and keys.
    pub fn broker_certs(&self) -> String {
        format!("{}-broker-certs", self.cluster)
    }

    /// The Secret of the operator's own certificate for this cluster.
    pub fn operator_certs(&self) -> String {
        format!("{}-operator-certs", self.cluster)
    }

    /// Every name broker `id` is reached by inside Kubernetes: its pod's
    /// DNS names, the bootstrap Services of the client listeners and its
    /// own Services on the external ones, each in its short and long
    /// forms.
    pub fn broker_dns_names(&self, id: i32, listeners: &[(String, bool)]) -> Vec<String> {
        let mut services = vec![format!("{}.{}", self.pod(id), self.headless())];
        for (listener, external) in listeners {
            services.push(self.bootstrap(listener));
            if *external {
                services.push(self.broker_service(id, listener));
            }
        }
        let ns = &self.namespace;
        services
            .into_iter()
            .flat_map(|s| {
                [
                    format!("{s}.{ns}.svc.cluster.local"),
                    format!("{s}.{ns}.svc"),
                    format!("{s}.{ns}"),
                    s,
                ]
            })
            .collect()
    }

    /// Metadata of an owned object: its name, the cluster's namespace and
    /// labels, and the `KafkaCluster` as controlling owner.
    pub fn meta(&self, name: String, owner: &OwnerReference) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        }
    }

    /// `bootstrap.servers` for the operator's admin requests: the
    /// replication listeners of brokers `ids`, there whatever client
    /// listeners the spec has.
    pub fn admin_bootstrap(&self, ids: impl IntoIterator<Item = i32>) -> String {
        ids.into_iter()
            .map(|id| format!("{}:{REPLICATION_PORT}", self.pod_host(id)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Labels of every object of the cluster.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "gregor".into()),
            ("app.kubernetes.io/instance".into(), self.cluster.clone()),
            ("app.kubernetes.io/managed-by".into(), FIELD_MANAGER.into()),
            (CLUSTER_LABEL.into(), self.cluster.clone()),
        ])
    }

    /// Labels that select the cluster's pods, of every pool.
    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (CLUSTER_LABEL.into(), self.cluster.clone()),
            ("app.kubernetes.io/component".into(), "broker".into()),
        ])
    }

    /// Labels selecting broker `id`'s pod alone.
    pub fn pod_selector(&self, id: i32) -> BTreeMap<String, String> {
        BTreeMap::from([("statefulset.kubernetes.io/pod-name".into(), self.pod(id))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = Names::new("orders", "prod");
        assert_eq!(n.pod(2), "orders-broker-2");
        assert_eq!(n.pod_host(0), "orders-broker-0.orders-brokers.prod.svc");
        assert_eq!(n.bootstrap_host("plain"), "orders-plain-bootstrap.prod.svc");
        assert_eq!(n.broker_service(1, "external"), "orders-broker-1-external");
        assert_eq!(n.config_key(1), "orders-broker-1.properties");
        assert_eq!(n.ca("clients"), "orders-clients-ca");
        assert_eq!(n.ca_cert("cluster"), "orders-cluster-ca-cert");
        assert_eq!(
            n.admin_bootstrap(0..2),
            format!("{}:9091,{}:9091", n.pod_host(0), n.pod_host(1))
        );
        let pooled = n
            .clone()
            .with_pools(vec![("voters".into(), 0), ("big".into(), 1000)]);
        assert_eq!(pooled.pod(2), "orders-voters-2");
        assert_eq!(pooled.pod(1003), "orders-big-1003");
        assert_eq!(pooled.claim("data-1", 1003), "data-1-orders-big-1003");
        assert_eq!(
            pooled.pod_host(1003),
            "orders-big-1003.orders-brokers.prod.svc"
        );
        assert_eq!(pooled.pool_statefulset("big"), "orders-big");
        let dns = n.broker_dns_names(1, &[("plain".into(), false), ("ext".into(), true)]);
        assert!(dns.contains(&n.pod_host(1)), "{dns:?}");
        for want in [
            "orders-broker-1.orders-brokers",
            "orders-plain-bootstrap.prod.svc.cluster.local",
            "orders-ext-bootstrap",
            "orders-broker-1-ext.prod",
        ] {
            assert!(dns.iter().any(|d| d == want), "{want} in {dns:?}");
        }
        assert!(
            !dns.iter().any(|d| d.starts_with("orders-broker-1-plain")),
            "{dns:?}"
        );
    }
}

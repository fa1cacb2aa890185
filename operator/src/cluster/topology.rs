//! Which nodes a cluster has, what each does and which StatefulSet runs
//! it. A cluster without node pools is one pool, `broker`, of `replicas`
//! nodes whose lowest `controllers` are also voters (combined mode), so
//! that such clusters keep the objects they always had. A cluster with
//! node pools (annotation [`NODE_POOLS`]) has one pool per
//! `KafkaNodePool`, each with its own block of [`ID_BLOCK`] node ids, its
//! StatefulSet's start ordinal: pod ordinals are node ids.
//!
//! Blocks are handed out once: recorded in the cluster's status (and in
//! each StatefulSet, for a status that was lost), a new pool takes the
//! block after the highest ever recorded, controller pools first, then
//! by name.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::crd::cluster::{KafkaClusterSpec, NodePoolRecord, PodTemplate, Storage};
use crate::crd::node_pool::{KafkaNodePoolSpec, NodeRole};
use crate::crd::validate::default_controllers;
use crate::crd::{Invalid, KafkaCluster};
use kube::ResourceExt;

use super::names::{Names, ID_BLOCK, SOLE_POOL};
use super::{storage, volumes};

/// Annotation of a `KafkaCluster` whose nodes are `KafkaNodePool`s
/// (Strimzi's `strimzi.io/node-pools: enabled`).
pub const NODE_POOLS: &str = "gregor.dev/node-pools";
/// Label of a pooled cluster's pods with their pool's name.
pub const POOL_LABEL: &str = "gregor.dev/pool";
/// Label of a pooled cluster's pods: `"true"` on brokers.
pub const BROKER_ROLE_LABEL: &str = "gregor.dev/broker-role";
/// Label of a pooled cluster's pods: `"true"` on controllers.
pub const CONTROLLER_ROLE_LABEL: &str = "gregor.dev/controller-role";
/// Most voters a quorum may have.
const MAX_VOTERS: usize = 9;
/// Longest pod name: it is the pod's host name, a DNS label.
const MAX_POD_NAME: usize = 63;

/// Whether a cluster's `annotations` ask for node pools.
pub fn pools_enabled(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(NODE_POOLS)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("enabled"))
}

/// One pool as the operator runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Its name (`broker` without node pools).
    pub name: String,
    /// Id of its first node, its StatefulSet's start ordinal.
    pub first_id: i32,
    /// Nodes the spec asks for (0 for a pool whose `KafkaNodePool` is
    /// gone while its StatefulSet is still there).
    pub desired: i32,
    /// Nodes its StatefulSet has as found (0 when there is none).
    pub current: i32,
    /// Its nodes hold partitions and serve clients.
    pub broker: bool,
    /// Its nodes are all voters (a pool with the `controller` role).
    pub controller: bool,
    /// Its `KafkaNodePool` is gone: its brokers are drained and its
    /// StatefulSet scaled to nothing.
    pub removed: bool,
    /// Its nodes' storage.
    pub storage: Storage,
    /// Its nodes' container resources.
    pub resources: Option<ResourceRequirements>,
    /// Its pods' extra settings.
    pub template: Option<PodTemplate>,
}

impl Pool {
    /// Nodes that run now or go only once drained.
    pub fn running(&self) -> i32 {
        self.desired.max(self.current)
    }

    /// Ids of its first `count` nodes.
    pub fn ids(&self, count: i32) -> impl Iterator<Item = i32> {
        self.first_id..self.first_id + count
    }

    /// Its roles, as a `KafkaNodePool` names them.
    pub fn roles(&self) -> Vec<NodeRole> {
        let mut roles = Vec::new();
        if self.controller {
            roles.push(NodeRole::Controller);
        }
        if self.broker {
            roles.push(NodeRole::Broker);
        }
        roles
    }
}

/// A cluster's pools and its quorum.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The pools, in block order.
    pub pools: Vec<Pool>,
    /// Ids of the metadata quorum's voters.
    pub voters: Vec<i32>,
    /// Whether these are node pools: their pods carry pool and role
    /// labels, and their StatefulSets select by pool. Without them the
    /// one StatefulSet and its pods keep the labels they always had.
    pub pooled: bool,
}

impl Topology {
    /// A cluster without node pools: `replicas` brokers, the lowest
    /// `controllers` also voters; its StatefulSet has `current` pods.
    pub fn single(spec: &KafkaClusterSpec, controllers: i32, current: i32) -> Self {
        let replicas = spec.replicas.unwrap_or_default();
        Self {
            pools: vec![Pool {
                name: SOLE_POOL.into(),
                first_id: 0,
                desired: replicas,
                current,
                broker: true,
                controller: false,
                removed: false,
                storage: spec.storage.clone(),
                resources: spec.resources.clone(),
                template: spec.template.clone(),
            }],
            voters: (0..controllers).collect(),
            pooled: false,
        }
    }

    /// Cluster `cluster` with node pools: the `KafkaNodePool`s `pools` (name,
    /// spec), the pools `recorded` in its status, and the StatefulSets
    /// `found` (pool name to start ordinal and replicas). A pool whose
    /// resource is gone stays while its StatefulSet is there, asking for
    /// no nodes. The spec's problems (about pools and the quorum) are
    /// refused.
    pub fn pooled(
        cluster: &str,
        spec: &KafkaClusterSpec,
        pools: &[(String, KafkaNodePoolSpec)],
        recorded: &[NodePoolRecord],
        found: &BTreeMap<String, (i32, i32)>,
    ) -> Result<Self, Invalid> {
        let mut problems = Vec::new();
        let wanted: BTreeMap<&str, &KafkaNodePoolSpec> =
            pools.iter().map(|(n, s)| (n.as_str(), s)).collect();
        let record = |name: &str| recorded.iter().find(|r| r.name == name);
        let mut names: BTreeSet<&str> = wanted.keys().copied().collect();
        names.extend(found.keys().map(String::as_str));

        // Blocks: recorded, else the StatefulSet's, else the next free.
        let mut first: BTreeMap<&str, i32> = BTreeMap::new();
        for name in &names {
            let known = record(name)
                .map(|r| r.first_node_id)
                .or_else(|| found.get(*name).map(|(start, _)| *start));
            if let Some(id) = known {
                first.insert(name, id);
            }
        }
        let mut next = recorded
            .iter()
            .map(|r| r.first_node_id)
            .chain(first.values().copied())
            .max()
            .map_or(0, |highest| highest + ID_BLOCK);
        let mut new: Vec<(&str, &KafkaNodePoolSpec)> = wanted
            .iter()
            .filter(|(name, _)| !first.contains_key(*name))
            .map(|(name, s)| (*name, *s))
            .collect();
        new.sort_by_key(|(name, s)| (!s.roles.contains(&NodeRole::Controller), *name));
        for (name, _) in new {
            first.insert(name, next);
            next += ID_BLOCK;
        }

        let mut out = Vec::new();
        for name in names {
            let start = first.get(name).copied().unwrap_or_default();
            let current = found.get(name).map_or(0, |(_, replicas)| *replicas);
            let pool = match wanted.get(name) {
                Some(s) => Pool {
                    name: name.into(),
                    first_id: start,
                    desired: s.replicas,
                    current,
                    broker: s.roles.contains(&NodeRole::Broker),
                    controller: s.roles.contains(&NodeRole::Controller),
                    removed: false,
                    storage: s.storage.clone().unwrap_or_else(|| spec.storage.clone()),
                    resources: s.resources.clone().or_else(|| spec.resources.clone()),
                    template: s.template.clone().or_else(|| spec.template.clone()),
                },
                // Gone: drained and scaled to nothing. The StatefulSet
                // stays (the operator deletes none; it goes with the
                // cluster), and so does the pool's block of ids.
                None => {
                    let roles = record(name).map(|r| r.roles.clone()).unwrap_or_default();
                    Pool {
                        name: name.into(),
                        first_id: start,
                        desired: 0,
                        current,
                        broker: !roles.contains(&NodeRole::Controller)
                            || roles.contains(&NodeRole::Broker),
                        controller: roles.contains(&NodeRole::Controller),
                        removed: true,
                        // Its StatefulSet's, once that is read (see
                        // `keep_running_storage`).
                        storage: spec.storage.clone(),
                        resources: spec.resources.clone(),
                        template: spec.template.clone(),
                    }
                }
            };
            check_pool(
                cluster,
                &pool,
                record(name),
                wanted.get(name),
                &mut problems,
            );
            out.push(pool);
        }
        out.sort_by_key(|p| p.first_id);
        let voters: Vec<i32> = out
            .iter()
            .filter(|p| p.controller)
            .flat_map(|p| p.ids(p.desired))
            .collect();
        let topology = Self {
            pools: out,
            voters,
            pooled: true,
        };
        topology.check(spec, recorded, &mut problems);
        match problems.is_empty() {
            true => Ok(topology),
            false => Err(Invalid { problems }),
        }
    }

    /// The quorum and the brokers of the whole cluster.
    fn check(
        &self,
        spec: &KafkaClusterSpec,
        recorded: &[NodePoolRecord],
        problems: &mut Vec<String>,
    ) {
        if self.voters.is_empty() || self.voters.len() > MAX_VOTERS {
            problems.push(format!(
                "node pools: the pools with the controller role have {} nodes; the metadata quorum needs 1 to {MAX_VOTERS} (3 or 5 is usual)",
                self.voters.len()
            ));
        }
        let was: Vec<i32> = recorded
            .iter()
            .filter(|r| r.roles.contains(&NodeRole::Controller))
            .flat_map(|r| r.node_ids.iter().copied())
            .collect();
        if !was.is_empty() && was != self.voters {
            problems.push(format!(
                "node pools: the metadata quorum is nodes {was:?} and cannot change to {:?}; controller pools keep their size",
                self.voters
            ));
        }
        let brokers = self.brokers(Size::Desired).len() as i32;
        if brokers == 0 {
            problems.push("node pools: no pool has brokers".into());
        }
        if let Some(m) = spec.min_insync_replicas {
            if m > brokers {
                problems.push(format!(
                    "minInsyncReplicas: {m} is more than the {brokers} brokers"
                ));
            }
        }
    }

    /// The names of this cluster's objects, `cluster` in `namespace`.
    pub fn names(&self, cluster: &str, namespace: &str) -> Names {
        let names = Names::new(cluster, namespace);
        match self.pooled {
            true => names.with_pools(
                self.pools
                    .iter()
                    .map(|p| (p.name.clone(), p.first_id))
                    .collect(),
            ),
            false => names,
        }
    }

    /// Keeps each pool on the storage its running StatefulSet (in
    /// `found`, by pool name) was made with when the pool's spec asks for
    /// another kind of storage or another set of volumes, which no
    /// StatefulSet can take (see [`storage::kept`]): the rest of the spec
    /// is applied over it. Returns what was refused, as (what, why) for
    /// the status. A removed pool takes its StatefulSet's storage, sizes
    /// included, without a word.
    pub fn keep_running_storage(
        &mut self,
        found: &BTreeMap<String, StatefulSet>,
    ) -> Vec<(String, String)> {
        let mut refused = Vec::new();
        for pool in &mut self.pools {
            let current = found.get(&pool.name);
            if pool.removed {
                // Nothing asks for anything of its claims any more.
                if let Some(sts) = current {
                    pool.storage = storage::running_storage(sts, &pool.storage);
                }
                continue;
            }
            if let Some((running, why)) = storage::kept(current, &pool.storage) {
                pool.storage = running;
                refused.push((pool.name.clone(), why));
            }
        }
        refused
            .into_iter()
            .map(|(name, why)| (self.storage_change_of(&name), why))
            .collect()
    }

    /// What a refused storage change of `pool` is called in status: the
    /// cluster's without node pools, the pool's with them.
    pub fn storage_change(&self, pool: &Pool) -> String {
        self.storage_change_of(&pool.name)
    }

    fn storage_change_of(&self, pool: &str) -> String {
        match self.pooled {
            true => format!("the storage change of pool {pool}"),
            false => "the storage change".into(),
        }
    }

    /// Every node's id, of `size`.
    pub fn ids(&self, size: Size) -> Vec<i32> {
        self.pools.iter().flat_map(|p| p.ids(size.of(p))).collect()
    }

    /// Ids of the brokers, of `size`.
    pub fn brokers(&self, size: Size) -> Vec<i32> {
        self.pools
            .iter()
            .filter(|p| p.broker)
            .flat_map(|p| p.ids(size.of(p)))
            .collect()
    }

    /// The pool of node `id`.
    pub fn pool_of(&self, id: i32) -> Option<&Pool> {
        self.pools
            .iter()
            .find(|p| (p.first_id..p.first_id + ID_BLOCK).contains(&id))
    }

    /// Whether node `id` is a broker.
    pub fn is_broker(&self, id: i32) -> bool {
        self.pool_of(id).is_some_and(|p| p.broker)
    }

    /// Whether node `id` votes in the metadata quorum.
    pub fn is_voter(&self, id: i32) -> bool {
        self.voters.contains(&id)
    }

    /// The brokers the cluster is sized by (`min.insync.replicas`'
    /// default): those the spec asks for.
    pub fn broker_count(&self) -> i32 {
        self.brokers(Size::Desired).len() as i32
    }

    /// Labels of pool `pool`'s pods, beside the cluster's: none without
    /// node pools; else its name and roles.
    pub fn pool_labels(&self, pool: &Pool) -> BTreeMap<String, String> {
        if !self.pooled {
            return BTreeMap::new();
        }
        BTreeMap::from([
            (POOL_LABEL.into(), pool.name.clone()),
            (BROKER_ROLE_LABEL.into(), pool.broker.to_string()),
            (CONTROLLER_ROLE_LABEL.into(), pool.controller.to_string()),
        ])
    }

    /// The selector of pool `pool`'s pods: the cluster's, and its name
    /// with node pools.
    pub fn pool_selector(&self, names: &Names, pool: &Pool) -> BTreeMap<String, String> {
        let mut selector = names.selector();
        if self.pooled {
            selector.insert(POOL_LABEL.into(), pool.name.clone());
        }
        selector
    }

    /// The selector of the pods that serve clients: every pod without node
    /// pools, the brokers with them.
    pub fn broker_selector(&self, names: &Names) -> BTreeMap<String, String> {
        let mut selector = names.selector();
        if self.pooled {
            selector.insert(BROKER_ROLE_LABEL.into(), "true".into());
        }
        selector
    }

    /// What the status records of the pools: each one's block, roles and
    /// running nodes with how many are ready (`ready` ids), after the
    /// records of pools gone for good.
    pub fn records(
        &self,
        previous: &[NodePoolRecord],
        ready: &BTreeSet<i32>,
    ) -> Vec<NodePoolRecord> {
        if !self.pooled {
            return Vec::new();
        }
        let mut out: Vec<NodePoolRecord> = previous
            .iter()
            .filter(|r| !self.pools.iter().any(|p| p.name == r.name))
            .map(|r| NodePoolRecord {
                node_ids: Vec::new(),
                ready: 0,
                ..r.clone()
            })
            .collect();
        out.extend(self.pools.iter().map(|p| {
            let ids: Vec<i32> = p.ids(p.running()).collect();
            NodePoolRecord {
                name: p.name.clone(),
                first_node_id: p.first_id,
                roles: p.roles(),
                ready: ids.iter().filter(|id| ready.contains(id)).count() as i32,
                node_ids: ids,
            }
        }));
        out.sort_by_key(|r| r.first_node_id);
        out
    }
}

/// Which of a pool's nodes count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Those the spec asks for.
    Desired,
    /// Those their StatefulSets have.
    Current,
    /// Those that run, with those being drained before they go.
    Running,
}

impl Size {
    fn of(self, pool: &Pool) -> i32 {
        match self {
            Self::Desired => pool.desired,
            Self::Current => pool.current,
            Self::Running => pool.running(),
        }
    }
}

/// `bootstrap.servers` for admin requests to cluster `kc` in `namespace`
/// from outside its reconcile pass (topics, users): the brokers its status
/// records with node pools, else its `replicas` brokers.
pub fn admin_bootstrap(kc: &KafkaCluster, namespace: &str) -> String {
    let names = Names::new(&kc.name_any(), namespace);
    let records = kc
        .status
        .as_ref()
        .map(|s| s.node_pools.as_slice())
        .unwrap_or_default();
    if !pools_enabled(kc.annotations()) {
        return names.admin_bootstrap(0..kc.spec.replicas.unwrap_or_default());
    }
    let blocks = records
        .iter()
        .map(|r| (r.name.clone(), r.first_node_id))
        .collect();
    let brokers: Vec<i32> = records
        .iter()
        .filter(|r| r.roles.contains(&NodeRole::Broker))
        .flat_map(|r| r.node_ids.iter().copied())
        .collect();
    names.with_pools(blocks).admin_bootstrap(brokers)
}

/// The quorum size of a cluster without node pools: as recorded when it
/// was made, else the spec's, else the default for its size.
pub fn single_controllers(spec: &KafkaClusterSpec, recorded: Option<i32>) -> i32 {
    recorded
        .or(spec.controllers)
        .unwrap_or(default_controllers(spec.replicas.unwrap_or_default()))
}

/// A pool's own problems: its name makes pod names too long or is not a
/// DNS label, its roles changed, it has no role, its storage is
/// malformed.
fn check_pool(
    cluster: &str,
    pool: &Pool,
    record: Option<&NodePoolRecord>,
    spec: Option<&&KafkaNodePoolSpec>,
    problems: &mut Vec<String>,
) {
    let at = format!("KafkaNodePool {}", pool.name);
    let label = !pool.name.is_empty()
        && pool
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !pool.name.starts_with('-')
        && !pool.name.ends_with('-');
    if !label {
        problems.push(format!(
            "{at}: the name must be lowercase letters, digits and '-'"
        ));
    }
    if let Some(spec) = spec {
        if let Some(storage) = &spec.storage {
            let mut found = Vec::new();
            volumes::check(storage, &mut found);
            problems.extend(found.into_iter().map(|p| format!("{at}: {p}")));
        }
        if spec.roles.is_empty() {
            problems.push(format!("{at}: roles: needs controller, broker or both"));
        }
        let roles: BTreeSet<NodeRole> = spec.roles.iter().copied().collect();
        if let Some(r) = record {
            let was: BTreeSet<NodeRole> = r.roles.iter().copied().collect();
            if was != roles {
                problems.push(format!(
                    "{at}: roles: the pool was made with {:?} and cannot change to {:?}",
                    r.roles, spec.roles
                ));
            }
        }
    }
    let longest = format!("{cluster}-{}-{}", pool.name, pool.first_id + ID_BLOCK - 1);
    if longest.len() > MAX_POD_NAME {
        problems.push(format!(
            "{at}: the name is too long: its pods' names, such as {longest}, must fit in {MAX_POD_NAME} characters"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> KafkaClusterSpec {
        serde_json::from_value(json!({
            "listeners": [{"name": "plain", "port": 9092, "type": "internal"}],
            "storage": {"type": "persistent-claim", "size": "20Gi"},
        }))
        .expect("valid spec")
    }

    fn pool(replicas: i32, roles: &[&str]) -> KafkaNodePoolSpec {
        serde_json::from_value(json!({"replicas": replicas, "roles": roles})).expect("valid pool")
    }

    fn record(name: &str, first: i32, roles: &[NodeRole], ids: &[i32]) -> NodePoolRecord {
        NodePoolRecord {
            name: name.into(),
            first_node_id: first,
            roles: roles.to_vec(),
            node_ids: ids.to_vec(),
            ready: 0,
        }
    }

    /// A pool's name, first id, desired and current size.
    type PoolShape<'a> = (&'a str, i32, i32, i32);

    /// Each pool's shape and the voters.
    fn shape(t: &Topology) -> (Vec<PoolShape<'_>>, Vec<i32>) {
        let pools = t
            .pools
            .iter()
            .map(|p| (p.name.as_str(), p.first_id, p.desired, p.current))
            .collect();
        (pools, t.voters.clone())
    }

    #[test]
    fn pools_get_blocks_of_ids_once() {
        use NodeRole::{Broker, Controller};
        let three = [0, 1, 2];
        struct Case {
            name: &'static str,
            pools: Vec<(&'static str, KafkaNodePoolSpec)>,
            recorded: Vec<NodePoolRecord>,
            found: Vec<(&'static str, (i32, i32))>,
            want: Vec<(&'static str, i32, i32, i32)>,
            voters: Vec<i32>,
        }
        let cases = [
            Case {
                name: "a new cluster: controllers first, then by name",
                pools: vec![
                    ("brokers", pool(3, &["broker"])),
                    ("voters", pool(3, &["controller"])),
                    ("archive", pool(2, &["broker"])),
                ],
                recorded: vec![],
                found: vec![],
                want: vec![
                    ("voters", 0, 3, 0),
                    ("archive", 1000, 2, 0),
                    ("brokers", 2000, 3, 0),
                ],
                voters: vec![0, 1, 2],
            },
            Case {
                name: "a pool scaled up keeps its block, the others their sizes",
                pools: vec![
                    ("voters", pool(3, &["controller"])),
                    ("brokers", pool(5, &["broker"])),
                ],
                recorded: vec![
                    record("voters", 0, &[Controller], &three),
                    record("brokers", 1000, &[Broker], &[1000, 1001, 1002]),
                ],
                found: vec![("voters", (0, 3)), ("brokers", (1000, 3))],
                want: vec![("voters", 0, 3, 3), ("brokers", 1000, 5, 3)],
                voters: vec![0, 1, 2],
            },
            Case {
                name: "a pool added after one was removed takes a new block",
                pools: vec![
                    ("voters", pool(3, &["controller"])),
                    ("fast", pool(2, &["broker"])),
                ],
                recorded: vec![
                    record("voters", 0, &[Controller], &three),
                    record("old", 1000, &[Broker], &[]),
                ],
                found: vec![("voters", (0, 3))],
                want: vec![("voters", 0, 3, 3), ("fast", 2000, 2, 0)],
                voters: vec![0, 1, 2],
            },
            Case {
                name: "a removed pool's StatefulSet stays, asking for none",
                pools: vec![
                    ("voters", pool(3, &["controller"])),
                    ("new", pool(3, &["broker"])),
                ],
                recorded: vec![
                    record("voters", 0, &[Controller], &three),
                    record("old", 1000, &[Broker], &[1000, 1001]),
                ],
                found: vec![("voters", (0, 3)), ("old", (1000, 2))],
                want: vec![
                    ("voters", 0, 3, 3),
                    ("old", 1000, 0, 2),
                    ("new", 2000, 3, 0),
                ],
                voters: vec![0, 1, 2],
            },
            Case {
                name: "a lost status: the StatefulSets' start ordinals count",
                pools: vec![
                    ("voters", pool(3, &["controller"])),
                    ("brokers", pool(3, &["broker"])),
                    ("more", pool(1, &["broker"])),
                ],
                recorded: vec![],
                found: vec![("voters", (0, 3)), ("brokers", (1000, 3))],
                want: vec![
                    ("voters", 0, 3, 3),
                    ("brokers", 1000, 3, 3),
                    ("more", 2000, 1, 0),
                ],
                voters: vec![0, 1, 2],
            },
            Case {
                name: "combined nodes in one pool",
                pools: vec![("all", pool(3, &["controller", "broker"]))],
                recorded: vec![],
                found: vec![],
                want: vec![("all", 0, 3, 0)],
                voters: vec![0, 1, 2],
            },
        ];
        for case in cases {
            let pools: Vec<(String, KafkaNodePoolSpec)> = case
                .pools
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect();
            let found = case
                .found
                .into_iter()
                .map(|(n, f)| (n.to_string(), f))
                .collect();
            let got = Topology::pooled("demo", &spec(), &pools, &case.recorded, &found)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(shape(&got), (case.want, case.voters), "{}", case.name);
        }
    }

    #[test]
    fn what_pools_cannot_be() {
        use NodeRole::{Broker, Controller};
        let voters = record("voters", 0, &[Controller], &[0, 1, 2]);
        let cases = [
            (
                "no controllers",
                vec![("brokers", pool(3, &["broker"]))],
                vec![],
                "the metadata quorum needs 1 to 9",
            ),
            (
                "no brokers",
                vec![("voters", pool(3, &["controller"]))],
                vec![],
                "no pool has brokers",
            ),
            (
                "the quorum resized",
                vec![
                    ("voters", pool(5, &["controller"])),
                    ("brokers", pool(3, &["broker"])),
                ],
                vec![voters.clone()],
                "the metadata quorum is nodes [0, 1, 2] and cannot change to [0, 1, 2, 3, 4]",
            ),
            (
                "a pool's roles changed",
                vec![
                    ("voters", pool(3, &["controller"])),
                    ("brokers", pool(3, &["broker", "controller"])),
                ],
                vec![voters.clone(), record("brokers", 1000, &[Broker], &[1000])],
                "roles: the pool was made with [Broker]",
            ),
            (
                "a pool's malformed storage",
                vec![
                    ("voters", pool(3, &["controller"])),
                    (
                        "brokers",
                        serde_json::from_value(json!({"replicas": 3, "roles": ["broker"],
                            "storage": {"type": "jbod", "volumes": []}}))
                        .expect("valid pool"),
                    ),
                ],
                vec![],
                "KafkaNodePool brokers: storage.volumes: jbod storage needs at least one volume",
            ),
            (
                "a name too long for its pods",
                vec![
                    ("voters", pool(3, &["controller"])),
                    (
                        "a-name-of-many-words-that-goes-on-and-on-and-on-and-on",
                        pool(1, &["broker"]),
                    ),
                ],
                vec![],
                "must fit in 63 characters",
            ),
        ];
        for (name, pools, recorded, want) in cases {
            let pools: Vec<(String, KafkaNodePoolSpec)> =
                pools.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
            let got = Topology::pooled("demo", &spec(), &pools, &recorded, &BTreeMap::new());
            let err = got.expect_err(name).to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn nodes_roles_and_names() {
        let pools = vec![
            ("voters".to_string(), pool(3, &["controller"])),
            ("brokers".to_string(), pool(4, &["broker"])),
        ];
        let found = BTreeMap::from([
            ("voters".to_string(), (0, 3)),
            ("brokers".to_string(), (1000, 5)),
        ]);
        let t = Topology::pooled("demo", &spec(), &pools, &[], &found).expect("valid");
        assert_eq!(t.brokers(Size::Desired), vec![1000, 1001, 1002, 1003]);
        // A broker being drained runs until it is empty.
        assert_eq!(t.brokers(Size::Running), vec![1000, 1001, 1002, 1003, 1004]);
        assert_eq!(
            t.ids(Size::Current),
            vec![0, 1, 2, 1000, 1001, 1002, 1003, 1004]
        );
        assert!(t.is_voter(2) && !t.is_broker(2) && t.is_broker(1001) && !t.is_voter(1001));
        assert_eq!(t.broker_count(), 4);
        let names = t.names("demo", "kafka");
        assert_eq!(names.pod(1), "demo-voters-1");
        assert_eq!(names.pod(1004), "demo-brokers-1004");
        let brokers = &t.pools[1];
        assert_eq!(
            t.pool_labels(brokers),
            BTreeMap::from([
                (POOL_LABEL.to_string(), "brokers".to_string()),
                (BROKER_ROLE_LABEL.to_string(), "true".to_string()),
                (CONTROLLER_ROLE_LABEL.to_string(), "false".to_string()),
            ])
        );
        assert_eq!(t.pool_selector(&names, brokers)[POOL_LABEL], "brokers");
        assert_eq!(t.broker_selector(&names)[BROKER_ROLE_LABEL], "true");
        // The status keeps a removed pool's block, without nodes.
        let gone = record("old", 2000, &[NodeRole::Broker], &[2000]);
        let ready = BTreeSet::from([0, 1, 1000]);
        let records = t.records(&[gone], &ready);
        let summary: Vec<(&str, i32, usize, i32)> = records
            .iter()
            .map(|r| (r.name.as_str(), r.first_node_id, r.node_ids.len(), r.ready))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("voters", 0, 3, 2),
                ("brokers", 1000, 5, 1),
                ("old", 2000, 0, 0)
            ]
        );
    }

    /// A StatefulSet with claim templates `claims` (name, size), or an
    /// emptyDir when there are none.
    fn running(claims: &[(&str, &str)]) -> StatefulSet {
        let templates: Vec<_> = claims
            .iter()
            .map(|(name, size)| {
                json!({"metadata": {"name": name},
                "spec": {"resources": {"requests": {"storage": size}}}})
            })
            .collect();
        let mut sts = json!({"spec": {"selector": {}, "template": {}}});
        if !templates.is_empty() {
            sts["spec"]["volumeClaimTemplates"] = json!(templates);
        }
        serde_json::from_value(sts).expect("valid StatefulSet")
    }

    #[test]
    fn each_pool_keeps_the_storage_it_runs_on() {
        use NodeRole::{Broker, Controller};
        let jbod = json!({"type": "jbod", "volumes": [
            {"id": 0, "size": "10Gi"}, {"id": 1, "size": "10Gi"}]});
        let with = |replicas: i32, role: &str, storage: serde_json::Value| -> KafkaNodePoolSpec {
            serde_json::from_value(
                json!({"replicas": replicas, "roles": [role], "storage": storage}),
            )
            .expect("valid pool")
        };
        let pools = vec![
            (
                "voters".to_string(),
                with(3, "controller", json!({"size": "1Gi"})),
            ),
            ("brokers".to_string(), with(3, "broker", jbod.clone())),
            ("more".to_string(), with(2, "broker", jbod)),
        ];
        let recorded = [
            record("voters", 0, &[Controller], &[0, 1, 2]),
            record("brokers", 1000, &[Broker], &[1000, 1001, 1002]),
            record("old", 2000, &[Broker], &[2000]),
        ];
        let found = BTreeMap::from([
            ("voters".to_string(), (0, 3)),
            ("brokers".to_string(), (1000, 3)),
            ("old".to_string(), (2000, 1)),
        ]);
        let sets = BTreeMap::from([
            // Grown: a change of size is the claims', not refused here.
            ("voters".to_string(), running(&[("data", "512Mi")])),
            // One volume, asked to become two.
            ("brokers".to_string(), running(&[("data", "10Gi")])),
            // Removed, on the volumes it was made with.
            ("old".to_string(), running(&[("data-0", "5Gi")])),
        ]);
        let mut t = Topology::pooled("demo", &spec(), &pools, &recorded, &found).expect("valid");
        let refused = t.keep_running_storage(&sets);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "the storage change of pool brokers");
        assert!(
            refused[0].1.starts_with("storage.type cannot change"),
            "{refused:?}"
        );
        let kinds: Vec<(&str, Vec<String>)> = t
            .pools
            .iter()
            .map(|p| {
                let volumes = volumes::data_volumes(&p.storage);
                (
                    p.name.as_str(),
                    volumes
                        .into_iter()
                        .map(|v| format!("{} {}", v.name, v.size))
                        .collect(),
                )
            })
            .collect();
        let one = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            kinds,
            [
                ("voters", one(&["data 1Gi"])),
                ("brokers", one(&["data 10Gi"])),
                ("old", one(&["data-0 5Gi"])),
                ("more", one(&["data-0 10Gi", "data-1 10Gi"])),
            ]
        );
        // Without node pools the refusal is the cluster's.
        let mut s = spec();
        s.replicas = Some(3);
        s.storage = serde_json::from_value(json!({"type": "ephemeral"})).expect("storage");
        let mut single = Topology::single(&s, 3, 3);
        let sole = BTreeMap::from([(SOLE_POOL.to_string(), running(&[("data", "20Gi")]))]);
        let refused = single.keep_running_storage(&sole);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "the storage change");
    }

    #[test]
    fn a_cluster_without_pools_is_one_pool_as_always() {
        let mut s = spec();
        s.replicas = Some(4);
        let t = Topology::single(&s, single_controllers(&s, None), 3);
        assert_eq!(shape(&t), (vec![("broker", 0, 4, 3)], vec![0, 1, 2]));
        assert!(t.is_voter(0) && t.is_broker(0) && !t.is_voter(3));
        let names = t.names("demo", "kafka");
        assert_eq!(names, Names::new("demo", "kafka"));
        assert_eq!(names.pod(3), "demo-broker-3");
        assert!(t.pool_labels(&t.pools[0]).is_empty());
        assert_eq!(t.pool_selector(&names, &t.pools[0]), names.selector());
        assert_eq!(t.broker_selector(&names), names.selector());
        assert!(t.records(&[], &BTreeSet::new()).is_empty());
        // The quorum as recorded wins over the spec's.
        assert_eq!(single_controllers(&s, Some(1)), 1);
    }
}

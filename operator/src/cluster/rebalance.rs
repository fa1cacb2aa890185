//! The built-in balancer over time: when a rebalance begins (brokers were
//! added, or the `gregor.dev/rebalance` annotation asks), the plan it
//! records in status (see `balance`), and each pass which of its moves to
//! start, as throttled batches. A batch starts only when the one before
//! has moved, and only partitions whose replicas are all in sync move, so
//! that a move (new replicas join the ISR before old ones leave) never
//! takes a partition below its `min.insync.replicas`. Pure: the pass does
//! what these functions decide.

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::cluster::{PlannedMove, RebalanceSettings, RebalanceState, RebalanceStatus};

use super::balance::Placement;
use super::view::KafkaView;

/// The annotation that asks for a rebalance; removed when it is done.
pub const ANNOTATION: &str = "gregor.dev/rebalance";

/// The topic settings naming the replicas a throttle applies to.
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
/// See [`LEADER_REPLICAS`].
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
/// The broker settings holding the throttle's rate.
pub const RATES: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];

/// Whether `annotations` ask for a rebalance ([`ANNOTATION`] is "true").
pub fn asked(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(ANNOTATION)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// What a pass does about balance.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// Nothing under way; the status to report.
    Idle(RebalanceStatus),
    /// Make a plan, for this reason.
    Plan(String),
    /// Carry on with the plan in status.
    Continue,
}

/// Decides whether a rebalance begins, from the status as it was, whether
/// one is `asked` for, and the `brokers` the spec asks for.
pub fn begin(
    status: Option<&RebalanceStatus>,
    asked: bool,
    brokers: i32,
    settings: &RebalanceSettings,
) -> Begin {
    let Some(status) = status else {
        // A new cluster is balanced by creation; one made before the
        // balancer is taken as it is.
        if asked {
            return Begin::Plan(format!("asked for with {ANNOTATION}"));
        }
        return Begin::Idle(RebalanceStatus {
            brokers,
            ..Default::default()
        });
    };
    if status.state == RebalanceState::Moving {
        return Begin::Continue;
    }
    if asked {
        return Begin::Plan(format!("asked for with {ANNOTATION}"));
    }
    if settings.on_scale_up && brokers > status.brokers {
        return Begin::Plan(format!("{brokers} brokers, up from {}", status.brokers));
    }
    Begin::Idle(RebalanceStatus {
        brokers,
        ..status.clone()
    })
}

/// Why a plan cannot be made now, if it cannot: every broker of the spec
/// must be registered, and no partition moving (a move by hand or a
/// scale-down's drain would be planned around).
pub fn not_yet(kafka: &KafkaView, brokers: &[i32]) -> Option<String> {
    let missing: Vec<i32> = brokers
        .iter()
        .copied()
        .filter(|b| !kafka.brokers.contains(b))
        .collect();
    if !missing.is_empty() {
        return Some(format!("waiting for brokers {missing:?} to register"));
    }
    let moving: Vec<String> = kafka
        .partitions
        .iter()
        .filter(|p| p.reassigning)
        .map(|p| p.label())
        .collect();
    if !moving.is_empty() {
        return Some(format!(
            "waiting for the moves under way to finish: {}",
            moving.join(", ")
        ));
    }
    None
}

/// The placements of `kafka`'s partitions, sized by `sizes`.
pub fn placements(kafka: &KafkaView, sizes: &BTreeMap<(String, i32), u64>) -> Vec<Placement> {
    kafka
        .partitions
        .iter()
        .map(|p| Placement {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas: p.replicas.clone(),
            bytes: sizes
                .get(&(p.topic.clone(), p.partition))
                .copied()
                .unwrap_or(0),
        })
        .collect()
}

/// The status of a new plan: `changes` to `before` for `reason`, made at
/// `now` over `brokers` brokers.
pub fn recorded(
    reason: String,
    brokers: i32,
    before: &[Placement],
    changes: &[Placement],
    now: &str,
) -> RebalanceStatus {
    let bytes: u64 = changes
        .iter()
        .map(|c| {
            let old = before
                .iter()
                .find(|p| p.topic == c.topic && p.partition == c.partition)
                .map(|p| p.replicas.as_slice())
                .unwrap_or_default();
            let gained = c.replicas.iter().filter(|r| !old.contains(r)).count() as u64;
            c.bytes * gained
        })
        .sum();
    RebalanceStatus {
        brokers,
        state: RebalanceState::Moving,
        reason,
        message: format!("planned {} partitions", changes.len()),
        planned: changes.len() as i32,
        done: 0,
        bytes: bytes.min(i64::MAX as u64) as i64,
        started_at: Some(now.to_string()),
        finished_at: None,
        moves: changes
            .iter()
            .map(|c| PlannedMove {
                topic: c.topic.clone(),
                partition: c.partition,
                replicas: c.replicas.clone(),
            })
            .collect(),
    }
}

/// Where the plan stands this pass and what to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Moves not finished (moving, waiting or about to start).
    pub remaining: Vec<PlannedMove>,
    /// Moves to start now: a new batch.
    pub start: Vec<PlannedMove>,
    /// Partitions moving now.
    pub moving: Vec<String>,
    /// Partitions that wait for their replicas to be in sync.
    pub waiting: Vec<String>,
    /// Partitions whose move finished since the last pass: their
    /// preferred replicas are elected.
    pub finished: Vec<(String, i32)>,
}

impl Progress {
    /// Whether every move of the plan is done.
    pub fn complete(&self) -> bool {
        self.remaining.is_empty()
    }

    /// What status says of it.
    pub fn message(&self) -> String {
        if self.complete() {
            return "every planned move is done".into();
        }
        if !self.start.is_empty() {
            let labels: Vec<String> = self
                .start
                .iter()
                .map(|m| format!("{}-{}", m.topic, m.partition))
                .collect();
            return format!(
                "starting a batch of {}: {}",
                labels.len(),
                labels.join(", ")
            );
        }
        if !self.moving.is_empty() {
            return format!("moving {}", self.moving.join(", "));
        }
        format!(
            "waiting for every replica of {} to be in sync",
            self.waiting.join(", ")
        )
    }
}

/// The plan's `moves` against the cluster as it is: those done (or whose
/// partition is gone) leave the plan; a new batch of up to `batch` starts
/// when nothing of the plan is moving, made of partitions fully in sync
/// whose new replicas are all registered.
pub fn progress(moves: &[PlannedMove], kafka: &KafkaView, batch: usize) -> Progress {
    let mut out = Progress::default();
    let mut pending = Vec::new();
    for m in moves {
        let Some(p) = kafka
            .partitions
            .iter()
            .find(|p| p.topic == m.topic && p.partition == m.partition)
        else {
            continue;
        };
        if p.reassigning {
            out.moving.push(p.label());
            out.remaining.push(m.clone());
        } else if p.replicas == m.replicas {
            out.finished.push((m.topic.clone(), m.partition));
        } else {
            pending.push((m, p));
        }
    }
    for (m, p) in pending {
        out.remaining.push(m.clone());
        let in_sync = p.leader >= 0 && p.replicas.iter().all(|r| p.isr.contains(r));
        let registered = m.replicas.iter().all(|r| kafka.brokers.contains(r));
        if !in_sync || !registered {
            out.waiting.push(p.label());
        } else if out.moving.is_empty() && out.start.len() < batch {
            out.start.push(m.clone());
        }
    }
    out
}

/// The topics' throttled replica lists for the moves in `start`: on the
/// leader side the replicas a partition has now (any may lead and send),
/// on the follower side those it gains, as `partition:broker` items.
/// Moves that only reorder replicas copy nothing and are not listed.
pub fn throttled_replicas(
    start: &[PlannedMove],
    kafka: &KafkaView,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut lists: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for m in start {
        let Some(p) = kafka
            .partitions
            .iter()
            .find(|p| p.topic == m.topic && p.partition == m.partition)
        else {
            continue;
        };
        let gained: Vec<i32> = m
            .replicas
            .iter()
            .copied()
            .filter(|r| !p.replicas.contains(r))
            .collect();
        if gained.is_empty() {
            continue;
        }
        let (leaders, followers) = lists.entry(m.topic.clone()).or_default();
        leaders.extend(p.replicas.iter().map(|r| format!("{}:{r}", m.partition)));
        followers.extend(gained.iter().map(|r| format!("{}:{r}", m.partition)));
    }
    lists
        .into_iter()
        .map(|(topic, (leaders, followers))| {
            let settings = BTreeMap::from([
                (LEADER_REPLICAS.to_string(), leaders.join(",")),
                (FOLLOWER_REPLICAS.to_string(), followers.join(",")),
            ]);
            (topic, settings)
        })
        .collect()
}

/// Topics whose throttled replica lists can go: those of `finished`
/// moves with nothing of the plan still moving or starting.
pub fn unthrottled(progress: &Progress) -> BTreeSet<String> {
    let busy: BTreeSet<&str> = progress
        .moving
        .iter()
        .filter_map(|label| label.rsplit_once('-').map(|(t, _)| t))
        .chain(progress.start.iter().map(|m| m.topic.as_str()))
        .collect();
    progress
        .finished
        .iter()
        .map(|(t, _)| t.clone())
        .filter(|t| !busy.contains(t.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::PartitionView;

    fn settings() -> RebalanceSettings {
        RebalanceSettings::default()
    }

    fn balanced(brokers: i32) -> RebalanceStatus {
        RebalanceStatus {
            brokers,
            ..Default::default()
        }
    }

    #[test]
    fn when_a_rebalance_begins() {
        let moving = RebalanceStatus {
            brokers: 5,
            state: RebalanceState::Moving,
            ..Default::default()
        };
        let off = RebalanceSettings {
            on_scale_up: false,
            ..settings()
        };
        let on = settings();
        let asked = format!("asked for with {ANNOTATION}");
        type Case<'a> = (
            &'a str,
            Option<RebalanceStatus>,
            bool,
            i32,
            &'a RebalanceSettings,
            Begin,
        );
        let cases: Vec<Case> = vec![
            (
                "a cluster seen first is taken as it is",
                None,
                false,
                3,
                &on,
                Begin::Idle(balanced(3)),
            ),
            (
                "asked on a cluster seen first",
                None,
                true,
                3,
                &on,
                Begin::Plan(asked.clone()),
            ),
            (
                "same size: nothing",
                Some(balanced(3)),
                false,
                3,
                &on,
                Begin::Idle(balanced(3)),
            ),
            (
                "scaled up",
                Some(balanced(3)),
                false,
                5,
                &on,
                Begin::Plan("5 brokers, up from 3".into()),
            ),
            (
                "scaled up, not on scale-up",
                Some(balanced(3)),
                false,
                5,
                &off,
                Begin::Idle(balanced(5)),
            ),
            (
                "scaled down: remembered",
                Some(balanced(5)),
                false,
                3,
                &on,
                Begin::Idle(balanced(3)),
            ),
            (
                "asked",
                Some(balanced(3)),
                true,
                3,
                &on,
                Begin::Plan(asked.clone()),
            ),
            (
                "a plan under way goes on",
                Some(moving.clone()),
                true,
                6,
                &on,
                Begin::Continue,
            ),
        ];
        for (name, status, asked, brokers, settings, want) in cases {
            assert_eq!(
                begin(status.as_ref(), asked, brokers, settings),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn only_true_asks() {
        for (value, want) in [
            ("true", true),
            (" True ", true),
            ("false", false),
            ("", false),
        ] {
            let annotations = BTreeMap::from([(ANNOTATION.to_string(), value.to_string())]);
            assert_eq!(asked(&annotations), want, "{value:?}");
        }
        assert!(!asked(&BTreeMap::new()));
    }

    fn part(
        topic: &str,
        partition: i32,
        replicas: &[i32],
        isr: &[i32],
        reassigning: bool,
    ) -> PartitionView {
        PartitionView {
            topic: topic.into(),
            partition,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader: if isr.is_empty() { -1 } else { isr[0] },
            min_isr: 2,
            reassigning,
        }
    }

    fn view(brokers: &[i32], partitions: Vec<PartitionView>) -> KafkaView {
        KafkaView {
            brokers: brokers.iter().copied().collect(),
            partitions,
            ..Default::default()
        }
    }

    fn planned(topic: &str, partition: i32, replicas: &[i32]) -> PlannedMove {
        PlannedMove {
            topic: topic.into(),
            partition,
            replicas: replicas.to_vec(),
        }
    }

    #[test]
    fn a_plan_waits_for_brokers_and_moves_under_way() {
        let k = view(&[0, 1, 2], vec![part("t", 0, &[0, 1], &[0, 1], false)]);
        assert_eq!(not_yet(&k, &[0, 1, 2]), None);
        assert_eq!(
            not_yet(&k, &[0, 1, 2, 3, 4]).as_deref(),
            Some("waiting for brokers [3, 4] to register")
        );
        let k = view(&[0, 1, 2], vec![part("t", 0, &[2, 0, 1], &[0, 1], true)]);
        assert_eq!(
            not_yet(&k, &[0, 1, 2]).as_deref(),
            Some("waiting for the moves under way to finish: t-0")
        );
    }

    #[test]
    fn batches() {
        let moves = vec![
            planned("t", 0, &[3, 1]),
            planned("t", 1, &[4, 2]),
            planned("t", 2, &[3, 0]),
            planned("u", 0, &[4, 1]),
            planned("gone", 0, &[4, 1]),
        ];
        let brokers = [0, 1, 2, 3, 4];
        // Nothing moving: a batch of two of the in-sync ones starts; t-2
        // waits for its ISR.
        let k = view(
            &brokers,
            vec![
                part("t", 0, &[0, 1], &[0, 1], false),
                part("t", 1, &[1, 2], &[1, 2], false),
                part("t", 2, &[2, 0], &[2], false),
                part("u", 0, &[0, 1], &[0, 1], false),
            ],
        );
        let p = progress(&moves, &k, 2);
        assert_eq!(p.start, vec![moves[0].clone(), moves[1].clone()]);
        assert_eq!(p.waiting, vec!["t-2".to_string()]);
        assert_eq!(p.remaining.len(), 4);
        assert!(p.finished.is_empty());
        assert_eq!(p.message(), "starting a batch of 2: t-0, t-1");

        // t-0 done, t-1 moving: nothing starts until the batch is over.
        let k = view(
            &brokers,
            vec![
                part("t", 0, &[3, 1], &[1, 3], false),
                part("t", 1, &[4, 2, 1], &[1, 2], true),
                part("t", 2, &[2, 0], &[2, 0], false),
                part("u", 0, &[0, 1], &[0, 1], false),
            ],
        );
        let p = progress(&moves, &k, 2);
        assert!(p.start.is_empty());
        assert_eq!(p.moving, vec!["t-1".to_string()]);
        assert_eq!(p.finished, vec![("t".to_string(), 0)]);
        assert_eq!(p.message(), "moving t-1");
        // t's lists stay while t-1 moves.
        assert!(unthrottled(&p).is_empty());

        // Everything in place: complete.
        let k = view(
            &brokers,
            vec![
                part("t", 0, &[3, 1], &[3, 1], false),
                part("t", 1, &[4, 2], &[4, 2], false),
                part("t", 2, &[3, 0], &[3, 0], false),
                part("u", 0, &[4, 1], &[4, 1], false),
            ],
        );
        let p = progress(&moves, &k, 2);
        assert!(p.complete());
        assert_eq!(p.finished.len(), 4);
        assert_eq!(unthrottled(&p), BTreeSet::from(["t".into(), "u".into()]));
    }

    #[test]
    fn a_move_to_an_unregistered_broker_waits() {
        let moves = vec![planned("t", 0, &[5, 1])];
        let k = view(&[0, 1], vec![part("t", 0, &[0, 1], &[0, 1], false)]);
        let p = progress(&moves, &k, 10);
        assert!(p.start.is_empty());
        assert_eq!(p.waiting, vec!["t-0".to_string()]);
    }

    #[test]
    fn throttle_lists_name_sources_and_new_replicas() {
        let k = view(
            &[0, 1, 2, 3],
            vec![
                part("t", 0, &[0, 1], &[0, 1], false),
                part("t", 3, &[1, 2], &[1, 2], false),
                part("u", 1, &[2, 0], &[2, 0], false),
            ],
        );
        let start = vec![
            planned("t", 0, &[3, 1]),
            planned("t", 3, &[1, 3]),
            // Only reordered: nothing copied, nothing throttled.
            planned("u", 1, &[0, 2]),
        ];
        let lists = throttled_replicas(&start, &k);
        assert_eq!(lists.len(), 1);
        let t = &lists["t"];
        assert_eq!(t[LEADER_REPLICAS], "0:0,0:1,3:1,3:2");
        assert_eq!(t[FOLLOWER_REPLICAS], "0:3,3:3");
    }

    #[test]
    fn a_recorded_plan_counts_the_bytes_to_copy() {
        let before = vec![
            Placement {
                topic: "t".into(),
                partition: 0,
                replicas: vec![0, 1],
                bytes: 100,
            },
            Placement {
                topic: "t".into(),
                partition: 1,
                replicas: vec![1, 2],
                bytes: 40,
            },
        ];
        let changes = vec![
            Placement {
                replicas: vec![3, 4],
                ..before[0].clone()
            },
            Placement {
                replicas: vec![2, 1],
                ..before[1].clone()
            },
        ];
        let s = recorded("why".into(), 5, &before, &changes, "2026-12-04T00:00:00Z");
        assert_eq!(s.bytes, 200);
        assert_eq!(s.planned, 2);
        assert_eq!(s.state, RebalanceState::Moving);
        assert_eq!(s.moves[1].replicas, vec![2, 1]);
    }
}

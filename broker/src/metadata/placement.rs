//! Where a new topic's replicas go: leaders spread evenly over the live
//! brokers, followers on other brokers and, when brokers have racks, on
//! other racks first.

use std::collections::BTreeSet;

/// A broker that can hold replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Broker id.
    pub id: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

/// Replica lists for `partitions` new partitions starting at index `first`
/// (so added partitions continue the spread), `replication_factor` each.
/// `None` when there are fewer brokers than replicas asked for.
pub fn assign(
    brokers: &[Candidate],
    first: i32,
    partitions: i32,
    replication_factor: usize,
) -> Option<Vec<Vec<i32>>> {
    if replication_factor == 0 || replication_factor > brokers.len() {
        return None;
    }
    let order = rack_alternated(brokers);
    let n = order.len();
    let assignment = (first..first.saturating_add(partitions))
        .map(|p| {
            let p = p.max(0) as usize;
            let lead = p % n;
            // The shift varies the follower sets between rounds of leaders,
            // so a failed broker's followers are spread, as Kafka does.
            let shift = (p / n) % n.max(2).saturating_sub(1).max(1);
            let mut replicas = vec![order[lead].id];
            let mut racks: BTreeSet<Option<&str>> = BTreeSet::new();
            racks.insert(order[lead].rack.as_deref());
            let all_racks: BTreeSet<Option<&str>> =
                order.iter().map(|c| c.rack.as_deref()).collect();
            while replicas.len() < replication_factor {
                if racks.len() == all_racks.len() {
                    racks.clear();
                }
                let pick = (1..n)
                    .map(|k| &order[(lead + 1 + (shift + k - 1) % (n - 1)) % n])
                    .filter(|c| !replicas.contains(&c.id))
                    .find(|c| !racks.contains(&c.rack.as_deref()))
                    .or_else(|| {
                        (1..n)
                            .map(|k| &order[(lead + k) % n])
                            .find(|c| !replicas.contains(&c.id))
                    });
                match pick {
                    Some(c) => {
                        racks.insert(c.rack.as_deref());
                        replicas.push(c.id);
                    }
                    None => break,
                }
            }
            replicas
        })
        .collect();
    Some(assignment)
}

/// Brokers ordered by id, interleaved by rack (a1, b1, c1, a2, b2, ...), so
/// neighbours in the order sit on different racks.
fn rack_alternated(brokers: &[Candidate]) -> Vec<Candidate> {
    let mut sorted = brokers.to_vec();
    sorted.sort_by_key(|c| c.id);
    let racks: BTreeSet<Option<String>> = sorted.iter().map(|c| c.rack.clone()).collect();
    let mut per_rack: Vec<std::collections::VecDeque<Candidate>> = racks
        .iter()
        .map(|r| sorted.iter().filter(|c| &c.rack == r).cloned().collect())
        .collect();
    let mut out = Vec::with_capacity(sorted.len());
    while out.len() < sorted.len() {
        for q in &mut per_rack {
            if let Some(c) = q.pop_front() {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn brokers(racks: &[Option<&str>]) -> Vec<Candidate> {
        racks
            .iter()
            .enumerate()
            .map(|(i, r)| Candidate {
                id: i as i32 + 1,
                rack: r.map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn leaders_and_replicas_are_spread() {
        let cases: &[(&[Option<&str>], i32, usize)] = &[
            (&[None, None, None], 6, 3),
            (&[None, None, None], 6, 2),
            (&[None, None, None, None, None], 10, 3),
            (&[None], 4, 1),
        ];
        for (racks, partitions, rf) in cases {
            let b = brokers(racks);
            let a = assign(&b, 0, *partitions, *rf).expect("enough brokers");
            assert_eq!(a.len(), *partitions as usize);
            let mut leaders: BTreeMap<i32, i32> = BTreeMap::new();
            for replicas in &a {
                assert_eq!(replicas.len(), *rf, "{a:?}");
                let mut d = replicas.clone();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), *rf, "distinct brokers: {a:?}");
                *leaders.entry(replicas[0]).or_default() += 1;
            }
            let (min, max) = (
                leaders.values().min().copied().unwrap_or(0),
                leaders.values().max().copied().unwrap_or(0),
            );
            assert!(max - min <= 1, "leaders balanced: {a:?}");
        }
    }

    #[test]
    fn replicas_land_on_distinct_racks_when_they_can() {
        let cases: &[&[Option<&str>]] = &[
            &[Some("a"), Some("b"), Some("c")],
            &[
                Some("a"),
                Some("a"),
                Some("b"),
                Some("b"),
                Some("c"),
                Some("c"),
            ],
        ];
        for racks in cases {
            let b = brokers(racks);
            let rack_of = |id: i32| b.iter().find(|c| c.id == id).and_then(|c| c.rack.clone());
            for replicas in assign(&b, 0, 12, 3).expect("enough") {
                let r: BTreeSet<_> = replicas.iter().map(|id| rack_of(*id)).collect();
                assert_eq!(r.len(), 3, "{replicas:?} on {racks:?}");
            }
        }
    }

    #[test]
    fn too_few_brokers_is_none() {
        assert_eq!(assign(&brokers(&[None, None]), 0, 3, 3), None);
        assert_eq!(assign(&[], 0, 1, 1), None);
    }

    #[test]
    fn added_partitions_continue_the_spread() {
        let b = brokers(&[None, None, None]);
        let all = assign(&b, 0, 6, 2).expect("ok");
        let tail = assign(&b, 3, 3, 2).expect("ok");
        assert_eq!(&all[3..], &tail[..]);
    }
}

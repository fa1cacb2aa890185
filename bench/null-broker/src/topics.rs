//! The topics the null broker has heard of. Every topic a client names
//! exists, with the same number of partitions; its id is derived from its
//! name, so it is the same in every run. A partition is only a counter of
//! the offsets produced to it and its last batch.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use uuid::Uuid;

use crate::batch::{self, Produced, Template};

/// Every topic seen so far.
#[derive(Debug)]
pub struct Topics {
    partitions: usize,
    by_name: BTreeMap<TopicName, Topic>,
    names: HashMap<Uuid, TopicName>,
}

/// One topic: its id and partitions.
#[derive(Debug, Clone)]
pub struct Topic {
    id: Uuid,
    partitions: Vec<Partition>,
}

/// One partition: where its log ends and the batch fetches are answered
/// with. Cloning it is cheap (the template's bytes are shared), so a fetch
/// reads a clone outside the lock.
#[derive(Debug, Default, Clone)]
pub struct Partition {
    end: i64,
    template: Option<Template>,
}

impl Topics {
    /// No topics yet; each will have `partitions` partitions.
    pub fn new(partitions: usize) -> Self {
        Self {
            partitions,
            by_name: BTreeMap::new(),
            names: HashMap::new(),
        }
    }

    /// The topic `name`, created if it is new.
    pub fn named(&mut self, name: &TopicName) -> &mut Topic {
        let partitions = self.partitions;
        let names = &mut self.names;
        self.by_name.entry(name.clone()).or_insert_with(|| {
            let id = topic_id(name);
            names.insert(id, name.clone());
            Topic {
                id,
                partitions: vec![Partition::default(); partitions],
            }
        })
    }

    /// The topic with id `id`, if one was seen.
    pub fn with_id(&self, id: &Uuid) -> Option<(&TopicName, &Topic)> {
        let name = self.names.get(id)?;
        self.by_name.get(name).map(|topic| (name, topic))
    }

    /// Every topic seen, by name.
    pub fn all(&self) -> impl Iterator<Item = (&TopicName, &Topic)> {
        self.by_name.iter()
    }
}

impl Topic {
    /// The topic's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// How many partitions it has.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Partition `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&Partition> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    /// Partition `index` to append to, if the topic has it.
    pub fn partition_mut(&mut self, index: i32) -> Option<&mut Partition> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get_mut(i))
    }
}

impl Partition {
    /// Takes `produced` and returns its base offset: the log end before it.
    pub fn append(&mut self, produced: Produced) -> i64 {
        let base = self.end;
        self.end += produced.offsets;
        self.template = Some(produced.last);
        base
    }

    /// The log end offset (also the high watermark).
    pub fn end(&self) -> i64 {
        self.end
    }

    /// What a fetch at `from` gets within `room` bytes (at least one batch
    /// if `first`, the first data of the answer): see [`batch::rebased`].
    pub fn read(&self, from: i64, room: usize, first: bool) -> Bytes {
        match &self.template {
            Some(t) => {
                let room = if first { room.max(t.size()) } else { room };
                batch::rebased(t, from, self.end, room)
            }
            None => Bytes::new(),
        }
    }
}

/// A topic id from its name (two FNV-1a hashes): the same in every run,
/// never the nil id that means "no id" nor Kafka's reserved id 1.
fn topic_id(name: &str) -> Uuid {
    let fnv = |seed: u64| {
        name.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let id =
        (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x8422_2325_cbf2_9ce4));
    Uuid::from_u128(id.max(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{read_produced, tests::batch};
    use kafka_protocol::protocol::StrBytes;

    fn produced(offsets: i32) -> Produced {
        read_produced(&Bytes::from(batch(offsets - 1, 0))).expect("a batch")
    }

    #[test]
    fn each_append_starts_where_the_last_ended() {
        let cases: &[(&str, &[i32], &[i64], i64)] = &[
            ("nothing", &[], &[], 0),
            ("one batch", &[5], &[0], 5),
            ("several", &[5, 1, 100], &[0, 5, 6], 106),
        ];
        for (name, batches, want_bases, want_end) in cases {
            let mut p = Partition::default();
            let bases: Vec<i64> = batches.iter().map(|n| p.append(produced(*n))).collect();
            assert_eq!((&bases[..], p.end()), (*want_bases, *want_end), "{name}");
        }
    }

    #[test]
    fn topics_appear_when_named_with_stable_distinct_ids() {
        let name = |s: &'static str| TopicName(StrBytes::from_static_str(s));
        let mut topics = Topics::new(3);
        let a = topics.named(&name("a")).id();
        let b = topics.named(&name("b")).id();
        assert_ne!(a, b);
        assert_eq!(topics.named(&name("a")).id(), a);
        assert_eq!(Topics::new(1).named(&name("a")).id(), a);
        assert_eq!(topics.with_id(&b).map(|(n, _)| n.clone()), Some(name("b")));
        assert_eq!(topics.all().count(), 2);
        assert_eq!(topics.named(&name("a")).partition_count(), 3);
        assert!(topics.named(&name("a")).partition(3).is_none());
    }
}

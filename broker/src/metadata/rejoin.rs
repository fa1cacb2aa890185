//! Whether a voter may take part in the quorum: not while it has lost a
//! metadata log that the others have.
//!
//! A Raft voter's safety rests on what it has stored: the entries it
//! acknowledged (which counted toward their commit) and the vote it cast.
//! A voter that comes back on an empty disk (a node lost with its local
//! volume, the volume replaced) has forgotten both. If it voted at once,
//! it would vote for any candidate, so a candidate that misses committed
//! entries could win with it (the others that held those entries being
//! down) and overwrite them everywhere; and if it acknowledged entries at
//! once, a leader deposed while it was away (a restarted one that has not
//! heard of the later term) could commit entries over committed ones with
//! it. Kafka's KIP-853 answers this with a directory id per voter: a voter
//! on a new directory is an observer, not in the voter set, until it has
//! caught up and is added. Gregor's voters are fixed by
//! `controller.quorum.voters`, so it applies the same rule without the
//! membership change:
//! - a voter whose log is empty asks the others about theirs; if another
//!   voter's is not empty, this one lost its log (or never had one);
//!   only if every other voter says its log is empty too is the cluster
//!   new, and the voter joins in forming it;
//! - a voter that lost its log neither votes nor campaigns, and takes
//!   entries only from a leader of at least the highest term that a
//!   majority of the voters (itself not counted) reports, so no deposed
//!   leader counts it;
//! - it is a voter again once its log and term are at least those that
//!   such a majority reported: every entry committed before it lost its
//!   log is on one of them (a majority that committed it and this majority
//!   share a voter other than itself), so its log holds them all, and a
//!   term it may have voted in is behind it.
//!
//! The state survives restarts through a marker file in the metadata
//! directory, written before the voter accepts any entry: a voter that
//! stops half-way through copying the log has a log again, but not all of
//! it, and must still not vote.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use openraft::{LogId, Vote};
use serde::{Deserialize, Serialize};

/// The marker file of a voter still copying the log it lost.
pub const MARKER: &str = "catching-up";

/// Where a voter stands in the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Its log is empty and it does not know yet whether the cluster
    /// exists: it asks the other voters.
    Asking,
    /// The cluster exists and this voter has not copied its log yet.
    CatchingUp,
    /// A full voter.
    Voting,
}

/// What a voter says of its own metadata log when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerLog {
    /// Its vote (the term it is in, and for whom).
    pub vote: Vote<u64>,
    /// The last entry of its log.
    pub last_log: Option<LogId<u64>>,
}

impl PeerLog {
    /// Whether its log belongs to a formed cluster: it holds more than the
    /// initial membership entry (index 0) that every voter of a new cluster
    /// writes for itself before the first election.
    pub fn formed(&self) -> bool {
        self.last_log.is_some_and(|l| l.index > 0)
    }
}

/// What the other voters' answers say about the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every other voter's log is empty: the cluster is new.
    NewCluster,
    /// Another voter has a log: the cluster exists without this voter's.
    Exists,
}

/// Whether a voter that is not yet [`Standing::Voting`] takes entries from
/// a leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes: its term is at least the highest a majority reports.
    Accept,
    /// No: a majority reports this later vote (the leader is deposed).
    Deposed(Vote<u64>),
    /// Not yet: too few voters have answered to know the term.
    Unknown,
}

/// The other voters' latest answers, taken since this process started.
#[derive(Debug, Clone)]
pub struct Answers {
    /// How many voters there are, this one included.
    voters: usize,
    /// Latest answer of each other voter that answered.
    heard: BTreeMap<u64, PeerLog>,
}

impl Answers {
    /// No answers yet, among `voters` voters (this one included).
    pub fn new(voters: usize) -> Self {
        Answers {
            voters,
            heard: BTreeMap::new(),
        }
    }

    /// Records voter `peer`'s answer.
    pub fn record(&mut self, peer: u64, log: PeerLog) {
        self.heard.insert(peer, log);
    }

    /// A majority of all the voters, which the others must make up alone.
    fn majority(&self) -> usize {
        self.voters / 2 + 1
    }

    /// One formed log among the others says that the cluster exists; a new
    /// cluster needs every other voter to have said its log is empty, since
    /// one that has not answered may hold the only copy of what this one
    /// lost. An answer stays valid: a voter whose log was empty after this
    /// one lost its own never held what this one lost.
    pub fn verdict(&self) -> Option<Verdict> {
        if self.heard.values().any(PeerLog::formed) {
            Some(Verdict::Exists)
        } else if self.heard.len() + 1 >= self.voters {
            Some(Verdict::NewCluster)
        } else {
            None
        }
    }

    /// Whether to take entries from a leader of `term`.
    pub fn admit(&self, term: u64) -> Admission {
        if self.heard.len() < self.majority() {
            return Admission::Unknown;
        }
        // Votes of one term for different candidates do not compare: the
        // term decides.
        match self
            .heard
            .values()
            .map(|l| l.vote)
            .max_by_key(|v| v.leader_id().term)
        {
            Some(highest) if highest.leader_id().term > term => Admission::Deposed(highest),
            _ => Admission::Accept,
        }
    }

    /// Whether this voter, whose own log and vote are `mine`, holds what a
    /// majority of the voters (itself not counted) reported: a log at least
    /// as up to date as each one's, and a term at least each one's.
    pub fn caught_up(&self, mine: &PeerLog) -> bool {
        let covered = self
            .heard
            .values()
            .filter(|l| {
                mine.last_log >= l.last_log && mine.vote.leader_id().term >= l.vote.leader_id().term
            })
            .count();
        covered >= self.majority()
    }
}

/// Whether `dir` holds the marker of a voter catching up.
pub fn marked(dir: &Path) -> bool {
    dir.join(MARKER).exists()
}

/// Writes the marker, synced, before the voter accepts any entry.
pub fn mark(dir: &Path) -> std::io::Result<()> {
    let mut f = File::create(dir.join(MARKER))?;
    f.write_all(
        b"this voter lost its metadata log and takes no part in elections until it has copied it\n",
    )?;
    f.sync_all()?;
    File::open(dir)?.sync_all()
}

/// Removes the marker once the voter has the log.
pub fn unmark(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(MARKER)) {
        Ok(()) => File::open(dir)?.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn answer(term: u64, last: Option<(u64, u64)>) -> PeerLog {
        PeerLog {
            vote: Vote::new_committed(term, 1),
            last_log: last.map(|(t, i)| LogId::new(CommittedLeaderId::new(t, 1), i)),
        }
    }

    fn answers(voters: usize, heard: &[(u64, PeerLog)]) -> Answers {
        let mut a = Answers::new(voters);
        for (peer, log) in heard {
            a.record(*peer, *log);
        }
        a
    }

    #[test]
    fn one_log_among_the_others_means_the_cluster_exists() {
        let empty = answer(0, None);
        let fresh = answer(1, Some((0, 0)));
        let formed = answer(2, Some((2, 9)));
        let cases = [
            (
                "all empty",
                answers(3, &[(1, empty), (3, fresh)]),
                Some(Verdict::NewCluster),
            ),
            (
                "one has a log",
                answers(3, &[(1, empty), (3, formed)]),
                Some(Verdict::Exists),
            ),
            (
                "one has a log, one silent",
                answers(3, &[(3, formed)]),
                Some(Verdict::Exists),
            ),
            // The silent one may hold the log this voter lost.
            ("one empty, one silent", answers(3, &[(1, empty)]), None),
            ("nobody answers", answers(3, &[]), None),
            ("no other voter", answers(1, &[]), Some(Verdict::NewCluster)),
        ];
        for (what, a, want) in cases {
            assert_eq!(a.verdict(), want, "{what}");
        }
    }

    #[test]
    fn entries_come_only_from_a_leader_of_the_majoritys_term() {
        // Voter 1 was elected in term 2 while voter 3 was away; voter 3
        // restarted believing it still leads term 1.
        let both = answers(
            3,
            &[(1, answer(2, Some((2, 12)))), (3, answer(1, Some((1, 9))))],
        );
        assert_eq!(both.admit(2), Admission::Accept);
        assert_eq!(both.admit(3), Admission::Accept);
        assert_eq!(both.admit(1), Admission::Deposed(Vote::new_committed(2, 1)));
        // With voter 1 down, only the deposed leader answers: not enough
        // to know the term, so nothing is taken.
        let one = answers(3, &[(3, answer(1, Some((1, 9))))]);
        assert_eq!(one.admit(1), Admission::Unknown);
        // Of five voters, three others make a majority.
        let five = answers(5, &[(1, answer(4, None)), (3, answer(4, None))]);
        assert_eq!(five.admit(4), Admission::Unknown);
        let five = answers(
            5,
            &[
                (1, answer(4, None)),
                (3, answer(4, None)),
                (4, answer(3, None)),
            ],
        );
        assert_eq!(five.admit(4), Admission::Accept);
    }

    #[test]
    fn caught_up_once_log_and_term_cover_a_majority_of_the_others() {
        let heard = answers(
            3,
            &[(1, answer(2, Some((2, 12)))), (3, answer(1, Some((1, 9))))],
        );
        let cases = [
            ("level with both", answer(2, Some((2, 12))), true),
            ("ahead of both", answer(3, Some((3, 14))), true),
            ("short of voter 1", answer(2, Some((2, 11))), false),
            // The deposed leader's log is not enough.
            ("level with voter 3 only", answer(1, Some((1, 9))), false),
            ("the log but an old term", answer(1, Some((2, 12))), false),
            ("empty", answer(0, None), false),
        ];
        for (what, mine, want) in cases {
            assert_eq!(heard.caught_up(&mine), want, "{what}");
        }
        // Too few answers to tell.
        let one = answers(3, &[(1, answer(2, Some((2, 12))))]);
        assert!(!one.caught_up(&answer(2, Some((2, 12)))));
    }

    #[test]
    fn the_marker_comes_and_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!marked(dir.path()));
        mark(dir.path()).expect("marked");
        assert!(marked(dir.path()));
        unmark(dir.path()).expect("unmarked");
        unmark(dir.path()).expect("unmarked twice");
        assert!(!marked(dir.path()));
    }
}

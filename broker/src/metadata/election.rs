//! When a voter calls an election: only after asking the others first (a
//! pre-vote, as Kafka's KIP-996 and section 9.6 of the Raft thesis have it).
//!
//! A voter that was cut off or frozen wakes with its election timer long
//! expired. Calling an election at once raises the quorum's term, and the
//! active controller, seeing the higher term in its next replies, steps
//! down: metadata stops for an election although nothing was wrong. So
//! openraft's own election timer is off and this module drives elections:
//! a voter that has not heard from its leader for the leader lease (plus a
//! short random stagger, so two voters rarely ask at the same moment) asks
//! every other voter whether it would vote for it, and calls the election
//! only when a majority says yes. That is as soon as Kafka's voters move
//! (`controller.quorum.fetch.timeout.ms`, twice the election timeout by
//! default); a random election timeout is waited only with no leader known
//! and after an election that did not produce one. A voter says
//! yes only if it has not heard from a leader for the lease itself and the
//! candidate's log is at least as up to date as its own, the same tests
//! openraft applies to the real vote, so a granted pre-vote is an election
//! that can succeed and a refused one costs nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::{LogId, Raft, ServerState};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::network::{Connection, Dialer, Request, Response};
use super::rejoin::Standing;
use super::TypeConfig;

/// A candidate's question to another voter: would you vote for me?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVote {
    /// The voter asking.
    pub candidate: u64,
    /// The last entry of its metadata log.
    pub last_log: Option<LogId<u64>>,
}

/// When this node last heard from a leader it follows.
#[derive(Debug, Default)]
pub struct LeaderContact(Mutex<Option<Instant>>);

impl LeaderContact {
    /// A leader's AppendEntries or snapshot was accepted just now.
    pub fn heard(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// When a leader was last heard from; `None`: never, in this process.
    pub fn last(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long ago a leader was last heard from; `None`: never.
    pub fn quiet_for(&self) -> Option<Duration> {
        self.last().map(|t| t.elapsed())
    }
}

/// What a voter knows when a pre-vote reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoterState {
    /// It is the leader itself.
    pub leading: bool,
    /// How long since it last heard from a leader; `None`: never.
    pub quiet_for: Option<Duration>,
    /// The last entry of its log.
    pub last_log: Option<LogId<u64>>,
}

/// Whether a voter in `state` would vote for a candidate whose log ends at
/// `candidate_last_log`: it has no leader (none heard from within `lease`)
/// and the candidate's log is at least as up to date as its own (later
/// term, or the same term and at least as long; an empty log is the least).
pub fn grants(state: &VoterState, candidate_last_log: Option<LogId<u64>>, lease: Duration) -> bool {
    !state.leading
        && state.quiet_for.is_none_or(|quiet| quiet >= lease)
        && candidate_last_log >= state.last_log
}

/// Whether `granted` yes answers (this voter's own included) among
/// `voters` are a majority.
pub fn is_majority(granted: usize, voters: usize) -> bool {
    granted * 2 > voters
}

/// How long voters wait: openraft refuses to vote within the leader lease
/// (`election_timeout_max` since it last heard from the leader), so a
/// follower of a known leader asks once that lease has run out, after a
/// short random stagger; with no leader known yet (a new cluster, an
/// election that failed) after a random election timeout, as openraft's own
/// timer would.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// No vote is granted within this much of the last leader contact.
    pub lease: Duration,
    /// The random election timeout is drawn from this range.
    pub timeout_min: Duration,
    /// Exclusive upper end of the random election timeout.
    pub timeout_max: Duration,
}

/// What the driver knows when it decides when to ask next.
#[derive(Debug, Clone, Copy)]
pub struct Moments {
    /// When a leader was last heard from, if ever.
    pub heard: Option<Instant>,
    /// When this process started driving.
    pub started: Instant,
    /// When its last pre-vote was refused, if since the last contact.
    pub refused: Option<Instant>,
    /// When it last called an election, if since the last contact.
    pub elected: Option<Instant>,
    /// Whether a leader is known (its vote committed).
    pub committed: bool,
}

/// The random parts of one wait.
#[derive(Debug, Clone, Copy)]
pub struct Draw {
    /// Added to the lease after a leader was lost.
    pub stagger: Duration,
    /// The election timeout, with no leader known.
    pub timeout: Duration,
}

impl Timing {
    /// New random parts: a stagger below a quarter of the minimum
    /// election timeout, and an election timeout.
    fn draw(&self) -> Draw {
        let (min, max) = (self.timeout_min, self.timeout_max.max(self.timeout_min));
        let mut rng = rand::thread_rng();
        let timeout = if max > min {
            rng.gen_range(min..max)
        } else {
            min
        };
        let stagger_max = self.retry();
        let stagger = if stagger_max.is_zero() {
            Duration::ZERO
        } else {
            rng.gen_range(Duration::ZERO..stagger_max)
        };
        Draw { stagger, timeout }
    }

    /// How soon a refused pre-vote is asked again: it disturbs nobody, and
    /// the others may have heard the lost leader a moment later than this
    /// voter.
    fn retry(&self) -> Duration {
        self.timeout_min / 4
    }

    /// When this voter asks for a pre-vote next.
    pub fn due(&self, m: &Moments, draw: Draw) -> Instant {
        let mut due = match (m.committed, m.heard) {
            (true, Some(heard)) => heard + self.lease + draw.stagger,
            _ => m.started.max(m.heard.unwrap_or(m.started)) + draw.timeout,
        };
        if let Some(refused) = m.refused {
            due = due.max(refused + self.retry());
        }
        if let Some(elected) = m.elected {
            due = due.max(elected + draw.timeout);
        }
        due
    }

    /// How often the driver looks at the clock.
    fn tick(&self) -> Duration {
        (self.timeout_min / 10).max(Duration::from_millis(5))
    }
}

/// Drives this voter's elections until the Raft member shuts down.
pub async fn drive(
    raft: Raft<TypeConfig>,
    me: u64,
    peers: BTreeMap<u64, String>,
    contact: Arc<LeaderContact>,
    timing: Timing,
    dialer: Dialer,
    standing: tokio::sync::watch::Receiver<Standing>,
) {
    let voters = peers.len() + 1;
    let mut connections: BTreeMap<u64, Connection> = peers
        .into_iter()
        .map(|(id, addr)| (id, Connection::new(addr, dialer.clone())))
        .collect();
    let started = Instant::now();
    let mut draw = timing.draw();
    // Attempts since the last word of a leader.
    let mut refused: Option<Instant> = None;
    let mut elected: Option<Instant> = None;
    let mut heard_before = contact.last();
    let mut ticks = tokio::time::interval(timing.tick());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // Only what is needed, not a copy of the whole metrics every tick.
        let (stopped, committed, leading, term) = {
            let m = raft.metrics();
            let m = m.borrow();
            (
                m.running_state.is_err(),
                m.vote.is_committed(),
                m.state == ServerState::Leader,
                m.current_term,
            )
        };
        if stopped {
            return;
        }
        let heard = contact.last();
        if heard != heard_before {
            // A leader spoke: earlier attempts no longer matter.
            heard_before = heard;
            refused = None;
            elected = None;
        }
        let moments = Moments {
            heard,
            started,
            refused,
            elected,
            committed,
        };
        if leading || Instant::now() < timing.due(&moments, draw) {
            continue;
        }
        // A voter that lost its log (or does not know yet) stays out.
        if *standing.borrow() != Standing::Voting {
            continue;
        }
        draw = timing.draw();
        let ask = PreVote {
            candidate: me,
            last_log: raft.data_metrics().borrow().last_log,
        };
        let granted = 1 + ask_all(&mut connections, &ask, timing.timeout_min).await;
        if is_majority(granted, voters) {
            tracing::info!(
                granted,
                voters,
                term,
                "no leader heard from; pre-vote granted, calling an election"
            );
            elected = Some(Instant::now());
            if raft.trigger().elect().await.is_err() {
                return;
            }
        } else {
            refused = Some(Instant::now());
            tracing::debug!(
                granted,
                voters,
                "pre-vote refused; the others still follow a leader"
            );
        }
    }
}

/// Asks every other voter at once; how many said yes within `patience`.
async fn ask_all(
    connections: &mut BTreeMap<u64, Connection>,
    ask: &PreVote,
    patience: Duration,
) -> usize {
    let calls = connections.iter_mut().map(|(id, conn)| async move {
        match conn.call(&Request::PreVote(ask.clone()), patience).await {
            Ok(Response::PreVote(granted)) => granted,
            Ok(_) => false,
            Err(e) => {
                tracing::debug!(voter = id, error = %e, "pre-vote unanswered");
                false
            }
        }
    });
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter(|granted| *granted)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn log(term: u64, index: u64) -> Option<LogId<u64>> {
        Some(LogId::new(CommittedLeaderId::new(term, 0), index))
    }

    #[test]
    fn a_voter_grants_only_without_a_leader_and_to_an_up_to_date_log() {
        let lease = Duration::from_secs(2);
        let quiet = Some(Duration::from_secs(3));
        let recent = Some(Duration::from_millis(500));
        let state = |leading, quiet_for, last_log| VoterState {
            leading,
            quiet_for,
            last_log,
        };
        let cases = [
            (
                "no leader, same log",
                state(false, quiet, log(3, 10)),
                log(3, 10),
                true,
            ),
            (
                "no leader, longer log",
                state(false, quiet, log(3, 10)),
                log(3, 11),
                true,
            ),
            (
                "no leader, later term",
                state(false, quiet, log(3, 10)),
                log(4, 2),
                true,
            ),
            (
                "no leader, shorter log",
                state(false, quiet, log(3, 10)),
                log(3, 9),
                false,
            ),
            (
                "no leader, older term",
                state(false, quiet, log(3, 10)),
                log(2, 50),
                false,
            ),
            (
                "no leader, candidate empty",
                state(false, quiet, log(1, 1)),
                None,
                false,
            ),
            ("both empty", state(false, quiet, None), None, true),
            (
                "heard from a leader",
                state(false, recent, log(3, 10)),
                log(3, 10),
                false,
            ),
            (
                "exactly the lease",
                state(false, Some(lease), log(3, 10)),
                log(3, 10),
                true,
            ),
            (
                "never heard from one",
                state(false, None, log(3, 10)),
                log(3, 10),
                true,
            ),
            (
                "is the leader",
                state(true, quiet, log(3, 10)),
                log(5, 10),
                false,
            ),
        ];
        for (name, state, candidate, expected) in cases {
            assert_eq!(grants(&state, candidate, lease), expected, "{name}");
        }
    }

    #[test]
    fn a_majority_counts_the_candidate_itself() {
        let cases = [
            (1, 1, true),
            (1, 3, false),
            (2, 3, true),
            (2, 4, false),
            (3, 4, true),
            (3, 5, true),
        ];
        for (granted, voters, expected) in cases {
            assert_eq!(
                is_majority(granted, voters),
                expected,
                "{granted} of {voters}"
            );
        }
    }

    #[test]
    fn a_lost_leader_is_replaced_once_its_lease_runs_out() {
        let ms = Duration::from_millis;
        let timing = Timing {
            lease: ms(2000),
            timeout_min: ms(1000),
            timeout_max: ms(2000),
        };
        for _ in 0..100 {
            let d = timing.draw();
            assert!(d.timeout >= ms(1000) && d.timeout < ms(2000), "{d:?}");
            assert!(d.stagger < ms(250), "{d:?}");
        }
        let t0 = Instant::now();
        let at = |offset: u64| t0 + ms(offset);
        let draw = Draw {
            stagger: ms(100),
            timeout: ms(1500),
        };
        let moments = |heard, refused, elected, committed| Moments {
            heard,
            started: t0,
            refused,
            elected,
            committed,
        };
        let cases = [
            // (what, moments, due after t0 in ms)
            (
                "leader known, lost at 5 s",
                moments(Some(at(5000)), None, None, true),
                7100,
            ),
            (
                "new cluster, no leader yet",
                moments(None, None, None, false),
                1500,
            ),
            (
                "heard once, no leader now",
                moments(Some(at(5000)), None, None, false),
                6500,
            ),
            (
                "a refused pre-vote is asked again soon",
                moments(Some(at(5000)), Some(at(7100)), None, true),
                7350,
            ),
            (
                "an election that made no leader waits a timeout",
                moments(Some(at(5000)), None, Some(at(7100)), false),
                8600,
            ),
        ];
        for (what, m, due) in cases {
            assert_eq!(timing.due(&m, draw), at(due), "{what}");
        }
    }
}

//! A partition leader asking the transaction's coordinator again to add
//! partitions for a producer of transaction version 2 (KIP-890 part 2), as
//! Kafka's `ReplicaManager` does for a Produce (KAFKA-18654). While the
//! producer's previous transaction is still completing (its markers being
//! written), the coordinator answers CONCURRENT_TRANSACTIONS; at short
//! commit intervals that is common, and asking again after
//! `add.partitions.to.txn.retry.backoff.ms`, until
//! `add.partitions.to.txn.retry.backoff.max.ms` after the first ask, costs
//! the producer far less than retrying the whole Produce after its own
//! `retry.backoff.ms`. Verifications (producers before version 2) are
//! answered as the coordinator gives them, as in Kafka.

use std::future::Future;
use std::time::Duration;

use super::error::TxnError;
use super::verify::Ask;

/// The longest a leader keeps asking. Kafka bounds the setting by its
/// `request.timeout.ms`; Gregor has no such setting and uses its default.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The coordinator's answer to an ask: for each partition, whether it is
/// in (was added to) the transaction, or why it could not say.
pub type Answer = Result<Vec<bool>, TxnError>;

/// When a leader asks the coordinator again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddRetry {
    /// The wait before asking again.
    backoff: Duration,
    /// How long after the first ask an answer is taken whatever it is.
    give_up_after: Duration,
}

/// What the leader does with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The answer goes to the producer's writes.
    Take,
    /// Ask again after this long.
    AskAgainIn(Duration),
}

impl AddRetry {
    /// From `add.partitions.to.txn.retry.backoff.ms` and
    /// `add.partitions.to.txn.retry.backoff.max.ms` (milliseconds; the
    /// latter bounded by [`REQUEST_TIMEOUT`]).
    pub fn new(backoff_ms: i32, max_ms: i32) -> AddRetry {
        let ms = |v: i32| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        AddRetry {
            backoff: ms(backoff_ms),
            give_up_after: ms(max_ms).min(REQUEST_TIMEOUT),
        }
    }

    /// What to do with `answer` to `ask`, arrived `elapsed` after the
    /// first ask (Kafka's `maybeRetryOnConcurrentTransactions`): an add
    /// refused with CONCURRENT_TRANSACTIONS is asked again while the time
    /// is not up; anything else is taken as it is.
    pub fn next(&self, ask: Ask, elapsed: Duration, answer: &Answer) -> Next {
        match (ask, answer) {
            (Ask::Add, Err(TxnError::Concurrent)) if elapsed < self.give_up_after => {
                Next::AskAgainIn(self.backoff)
            }
            _ => Next::Take,
        }
    }
}

/// Asks with `asking` (one ask of the coordinator each call) until
/// `retry` takes the answer, and returns it.
pub async fn ask_until_taken<F, Fut>(retry: AddRetry, ask: Ask, mut asking: F) -> Answer
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Answer>,
{
    let start = tokio::time::Instant::now();
    loop {
        let answer = asking().await;
        match retry.next(ask, start.elapsed(), &answer) {
            Next::Take => return answer,
            Next::AskAgainIn(wait) => tokio::time::sleep(wait).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_add_refused_as_concurrent_is_asked_again_in_time() {
        let ms = Duration::from_millis;
        let concurrent: Answer = Err(TxnError::Concurrent);
        let added: Answer = Ok(vec![true]);
        let not_in: Answer = Ok(vec![false]);
        let fenced: Answer = Err(TxnError::ProducerFenced);
        let loading: Answer = Err(TxnError::LoadInProgress);
        let defaults = AddRetry::new(20, 100);
        let never = AddRetry::new(20, 0);
        let long = AddRetry::new(5, i32::MAX);
        // (settings, ask, elapsed, answer, what is done)
        let cases = [
            (
                defaults,
                Ask::Add,
                ms(0),
                &concurrent,
                Next::AskAgainIn(ms(20)),
            ),
            (
                defaults,
                Ask::Add,
                ms(99),
                &concurrent,
                Next::AskAgainIn(ms(20)),
            ),
            (defaults, Ask::Add, ms(100), &concurrent, Next::Take),
            (defaults, Ask::Add, ms(150), &concurrent, Next::Take),
            (defaults, Ask::Add, ms(0), &added, Next::Take),
            (defaults, Ask::Add, ms(0), &not_in, Next::Take),
            (defaults, Ask::Add, ms(0), &fenced, Next::Take),
            // Only CONCURRENT_TRANSACTIONS: a coordinator that is moving
            // or loading is the producer's to retry, as in Kafka.
            (defaults, Ask::Add, ms(0), &loading, Next::Take),
            // Verifications are never asked again.
            (defaults, Ask::Verify, ms(0), &concurrent, Next::Take),
            (never, Ask::Add, ms(0), &concurrent, Next::Take),
            // The time is bounded by Kafka's default request.timeout.ms.
            (
                long,
                Ask::Add,
                ms(29_999),
                &concurrent,
                Next::AskAgainIn(ms(5)),
            ),
            (long, Ask::Add, ms(30_000), &concurrent, Next::Take),
        ];
        for (retry, ask, elapsed, answer, want) in cases {
            assert_eq!(
                retry.next(ask, elapsed, answer),
                want,
                "{retry:?} {ask:?} after {elapsed:?}: {answer:?}"
            );
        }
    }
}

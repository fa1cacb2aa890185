//! The asks this broker sends to another broker's transaction coordinator
//! (verifications and adds for producers' transactions, see `verify`),
//! gathered into shared AddPartitionsToTxn requests as Kafka's
//! `AddPartitionsToTxnManager` gathers them: while a request to a broker is
//! out, the asks that arrive meanwhile wait and go together in the next
//! one, so many transactional producers cost a request per round trip
//! rather than one each. One task per coordinator broker and request
//! version sends them; a request names each transactional id once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTransaction;
use kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult;
use kafka_protocol::messages::AddPartitionsToTxnRequest;
use tokio::sync::{mpsc, oneshot};

use super::error::TxnError;
use crate::inter_broker::InterBroker;
use crate::metadata::image::ClusterImage;

/// How the coordinator brokers know the asking one.
const CLIENT_ID: &str = "gregor-txn-verify";

/// How long the other coordinator may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The most transactions one request carries.
const MOST_PER_REQUEST: usize = 500;

/// A coordinator's answer for one transaction: its partitions' results,
/// or why the whole request failed.
pub type Answer = Result<Vec<AddPartitionsToTxnTopicResult>, TxnError>;

/// One ask waiting for its request.
struct Pending {
    image: Arc<ClusterImage>,
    transaction: AddPartitionsToTxnTransaction,
    reply: oneshot::Sender<Answer>,
}

/// The senders, by coordinator broker and request version.
pub struct Asks {
    dial: InterBroker,
    queues: Mutex<HashMap<(i32, i16), mpsc::UnboundedSender<Pending>>>,
}

impl Asks {
    /// Asks sent over `dial`.
    pub fn new(dial: InterBroker) -> Asks {
        Asks {
            dial,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `transaction` to the coordinator on `broker` (found in
    /// `image`) in an AddPartitionsToTxn of `version`, with whatever else
    /// is waiting for that broker, and returns its part of the answer.
    pub async fn ask(
        &self,
        image: Arc<ClusterImage>,
        broker: i32,
        version: i16,
        transaction: AddPartitionsToTxnTransaction,
    ) -> Answer {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            image,
            transaction,
            reply,
        };
        self.queue(broker, version)
            .send(pending)
            .map_err(|_| TxnError::NotAvailable("the coordinator's sender stopped".into()))?;
        answer
            .await
            .map_err(|_| TxnError::NotAvailable("the coordinator's sender stopped".into()))?
    }

    /// The queue of `broker`'s sender, started on first use.
    fn queue(&self, broker: i32, version: i16) -> mpsc::UnboundedSender<Pending> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .entry((broker, version))
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(send_all(self.dial.clone(), broker, version, rx));
                tx
            })
            .clone()
    }
}

/// Sends what `queue` holds to `broker`, a request at a time, each with
/// every ask waiting when it goes.
async fn send_all(
    dial: InterBroker,
    broker: i32,
    version: i16,
    mut queue: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = queue.recv().await {
        let mut waiting = vec![first];
        while waiting.len() < MOST_PER_REQUEST {
            match queue.try_recv() {
                Ok(more) => waiting.push(more),
                Err(_) => break,
            }
        }
        for round in rounds(waiting, |p| p.transaction.transactional_id.to_string()) {
            send(&dial, broker, version, round).await;
        }
    }
}

/// Splits `items` into requests that name each id once, in order.
fn rounds<T>(items: Vec<T>, id: impl Fn(&T) -> String) -> Vec<Vec<T>> {
    let mut rounds: Vec<(HashSet<String>, Vec<T>)> = Vec::new();
    for item in items {
        let key = id(&item);
        match rounds.iter_mut().find(|(ids, _)| !ids.contains(&key)) {
            Some((ids, round)) => {
                ids.insert(key);
                round.push(item);
            }
            None => rounds.push((HashSet::from([key]), vec![item])),
        }
    }
    rounds.into_iter().map(|(_, round)| round).collect()
}

/// One request for `round`, each ask answered with its part.
async fn send(dial: &InterBroker, broker: i32, version: i16, round: Vec<Pending>) {
    let Some(image) = round.last().map(|p| p.image.clone()) else {
        return;
    };
    let mut replies = Vec::with_capacity(round.len());
    let mut request = AddPartitionsToTxnRequest::default();
    for p in round {
        replies.push((p.transaction.transactional_id.to_string(), p.reply));
        request.transactions.push(p.transaction);
    }
    let answer = tokio::time::timeout(
        TIMEOUT,
        dial.request(&image, broker, CLIENT_ID, &request, version),
    )
    .await;
    let mut results = match answer {
        Err(_) => {
            let e = TxnError::NotAvailable("the transaction coordinator did not answer".into());
            return answer_all(replies, &e);
        }
        Ok(Err(e)) => return answer_all(replies, &TxnError::NotAvailable(e.to_string())),
        Ok(Ok(r)) if r.error_code != 0 => {
            return answer_all(replies, &super::verify::from_code(r.error_code))
        }
        Ok(Ok(r)) => r
            .results_by_transaction
            .into_iter()
            .map(|t| (t.transactional_id.to_string(), t.topic_results))
            .collect::<HashMap<_, _>>(),
    };
    for (id, reply) in replies {
        let part = results
            .remove(&id)
            .ok_or_else(|| TxnError::NotAvailable("the coordinator left a transaction out".into()));
        // The asker may have gone (its client disconnected): nothing to do.
        let _ = reply.send(part);
    }
}

fn answer_all(replies: Vec<(String, oneshot::Sender<Answer>)>, e: &TxnError) {
    for (_, reply) in replies {
        let _ = reply.send(Err(e.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_each_transaction_once() {
        let asks = ["a", "b", "a", "c", "a", "b"];
        let got = rounds(asks.to_vec(), |s| s.to_string());
        assert_eq!(got, [vec!["a", "b", "c"], vec!["a", "b"], vec!["a"]]);
        assert!(rounds(Vec::<&str>::new(), |s| s.to_string()).is_empty());
    }
}

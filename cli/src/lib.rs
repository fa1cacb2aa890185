//! Gregor's command-line Kafka tools, for people who `kubectl exec` or
//! `podman exec` into a broker: `gregor topics`, `gregor produce` and
//! `gregor consume`, shaped after Kafka's `kafka-topics.sh` and console
//! producer and consumer. They speak the Kafka protocol through
//! `gregor-client`, so they work against any Kafka 4 cluster too.
//!
//! [`cluster`] finds brokers and leaders; [`topics`], [`produce`] and
//! [`consume`] are the commands; [`group`] is consumer-group membership;
//! [`partitioner`] places keyed records as Kafka's Java client does.

pub mod cluster;
pub mod consume;
pub mod error;
pub mod group;
pub mod partitioner;
pub mod produce;
pub mod topics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use cluster::Cluster;
pub use error::CliError;

const CLIENT_ID: &str = "gregor-cli";

/// Where the cluster is.
#[derive(Args, Debug)]
pub struct Connect {
    /// Brokers to start from, `host:port[,host:port...]`.
    #[arg(
        long,
        global = true,
        default_value = "localhost:9092",
        value_name = "SERVERS"
    )]
    pub bootstrap_server: String,
}

/// The client commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, list, describe or delete topics (like kafka-topics.sh).
    Topics {
        #[command(flatten)]
        connect: Connect,
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Write each line of standard input as a record (like
    /// kafka-console-producer.sh).
    Produce {
        #[command(flatten)]
        connect: Connect,
        /// Topic to write to.
        #[arg(long)]
        topic: String,
        /// `all` waits for every in-sync replica, `1` for the leader only.
        #[arg(long, default_value = "all", value_parser = ["all", "-1", "1"])]
        acks: String,
        /// Split each line into key and value at the first SEP.
        #[arg(long, value_name = "SEP")]
        key_separator: Option<String>,
    },
    /// Print records to standard output, one value per line (like
    /// kafka-console-consumer.sh). Ctrl-C or SIGTERM stops it.
    Consume {
        #[command(flatten)]
        connect: Connect,
        /// Topic to read.
        #[arg(long)]
        topic: String,
        /// Read as a member of this consumer group, from its committed
        /// offsets, committing as it goes.
        #[arg(long)]
        group: Option<String>,
        /// Without a committed offset, start at the first record rather
        /// than at the next one written.
        #[arg(long)]
        from_beginning: bool,
        /// Stop after N records.
        #[arg(long, value_name = "N")]
        max_messages: Option<u64>,
        /// Stop when no record arrived for MS milliseconds.
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
        /// Print `key<SEP>value`.
        #[arg(long)]
        print_key: bool,
        /// Between key and value with --print-key.
        #[arg(long, value_name = "SEP", default_value = "\t")]
        key_separator: String,
    },
}

/// What `gregor topics` does.
#[derive(Subcommand, Debug)]
pub enum TopicsAction {
    /// Names of all topics.
    List,
    /// Partitions, leaders, replicas and ISR of one topic or all.
    Describe {
        /// Only this topic.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Create a topic.
    Create {
        /// Name.
        #[arg(long)]
        topic: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        /// Replicas of each partition (default: the broker's
        /// default.replication.factor).
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// A topic config, `key=value`; repeat for more.
        #[arg(long, value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        /// Name.
        #[arg(long)]
        topic: String,
    },
}

/// Runs a client command to its end. `stop` resolving (Ctrl-C, SIGTERM)
/// ends a consumer cleanly: it commits and leaves its group.
pub async fn run(
    command: Command,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    match command {
        Command::Topics { connect, action } => {
            let mut cluster = Cluster::connect(&connect.bootstrap_server, CLIENT_ID).await?;
            let text = match action {
                TopicsAction::List => topics::list(&mut cluster).await?,
                TopicsAction::Describe { topic } => {
                    topics::describe(&mut cluster, topic.as_deref()).await?
                }
                TopicsAction::Create {
                    topic,
                    partitions,
                    replication_factor,
                    config,
                } => {
                    let new = topics::NewTopic {
                        name: &topic,
                        partitions,
                        replication_factor,
                        configs: &config,
                    };
                    topics::create(&mut cluster, new).await?
                }
                TopicsAction::Delete { topic } => topics::delete(&mut cluster, &topic).await?,
            };
            print!("{text}");
            Ok(())
        }
        Command::Produce {
            connect,
            topic,
            acks,
            key_separator,
        } => {
            let mut cluster = Cluster::connect(&connect.bootstrap_server, CLIENT_ID).await?;
            let opts = produce::ProduceOptions {
                topic,
                acks: if acks == "1" { 1 } else { -1 },
                key_separator,
                timeout_ms: 30_000,
            };
            produce::produce(&mut cluster, &opts, tokio::io::stdin()).await?;
            Ok(())
        }
        Command::Consume {
            connect,
            topic,
            group,
            from_beginning,
            max_messages,
            timeout_ms,
            print_key,
            key_separator,
        } => {
            let mut cluster = Cluster::connect(&connect.bootstrap_server, CLIENT_ID).await?;
            let opts = consume::ConsumeOptions {
                topic,
                group,
                from_beginning,
                max_messages,
                timeout: timeout_ms.map(Duration::from_millis),
                print_key,
                key_separator,
            };
            let stopped = Arc::new(AtomicBool::new(false));
            let flag = stopped.clone();
            tokio::spawn(async move {
                stop.await;
                flag.store(true, Ordering::Relaxed);
            });
            let mut out = tokio::io::stdout();
            consume::consume(&mut cluster, &opts, &mut out, &stopped).await?;
            Ok(())
        }
    }
}

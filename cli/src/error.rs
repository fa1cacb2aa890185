//! What the tools report when they fail.

use std::fmt;

use gregor_client::ClientError;
use kafka_protocol::ResponseError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No bootstrap server answered.
    #[error("cannot reach any bootstrap server of {servers}: {last}")]
    Unreachable {
        /// The list given.
        servers: String,
        /// The last failure.
        last: ClientError,
    },
    /// A broker named in the metadata could not be reached.
    #[error("cannot reach broker {id} at {addr}: {last}")]
    BrokerUnreachable {
        /// The broker.
        id: i32,
        /// Its advertised address.
        addr: String,
        /// The last failure.
        last: ClientError,
    },
    /// A broker connection failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The cluster refused a request.
    #[error("{what}: {}{}", code_name(*code), message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        /// What was asked.
        what: String,
        /// Kafka error code.
        code: i16,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// Records could not be encoded or decoded.
    #[error("records: {0}")]
    Records(String),
    /// The command line or input cannot be used.
    #[error("{0}")]
    Usage(String),
    /// Reading standard input or writing standard output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn code_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} (error {code})"),
        None => format!("error code {code}"),
    }
}

/// `Ok` for error code 0, else a [`CliError::Kafka`] about `what`.
pub fn check(code: i16, message: Option<&str>, what: impl fmt::Display) -> Result<(), CliError> {
    if code == 0 {
        return Ok(());
    }
    Err(CliError::Kafka {
        what: what.to_string(),
        code,
        message: message.filter(|m| !m.is_empty()).map(str::to_owned),
    })
}

/// Whether `code` goes away once the client has fresh metadata (a leader
/// moved, a topic is still being created).
pub fn is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

//! Users' SCRAM credentials, kept in the metadata quorum:
//! AlterUserScramCredentials and DescribeUserScramCredentials (KIP-554),
//! what `kafka-configs --entity-type users --alter --add-config
//! 'SCRAM-SHA-512=[password=...]'` sends. A client sends the salt and the
//! salted password, never the password; the broker derives and stores the
//! keys. Each user's changes are checked together first: one bad change
//! refuses all of that user's, as in Kafka.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;

use super::{authorize, propose, text};
use crate::metadata::image::ClusterImage;
use crate::metadata::records::MetadataRecord;
use crate::node::Node;
use crate::protocol::RequestContext;
use crate::security::acl::Operation;
use crate::security::sasl::scram::{check_iterations, ScramCredential};
use crate::security::sasl::Mechanism;

/// A mechanism by its number in these APIs (Kafka's ScramMechanism type).
fn mechanism(code: i8) -> Option<Mechanism> {
    match code {
        1 => Some(Mechanism::ScramSha256),
        2 => Some(Mechanism::ScramSha512),
        _ => None,
    }
}

/// The number of a SCRAM mechanism in these APIs.
fn code(mechanism: Mechanism) -> i8 {
    match mechanism {
        Mechanism::ScramSha512 => 2,
        _ => 1,
    }
}

/// One requested change, as parsed from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Remove the user's credential for a mechanism (by its code).
    Delete {
        /// Mechanism code.
        mechanism: i8,
    },
    /// Set it.
    Upsert {
        /// Mechanism code.
        mechanism: i8,
        /// PBKDF2 iterations.
        iterations: i32,
        /// Salt.
        salt: Vec<u8>,
        /// The salted password (Hi(password, salt, iterations)).
        salted_password: Vec<u8>,
    },
}

/// Why a user's changes are refused: Kafka's error and text.
pub type Refused = (ResponseError, String);

/// Checks one user's changes against the metadata; the records to
/// propose, or why none is.
pub fn plan(
    image: &ClusterImage,
    user: &str,
    changes: &[Change],
) -> Result<Vec<MetadataRecord>, Refused> {
    let unacceptable = |why: &str| (ResponseError::UnacceptableCredential, why.to_string());
    if user.is_empty() {
        return Err(unacceptable("Username must not be empty"));
    }
    let mut seen = BTreeSet::new();
    let mut records = Vec::new();
    for change in changes {
        let code = match change {
            Change::Delete { mechanism } | Change::Upsert { mechanism, .. } => *mechanism,
        };
        let Some(m) = mechanism(code) else {
            return Err((
                ResponseError::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism".into(),
            ));
        };
        if !seen.insert(m) {
            return Err((
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".into(),
            ));
        }
        match change {
            Change::Delete { .. } => {
                if !image.scram.get(user).is_some_and(|c| c.contains_key(&m)) {
                    return Err((
                        ResponseError::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist".into(),
                    ));
                }
                records.push(MetadataRecord::DeleteScramCredential {
                    user: user.to_string(),
                    mechanism: m,
                });
            }
            Change::Upsert {
                iterations,
                salt,
                salted_password,
                ..
            } => {
                let iterations =
                    check_iterations(*iterations).map_err(|e| unacceptable(&e.to_string()))?;
                if salt.is_empty() || salted_password.is_empty() {
                    return Err(unacceptable("Salt and salted password must not be empty"));
                }
                records.push(MetadataRecord::SetScramCredential {
                    user: user.to_string(),
                    mechanism: m,
                    credential: ScramCredential::from_salted_password(
                        m,
                        salt.clone(),
                        salted_password,
                        iterations,
                    ),
                });
            }
        }
    }
    Ok(records)
}

/// Sets and removes users' SCRAM credentials.
pub async fn alter_user_scram_credentials(
    node: &Node,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut by_user: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for d in request.deletions {
        by_user
            .entry(d.name.to_string())
            .or_default()
            .push(Change::Delete {
                mechanism: d.mechanism,
            });
    }
    for u in request.upsertions {
        by_user
            .entry(u.name.to_string())
            .or_default()
            .push(Change::Upsert {
                mechanism: u.mechanism,
                iterations: u.iterations,
                salt: u.salt.to_vec(),
                salted_password: u.salted_password.to_vec(),
            });
    }
    let mut response = AlterUserScramCredentialsResponse::default();
    let allowed = authorize::on_cluster(node, ctx, Operation::Alter);
    for (user, changes) in by_user {
        let outcome = match plan(&node.image(), &user, &changes) {
            _ if !allowed => Err((
                ResponseError::ClusterAuthorizationFailed,
                "changing SCRAM credentials takes ALTER on the cluster".to_string(),
            )),
            Ok(records) => propose_all(node, records).await,
            Err(refused) => Err(refused),
        };
        let mut result = AlterUserScramCredentialsResult::default();
        result.user = text(user.clone());
        match outcome {
            Ok(()) => tracing::info!(user, "SCRAM credentials altered"),
            Err((error, message)) => {
                result.error_code = error.code();
                result.error_message = Some(text(message));
            }
        }
        response.results.push(result);
    }
    response
}

/// Proposes a user's records in order, stopping at the first refusal.
async fn propose_all(node: &Node, records: Vec<MetadataRecord>) -> Result<(), Refused> {
    for record in records {
        propose(node, record).await?;
    }
    Ok(())
}

/// Which users have SCRAM credentials, for which mechanisms and with how
/// many iterations (never the keys).
pub fn describe_user_scram_credentials(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let image = node.image();
    let mut response = DescribeUserScramCredentialsResponse::default();
    if !authorize::on_cluster(node, ctx, Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(text(
            "listing SCRAM credentials takes DESCRIBE on the cluster",
        ));
        return response;
    }
    let asked: Vec<String> = match request.users {
        Some(users) if !users.is_empty() => users.into_iter().map(|u| u.name.to_string()).collect(),
        _ => image.scram.keys().cloned().collect(),
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for user in &asked {
        *counts.entry(user).or_default() += 1;
    }
    let mut done = BTreeSet::new();
    for user in &asked {
        if !done.insert(user) {
            continue;
        }
        let mut result = DescribeUserScramCredentialsResult::default();
        result.user = text(user.clone());
        if counts[user.as_str()] > 1 {
            result.error_code = ResponseError::DuplicateResource.code();
            result.error_message = Some(text(
                "Cannot describe SCRAM credentials for the same user twice in a single request",
            ));
        } else if let Some(credentials) = image.scram.get(user) {
            result.credential_infos = credentials
                .iter()
                .map(|(m, c)| {
                    let mut info = CredentialInfo::default();
                    info.mechanism = code(*m);
                    info.iterations = c.iterations as i32;
                    info
                })
                .collect();
        } else {
            result.error_code = ResponseError::ResourceNotFound.code();
            result.error_message = Some(text(
                "Attempt to describe a user credential that does not exist",
            ));
        }
        response.results.push(result);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(mechanism: i8, iterations: i32) -> Change {
        Change::Upsert {
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: b"salted".to_vec(),
        }
    }

    #[test]
    fn a_users_changes_are_checked_together() {
        let mut image = ClusterImage::default();
        std::sync::Arc::make_mut(&mut image.scram)
            .entry("bob".into())
            .or_default()
            .insert(
                Mechanism::ScramSha256,
                ScramCredential::from_password(Mechanism::ScramSha256, "pw", b"s".to_vec(), 4096),
            );
        let cases: Vec<(&str, Vec<Change>, Option<ResponseError>)> = vec![
            ("alice", vec![upsert(2, 8192)], None),
            ("alice", vec![upsert(1, 4096), upsert(2, 4096)], None),
            ("bob", vec![Change::Delete { mechanism: 1 }], None),
            (
                "bob",
                vec![Change::Delete { mechanism: 2 }],
                Some(ResponseError::ResourceNotFound),
            ),
            (
                "alice",
                vec![upsert(3, 4096)],
                Some(ResponseError::UnsupportedSaslMechanism),
            ),
            (
                "alice",
                vec![upsert(2, 4095)],
                Some(ResponseError::UnacceptableCredential),
            ),
            (
                "alice",
                vec![upsert(2, 16385)],
                Some(ResponseError::UnacceptableCredential),
            ),
            (
                "",
                vec![upsert(2, 4096)],
                Some(ResponseError::UnacceptableCredential),
            ),
            (
                "bob",
                vec![Change::Delete { mechanism: 1 }, upsert(1, 4096)],
                Some(ResponseError::DuplicateResource),
            ),
            (
                "alice",
                vec![Change::Upsert {
                    mechanism: 2,
                    iterations: 4096,
                    salt: Vec::new(),
                    salted_password: b"x".to_vec(),
                }],
                Some(ResponseError::UnacceptableCredential),
            ),
        ];
        for (user, changes, expected) in cases {
            let outcome = plan(&image, user, &changes);
            assert_eq!(
                outcome.as_ref().err().map(|(e, _)| *e),
                expected,
                "{user} {changes:?}"
            );
            if let Ok(records) = outcome {
                assert_eq!(records.len(), changes.len());
            }
        }
    }
}

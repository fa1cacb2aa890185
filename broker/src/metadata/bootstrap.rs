//! What a new cluster starts with besides its id: records given before the
//! first start with `gregor format` (as Kafka's `kafka-storage format
//! --add-scram` does), so that SCRAM users exist from the first moment,
//! for instance the ones brokers and operators log in with. The records
//! wait in `bootstrap.json` of the metadata directory; the controller that
//! names the cluster commits them together with its id, once, and a
//! cluster that already exists never reads them again.

use std::path::Path;

use crate::metadata::records::MetadataRecord;
use crate::security::sasl::scram::{self, check_iterations, ScramCredential};
use crate::security::sasl::Mechanism;

/// The file in the metadata directory.
pub const FILE: &str = "bootstrap.json";

/// Why `gregor format` refused.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// An `--add-scram` value that does not parse.
    #[error("--add-scram {given:?}: {reason}")]
    Scram {
        /// The value with its password hidden.
        given: String,
        /// What is wrong.
        reason: String,
    },
    /// The directory already holds a cluster's metadata.
    #[error("{0} already holds a cluster's metadata log: records given at format time apply to a new cluster only (use kafka-configs on a running one)")]
    Formatted(String),
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Parses Kafka's `--add-scram` form,
/// `SCRAM-SHA-512=[name=alice,password=alice-secret,iterations=8192]`, into
/// the record that stores the credential (a random salt; 4096 iterations
/// unless given).
pub fn parse_add_scram(text: &str) -> Result<MetadataRecord, BootstrapError> {
    let refuse = |reason: &str| BootstrapError::Scram {
        given: hide_password(text),
        reason: reason.to_string(),
    };
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| refuse("expected MECHANISM=[name=...,password=...]"))?;
    let mechanism: Mechanism = name
        .trim()
        .parse()
        .map_err(|_| refuse("unknown mechanism"))?;
    if !mechanism.is_scram() {
        return Err(refuse(
            "the mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512",
        ));
    }
    let inner = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| refuse("the attributes go in [...]"))?;
    let (mut user, mut password, mut iterations) = (None, None, scram::MIN_ITERATIONS);
    for attribute in inner.split(',') {
        let (key, value) = attribute
            .split_once('=')
            .ok_or_else(|| refuse("each attribute is key=value"))?;
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "name" => user = Some(value.to_string()),
            "password" => password = Some(value.to_string()),
            "iterations" => {
                let n: i32 = value
                    .parse()
                    .map_err(|_| refuse("iterations is not a number"))?;
                iterations = check_iterations(n).map_err(|e| refuse(&e.to_string()))?;
            }
            _ => return Err(refuse("the attributes are name, password and iterations")),
        }
    }
    let user = user
        .filter(|u| !u.is_empty())
        .ok_or_else(|| refuse("name is missing"))?;
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| refuse("password is missing"))?;
    Ok(MetadataRecord::SetScramCredential {
        user,
        mechanism,
        credential: ScramCredential::from_password(
            mechanism,
            &password,
            scram::random_salt(),
            iterations,
        ),
    })
}

/// `text` with the password attribute's value replaced, for messages.
fn hide_password(text: &str) -> String {
    text.split(',')
        .map(|part| match part.split_once("password=") {
            Some((head, _)) => format!("{head}password=(hidden)"),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes `records` for the new cluster whose metadata lives in `dir`;
/// refused when the directory already holds a metadata log.
pub fn write(dir: &Path, records: &[MetadataRecord]) -> Result<(), BootstrapError> {
    let io = |source| BootstrapError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let formatted = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .any(|e| e.file_name() != FILE);
    if formatted {
        return Err(BootstrapError::Formatted(dir.display().to_string()));
    }
    let path = dir.join(FILE);
    let text = serde_json::to_vec_pretty(records).map_err(|e| io(std::io::Error::other(e)))?;
    std::fs::write(&path, text).map_err(|source| BootstrapError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The records waiting in `dir`; none when there is no file.
pub fn read(dir: &Path) -> Result<Vec<MetadataRecord>, BootstrapError> {
    let path = dir.join(FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(BootstrapError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    serde_json::from_slice(&text).map_err(|e| BootstrapError::Io {
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_scram_values_as_kafka_storage_takes_them() {
        let record =
            parse_add_scram("SCRAM-SHA-512=[name=alice,password=alice-secret,iterations=8192]")
                .expect("parses");
        let MetadataRecord::SetScramCredential {
            user,
            mechanism,
            credential,
        } = record
        else {
            panic!("a SCRAM credential record");
        };
        assert_eq!(
            (user.as_str(), mechanism, credential.iterations),
            ("alice", Mechanism::ScramSha512, 8192)
        );
        let again = ScramCredential::from_password(
            mechanism,
            "alice-secret",
            credential.salt.clone(),
            8192,
        );
        assert_eq!(again, credential, "derived from the password and its salt");
        let quoted =
            parse_add_scram(r#"SCRAM-SHA-256=[name="bob",password="bob-secret"]"#).expect("parses");
        assert!(
            matches!(quoted, MetadataRecord::SetScramCredential { ref user, credential: ScramCredential { iterations: 4096, .. }, .. } if user == "bob")
        );

        for bad in [
            "SCRAM-SHA-512",
            "PLAIN=[name=a,password=b]",
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-512=name=a,password=b",
            "SCRAM-SHA-512=[name=a]",
            "SCRAM-SHA-512=[password=top-secret]",
            "SCRAM-SHA-512=[name=a,password=top-secret,iterations=10]",
            "SCRAM-SHA-512=[name=a,password=top-secret,salt=x]",
        ] {
            let error = parse_add_scram(bad).expect_err(bad).to_string();
            assert!(!error.contains("top-secret"), "{error}");
        }
    }

    #[test]
    fn records_wait_in_a_new_directory_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read(dir.path()).expect("no file").is_empty());
        let records = vec![parse_add_scram("SCRAM-SHA-256=[name=a,password=b]").expect("parses")];
        write(dir.path(), &records).expect("written");
        write(dir.path(), &records).expect("written again before the first start");
        assert_eq!(read(dir.path()).expect("read"), records);
        std::fs::write(dir.path().join("vote.json"), "{}").expect("a metadata file");
        assert!(matches!(
            write(dir.path(), &records),
            Err(BootstrapError::Formatted(_))
        ));
    }
}

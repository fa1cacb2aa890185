//! OAUTHBEARER's settings on a SASL listener, by Kafka's names: where the
//! identity provider's keys are (`sasl.oauthbearer.jwks.endpoint.url`, a
//! `file:` or `http(s):` URL, how often it is fetched again, and the trust
//! store for the provider's certificate from the listener's JAAS line, as
//! Kafka takes it), which issuer and audiences tokens must name, the claim
//! that names the user, the clock skew allowed. As in Kafka 4.4, a missing
//! expected issuer or audience stops the broker unless it is explicitly
//! waived (`sasl.oauthbearer.allow.unverified.issuer` / `.audience`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::setting::{list_items, parse_bool};
use super::values::Values;
use super::{invalid, ConfigError};
use crate::security::sasl::jwks::JwksSource;
use crate::security::sasl::oauthbearer::TokenRules;
use crate::security::sasl::{idp, jaas};

/// The validator class Kafka 4 names (and Kafka 3's, in `secured`).
const VALIDATORS: [&str; 2] = [
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];

/// Kafka's default server handler, which accepts unsigned tokens.
const UNSECURED_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

/// How one listener checks bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// Where the identity provider's keys come from.
    pub jwks: JwksSource,
    /// What a token must satisfy.
    pub rules: TokenRules,
}

impl OAuthSettings {
    /// The settings in force for `listener`, which offers OAUTHBEARER.
    pub fn for_listener(values: &Values, listener: &str) -> Result<OAuthSettings, ConfigError> {
        let get = |key: &str| values.for_listener(listener, key);
        let refuse = |reason: String| ConfigError::Listener {
            listener: listener.to_string(),
            reason,
        };
        if let Some(p) = get("oauthbearer.sasl.server.callback.handler.class") {
            let class = p.value.trim();
            if class == UNSECURED_VALIDATOR {
                return Err(invalid(
                    &p,
                    "the unsecured validator accepts unsigned tokens; Gregor checks tokens against a JWKS (OAuthBearerValidatorCallbackHandler with sasl.oauthbearer.jwks.endpoint.url)".into(),
                ));
            }
            if !class.is_empty() && !VALIDATORS.contains(&class) {
                return Err(invalid(
                    &p,
                    format!(
                        "Gregor loads no Java classes; it validates tokens as {} does",
                        VALIDATORS[0]
                    ),
                ));
            }
        }
        let url = get("sasl.oauthbearer.jwks.endpoint.url")
            .filter(|p| !p.value.trim().is_empty())
            .ok_or_else(|| {
                refuse("OAUTHBEARER checks tokens against the identity provider's keys: set sasl.oauthbearer.jwks.endpoint.url to a file: URL of its JWKS".into())
            })?;
        let jwks = match url.value.trim() {
            u if u.starts_with("file:") => {
                let path = u.trim_start_matches("file:");
                // file:///a/b and file:/a/b both name /a/b.
                let path = format!("/{}", path.trim_start_matches('/'));
                JwksSource::File(PathBuf::from(path))
            }
            u if u.starts_with("https:") || u.starts_with("http:") => {
                idp::check_url(u).map_err(|e| invalid(&url, e.to_string()))?;
                let millis = |key: &str, default: u64| -> Result<Duration, ConfigError> {
                    match get(key) {
                        Some(p) => p
                            .value
                            .trim()
                            .parse::<u64>()
                            .ok()
                            .filter(|ms| *ms > 0)
                            .map(Duration::from_millis)
                            .ok_or_else(|| {
                                invalid(&p, "expected a number of milliseconds, above 0".into())
                            }),
                        None => Ok(Duration::from_millis(default)),
                    }
                };
                JwksSource::Url {
                    url: u.to_string(),
                    refresh: millis("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000)?,
                    backoff: millis("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", 100)?,
                    backoff_max: millis(
                        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
                        10_000,
                    )?,
                    trust_store: provider_trust_store(values, listener)?,
                }
            }
            _ => {
                return Err(invalid(
                    &url,
                    "expected a file:, https: or http: URL".into(),
                ))
            }
        };
        let audiences: BTreeSet<String> = get("sasl.oauthbearer.expected.audience")
            .map(|p| list_items(&p.value).into_iter().collect())
            .unwrap_or_default();
        let waived = |key: &str| get(key).and_then(|p| parse_bool(&p.value)).unwrap_or(false);
        if audiences.is_empty() && !waived("sasl.oauthbearer.allow.unverified.audience") {
            return Err(refuse(
                "set sasl.oauthbearer.expected.audience (tokens must name this cluster), or sasl.oauthbearer.allow.unverified.audience=true to accept any audience".into(),
            ));
        }
        let issuer = get("sasl.oauthbearer.expected.issuer")
            .map(|p| p.value.trim().to_string())
            .filter(|i| !i.is_empty());
        if issuer.is_none() && !waived("sasl.oauthbearer.allow.unverified.issuer") {
            return Err(refuse(
                "set sasl.oauthbearer.expected.issuer (the identity provider tokens must come from), or sasl.oauthbearer.allow.unverified.issuer=true to accept any issuer".into(),
            ));
        }
        let subject_claim = get("sasl.oauthbearer.sub.claim.name")
            .map(|p| p.value.trim().to_string())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "sub".into());
        let clock_skew_seconds = match get("sasl.oauthbearer.clock.skew.seconds") {
            Some(p) => p
                .value
                .trim()
                .parse()
                .map_err(|_| invalid(&p, "expected a number of seconds, 0 or more".into()))?,
            None => 30,
        };
        Ok(OAuthSettings {
            jwks,
            rules: TokenRules {
                audiences,
                issuer,
                subject_claim,
                clock_skew_seconds,
            },
        })
    }
}

/// The trust store for the provider's certificate: the
/// `ssl.truststore.location` option of the listener's OAUTHBEARER JAAS
/// line (PEM), where Kafka's validator takes its TLS settings from.
fn provider_trust_store(values: &Values, listener: &str) -> Result<Option<String>, ConfigError> {
    let Some(p) = values.for_listener(listener, "oauthbearer.sasl.jaas.config") else {
        return Ok(None);
    };
    // The JAAS line may hold secrets: errors name the key, not the value.
    let hidden = |reason: String| ConfigError::Invalid {
        key: p.key.clone(),
        value: "(hidden)".into(),
        origin: p.origin.clone(),
        reason,
    };
    let config = jaas::parse(&p.value).map_err(|e| hidden(e.to_string()))?;
    if let Some(kind) = config.options.get("ssl.truststore.type") {
        if !kind.eq_ignore_ascii_case("PEM") {
            return Err(hidden(format!(
                "ssl.truststore.type {kind} for the identity provider: Gregor reads PEM trust stores there"
            )));
        }
    }
    Ok(config.options.get("ssl.truststore.location").cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lines: &[(&str, &str)]) -> Result<OAuthSettings, ConfigError> {
        OAuthSettings::for_listener(&Values::broker_for_tests(lines), "SASL")
    }

    const URL: (&str, &str) = (
        "sasl.oauthbearer.jwks.endpoint.url",
        "file:///etc/idp/jwks.json",
    );
    const AUDIENCE: (&str, &str) = ("sasl.oauthbearer.expected.audience", "kafka,kafka-prod");
    const ISSUER: (&str, &str) = (
        "sasl.oauthbearer.expected.issuer",
        "https://idp.example/realms/x",
    );

    #[test]
    fn kafkas_settings_give_the_rules() {
        let s = settings(&[
            URL,
            AUDIENCE,
            ISSUER,
            (
                "listener.name.sasl.oauthbearer.sasl.server.callback.handler.class",
                VALIDATORS[0],
            ),
            ("sasl.oauthbearer.sub.claim.name", "client_id"),
            ("sasl.oauthbearer.clock.skew.seconds", "5"),
        ])
        .expect("valid");
        assert_eq!(
            s.jwks,
            JwksSource::File(PathBuf::from("/etc/idp/jwks.json"))
        );
        assert_eq!(s.rules.audiences.len(), 2);
        assert_eq!(s.rules.issuer.as_deref(), Some(ISSUER.1));
        assert_eq!(s.rules.subject_claim, "client_id");
        assert_eq!(s.rules.clock_skew_seconds, 5);
        let open = settings(&[
            ("sasl.oauthbearer.jwks.endpoint.url", "file:/k.json"),
            ("sasl.oauthbearer.allow.unverified.audience", "true"),
            ("sasl.oauthbearer.allow.unverified.issuer", "true"),
        ])
        .expect("waived");
        assert_eq!(open.jwks, JwksSource::File(PathBuf::from("/k.json")));
        assert!(open.rules.audiences.is_empty() && open.rules.issuer.is_none());
        assert_eq!(open.rules.subject_claim, "sub");
        assert_eq!(open.rules.clock_skew_seconds, 30);
    }

    #[test]
    fn a_provider_url_is_fetched_with_kafkas_timings_and_the_jaas_trust_store() {
        let s = settings(&[
            (
                "sasl.oauthbearer.jwks.endpoint.url",
                "https://idp.example/certs",
            ),
            ("sasl.oauthbearer.jwks.endpoint.refresh.ms", "60000"),
            (
                "listener.name.sasl.oauthbearer.sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ssl.truststore.location=\"/etc/idp/ca.pem\";",
            ),
            AUDIENCE,
            ISSUER,
        ])
        .expect("valid");
        assert_eq!(
            s.jwks,
            JwksSource::Url {
                url: "https://idp.example/certs".into(),
                refresh: Duration::from_secs(60),
                backoff: Duration::from_millis(100),
                backoff_max: Duration::from_secs(10),
                trust_store: Some("/etc/idp/ca.pem".into()),
            }
        );
    }

    #[test]
    fn unsafe_or_unsupported_settings_are_refused() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![AUDIENCE, ISSUER], "sasl.oauthbearer.jwks.endpoint.url"),
            (vec![URL, ISSUER], "expected.audience"),
            (vec![URL, AUDIENCE], "expected.issuer"),
            (
                vec![("sasl.oauthbearer.jwks.endpoint.url", "ftp://idp/jwks"), AUDIENCE, ISSUER],
                "expected a file:, https: or http: URL",
            ),
            (
                vec![
                    ("sasl.oauthbearer.jwks.endpoint.url", "https://idp/jwks"),
                    (
                        "oauthbearer.sasl.jaas.config",
                        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ssl.truststore.type=JKS ssl.truststore.password=hush;",
                    ),
                    AUDIENCE,
                    ISSUER,
                ],
                "PEM trust stores",
            ),
            (
                vec![
                    URL,
                    AUDIENCE,
                    ISSUER,
                    (
                        "oauthbearer.sasl.server.callback.handler.class",
                        UNSECURED_VALIDATOR,
                    ),
                ],
                "unsigned tokens",
            ),
            (
                vec![
                    URL,
                    AUDIENCE,
                    ISSUER,
                    (
                        "oauthbearer.sasl.server.callback.handler.class",
                        "com.example.Mine",
                    ),
                ],
                "no Java classes",
            ),
        ];
        for (lines, words) in cases {
            let err = settings(&lines).expect_err(words).to_string();
            assert!(err.contains(words), "{lines:?}: {err}");
        }
    }
}

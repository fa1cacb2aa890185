//! The cluster's certificate Secrets, planned from what they hold now:
//! the cluster CA (signs the brokers' and the operator's certificates) and
//! the clients CA (signs users'), each made and replaced by the operator
//! or supplied by the user, with the trust bundle the brokers and clients
//! read; the brokers' certificates; the operator's own. Making keys is the
//! only thing here that is not a plain function of its inputs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

use crate::crd::cluster::{CertificateAuthority, KafkaClusterSpec, ListenerType};
use crate::pki::authority::{Authority, Issued, LeafRequest, Usage};
use crate::pki::certificate::CertificateInfo;
use crate::pki::renewal::{self, Lifetimes, Reissue, Rotation, Seen, Step};
use crate::pki::PkiError;

use super::addresses::{resolved_host, External, NodeAddresses};
use super::names::Names;
use super::security::{broker_common_name, operator_common_name, CA_CERT_KEY, ORGANIZATION};

/// Key of an authority's private key in its Secret.
pub const CA_KEY_KEY: &str = "ca.key";
/// Keys of a successor authority while it is introduced.
pub const NEXT_CERT_KEY: &str = "next.crt";
/// See [`NEXT_CERT_KEY`].
pub const NEXT_KEY_KEY: &str = "next.key";

/// Key of the operator's key and certificate in its Secret.
pub const OPERATOR_KEY: &str = "operator.pem";

/// A Secret's data, as text.
pub type SecretData = BTreeMap<String, String>;

/// The text under `key` of a Secret, if it is there and UTF-8.
pub fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// A Secret of `data`, as the operator writes its Secrets.
pub fn secret(metadata: ObjectMeta, data: &SecretData) -> Secret {
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// A Secret's whole data as text (keys whose values are not UTF-8 are
/// left out: none of the operator's are).
pub fn secret_data(secret: &Secret) -> SecretData {
    secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
        .collect()
}

/// Which of the cluster's two authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Signs the brokers' and the operator's certificates.
    Cluster,
    /// Signs users' client certificates.
    Clients,
}

impl Which {
    /// As names and messages say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Clients => "clients",
        }
    }
}

/// An authority's Secrets as found.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The private Secret: `ca.crt` and `ca.key` (and `next.*` while a
    /// successor is introduced). The user's, when they supply the CA.
    pub private: Option<SecretData>,
    /// The trust bundle: `ca.crt`, every authority to trust.
    pub public: Option<SecretData>,
}

/// What one authority becomes in this pass.
#[derive(Debug)]
pub struct AuthorityPlan {
    /// The authority that signs.
    pub signing: Authority,
    /// Its successor while one is introduced.
    pub next: Option<Authority>,
    /// Every authority to trust, PEM.
    pub bundle: String,
    /// The private Secret to write; `None` when it is the user's.
    pub private: Option<SecretData>,
    /// The step taken this pass.
    pub step: Step,
}

impl AuthorityPlan {
    /// The trust Secret's data.
    pub fn public(&self) -> SecretData {
        SecretData::from([(CA_CERT_KEY.to_string(), self.bundle.clone())])
    }
}

/// An authority the operator made, as its Secrets hold it: what the
/// probes of a replacement under way need.
pub struct Rotating {
    /// The signing authority.
    pub signing: Authority,
    /// Its successor, while one is introduced.
    pub next: Option<Authority>,
    /// The trust bundle.
    pub bundle: Vec<CertificateInfo>,
}

impl Rotating {
    /// The authority in `stored`; `None` when there is none or it cannot
    /// be read (the plan reports that).
    pub fn read(stored: &Stored) -> Option<Rotating> {
        let private = stored.private.as_ref()?;
        let load =
            |cert: &str, key: &str| Authority::load(private.get(cert)?, private.get(key)?).ok();
        let signing = load(CA_CERT_KEY, CA_KEY_KEY)?;
        let next = load(NEXT_CERT_KEY, NEXT_KEY_KEY);
        let bundle = stored
            .public
            .as_ref()
            .and_then(|p| p.get(CA_CERT_KEY))
            .and_then(|pem| CertificateInfo::parse_all(pem).ok())
            .unwrap_or_default();
        Some(Rotating {
            signing,
            next,
            bundle,
        })
    }

    /// The bundle with the successor in it, PEM.
    pub fn bundle_with_next(&self) -> String {
        let mut pem: String = self.bundle.iter().map(CertificateInfo::pem).collect();
        if let Some(next) = &self.next {
            if !self.bundle.contains(next.info()) {
                pem.push_str(next.info().pem());
            }
        }
        pem
    }

    /// The authorities of the bundle besides the signing one and its
    /// successor.
    pub fn others(&self) -> Vec<&CertificateInfo> {
        self.bundle
            .iter()
            .filter(|c| {
                *c != self.signing.info() && self.next.as_ref().is_none_or(|n| *c != n.info())
            })
            .collect()
    }
}

/// Plans authority `which` of cluster `cluster`: makes it when the
/// operator generates it and there is none, loads it otherwise, and takes
/// the next step of its replacement as [`renewal::step`] decides. `seen`
/// is what the reconciler observed of the brokers.
pub fn plan_authority(
    which: Which,
    cluster: &str,
    settings: &CertificateAuthority,
    lifetimes: Lifetimes,
    stored: &Stored,
    now: i64,
    seen: Seen,
) -> Result<AuthorityPlan, PkiError> {
    let secret = format!("{cluster}-{}-ca", which.as_str());
    if !settings.generate_certificate_authority {
        let private = stored.private.as_ref().ok_or_else(|| {
            PkiError::Unreadable(format!(
                "generateCertificateAuthority is false: waiting for the Secret {secret} with {CA_CERT_KEY} and {CA_KEY_KEY}"
            ))
        })?;
        let signing = load(private, CA_CERT_KEY, CA_KEY_KEY, &secret)?.ok_or_else(|| {
            PkiError::Unreadable(format!(
                "the Secret {secret} needs {CA_CERT_KEY} and {CA_KEY_KEY}"
            ))
        })?;
        // The user's ca.crt may hold more than one authority (their own
        // replacement under way): all are trusted.
        let bundle = private.get(CA_CERT_KEY).cloned().unwrap_or_default();
        return Ok(AuthorityPlan {
            signing,
            next: None,
            bundle,
            private: None,
            step: Step::Wait { until: i64::MAX },
        });
    }
    let generate = || {
        Authority::generate(
            &format!("{cluster} {} CA {now}", which.as_str()),
            now,
            lifetimes.validity,
        )
    };
    let Some(private) = &stored.private else {
        // None yet, or its Secret was deleted while the brokers trust it:
        // then the new authority is trusted next to the old ones, which
        // [`plan_leaves`] keeps in use until every broker trusts the new
        // one, and which retire as after a renewal.
        let signing = generate()?;
        let mut trusted = stored
            .public
            .as_ref()
            .and_then(|p| p.get(CA_CERT_KEY))
            .and_then(|pem| CertificateInfo::parse_all(pem).ok())
            .unwrap_or_default();
        trusted.push(signing.info().clone());
        return Ok(AuthorityPlan {
            bundle: trusted.iter().map(CertificateInfo::pem).collect(),
            private: Some(private_data(&signing, None)),
            signing,
            next: None,
            step: Step::Introduce,
        });
    };
    // A Secret that exists but cannot be read is not replaced: every
    // certificate in use depends on it.
    let mut signing = load(private, CA_CERT_KEY, CA_KEY_KEY, &secret)?.ok_or_else(|| {
        PkiError::Unreadable(format!(
            "the Secret {secret} lacks {CA_CERT_KEY} or {CA_KEY_KEY}"
        ))
    })?;
    let mut next = load(private, NEXT_CERT_KEY, NEXT_KEY_KEY, &secret)?;
    let mut trusted = match stored.public.as_ref().and_then(|p| p.get(CA_CERT_KEY)) {
        Some(pem) => CertificateInfo::parse_all(pem)?,
        None => Vec::new(),
    };
    for must in [Some(&signing), next.as_ref()].into_iter().flatten() {
        if !trusted.contains(must.info()) {
            trusted.push(must.info().clone());
        }
    }
    let rotation = Rotation {
        signing: signing.info(),
        next: next.as_ref().map(|n| n.info()),
        trusted: &trusted,
    };
    let step = renewal::step(now, lifetimes, rotation, seen);
    match step {
        Step::Wait { .. } | Step::Settling => {}
        Step::Introduce => {
            let successor = generate()?;
            trusted.push(successor.info().clone());
            next = Some(successor);
        }
        Step::Promote => {
            if let Some(successor) = next.take() {
                signing = successor;
            }
        }
        Step::Retire => trusted.retain(|t| t == signing.info()),
    }
    Ok(AuthorityPlan {
        private: Some(private_data(&signing, next.as_ref())),
        bundle: trusted.iter().map(CertificateInfo::pem).collect(),
        signing,
        next,
        step,
    })
}

/// The authority under `cert` and `key` of a Secret; `None` when the
/// Secret has neither.
fn load(
    data: &SecretData,
    cert: &str,
    key: &str,
    secret: &str,
) -> Result<Option<Authority>, PkiError> {
    match (data.get(cert), data.get(key)) {
        (None, None) => Ok(None),
        (Some(c), Some(k)) => Authority::load(c, k)
            .map(Some)
            .map_err(|e| PkiError::Unreadable(format!("the Secret {secret}: {e}"))),
        _ => Err(PkiError::Unreadable(format!(
            "the Secret {secret} has one of {cert} and {key} without the other"
        ))),
    }
}

fn private_data(signing: &Authority, next: Option<&Authority>) -> SecretData {
    let mut data = SecretData::from([
        (
            CA_CERT_KEY.to_string(),
            signing.issued().certificate.clone(),
        ),
        (CA_KEY_KEY.to_string(), signing.issued().key.clone()),
    ]);
    if let Some(next) = next {
        data.insert(NEXT_CERT_KEY.into(), next.issued().certificate.clone());
        data.insert(NEXT_KEY_KEY.into(), next.issued().key.clone());
    }
    data
}

/// One certificate to keep in a Secret of key-and-certificate PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Its key in the Secret.
    pub key: String,
    /// What it must say.
    pub request: LeafRequest,
}

/// A Secret of PEM files (each a private key then its certificate),
/// planned: the files to write and what was (re)issued, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavesPlan {
    /// The Secret's data.
    pub data: SecretData,
    /// Certificates issued this pass, with why.
    pub issued: Vec<(String, Reissue)>,
    /// When the next renewal is due (seconds since 1970).
    pub due: i64,
}

/// Keeps every `wanted` certificate valid, signed by `signing` and naming
/// what it must; files of certificates no longer wanted are dropped.
pub fn plan_leaves(
    signing: &Authority,
    held: &[CertificateInfo],
    lifetimes: Lifetimes,
    now: i64,
    current: &SecretData,
    wanted: &[Wanted],
) -> Result<LeavesPlan, PkiError> {
    let mut plan = LeavesPlan {
        data: SecretData::new(),
        issued: Vec::new(),
        due: i64::MAX,
    };
    for w in wanted {
        let mut names = w.request.names.clone();
        names.sort();
        names.dedup();
        let existing = current
            .get(&w.key)
            .and_then(|pem| CertificateInfo::parse(pem).ok());
        // A certificate of a `held` authority stays while it is good by
        // that authority: the brokers do not trust the signing one yet.
        let kept = |e: &CertificateInfo| {
            held.iter()
                .any(|h| renewal::reissue(now, lifetimes, Some(e), h, &names).is_none())
        };
        let why = renewal::reissue(now, lifetimes, existing.as_ref(), signing.info(), &names)
            .filter(|why| *why != Reissue::Authority || !existing.as_ref().is_some_and(kept));
        let file = match why {
            None => current[&w.key].clone(),
            Some(why) => {
                let request = LeafRequest {
                    names,
                    ..w.request.clone()
                };
                let Issued { certificate, key } =
                    signing.issue(&request, now, lifetimes.validity)?;
                plan.issued.push((w.key.clone(), why));
                format!("{key}{certificate}")
            }
        };
        let info = CertificateInfo::parse(&file)?;
        plan.due = plan.due.min(info.renew_at(lifetimes.renew_before));
        plan.data.insert(w.key.clone(), file);
    }
    Ok(plan)
}

/// The certificate of every node of `running`: the brokers' common
/// subject, and every name and address clients and brokers reach it by:
/// its pod, its Services, what it advertises on each external listener
/// (its node's address, its load balancer's, or the spec's), every
/// address of its own and its listeners' bootstrap load balancers, and
/// the bootstrap `alternativeNames`.
pub fn broker_certificates(
    names: &Names,
    spec: &KafkaClusterSpec,
    running: &[i32],
    external: &External,
    nodes: &NodeAddresses,
) -> Vec<Wanted> {
    let listeners: Vec<(String, bool)> = spec
        .listeners
        .iter()
        .map(|l| (l.name.clone(), l.kind != ListenerType::Internal))
        .collect();
    running
        .iter()
        .map(|&id| {
            let mut dns = names.broker_dns_names(id, &listeners);
            for l in &spec.listeners {
                let config = l.config();
                if let Some(bootstrap) = &config.bootstrap {
                    dns.extend(bootstrap.alternative_names.iter().cloned());
                }
                if l.kind == ListenerType::Internal {
                    continue;
                }
                if let Some(e) = external.endpoints.get(&(id, l.name.clone())) {
                    dns.extend(resolved_host(e, id, &l.name, nodes));
                }
                for service in [names.broker_service(id, &l.name), names.bootstrap(&l.name)] {
                    if let Some(addresses) = external.load_balancers.get(&service) {
                        dns.extend(addresses.iter().cloned());
                    }
                }
            }
            Wanted {
                key: format!("{}.pem", names.pod(id)),
                request: LeafRequest {
                    common_name: broker_common_name(names),
                    organization: Some(ORGANIZATION.into()),
                    names: dns,
                    usage: Usage::ServerAndClient,
                },
            }
        })
        .collect()
}

/// The operator's own certificate for the cluster.
pub fn operator_certificate(names: &Names) -> Wanted {
    Wanted {
        key: OPERATOR_KEY.into(),
        request: LeafRequest {
            common_name: operator_common_name(names),
            organization: Some(ORGANIZATION.into()),
            names: Vec::new(),
            usage: Usage::Client,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const HOUR: i64 = 3600;
    const LIFE: Lifetimes = Lifetimes {
        validity: 100 * HOUR,
        renew_before: 10 * HOUR,
    };

    fn generated() -> CertificateAuthority {
        CertificateAuthority::default()
    }

    fn plan(stored: &Stored, now: i64, seen: Seen) -> AuthorityPlan {
        plan_authority(
            Which::Cluster,
            "demo",
            &generated(),
            LIFE,
            stored,
            now,
            seen,
        )
        .expect("plan")
    }

    fn stored(plan: &AuthorityPlan) -> Stored {
        Stored {
            private: plan.private.clone(),
            public: Some(plan.public()),
        }
    }

    fn bundle_len(plan: &AuthorityPlan) -> usize {
        CertificateInfo::parse_all(&plan.bundle)
            .expect("bundle")
            .len()
    }

    fn leaf(names: &[&str]) -> Wanted {
        Wanted {
            key: "b0.pem".into(),
            request: LeafRequest {
                common_name: "demo-broker".into(),
                organization: Some(ORGANIZATION.into()),
                names: names.iter().map(|n| n.to_string()).collect(),
                usage: Usage::ServerAndClient,
            },
        }
    }

    #[test]
    fn an_authority_is_made_renewed_and_retired_without_a_gap_in_trust() {
        let all_seen = Seen {
            next_trusted: true,
            old_unused: true,
        };
        let made = plan(&Stored::default(), NOW, Seen::default());
        assert_eq!(made.step, Step::Introduce);
        assert_eq!(bundle_len(&made), 1);
        let first = made.signing.info().clone();
        let brokers = plan_leaves(
            &made.signing,
            &[],
            LIFE,
            NOW,
            &SecretData::new(),
            &[leaf(&["b0"])],
        )
        .expect("leaves");
        assert_eq!(brokers.issued, [("b0.pem".to_string(), Reissue::Missing)]);

        // Young: nothing changes, whatever is seen.
        let young = plan(&stored(&made), NOW + HOUR, all_seen);
        assert!(matches!(young.step, Step::Wait { .. }), "{:?}", young.step);
        assert_eq!(young.private, made.private);
        assert_eq!(young.bundle, made.bundle);

        // In its window: a successor is trusted next to it, not signing.
        let due = NOW + 91 * HOUR;
        let introduced = plan(&stored(&made), due, Seen::default());
        assert_eq!(introduced.step, Step::Introduce);
        assert_eq!(introduced.signing.info(), &first);
        let next = introduced
            .next
            .as_ref()
            .expect("a successor")
            .info()
            .clone();
        assert_eq!(bundle_len(&introduced), 2);
        assert!(introduced
            .private
            .as_ref()
            .expect("private")
            .contains_key(NEXT_KEY_KEY));

        // Not trusted by every broker yet: it waits.
        let waiting = plan(&stored(&introduced), due + 60, Seen::default());
        assert_eq!(waiting.step, Step::Settling);
        assert_eq!(waiting.next.as_ref().map(|n| n.info()), Some(&next));

        // Trusted everywhere: it signs; the brokers' certificates follow.
        let promoted = plan(&stored(&introduced), due + 60, all_seen);
        assert_eq!(promoted.step, Step::Promote);
        assert_eq!(promoted.signing.info(), &next);
        assert!(promoted.next.is_none());
        assert!(!promoted
            .private
            .as_ref()
            .expect("private")
            .contains_key(NEXT_CERT_KEY));
        assert_eq!(bundle_len(&promoted), 2, "the old one is still trusted");
        assert!(CertificateInfo::parse_all(&promoted.bundle)
            .expect("bundle")
            .contains(&first));
        let renewed = plan_leaves(
            &promoted.signing,
            &[],
            LIFE,
            due + 60,
            &brokers.data,
            &[leaf(&["b0"])],
        )
        .expect("leaves");
        assert_eq!(renewed.issued, [("b0.pem".to_string(), Reissue::Authority)]);

        // Still in use somewhere: kept; unused: dropped.
        let kept = plan(&stored(&promoted), due + 120, Seen::default());
        assert_eq!((kept.step, bundle_len(&kept)), (Step::Settling, 2));
        let retired = plan(&stored(&promoted), due + 120, all_seen);
        assert_eq!((retired.step, bundle_len(&retired)), (Step::Retire, 1));
        assert_eq!(retired.signing.info(), &next);
    }

    #[test]
    fn a_deleted_authority_secret_is_replaced_without_a_gap_in_trust() {
        let made = plan(&Stored::default(), NOW, Seen::default());
        let brokers = plan_leaves(
            &made.signing,
            &[],
            LIFE,
            NOW,
            &SecretData::new(),
            &[leaf(&["b0"])],
        )
        .expect("leaves");
        let old = made.signing.info().clone();

        // The private Secret gone, its trust bundle still mounted: a new
        // authority is trusted next to the old one, and signs nothing the
        // brokers hold while they do not all trust it.
        let lost = Stored {
            private: None,
            public: Some(made.public()),
        };
        let remade = plan(&lost, NOW + HOUR, Seen::default());
        assert_eq!(remade.step, Step::Introduce);
        let bundle = CertificateInfo::parse_all(&remade.bundle).expect("bundle");
        assert_eq!(bundle, [old.clone(), remade.signing.info().clone()]);
        let cases = [
            ("held while untrusted", vec![old.clone()], vec![]),
            (
                "renewed once trusted",
                vec![],
                vec![("b0.pem".to_string(), Reissue::Authority)],
            ),
        ];
        for (name, held, issued) in cases {
            let leaves = plan_leaves(
                &remade.signing,
                &held,
                LIFE,
                NOW + HOUR,
                &brokers.data,
                &[leaf(&["b0"])],
            )
            .expect("leaves");
            assert_eq!(leaves.issued, issued, "{name}");
        }
        // A held authority's certificate whose names changed is renewed.
        let renamed = plan_leaves(
            &remade.signing,
            &[old],
            LIFE,
            NOW + HOUR,
            &brokers.data,
            &[leaf(&["b0", "b0.svc"])],
        )
        .expect("leaves");
        assert_eq!(renamed.issued, [("b0.pem".to_string(), Reissue::Authority)]);
        // Then the old one retires as after a renewal.
        let all_seen = Seen {
            next_trusted: true,
            old_unused: true,
        };
        let retired = plan(&stored(&remade), NOW + 2 * HOUR, all_seen);
        assert_eq!((retired.step, bundle_len(&retired)), (Step::Retire, 1));
    }

    #[test]
    fn a_users_authority_is_used_as_given_and_never_written() {
        let user = CertificateAuthority {
            generate_certificate_authority: false,
            ..generated()
        };
        let theirs = Authority::generate("their CA", NOW, 1000 * HOUR).expect("ca");
        let other = Authority::generate("their old CA", NOW, 1000 * HOUR).expect("ca");
        let missing = plan_authority(
            Which::Clients,
            "demo",
            &user,
            LIFE,
            &Stored::default(),
            NOW,
            Seen::default(),
        );
        let message = missing.expect_err("no Secret").to_string();
        assert!(
            message.contains("waiting for the Secret demo-clients-ca"),
            "{message}"
        );

        let bundle = format!(
            "{}{}",
            theirs.issued().certificate,
            other.issued().certificate
        );
        let given = Stored {
            private: Some(SecretData::from([
                (CA_CERT_KEY.to_string(), bundle.clone()),
                (CA_KEY_KEY.to_string(), theirs.issued().key.clone()),
            ])),
            public: None,
        };
        let plan = plan_authority(
            Which::Clients,
            "demo",
            &user,
            LIFE,
            &given,
            NOW,
            Seen::default(),
        )
        .expect("plan");
        assert_eq!(plan.signing.info(), theirs.info());
        assert_eq!(plan.private, None);
        assert_eq!(plan.bundle, bundle);
    }

    #[test]
    fn an_unreadable_authority_is_reported_not_replaced() {
        let cases = [
            (
                SecretData::from([(CA_CERT_KEY.to_string(), "junk".to_string())]),
                "without the other",
            ),
            (
                SecretData::from([
                    (CA_CERT_KEY.to_string(), "junk".to_string()),
                    (CA_KEY_KEY.to_string(), "junk".to_string()),
                ]),
                "the Secret demo-cluster-ca: unreadable",
            ),
            (SecretData::new(), "lacks ca.crt or ca.key"),
        ];
        for (private, want) in cases {
            let stored = Stored {
                private: Some(private),
                public: None,
            };
            let e = plan_authority(
                Which::Cluster,
                "demo",
                &generated(),
                LIFE,
                &stored,
                NOW,
                Seen::default(),
            )
            .expect_err("unreadable");
            assert!(e.to_string().contains(want), "{e} lacks {want:?}");
        }
    }

    #[test]
    fn brokers_are_named_by_every_address_clients_reach_them_at() {
        use crate::cluster::broker_config::{Endpoint, ExternalEndpoints, Host};
        let spec: KafkaClusterSpec = serde_json::from_value(serde_json::json!({
            "replicas": 2,
            "listeners": [
                {"name": "plain", "port": 9092, "type": "internal",
                 "configuration": {"bootstrap": {"alternativeNames": ["kafka.example.com"]}}},
                {"name": "np", "port": 9094, "type": "nodeport"},
                {"name": "lb", "port": 9095, "type": "loadbalancer"},
            ],
        }))
        .expect("spec");
        let names = Names::new("demo", "kafka");
        let external = External {
            endpoints: ExternalEndpoints::from([
                (
                    (0, "np".to_string()),
                    Endpoint {
                        host: Host::Fixed("kafka-0.example.com".into()),
                        port: 443,
                    },
                ),
                (
                    (1, "np".to_string()),
                    Endpoint {
                        host: Host::Node,
                        port: 31001,
                    },
                ),
                (
                    (1, "lb".to_string()),
                    Endpoint {
                        host: Host::Fixed("203.0.113.9".into()),
                        port: 9095,
                    },
                ),
            ]),
            load_balancers: BTreeMap::from([
                (
                    "demo-broker-1-lb".to_string(),
                    vec!["203.0.113.9".to_string(), "lb-1.example.net".to_string()],
                ),
                (
                    "demo-lb-bootstrap".to_string(),
                    vec!["203.0.113.1".to_string()],
                ),
            ]),
        };
        let nodes = NodeAddresses::from([((1, "np".to_string()), "node-7".to_string())]);
        let wanted = broker_certificates(&names, &spec, &[0, 1], &external, &nodes);
        assert_eq!(
            wanted.iter().map(|w| w.key.as_str()).collect::<Vec<_>>(),
            ["demo-broker-0.pem", "demo-broker-1.pem"]
        );
        let one = &wanted[1].request;
        assert_eq!(one.common_name, "demo-broker");
        let has = |names: &[String], name: &str| names.iter().any(|n| n == name);
        for name in [
            "demo-broker-1.demo-brokers.kafka.svc",
            "demo-plain-bootstrap.kafka.svc",
            "demo-broker-1-np.kafka.svc.cluster.local",
            "demo-broker-1-lb",
            // Its node's address, its load balancer's every address, the
            // bootstrap load balancer's, the bootstrap's other name.
            "node-7",
            "203.0.113.9",
            "lb-1.example.net",
            "203.0.113.1",
            "kafka.example.com",
        ] {
            assert!(has(&one.names, name), "{name} in {:?}", one.names);
        }
        // Broker 0 advertises the spec's host and has no load balancer
        // address yet: its certificate names that host, the bootstrap's
        // names, and no other node's or balancer's.
        let zero = &wanted[0].request;
        for name in ["kafka-0.example.com", "203.0.113.1", "kafka.example.com"] {
            assert!(has(&zero.names, name), "{name} in {:?}", zero.names);
        }
        for name in ["node-7", "203.0.113.9", "lb-1.example.net"] {
            assert!(!has(&zero.names, name), "{name} in {:?}", zero.names);
        }
    }

    #[test]
    fn leaves_follow_their_names_and_are_dropped_when_unwanted() {
        let ca = Authority::generate("ca", NOW, 1000 * HOUR).expect("ca");
        let first = plan_leaves(
            &ca,
            &[],
            LIFE,
            NOW,
            &SecretData::new(),
            &[leaf(&["b0", "10.0.0.1"])],
        )
        .expect("leaves");
        let file = &first.data["b0.pem"];
        assert!(file.starts_with("-----BEGIN PRIVATE KEY-----"), "{file}");
        let info = CertificateInfo::parse(file).expect("certificate");
        assert_eq!(info.names, ["10.0.0.1", "b0"]);
        assert_eq!(first.due, info.renew_at(LIFE.renew_before));

        // The same names in another order: kept as it is.
        let same = plan_leaves(
            &ca,
            &[],
            LIFE,
            NOW + HOUR,
            &first.data,
            &[leaf(&["10.0.0.1", "b0", "b0"])],
        )
        .expect("leaves");
        assert_eq!((same.issued.len(), &same.data), (0, &first.data));
        // A new address: reissued.
        let moved = plan_leaves(
            &ca,
            &[],
            LIFE,
            NOW + HOUR,
            &first.data,
            &[leaf(&["b0", "10.0.0.2"])],
        )
        .expect("leaves");
        assert_eq!(moved.issued, [("b0.pem".to_string(), Reissue::Names)]);
        // Due: reissued.
        let due = plan_leaves(
            &ca,
            &[],
            LIFE,
            NOW + 95 * HOUR,
            &first.data,
            &[leaf(&["b0", "10.0.0.1"])],
        )
        .expect("leaves");
        assert_eq!(due.issued, [("b0.pem".to_string(), Reissue::Expiring)]);
        // No longer wanted: gone.
        let gone = plan_leaves(&ca, &[], LIFE, NOW, &first.data, &[]).expect("leaves");
        assert!(gone.data.is_empty());
    }
}

//! When certificates change, decided from what they say and what the
//! brokers were seen doing; the reconciler makes the changes.
//!
//! An authority the operator made is replaced in three steps, so that no
//! connection is refused on the way: a new authority is first only
//! *trusted* next to the old one; once every broker trusts it, it
//! *signs* (certificates are renewed with it); once nothing in use is
//! signed by the old one any more, the old one is *retired* from the trust
//! bundle.

use super::certificate::CertificateInfo;

/// How long certificates live, and how early they are renewed (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Validity of a new certificate.
    pub validity: i64,
    /// Renewal starts this long before the end of validity.
    pub renew_before: i64,
}

/// Why a certificate is (re)issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reissue {
    /// There is none yet, or what is there cannot be read.
    Missing,
    /// It is in its renewal window (or expired).
    Expiring,
    /// It does not name every address it is reached by.
    Names,
    /// Another authority than the signing one signed it.
    Authority,
}

/// Whether a certificate needs replacing, and why. `names` are the
/// subject alternative names it must carry, sorted.
pub fn reissue(
    now: i64,
    lifetimes: Lifetimes,
    current: Option<&CertificateInfo>,
    signing: &CertificateInfo,
    names: &[String],
) -> Option<Reissue> {
    let Some(cert) = current else {
        return Some(Reissue::Missing);
    };
    if !cert.signed_by(signing) {
        Some(Reissue::Authority)
    } else if cert.names != names {
        Some(Reissue::Names)
    } else if now >= cert.renew_at(lifetimes.renew_before) {
        Some(Reissue::Expiring)
    } else {
        None
    }
}

/// Where an authority's replacement stands.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// The authority that signs.
    pub signing: &'a CertificateInfo,
    /// Its successor, trusted but not signing yet.
    pub next: Option<&'a CertificateInfo>,
    /// Every authority in the trust bundle.
    pub trusted: &'a [CertificateInfo],
}

/// What the operator saw of the brokers and certificates in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// Every broker that needs to accepts certificates signed by `next`.
    pub next_trusted: bool,
    /// Nothing in use needs an authority but the signing one (and `next`).
    pub old_unused: bool,
}

/// The next step of an authority's replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do before `until` (seconds since 1970).
    Wait {
        /// When renewal is due.
        until: i64,
    },
    /// Make a successor and add it to the trust bundle.
    Introduce,
    /// The successor signs from now on.
    Promote,
    /// Leave only the signing authority (and a successor) in the bundle.
    Retire,
    /// A step is waiting for the brokers to pick up a change.
    Settling,
}

/// Decides the next step of replacing an authority the operator made.
pub fn step(now: i64, lifetimes: Lifetimes, rotation: Rotation, seen: Seen) -> Step {
    if rotation.next.is_some() {
        return if seen.next_trusted {
            Step::Promote
        } else {
            Step::Settling
        };
    }
    if rotation.trusted.iter().any(|t| t != rotation.signing) {
        return if seen.old_unused {
            Step::Retire
        } else {
            Step::Settling
        };
    }
    let due = rotation.signing.renew_at(lifetimes.renew_before);
    if now >= due {
        Step::Introduce
    } else {
        Step::Wait { until: due }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::authority::{Authority, LeafRequest, Usage};

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;
    const LIFETIMES: Lifetimes = Lifetimes {
        validity: 365 * DAY,
        renew_before: 30 * DAY,
    };

    fn info(pem: &str) -> CertificateInfo {
        CertificateInfo::parse(pem).expect("readable")
    }

    fn broker(ca: &Authority, names: &[&str], issued_at: i64) -> CertificateInfo {
        let request = LeafRequest {
            common_name: "demo-broker".into(),
            organization: Some("gregor.dev".into()),
            names: names.iter().map(|n| n.to_string()).collect(),
            usage: Usage::ServerAndClient,
        };
        info(
            &ca.issue(&request, issued_at, LIFETIMES.validity)
                .expect("issued")
                .certificate,
        )
    }

    #[test]
    fn a_certificate_is_reissued_when_missing_stale_or_wrong() {
        let ca = Authority::generate("ca 1", NOW - 10 * DAY, 10 * 365 * DAY).expect("ca");
        let other = Authority::generate("ca 2", NOW, 10 * 365 * DAY).expect("ca");
        let names: Vec<String> = vec!["10.0.0.7".into(), "b0.demo".into()];
        let fresh = broker(&ca, &["b0.demo", "10.0.0.7"], NOW - DAY);
        let cases: Vec<(&str, Option<CertificateInfo>, Option<Reissue>)> = vec![
            ("fresh", Some(fresh.clone()), None),
            ("none", None, Some(Reissue::Missing)),
            (
                "in its renewal window",
                Some(broker(&ca, &["b0.demo", "10.0.0.7"], NOW - 340 * DAY)),
                Some(Reissue::Expiring),
            ),
            (
                "expired",
                Some(broker(&ca, &["b0.demo", "10.0.0.7"], NOW - 400 * DAY)),
                Some(Reissue::Expiring),
            ),
            (
                "an address missing",
                Some(broker(&ca, &["b0.demo"], NOW - DAY)),
                Some(Reissue::Names),
            ),
            (
                "another authority's",
                Some(broker(&other, &["b0.demo", "10.0.0.7"], NOW - DAY)),
                Some(Reissue::Authority),
            ),
        ];
        for (name, cert, want) in cases {
            assert_eq!(
                reissue(NOW, LIFETIMES, cert.as_ref(), ca.info(), &names),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn a_short_validity_renews_in_its_window_unless_it_is_shorter() {
        // 20 minutes, renewed 17 minutes before the end: after 3.
        let ca = Authority::generate("ca", NOW, 1200).expect("ca");
        assert_eq!(ca.info().renew_at(1020), NOW + 180);
    }

    #[test]
    fn a_validity_shorter_than_the_window_renews_at_half_life() {
        let ca = Authority::generate("ca", NOW, 10 * DAY).expect("ca");
        // 10 days of validity, 30 days of window: renew at 5 days (plus
        // the backdating of the start).
        let at = ca.info().renew_at(LIFETIMES.renew_before);
        assert!(at > NOW + 4 * DAY && at < NOW + 5 * DAY, "{}", at - NOW);
    }

    #[test]
    fn an_authority_is_replaced_in_three_steps() {
        let old = info(
            &Authority::generate("ca 1", NOW - 350 * DAY, 365 * DAY)
                .expect("ca")
                .issued()
                .certificate,
        );
        let young = info(
            &Authority::generate("ca 1", NOW - 10 * DAY, 365 * DAY)
                .expect("ca")
                .issued()
                .certificate,
        );
        let new = info(
            &Authority::generate("ca 2", NOW, 365 * DAY)
                .expect("ca")
                .issued()
                .certificate,
        );
        let nothing_seen = Seen {
            next_trusted: false,
            old_unused: false,
        };
        let all_seen = Seen {
            next_trusted: true,
            old_unused: true,
        };
        let young_trust = [young.clone()];
        let old_trust = [old.clone()];
        let both = [old.clone(), new.clone()];
        let cases: Vec<(&str, Rotation, Seen, Step)> = vec![
            (
                "young: wait for its renewal",
                Rotation {
                    signing: &young,
                    next: None,
                    trusted: &young_trust,
                },
                all_seen,
                Step::Wait {
                    until: young.renew_at(LIFETIMES.renew_before),
                },
            ),
            (
                "due: introduce a successor",
                Rotation {
                    signing: &old,
                    next: None,
                    trusted: &old_trust,
                },
                nothing_seen,
                Step::Introduce,
            ),
            (
                "introduced, not trusted everywhere yet",
                Rotation {
                    signing: &old,
                    next: Some(&new),
                    trusted: &both,
                },
                Seen {
                    next_trusted: false,
                    old_unused: true,
                },
                Step::Settling,
            ),
            (
                "trusted everywhere: promote",
                Rotation {
                    signing: &old,
                    next: Some(&new),
                    trusted: &both,
                },
                Seen {
                    next_trusted: true,
                    old_unused: false,
                },
                Step::Promote,
            ),
            (
                "promoted, the old one still in use",
                Rotation {
                    signing: &new,
                    next: None,
                    trusted: &both,
                },
                Seen {
                    next_trusted: true,
                    old_unused: false,
                },
                Step::Settling,
            ),
            (
                "the old one unused: retire it",
                Rotation {
                    signing: &new,
                    next: None,
                    trusted: &both,
                },
                all_seen,
                Step::Retire,
            ),
        ];
        for (name, rotation, seen, want) in cases {
            assert_eq!(step(NOW, LIFETIMES, rotation, seen), want, "{name}");
        }
    }
}

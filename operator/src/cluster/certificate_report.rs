//! What the certificates step tells: events when an authority is made,
//! replaced or retired and when certificates are issued; each
//! certificate's end of validity in status; and the condition that warns
//! of a certificate near its end that is not being renewed.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::conditions::Decided;
use crate::crd::cluster::CertificateStatus;
use crate::pki::certificate::CertificateInfo;
use crate::pki::renewal::{Lifetimes, Reissue, Step};
use crate::pki::PkiError;

use super::certificates::{AuthorityPlan, LeavesPlan, Stored, Which};

/// The condition type warning of certificates near their end.
pub const CONDITION: &str = "CertificatesExpiring";

/// The event note for what happened to authority `which` this pass.
pub fn authority_note(which: Which, plan: &AuthorityPlan, stored: &Stored) -> Option<String> {
    let name = which.as_str();
    let until = |info: &CertificateInfo| date(info.not_after);
    if stored.private.is_none() && plan.private.is_some() {
        let lost = CertificateInfo::parse_all(&plan.bundle).is_ok_and(|b| b.len() > 1);
        return Some(match lost {
            false => format!(
                "made the {name} CA, valid until {}",
                until(plan.signing.info())
            ),
            true => format!(
                "the {name} CA's Secret was deleted: made a new {name} CA, valid until {}, trusted next to the old one; certificates move to it once every broker trusts it",
                until(plan.signing.info())
            ),
        });
    }
    match plan.step {
        Step::Introduce => plan.next.as_ref().map(|next| {
            format!(
                "the {name} CA ends {}: its successor, valid until {}, is trusted next to it; it signs once every broker trusts it",
                until(plan.signing.info()),
                until(next.info())
            )
        }),
        Step::Promote => Some(format!(
            "every broker trusts the {name} CA's successor: it signs from now on, and certificates are renewed with it"
        )),
        Step::Retire => Some(format!(
            "nothing in use needs the old {name} CA any more: it is no longer trusted"
        )),
        Step::Wait { .. } | Step::Settling => None,
    }
}

/// The event note for certificates issued this pass, if any.
pub fn issued_note(plans: &[&LeavesPlan]) -> Option<String> {
    let issued: Vec<String> = plans
        .iter()
        .flat_map(|p| &p.issued)
        .map(|(key, why)| {
            let why = match why {
                Reissue::Missing => "new",
                Reissue::Expiring => "renewal due",
                Reissue::Names => "its names changed",
                Reissue::Authority => "signed by the new CA",
            };
            format!("{} ({why})", key.trim_end_matches(".pem"))
        })
        .collect();
    (!issued.is_empty()).then(|| format!("issued certificates: {}", issued.join(", ")))
}

/// Every certificate in use with its end, and a warning for those within
/// their renewal window that are not being renewed: an authority the user
/// supplied, or one whose replacement is stuck.
pub fn status(
    now: i64,
    authorities: [(Which, &AuthorityPlan, Lifetimes); 2],
    leaves: [(&LeavesPlan, Lifetimes); 2],
) -> Result<(Vec<CertificateStatus>, Option<String>), PkiError> {
    let mut out = Vec::new();
    let mut expiring = Vec::new();
    for (which, plan, lifetimes) in authorities {
        let name = format!("{} CA", which.as_str());
        let signing = plan.signing.info();
        out.push(entry(&name, signing));
        if let Some(next) = &plan.next {
            out.push(entry(&format!("{name} (successor)"), next.info()));
        }
        if plan.next.is_none() && now >= signing.renew_at(lifetimes.renew_before) {
            expiring.push(format!("{name} (ends {})", date(signing.not_after)));
        }
    }
    for (plan, lifetimes) in leaves {
        for (key, pem) in &plan.data {
            let info = CertificateInfo::parse(pem)?;
            let name = key.trim_end_matches(".pem");
            out.push(entry(name, &info));
            if now >= info.renew_at(lifetimes.renew_before) {
                expiring.push(format!("{name} (ends {})", date(info.not_after)));
            }
        }
    }
    let warning = (!expiring.is_empty()).then(|| {
        format!(
            "within their renewal window and not renewed: {}",
            expiring.join(", ")
        )
    });
    Ok((out, warning))
}

/// The condition for `warning`.
pub fn condition(warning: Option<String>) -> Decided {
    match warning {
        Some(message) => Decided::new(CONDITION, true, "RenewalDue", message),
        None => Decided::new(
            CONDITION,
            false,
            "Valid",
            "every certificate is valid beyond its renewal window",
        ),
    }
}

fn entry(name: &str, info: &CertificateInfo) -> CertificateStatus {
    CertificateStatus {
        name: name.into(),
        not_after: date(info.not_after),
    }
}

/// A moment as RFC 3339, as Kubernetes writes times.
fn date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::certificates::{plan_authority, plan_leaves, SecretData, CA_KEY_KEY};
    use crate::cluster::security::CA_CERT_KEY;
    use crate::crd::cluster::CertificateAuthority;
    use crate::pki::authority::Authority;
    use crate::pki::renewal::Seen;

    const NOW: i64 = 1_800_000_000;
    const HOUR: i64 = 3600;
    const LIFE: Lifetimes = Lifetimes {
        validity: 100 * HOUR,
        renew_before: 10 * HOUR,
    };

    #[test]
    fn each_step_of_an_authority_is_told_once() {
        let settings = CertificateAuthority::default();
        let plan = |stored: &Stored, now: i64, seen: Seen| {
            plan_authority(Which::Clients, "demo", &settings, LIFE, stored, now, seen)
                .expect("plan")
        };
        let stored = |p: &AuthorityPlan| Stored {
            private: p.private.clone(),
            public: Some(p.public()),
        };
        let all = Seen {
            next_trusted: true,
            old_unused: true,
        };
        let made = plan(&Stored::default(), NOW, Seen::default());
        let note = authority_note(Which::Clients, &made, &Stored::default()).expect("told");
        assert!(
            note.starts_with("made the clients CA, valid until 2027-"),
            "{note}"
        );
        let young = plan(&stored(&made), NOW + HOUR, all);
        assert_eq!(authority_note(Which::Clients, &young, &stored(&made)), None);
        let due = NOW + 95 * HOUR;
        let introduced = plan(&stored(&made), due, Seen::default());
        let note = authority_note(Which::Clients, &introduced, &stored(&made)).expect("told");
        assert!(note.contains("its successor, valid until"), "{note}");
        let waiting = plan(&stored(&introduced), due, Seen::default());
        assert_eq!(
            authority_note(Which::Clients, &waiting, &stored(&introduced)),
            None
        );
        let promoted = plan(&stored(&introduced), due, all);
        let note = authority_note(Which::Clients, &promoted, &stored(&introduced)).expect("told");
        assert!(
            note.starts_with("every broker trusts the clients CA's successor"),
            "{note}"
        );
        let retired = plan(&stored(&promoted), due, all);
        let note = authority_note(Which::Clients, &retired, &stored(&promoted)).expect("told");
        assert!(note.contains("old clients CA"), "{note}");
    }

    #[test]
    fn certificates_near_their_end_and_not_renewed_are_warned_of() {
        // The user's CA, 20 hours from its end, in a 30-hour window.
        let user = CertificateAuthority {
            generate_certificate_authority: false,
            ..Default::default()
        };
        let theirs = Authority::generate("theirs", NOW - 80 * HOUR, 100 * HOUR).expect("ca");
        let stored = Stored {
            private: Some(SecretData::from([
                (CA_CERT_KEY.to_string(), theirs.issued().certificate.clone()),
                (CA_KEY_KEY.to_string(), theirs.issued().key.clone()),
            ])),
            public: None,
        };
        let window = Lifetimes {
            validity: 100 * HOUR,
            renew_before: 30 * HOUR,
        };
        let cluster = plan_authority(
            Which::Cluster,
            "demo",
            &user,
            window,
            &stored,
            NOW,
            Seen::default(),
        )
        .expect("plan");
        let made = CertificateAuthority::default();
        let clients = plan_authority(
            Which::Clients,
            "demo",
            &made,
            LIFE,
            &Stored::default(),
            NOW,
            Seen::default(),
        )
        .expect("plan");
        let leaves =
            plan_leaves(&clients.signing, &[], LIFE, NOW, &SecretData::new(), &[]).expect("none");
        let (listed, warning) = status(
            NOW,
            [
                (Which::Cluster, &cluster, window),
                (Which::Clients, &clients, LIFE),
            ],
            [(&leaves, LIFE), (&leaves, LIFE)],
        )
        .expect("status");
        let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cluster CA", "clients CA"]);
        let warning = warning.expect("a warning");
        assert!(warning.contains("cluster CA (ends "), "{warning}");
        assert!(!warning.contains("clients CA"), "{warning}");
        assert!(condition(Some(warning)).status);
        assert_eq!(condition(None).reason, "Valid");
    }
}

//! Comparing a secret with what a client sent, in time that does not
//! depend on where they first differ.
//!
//! ring's `constant_time::verify_slices_are_equal` is deprecated in the
//! ring Gregor builds (0.17), so the comparison goes through
//! [`ring::hmac::verify`], whose tag check is ring's own fixed-time one:
//! both sides are first signed with a key drawn for this one comparison,
//! and the tags are compared. Signing first also hides the secret's
//! length (a PLAIN password's), which a direct comparison of byte strings
//! of different lengths would give away, and no attacker can steer the
//! tags since the key is fresh and unknown.

use ring::hmac;
use ring::rand::SystemRandom;

/// Whether `secret` and `candidate` are the same bytes.
///
/// False as well if no random key can be drawn: refusing is the safe
/// answer, and the system's random source failing is not something a
/// client can cause.
pub(crate) fn equal(secret: &[u8], candidate: &[u8]) -> bool {
    let Ok(key) = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()) else {
        return false;
    };
    let tag = hmac::sign(&key, secret);
    hmac::verify(&key, candidate, tag.as_ref()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_for_the_same_bytes() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"pencil", b"pencil", true),
            (b"pencil", b"pencil ", false),
            (b"pencil", b"pencjl", false),
            (b"pencil", b"Pencil", false),
            (b"pencil", b"", false),
            (b"", b"pencil", false),
            (&[0u8; 32], &[0u8; 32], true),
            (&[0u8; 32], &[0u8; 31], false),
        ];
        for (secret, candidate, expected) in cases {
            assert_eq!(
                equal(secret, candidate),
                *expected,
                "{secret:?} vs {candidate:?}"
            );
        }
    }
}

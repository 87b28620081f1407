//! Unit tests of webhook signature checks: the PagerDuty header (rotation, malformed and hostile
//! headers) and the GitHub one, both over the one HMAC verifier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

fn secrets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

mod pagerduty {
    use super::*;

    const TRIGGERED: &str =
        include_str!("../../protocols/tests/fixtures/pagerduty/incident-triggered.json");
    const ACKNOWLEDGED: &str =
        include_str!("../../protocols/tests/fixtures/pagerduty/incident-acknowledged.json");
    const RESOLVED: &str =
        include_str!("../../protocols/tests/fixtures/pagerduty/incident-resolved.json");

    fn sign(body: &[u8], secret: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signature_over_the_raw_body_with_the_secret_is_accepted() {
        let header = sign(TRIGGERED.as_bytes(), "s3cret");
        assert_eq!(
            verify_pagerduty_signature(TRIGGERED.as_bytes(), Some(&header), &secrets(&["s3cret"])),
            Ok(())
        );
    }

    #[test]
    fn signature_matches_the_rfc_4231_hmac_sha256_vector() {
        let header = "v1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let body = b"what do ya want for nothing?";
        assert_eq!(
            verify_pagerduty_signature(body, Some(header), &secrets(&["Jefe"])),
            Ok(())
        );
        assert_eq!(
            verify_pagerduty_signature(
                body,
                Some(&header.to_uppercase().replace("V1=", "v1=")),
                &secrets(&["Jefe"])
            ),
            Ok(()),
            "upper-case hex is still the same signature"
        );
    }

    #[test]
    fn signature_with_a_wrong_secret_is_no_match() {
        let header = sign(TRIGGERED.as_bytes(), "someone-else");
        assert_eq!(
            verify_pagerduty_signature(TRIGGERED.as_bytes(), Some(&header), &secrets(&["s3cret"])),
            Err(PagerDutySignatureError::NoMatch {
                signatures: 1,
                secrets: 1
            })
        );
    }

    #[test]
    fn during_rotation_either_secret_verifies_either_signature() {
        let body = TRIGGERED.as_bytes();
        // PagerDuty signs with old and new secret; squad knows only the new one.
        let both = format!("{},{}", sign(body, "old"), sign(body, "new"));
        assert_eq!(
            verify_pagerduty_signature(body, Some(&both), &secrets(&["new"])),
            Ok(())
        );
        // PagerDuty signs with the new secret only; squad still lists the old one first.
        let new_only = sign(body, "new");
        assert_eq!(
            verify_pagerduty_signature(body, Some(&new_only), &secrets(&["old", "new"])),
            Ok(())
        );
        // Spaces after the comma, and entries of unknown versions, are tolerated.
        let spaced = format!("v2=abc, {}", sign(body, "new"));
        assert_eq!(
            verify_pagerduty_signature(body, Some(&spaced), &secrets(&["new"])),
            Ok(())
        );
    }

    #[test]
    fn missing_signature_header_is_its_own_error() {
        let e = verify_pagerduty_signature(TRIGGERED.as_bytes(), None, &secrets(&["s3cret"]));
        assert_eq!(e, Err(PagerDutySignatureError::MissingHeader));
        assert!(e.unwrap_err().to_string().contains("X-PagerDuty-Signature"));
    }

    #[test]
    fn malformed_signature_headers_say_what_is_wrong() {
        let body = TRIGGERED.as_bytes();
        let good = sign(body, "s3cret");
        for (header, says) in [
            ("", "no `v1=` entry"),
            (" , ,", "no `v1=` entry"),
            ("sha256=deadbeef", "no `v1=` entry"),
            ("v1=", "entry 0 is not 64 hex digits"),
            ("v1=xyz", "entry 0 is not 64 hex digits"),
            ("v1=deadbeef", "entry 0 is not 64 hex digits"),
            (&format!("{good}00"), "entry 0 is not 64 hex digits"),
            (&format!("{good},v1=zz"), "entry 1 is not 64 hex digits"),
        ] {
            match verify_pagerduty_signature(body, Some(header), &secrets(&["s3cret"])) {
                Err(e @ PagerDutySignatureError::MalformedHeader { .. }) => {
                    assert!(e.to_string().contains(says), "{header:?}: {e}")
                }
                other => panic!("{header:?}: expected MalformedHeader, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_tampered_body_fails_verification() {
        let header = sign(TRIGGERED.as_bytes(), "s3cret");
        let tampered = TRIGGERED.replace("production", "kube-system");
        assert!(matches!(
            verify_pagerduty_signature(tampered.as_bytes(), Some(&header), &secrets(&["s3cret"])),
            Err(PagerDutySignatureError::NoMatch { .. })
        ));
        let mut trailing = TRIGGERED.as_bytes().to_vec();
        trailing.push(b' ');
        assert!(matches!(
            verify_pagerduty_signature(&trailing, Some(&header), &secrets(&["s3cret"])),
            Err(PagerDutySignatureError::NoMatch { .. })
        ));
    }

    #[test]
    fn without_a_non_empty_secret_nothing_verifies() {
        let body = TRIGGERED.as_bytes();
        let signed_with_empty = sign(body, "");
        for configured in [secrets(&[]), secrets(&[""])] {
            assert_eq!(
                verify_pagerduty_signature(body, Some(&signed_with_empty), &configured),
                Err(PagerDutySignatureError::NoSecrets)
            );
        }
        assert!(matches!(
            verify_pagerduty_signature(body, Some(&signed_with_empty), &secrets(&["", "s3cret"])),
            Err(PagerDutySignatureError::NoMatch { secrets: 1, .. })
        ));
    }

    /// What the PagerDuty parsers' robustness test in `squad-protocols` used to run besides
    /// them: every truncation and a byte flip at every position of each fixture, as header.
    #[test]
    fn truncated_and_byte_flipped_fixtures_as_headers_never_panic() {
        let mut inputs = 0usize;
        for fixture in [TRIGGERED, ACKNOWLEDGED, RESOLVED] {
            let bytes = fixture.as_bytes();
            let truncations = (0..=bytes.len()).map(|end| bytes[..end].to_vec());
            let flips = (0..bytes.len()).map(|i| {
                let mut flipped = bytes.to_vec();
                flipped[i] = match [0xff, b'"', b'}', b'0', b'\\', 0xc3][i % 6] {
                    0xff => bytes[i] ^ 0xff,
                    other => other,
                };
                flipped
            });
            for body in truncations.chain(flips) {
                let header = String::from_utf8_lossy(&body);
                let result = std::panic::catch_unwind(|| {
                    verify_pagerduty_signature(&body, Some(&header), &secrets(&["s3cret"]))
                });
                assert!(result.is_ok(), "panicked on header {header:?}");
                inputs += 1;
            }
        }
        assert!(inputs > 10_000, "only {inputs} inputs tried");
    }

    #[test]
    fn hostile_signature_headers_never_panic() {
        let body = TRIGGERED.as_bytes();
        let long = "v1=".to_string() + &"a".repeat(10_000);
        let many = vec![sign(body, "x"); 1_000].join(",");
        for header in [
            "v1=é",
            "v1=ééééééééééééééééééééééééééééééééé",
            ",,,,",
            "v1",
            "=v1=",
            &long,
            &many,
        ] {
            let result = std::panic::catch_unwind(|| {
                verify_pagerduty_signature(body, Some(header), &secrets(&["s3cret"]))
            });
            assert!(result.is_ok(), "panicked on header {header:?}");
            assert!(result.unwrap().is_err());
        }
    }
}

mod github {
    use super::*;

    const CLOSED: &str =
        include_str!("../../tests/fixtures/github-webhooks/pull_request.closed.json");

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_against_every_secret() {
        let body = CLOSED.as_bytes();
        let secrets = vec!["rotated-out".to_string(), "current".to_string()];
        assert!(verify_github_signature(body, Some(&sign("current", body)), &secrets).is_ok());
        assert_eq!(
            verify_github_signature(body, Some(&sign("other", body)), &secrets),
            Err(GitHubSignatureError::NoMatch { secrets: 2 })
        );
        assert_eq!(
            verify_github_signature(body, None, &secrets),
            Err(GitHubSignatureError::MissingHeader)
        );
        assert_eq!(
            verify_github_signature(body, Some("sha1=abc"), &secrets),
            Err(GitHubSignatureError::Malformed)
        );
        assert_eq!(
            verify_github_signature(body, Some(&sign("current", body)), &[]),
            Err(GitHubSignatureError::NoSecrets)
        );
        // One changed byte.
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert!(
            verify_github_signature(&tampered, Some(&sign("current", body)), &secrets).is_err()
        );
    }
}

/// The order both senders rely on: no usable secret is reported before anything about the
/// request, and the request's signatures are not even read then.
#[test]
fn no_secrets_is_reported_before_the_header_is_read() {
    let unread = || -> Result<Vec<Vec<u8>>, &str> { panic!("read without a usable secret") };
    assert_eq!(
        verify_hmac_sha256(b"body", &secrets(&["", ""]), unread),
        Err(Refusal::NoSecrets)
    );
    assert_eq!(
        verify_pagerduty_signature(b"body", None, &secrets(&[""])),
        Err(PagerDutySignatureError::NoSecrets)
    );
    assert_eq!(
        verify_github_signature(b"body", Some("garbage"), &[]),
        Err(GitHubSignatureError::NoSecrets)
    );
}

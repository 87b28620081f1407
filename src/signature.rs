//! Webhook signatures: the daemon's check that a delivery comes from its sender, done on the raw
//! body before anything parses it.
//!
//! PagerDuty and GitHub both sign the body with HMAC-SHA256 under a shared secret; they differ
//! only in the header that carries the signature. So one verifier, [`verify_hmac_sha256`], checks
//! the bytes, and each sender's check reads its header over it:
//!
//! | sender    | header                  | value                                                   |
//! |-----------|-------------------------|---------------------------------------------------------|
//! | PagerDuty | `X-PagerDuty-Signature` | comma-separated `v1=<64 hex>`, one per active secret    |
//! | GitHub    | `X-Hub-Signature-256`   | `sha256=<64 hex>`                                       |
//!
//! More than one secret may be configured, so that a secret can be rotated without downtime.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use squad_protocols::generic::shorten;

type HmacSha256 = Hmac<Sha256>;

/// Why [`verify_hmac_sha256`] refused a body; each sender's check names it in its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal<E> {
    /// No non-empty secret is configured, so nothing can be verified.
    NoSecrets,
    /// The request's signatures could not be read (the sender's header is missing or malformed).
    Unreadable(E),
    /// Readable signatures, none of which any configured secret produced.
    NoMatch { signatures: usize, secrets: usize },
}

/// Whether any of the request's signatures is the HMAC-SHA256 of `body` under any non-empty
/// secret in `secrets`.
///
/// `signatures` reads them from the request. It is called only once a usable secret is known to
/// be configured, so a daemon without one says so whatever the request carries. Empty secrets are
/// never used, since anyone could sign with them; each comparison is constant-time
/// (`verify_slice`).
///
/// ```
/// use squad::signature::{Refusal, verify_hmac_sha256};
/// // RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?" under "Jefe".
/// let body = b"what do ya want for nothing?";
/// let signature =
///     hex::decode("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")?;
/// let read = || Ok::<_, ()>(vec![signature.clone()]);
/// let secrets = vec!["old-secret".to_string(), "Jefe".to_string()];
/// assert_eq!(verify_hmac_sha256(body, &secrets, read), Ok(()));
/// assert_eq!(
///     verify_hmac_sha256(b"what do ya want for something?", &secrets, read),
///     Err(Refusal::NoMatch { signatures: 1, secrets: 2 })
/// );
/// assert_eq!(verify_hmac_sha256(body, &[String::new()], read), Err(Refusal::NoSecrets));
/// # Ok::<(), hex::FromHexError>(())
/// ```
pub fn verify_hmac_sha256<S: AsRef<[u8]>, E>(
    body: &[u8],
    secrets: &[String],
    signatures: impl FnOnce() -> Result<Vec<S>, E>,
) -> Result<(), Refusal<E>> {
    let keys: Vec<&[u8]> = secrets
        .iter()
        .map(|secret| secret.as_bytes())
        .filter(|key| !key.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(Refusal::NoSecrets);
    }
    let signatures = signatures().map_err(Refusal::Unreadable)?;
    for key in &keys {
        // HMAC takes keys of any length, so this never skips a secret.
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
            continue;
        };
        mac.update(body);
        for signature in &signatures {
            if mac.clone().verify_slice(signature.as_ref()).is_ok() {
                return Ok(());
            }
        }
    }
    Err(Refusal::NoMatch {
        signatures: signatures.len(),
        secrets: keys.len(),
    })
}

// --- PagerDuty ---------------------------------------------------------------------------

/// The request header that carries PagerDuty's webhook signatures.
pub const PAGERDUTY_SIGNATURE_HEADER: &str = "X-PagerDuty-Signature";

/// Why a PagerDuty webhook delivery failed signature verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagerDutySignatureError {
    /// The request has no `X-PagerDuty-Signature` header.
    #[error(
        "missing header `X-PagerDuty-Signature`: expected one or more comma-separated \
         `v1=<hex HMAC-SHA256 of the body>` signatures"
    )]
    MissingHeader,
    /// The header is present but holds no usable `v1=` signature.
    #[error(
        "malformed header `X-PagerDuty-Signature`: expected comma-separated \
         `v1=<64 hex digits>` signatures, {problem}"
    )]
    MalformedHeader { problem: String },
    /// Well-formed signatures, none of which any configured secret produced.
    #[error(
        "no signature in `X-PagerDuty-Signature` matches a configured PagerDuty webhook secret \
         ({signatures} signature(s) checked against {secrets} secret(s))"
    )]
    NoMatch { signatures: usize, secrets: usize },
    /// No non-empty secret is configured, so nothing can be verified.
    #[error("no PagerDuty webhook secret is configured: expected at least one non-empty secret")]
    NoSecrets,
}

/// Checks `X-PagerDuty-Signature` against the raw request body.
///
/// Accepts the delivery when any `v1=` signature in the header is the HMAC-SHA256 of `body` under
/// any of `secrets` (PagerDuty signs with every active secret during a rotation). Entries of other
/// versions are skipped, as PagerDuty's documentation asks; empty secrets are never used.
///
/// ```
/// use squad::signature::{PagerDutySignatureError, verify_pagerduty_signature};
/// // RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?" under "Jefe".
/// let body = b"what do ya want for nothing?";
/// let header = "v1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
/// let secrets = vec!["old-secret".to_string(), "Jefe".to_string()];
/// assert_eq!(verify_pagerduty_signature(body, Some(header), &secrets), Ok(()));
/// assert_eq!(
///     verify_pagerduty_signature(body, None, &secrets),
///     Err(PagerDutySignatureError::MissingHeader)
/// );
/// ```
pub fn verify_pagerduty_signature(
    body: &[u8],
    header: Option<&str>,
    secrets: &[String],
) -> Result<(), PagerDutySignatureError> {
    verify_hmac_sha256(body, secrets, || {
        pagerduty_signatures(header.ok_or(PagerDutySignatureError::MissingHeader)?)
    })
    .map_err(|refusal| match refusal {
        Refusal::NoSecrets => PagerDutySignatureError::NoSecrets,
        Refusal::Unreadable(e) => e,
        Refusal::NoMatch {
            signatures,
            secrets,
        } => PagerDutySignatureError::NoMatch {
            signatures,
            secrets,
        },
    })
}

/// The decoded `v1=` signatures of the header, each 32 bytes.
fn pagerduty_signatures(header: &str) -> Result<Vec<Vec<u8>>, PagerDutySignatureError> {
    let mut signatures = Vec::new();
    for (i, entry) in header.split(',').map(str::trim).enumerate() {
        let Some(hex_digits) = entry.strip_prefix("v1=") else {
            continue;
        };
        match hex::decode(hex_digits) {
            Ok(bytes) if bytes.len() == 32 => signatures.push(bytes),
            _ => {
                return Err(PagerDutySignatureError::MalformedHeader {
                    problem: format!(
                        "entry {i} is not 64 hex digits after `v1=`: {:?}",
                        shorten(entry)
                    ),
                });
            }
        }
    }
    if signatures.is_empty() {
        return Err(PagerDutySignatureError::MalformedHeader {
            problem: format!("found no `v1=` entry in {:?}", shorten(header)),
        });
    }
    Ok(signatures)
}

// --- GitHub ------------------------------------------------------------------------------

/// Why a GitHub delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubSignatureError {
    #[error(
        "no webhook secret is configured ([github] webhook_secrets or SQUAD_GITHUB_WEBHOOK_SECRETS)"
    )]
    NoSecrets,
    #[error("the X-Hub-Signature-256 header is missing")]
    MissingHeader,
    #[error("X-Hub-Signature-256 is not `sha256=` and 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 matches none of the {secrets} configured secret(s)")]
    NoMatch { secrets: usize },
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` against every
/// configured secret (more than one while a secret is rotated).
///
/// ```
/// use hmac::{Hmac, KeyInit, Mac};
/// use squad::signature::verify_github_signature;
/// let body = br#"{"action":"closed"}"#;
/// let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
/// mac.update(body);
/// let header = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
/// let secrets = vec!["old".to_string(), "s3cret".to_string()];
/// assert!(verify_github_signature(body, Some(&header), &secrets).is_ok());
/// assert!(verify_github_signature(b"tampered", Some(&header), &secrets).is_err());
/// ```
pub fn verify_github_signature(
    body: &[u8],
    header: Option<&str>,
    secrets: &[String],
) -> Result<(), GitHubSignatureError> {
    verify_hmac_sha256(body, secrets, || {
        github_signature(header.ok_or(GitHubSignatureError::MissingHeader)?).map(|s| vec![s])
    })
    .map_err(|refusal| match refusal {
        Refusal::NoSecrets => GitHubSignatureError::NoSecrets,
        Refusal::Unreadable(e) => e,
        Refusal::NoMatch { secrets, .. } => GitHubSignatureError::NoMatch { secrets },
    })
}

/// The decoded signature of `sha256=<64 hex digits>`.
fn github_signature(header: &str) -> Result<Vec<u8>, GitHubSignatureError> {
    header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|s| s.len() == 32)
        .ok_or(GitHubSignatureError::Malformed)
}

#[cfg(test)]
mod tests;

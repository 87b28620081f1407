//! Bearer tokens, kept only as SHA-256 digests and compared in constant time.
//!
//! `[server.auth] token_hashes` holds `sha256:<hex>` digests (from `squad token hash`); plain
//! `tokens` (and `SQUAD_SERVER_TOKENS`) are hashed at start and the plain text is dropped. A
//! presented token is hashed and compared with every stored digest without an early exit, so
//! neither the position of a mismatch, nor which token matched, nor the token's length shows in
//! the time an answer takes.

use sha2::{Digest, Sha256};
use squad_config::AuthSettings;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The SHA-256 of an accepted token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenDigest([u8; 32]);

impl TokenDigest {
    fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// `sha256:<64 hex>`, as validated by the config; `None` otherwise.
    fn parse(text: &str) -> Option<TokenDigest> {
        let hex = text.strip_prefix("sha256:")?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(TokenDigest(out))
    }

    /// The first 8 hex digits: names a token in logs without revealing it.
    pub(crate) fn fingerprint(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

/// `sha256:<hex>` of `token`: what `squad token hash` prints and `token_hashes` holds.
pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex::encode(TokenDigest::of(token).0))
}

/// The accepted tokens, as digests only.
pub(crate) struct Tokens {
    digests: Vec<TokenDigest>,
}

impl Tokens {
    /// Hashes the plain tokens and parses the hashed ones (duplicates kept once). A malformed
    /// hash is an error naming it (the config's validation normally catches it first).
    pub(crate) fn from_settings(auth: &AuthSettings) -> anyhow::Result<Tokens> {
        let mut digests = Vec::new();
        for (i, text) in auth.token_hashes.iter().enumerate() {
            let d = TokenDigest::parse(text).ok_or_else(|| {
                anyhow::anyhow!(
                    "server.auth.token_hashes[{i}]: expected \"sha256:\" followed by 64 hex digits (the output of `squad token hash`)"
                )
            })?;
            digests.push(d);
        }
        digests.extend(auth.tokens.iter().map(|t| TokenDigest::of(t)));
        let mut unique: Vec<TokenDigest> = Vec::with_capacity(digests.len());
        for d in digests {
            if !unique.contains(&d) {
                unique.push(d);
            }
        }
        Ok(Tokens { digests: unique })
    }

    /// How many distinct tokens are accepted.
    pub(crate) fn len(&self) -> usize {
        self.digests.len()
    }

    pub(crate) fn digest(&self, index: usize) -> Option<&TokenDigest> {
        self.digests.get(index)
    }

    /// The index of the stored digest `presented` hashes to, comparing with all of them.
    pub(crate) fn find(&self, presented: &str) -> Option<usize> {
        let candidate = TokenDigest::of(presented);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, stored) in self.digests.iter().enumerate() {
            let equal = stored.0.ct_eq(&candidate.0);
            index.conditional_assign(&u32::try_from(i).unwrap_or(u32::MAX), equal);
            found |= equal;
        }
        bool::from(found).then_some(index as usize)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn auth(tokens: &[&str], hashes: &[String]) -> AuthSettings {
        AuthSettings {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            token_hashes: hashes.to_vec(),
        }
    }

    #[test]
    fn the_hash_is_sha256_in_lowercase_hex() {
        // sha256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            hash_token("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hashed_and_plain_tokens_are_both_found_and_others_are_not() {
        let a = "first-token-0123456789";
        let b = "second-token-0123456789";
        let tokens = Tokens::from_settings(&auth(
            &[b],
            &[hash_token(a).to_uppercase().replace("SHA256", "sha256")],
        ))
        .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.find(a), Some(0));
        assert_eq!(tokens.find(b), Some(1));
        assert_eq!(tokens.find("first-token-012345678"), None);
        assert_eq!(tokens.find(""), None);
        assert_eq!(tokens.find(&"x".repeat(10_000)), None);
    }

    #[test]
    fn a_token_listed_twice_counts_once() {
        let a = "first-token-0123456789";
        let tokens = Tokens::from_settings(&auth(&[a, a], &[hash_token(a)])).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens.find(a), Some(0));
    }

    #[test]
    fn a_malformed_hash_is_named() {
        let err = Tokens::from_settings(&auth(&[], &["sha256:nothex".into()]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("server.auth.token_hashes[0]"), "{err}");
    }

    #[test]
    fn the_fingerprint_is_the_digest_prefix() {
        let t = Tokens::from_settings(&auth(&["abc"], &[])).unwrap();
        assert_eq!(t.digest(0).unwrap().fingerprint(), "ba7816bf");
    }
}

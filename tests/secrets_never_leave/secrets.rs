//! The secrets the test plants: every kind the redaction gateway's detectors know, a value only a
//! configured pattern matches, and opaque values known only as the data of a Secret. Each is
//! drawn fresh from a seeded generator, so a run is reproducible from its seed and every planted
//! value is unique to its case: a hit names exactly one planting.

use squad_runtime::redact::base64_standard;

/// The pattern `[llm] redact_patterns` configures for [`Kind::Custom`] values.
pub const CUSTOM_PATTERN: &str = r"ACME-[0-9A-F]{8}-[0-9A-F]{8}-[0-9A-F]{8}";

/// A small, seeded generator (splitmix64): reproducible from the seed, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// `len` characters drawn from `alphabet`.
    pub fn string(&mut self, alphabet: &str, len: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..len).map(|_| chars[self.below(chars.len())]).collect()
    }

    /// A fresh seed for another generator.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &str = "0123456789ABCDEF";

/// What kind of secret a value is, as the gateway would name what finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PrivateKey,
    Jwt,
    AwsAccessKeyId,
    AwsSecretAccessKey,
    GithubToken,
    SlackToken,
    SlackWebhook,
    OpenaiKey,
    AnthropicKey,
    GoogleApiKey,
    /// The password of a URL's userinfo (`postgres://user:<this>@host`).
    UrlPassword,
    /// A bearer token after `Authorization:`.
    BearerToken,
    /// `Basic` credentials (base64 of `user:password`).
    BasicAuth,
    /// A value under a secret-named key (`password=`, `DB_PASSWORD:`).
    Password,
    /// A random string with no telltale shape, known only as a Secret's value.
    Opaque,
    /// A value only the configured [`CUSTOM_PATTERN`] matches.
    Custom,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::PrivateKey,
        Kind::Jwt,
        Kind::AwsAccessKeyId,
        Kind::AwsSecretAccessKey,
        Kind::GithubToken,
        Kind::SlackToken,
        Kind::SlackWebhook,
        Kind::OpenaiKey,
        Kind::AnthropicKey,
        Kind::GoogleApiKey,
        Kind::UrlPassword,
        Kind::BearerToken,
        Kind::BasicAuth,
        Kind::Password,
        Kind::Opaque,
        Kind::Custom,
    ];
}

/// One planted secret: the value that must never leave, and others derived from it that must
/// not either (a Basic credential's password, a private key's lines).
#[derive(Debug, Clone)]
pub struct Secret {
    pub kind: Kind,
    pub value: String,
    /// The password inside a Basic credential.
    pub inner: Option<String>,
}

/// `len` characters with an upper-case letter, a lower-case letter and a digit among them.
fn mixed(rng: &mut Rng, len: usize) -> String {
    let mut chars: Vec<char> = rng.string(ALNUM, len).chars().collect();
    for (i, set) in [UPPER, LOWER, DIGITS].iter().enumerate() {
        let at = (i * 7 + 3) % len;
        chars[at] = rng.string(set, 1).chars().next().unwrap_or('x');
    }
    chars.into_iter().collect()
}

fn base64url(bytes: &[u8]) -> String {
    base64_standard(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

impl Secret {
    /// A fresh secret of `kind`.
    pub fn generate(kind: Kind, rng: &mut Rng) -> Secret {
        let mut inner = None;
        let value = match kind {
            Kind::PrivateKey => {
                let mut pem = String::from("-----BEGIN RSA PRIVATE KEY-----\n");
                for _ in 0..4 {
                    pem.push_str(&rng.string(BASE64, 64));
                    pem.push('\n');
                }
                pem.push_str(&rng.string(BASE64, 24));
                pem.push_str("==\n-----END RSA PRIVATE KEY-----\n");
                pem
            }
            Kind::Jwt => {
                let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
                let payload = format!(
                    r#"{{"sub":"{}","iat":{}}}"#,
                    rng.string(ALNUM, 12),
                    1_700_000_000 + rng.below(90_000_000)
                );
                format!(
                    "{header}.{}.{}",
                    base64url(payload.as_bytes()),
                    rng.string(BASE64URL, 43)
                )
            }
            Kind::AwsAccessKeyId => {
                format!("AKIA{}", rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
            }
            Kind::AwsSecretAccessKey => {
                // Letters on both ends: the detector wants the 40 characters whole.
                format!(
                    "{}{}{}",
                    rng.string(ALNUM, 1),
                    rng.string(BASE64, 38),
                    rng.string(ALNUM, 1)
                )
            }
            Kind::GithubToken => format!("ghp_{}", rng.string(ALNUM, 36)),
            Kind::SlackToken => format!(
                "xoxb-{}-{}-{}",
                rng.string(DIGITS, 12),
                rng.string(DIGITS, 13),
                rng.string(ALNUM, 24)
            ),
            Kind::SlackWebhook => format!(
                "T{}/B{}/{}",
                rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8),
                rng.string("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
                rng.string(ALNUM, 24)
            ),
            Kind::OpenaiKey => format!("sk-proj-{}", mixed(rng, 48)),
            Kind::AnthropicKey => format!("sk-ant-api03-{}", mixed(rng, 86)),
            Kind::GoogleApiKey => format!("AIza{}", rng.string(BASE64URL, 35)),
            Kind::UrlPassword => {
                let len = rng.between(16, 24);
                mixed(rng, len)
            }
            Kind::BearerToken => {
                let len = rng.between(32, 40);
                mixed(rng, len)
            }
            Kind::BasicAuth => {
                let password = mixed(rng, 18);
                let encoded = base64_standard(format!("svc-proxy:{password}").as_bytes());
                inner = Some(password);
                encoded
            }
            Kind::Password => {
                let first = rng.string(ALNUM, 1);
                let len = rng.between(13, 23);
                let rest = rng.string(
                    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!*-_.",
                    len,
                );
                format!("{first}{}{}", rest, rng.string(DIGITS, 1))
            }
            Kind::Opaque => {
                let len = rng.between(20, 40);
                mixed(rng, len)
            }
            Kind::Custom => format!(
                "ACME-{}-{}-{}",
                rng.string(HEX, 8),
                rng.string(HEX, 8),
                rng.string(HEX, 8)
            ),
        };
        Secret { kind, value, inner }
    }

    /// The strings that must not appear in any output: the value, a Basic credential's
    /// password, and each line of a multi-line value long enough to be its own.
    pub fn needles(&self) -> Vec<String> {
        let mut out = vec![self.value.trim().to_owned()];
        out.extend(self.inner.clone());
        if self.value.trim().contains('\n') {
            out.extend(
                self.value
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                    .map(str::to_owned),
            );
        }
        out
    }
}

/// The forms a needle may take in an output: in clear, base64 (standard and URL-safe, with and
/// without padding) and percent-encoded; each with its name for a report.
pub fn forms(needle: &str) -> Vec<(&'static str, String)> {
    let standard = base64_standard(needle.as_bytes());
    let url_safe = standard.replace('+', "-").replace('/', "_");
    let mut out = vec![
        ("in clear", needle.to_owned()),
        ("base64", standard.clone()),
        (
            "base64 without padding",
            standard.trim_end_matches('=').to_owned(),
        ),
        ("URL-safe base64", url_safe.clone()),
        (
            "URL-safe base64 without padding",
            url_safe.trim_end_matches('=').to_owned(),
        ),
        ("URL-encoded", percent_encoded(needle)),
    ];
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

//! The built-in detectors, as a table: each kind of credential is a regex plus an acceptance
//! check that turns a match into a [`Hit`] (or rejects a false lead). [`BuiltIns::compile`] builds
//! the table once per process; the [`Redactor`](super::Redactor) runs every detector over each
//! text and settles overlaps.

use std::sync::LazyLock;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use regex::{Captures, Regex};

use super::keys::{classify_key, has_digit, is_reference_or_mask};
use super::{Hit, RedactError};

type Accept = fn(&Captures<'_>, &str) -> Option<Hit>;

pub(super) struct Detector {
    regex: Regex,
    accept: Accept,
}

impl Detector {
    /// Every accepted hit. A rejected match is retried one character later, so a false lead
    /// (`bypass=` before `password=`) cannot hide a secret it overlaps.
    pub(super) fn scan(&self, text: &str, mut found: impl FnMut(Hit)) {
        let mut at = 0;
        while let Some(caps) = self.regex.captures_at(text, at) {
            let Some(whole) = caps.get(0) else { break };
            match (self.accept)(&caps, text) {
                Some(hit) => {
                    found(hit);
                    at = whole.end().max(next_char(text, whole.start()));
                }
                None => at = next_char(text, whole.start()),
            }
            if at > text.len() {
                break;
            }
        }
    }
}

fn next_char(text: &str, at: usize) -> usize {
    at + text
        .get(at..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

pub(super) struct BuiltIns {
    pub(super) detectors: Vec<Detector>,
    pub(super) placeholder: Regex,
}

pub(super) static BUILT_INS: LazyLock<Result<BuiltIns, RedactError>> =
    LazyLock::new(BuiltIns::compile);

/// A value after a key: `\"escaped\"` (JSON inside a log line), `"double"`, `'single'` or bare.
const VALUE: &str = r#"(?:\\"(?P<eq>[^"\\\r\n]*)\\"|"(?P<dq>(?:[^"\\\r\n]|\\.)*)"|'(?P<sq>[^'\r\n]*)'|(?P<bare>[^\s"'`,;&}\\]+))"#;

/// A key that may name a secret; [`classify_key`] decides.
const KEY: &str = r"(?P<key>[A-Za-z0-9_.-]*(?:pass(?:word|wd|phrase)?|pwd|secret|token|key|credential|auth|cookie|session(?:id)?|signature|salt|hmac)s?)";

impl BuiltIns {
    fn compile() -> Result<Self, RedactError> {
        let specs: Vec<(&'static str, String, Accept)> = vec![
            (
                "pem_private_key",
                r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?:(?:\r?\n|\\n)[ \t]*[A-Za-z0-9+/=]{16,})*)".into(),
                |caps, _| whole(caps, "private_key"),
            ),
            (
                "base64_pem_private_key",
                r"\bLS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}".into(),
                accept_base64_pem,
            ),
            (
                "jwt",
                r"\beyJ[A-Za-z0-9_-]{5,}\.ey[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}".into(),
                |caps, _| whole(caps, "jwt"),
            ),
            (
                "aws_access_key_id",
                r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b".into(),
                |caps, _| whole(caps, "aws_key"),
            ),
            (
                "aws_secret_access_key",
                r#"(?i)(?:aws[_-]?)?secret[_-]?access[_-]?key\\?["']?[ \t]*[:=][ \t]*\\?["']?(?P<v>[A-Za-z0-9/+=]{40})"#.into(),
                |caps, text| {
                    let v = caps.name("v")?;
                    let ends = !text[v.end()..].starts_with(|c: char| c.is_ascii_alphanumeric() || "+/=".contains(c));
                    ends.then(|| Hit::new(v.range(), "aws_secret_key"))
                },
            ),
            (
                "github_token",
                r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,})\b".into(),
                |caps, _| whole(caps, "github_token"),
            ),
            (
                "slack_token",
                r"\bxox[baprs]-[A-Za-z0-9-]{10,}".into(),
                |caps, _| {
                    let m = caps.get(0)?;
                    has_digit(m.as_str()).then(|| Hit::new(m.range(), "slack_token"))
                },
            ),
            (
                "slack_webhook",
                r"https://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<v>[A-Za-z0-9/_-]{20,})".into(),
                |caps, _| caps.name("v").map(|v| Hit::new(v.range(), "slack_webhook")),
            ),
            (
                "openai_or_anthropic_key",
                r"\bsk-(?:proj-|svcacct-|admin-|ant-[a-z]+\d\d-)?[A-Za-z0-9_-]{20,}".into(),
                |caps, _| {
                    let m = caps.get(0)?;
                    let body = m.as_str().get(3..)?;
                    let mixed = body.bytes().any(|b| b.is_ascii_uppercase())
                        && body.bytes().any(|b| b.is_ascii_lowercase())
                        && has_digit(body);
                    let kind = if body.starts_with("ant-") { "anthropic_key" } else { "openai_key" };
                    mixed.then(|| Hit::new(m.range(), kind))
                },
            ),
            (
                "google_api_key",
                r"\bAIza[0-9A-Za-z_-]{35}".into(),
                |caps, text| {
                    let m = caps.get(0)?;
                    let ends = !text[m.end()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    ends.then(|| Hit::new(m.range(), "google_api_key"))
                },
            ),
            (
                "url_credentials",
                r#"(?i)\b[a-z][a-z0-9+.-]*://(?P<user>[^\s:/?#@\[\]"'<>]*):(?P<v>[^\s/?#"'<>]+)@"#.into(),
                |caps, _| {
                    let v = caps.name("v")?;
                    (!is_reference_or_mask(v.as_str())).then(|| Hit::new(v.range(), "connection_string"))
                },
            ),
            (
                "authorization_header",
                r#"(?i)\b(?:proxy-)?authorization\\?["']?[ \t]*[:=][ \t]*\\?["']?(?:(?P<scheme>bearer|basic|token|bot)[ \t]+)?(?P<v>[^\s"',;\\]+)"#.into(),
                accept_authorization,
            ),
            (
                "bearer_token",
                r"(?i)\bbearer[ \t]+(?P<v>[A-Za-z0-9._~+/-]{8,}=*)".into(),
                |caps, _| {
                    let v = caps.name("v")?;
                    let s = v.as_str();
                    (has_digit(s) && s.bytes().any(|b| b.is_ascii_alphabetic())).then(|| Hit::new(v.range(), "token"))
                },
            ),
            (
                "basic_credentials",
                r"(?i)\bbasic[ \t]+(?P<v>[A-Za-z0-9+/]{4,}={0,2})".into(),
                |caps, _| {
                    let v = caps.name("v")?;
                    is_basic_credentials(v.as_str()).then(|| Hit::new(v.range(), "basic_auth"))
                },
            ),
            (
                // Kubernetes env entries: `- name: DB_PASSWORD` then `value: …` (YAML or JSON).
                "env_name_value",
                format!(
                    r#"(?i)\bname\\?["']?[ \t]*:[ \t]*\\?["']?(?P<key>[A-Za-z0-9_.-]+)\\?["']?[ \t]*(?:,[ \t]*|\r?\n[ \t]*)\\?["']?value\\?["']?[ \t]*:[ \t]*{VALUE}"#
                ),
                accept_keyed_value,
            ),
            (
                "secret_assignment",
                format!(r#"(?i){KEY}\\?["']?[ \t]*(?P<sep>=>|:=|[:=])[ \t]*{VALUE}"#),
                accept_keyed_value,
            ),
        ];
        let detectors = specs
            .into_iter()
            .map(|(name, pattern, accept)| {
                Regex::new(&pattern)
                    .map(|regex| Detector { regex, accept })
                    .map_err(|source| RedactError::BuiltIn {
                        detector: name,
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        let placeholder = Regex::new(r"\[REDACTED:[a-z0-9_]+:[0-9]+\]").map_err(|source| {
            RedactError::BuiltIn {
                detector: "placeholder",
                source,
            }
        })?;
        Ok(Self {
            detectors,
            placeholder,
        })
    }
}

fn whole(caps: &Captures<'_>, kind: &'static str) -> Option<Hit> {
    let m = caps.get(0)?;
    // A truncated PEM block may have swallowed trailing whitespace.
    let len = m.as_str().trim_end().len();
    Some(Hit::new(m.start()..m.start() + len, kind))
}

fn accept_base64_pem(caps: &Captures<'_>, _: &str) -> Option<Hit> {
    let m = caps.get(0)?;
    let head = m.as_str().get(..m.as_str().len().min(96) / 4 * 4)?;
    let decoded = base64_decode(head)?;
    let is_private = String::from_utf8_lossy(&decoded).contains("PRIVATE KEY");
    is_private.then(|| Hit::new(m.range(), "private_key"))
}

fn accept_authorization(caps: &Captures<'_>, _: &str) -> Option<Hit> {
    let v = caps.name("v")?;
    let value = v.as_str();
    if is_reference_or_mask(value) {
        return None;
    }
    match caps.name("scheme").map(|s| s.as_str().to_ascii_lowercase()) {
        Some(scheme) if scheme == "basic" => Some(Hit::new(v.range(), "basic_auth")),
        Some(_) => Some(Hit::new(v.range(), "token")),
        // Without a scheme, only something token-like: not "authorization: denied".
        None => (value.len() >= 8 && has_digit(value)).then(|| Hit::new(v.range(), "token")),
    }
}

/// `key = value` (and the env name/value form): the key must name a secret and the value must
/// look like one.
fn accept_keyed_value(caps: &Captures<'_>, text: &str) -> Option<Hit> {
    let key = caps.name("key")?;
    // The key is a whole identifier: `bypass=` is not `pass=`.
    let before = text[..key.start()].chars().next_back();
    if before.is_some_and(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return None;
    }
    // `https://x-access-token:…@host` is URL userinfo, the URL detector's business.
    if text[..key.start()].ends_with("://") {
        return None;
    }
    let class = classify_key(key.as_str())?;
    let quoted = caps
        .name("eq")
        .or_else(|| caps.name("dq"))
        .or_else(|| caps.name("sq"));
    let value = quoted.or_else(|| caps.name("bare"))?;
    if !class.vouches_for(value.as_str()) {
        return None;
    }
    let sep = caps.name("sep");
    if key.as_str().eq_ignore_ascii_case("secret")
        && sep.is_some_and(|s| s.as_str() == ":" && s.end() == value.start())
        && is_secret_reference(value.as_str())
    {
        return None;
    }
    // Prose, not configuration: "invalid password: user admin" has words after the "value"
    // (and so does `kubectl describe secret`'s "password:  16 bytes").
    let is_colon = caps.name("sep").is_some_and(|s| s.as_str() == ":");
    let word_or_number = value.as_str().chars().all(char::is_alphabetic)
        || value.as_str().chars().all(|c| c.is_ascii_digit());
    if quoted.is_none() && is_colon && word_or_number {
        let rest = text[value.end()..]
            .lines()
            .next()
            .unwrap_or_default()
            .trim();
        if !rest.is_empty() && !rest.starts_with('#') {
            return None;
        }
    }
    Some(Hit::new(value.range(), class.kind))
}

/// squad's notation for a Secret's key, `secret:<name>/<key>` (written without a space, as the
/// diagnosis and its evidence quote it): a lowercase DNS name, one `/`, then a key as the API
/// allows it. It names where a value lives, not the value.
fn is_secret_reference(value: &str) -> bool {
    let Some((name, key)) = value.split_once('/') else {
        return false;
    };
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let key_ok = !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    name_ok && key_ok
}

/// `Basic …` is only credentials if it decodes to printable `user:password`.
fn is_basic_credentials(value: &str) -> bool {
    base64_decode(value).is_some_and(|decoded| {
        decoded.len() >= 3
            && decoded.contains(&b':')
            && decoded.iter().all(|b| (0x20..0x7f).contains(b))
    })
}

/// Standard base64 read the way the detectors need it: padding optional and not checked, and
/// non-zero trailing bits accepted, so that a prefix cut from a longer value still decodes.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64, padded or not (trailing `=` are ignored, however many); `None` if it isn't
/// base64 (whitespace included). A lone last character holds no whole byte and is dropped. The
/// detectors only pass matches of `[A-Za-z0-9+/]` with optional `=`, so the URL-safe alphabet
/// is not needed here.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let data = text.trim_end_matches('=');
    let data = if data.len() % 4 == 1 {
        let (whole, last) = data.split_at_checked(data.len() - 1)?;
        if !last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        {
            return None;
        }
        whole
    } else {
        data
    };
    LENIENT_BASE64.decode(data).ok()
}

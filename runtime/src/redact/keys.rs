//! Whether a key names a secret, and which values it vouches for. `DB_PASSWORD=…` and
//! `"apiKey": …` make any real value a secret; vaguer keys (`key`, `auth`, `cookie`) only
//! random-looking ones; references, masks and templating (`${DB_PASSWORD}`, `****`) never are.
//! Used by the keyed-value detectors and by [`Redactor::redact_json`](super::Redactor::redact_json).

/// How much a secret-looking key name vouches for its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tier {
    /// `password`, `token`, `api_key`…: any real value is a secret.
    AnyValue,
    /// `signing_key`-ish but vaguer (`key`, `auth`, `cookie`, `salt`…): only random-looking values.
    RandomOnly,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct KeyClass {
    pub(super) kind: &'static str,
    pub(super) tier: Tier,
    /// `PWD=/app` is a working directory, not a password.
    is_pwd: bool,
}

impl KeyClass {
    pub(super) fn vouches_for(&self, value: &str) -> bool {
        if is_reference_or_mask(value) || (self.is_pwd && value.starts_with(['/', '~'])) {
            return false;
        }
        match self.tier {
            Tier::AnyValue => true,
            Tier::RandomOnly => looks_random(value),
        }
    }
}

/// Whether a key names a secret, judged by its last word: `DB_PASSWORD`, `dbPassword`,
/// `client-secret`, `X-Api-Key` do; `password_policy`, `token_expiry`, `secretName` don't.
pub(super) fn classify_key(key: &str) -> Option<KeyClass> {
    let words = key_words(key);
    // Plurals name the same thing: `tokens: [...]`, `passwords=`.
    let last = words.last()?.as_str();
    let last = match last.strip_suffix('s') {
        Some(singular) if !matches!(last, "pass" | "credentials" | "sessions") => singular,
        _ => last,
    };
    let previous = words
        .len()
        .checked_sub(2)
        .and_then(|i| words.get(i))
        .map_or("", String::as_str);
    let (kind, tier) = match last {
        "password" | "passwd" | "pass" | "pwd" | "passphrase" => ("password", Tier::AnyValue),
        "secret" => ("secret", Tier::AnyValue),
        "token" => ("token", Tier::AnyValue),
        "apikey" => ("api_key", Tier::AnyValue),
        "key" => match previous {
            "api" => ("api_key", Tier::AnyValue),
            "private" => ("private_key", Tier::AnyValue),
            "secret" | "access" | "signing" | "encryption" | "master" | "auth" | "client"
            | "license" | "account" | "service" | "shared" => ("secret", Tier::AnyValue),
            _ => ("secret", Tier::RandomOnly),
        },
        "credential" | "credentials" | "auth" | "cookie" | "session" | "sessionid"
        | "signature" | "salt" | "hmac" => ("secret", Tier::RandomOnly),
        _ => return None,
    };
    Some(KeyClass {
        kind,
        tier,
        is_pwd: last == "pwd",
    })
}

/// `db_password` → [db, password]; `dbPassword` → [db, password]; `X-Api-Key` → [x, api, key].
fn key_words(key: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous: Option<char> = None;
    for c in key.chars() {
        let camel = c.is_ascii_uppercase()
            && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
        if (!c.is_ascii_alphanumeric() || camel) && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if c.is_ascii_alphanumeric() {
            current.push(c.to_ascii_lowercase());
        }
        previous = Some(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Values that stand for a secret without being one: templating, references, masks, flags.
pub(super) fn is_reference_or_mask(value: &str) -> bool {
    const NOT_SECRETS: &[&str] = &[
        "null",
        "none",
        "nil",
        "true",
        "false",
        "undefined",
        "redacted",
        "hidden",
        "masked",
        "omitted",
        "required",
        "optional",
        "unset",
        "yes",
        "no",
        "on",
        "off",
        "n/a",
    ];
    value.is_empty()
        || value.starts_with(['$', '{', '[', '<', '%', '|', '>', ':', '='])
        || value
            .chars()
            .all(|c| matches!(c, '*' | 'x' | 'X' | '.' | '•' | '#' | '-' | '_' | '?'))
        || NOT_SECRETS
            .iter()
            .any(|word| value.eq_ignore_ascii_case(word))
}

/// Long, token-alphabet, letters and digits, and not repetitive.
fn looks_random(value: &str) -> bool {
    value.len() >= 16
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-.~".contains(&b))
        && has_digit(value)
        && value.bytes().any(|b| b.is_ascii_alphabetic())
        && shannon_bits_per_char(value) >= 3.0
}

pub(super) fn has_digit(value: &str) -> bool {
    value.bytes().any(|b| b.is_ascii_digit())
}

fn shannon_bits_per_char(value: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in value.bytes() {
        counts[usize::from(b)] += 1;
    }
    let len = value.len() as f64;
    counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / len;
            -p * p.log2()
        })
        .sum()
}

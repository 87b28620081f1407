//! The redaction gateway: everything squad sends to a model passes one [`Redactor`] per incident,
//! which swaps secrets for placeholders and, for local use only, swaps them back.
//!
//! Placeholders are stable: within an incident the same value always becomes the same
//! `[REDACTED:kind:N]` (N counts per redactor), so a model can still tell two secrets apart and
//! notice "the token in the log is the one in the env". [`Redactor::restore`] maps placeholders in
//! a model's answer back to real values where squad acts locally; never call it on anything that
//! leaves the process.
//!
//! What counts as a secret:
//! - values the incident knows are secret ([`Redactor::add_secret_values`], e.g. the data of the
//!   Kubernetes Secrets a workload mounts), verbatim and base64-encoded;
//! - configured regexes ([`Redactor::new`]);
//! - built-in detectors, tuned for precision: credentials with a recognisable shape (PEM private
//!   keys, JWTs, AWS, GitHub, Slack, OpenAI, Anthropic and Google keys), passwords in URLs,
//!   `Authorization` headers, and values assigned to secret-named keys (`DB_PASSWORD=…`,
//!   `"apiKey": "…"`, `token: …`, `- name: X_TOKEN` / `value: …`). Ordinary identifiers (git
//!   SHAs, UUIDs, pod names, image digests) are left alone unless a secret-named key vouches for
//!   them.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use regex::{Captures, Regex};
use serde_json::Value;

/// Known secret values shorter than this are ignored: they would redact common words.
pub const MIN_KNOWN_SECRET_CHARS: usize = 6;

/// Redaction runs until nothing new is found (so it is idempotent), at most this many times.
const MAX_PASSES: usize = 4;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RedactError {
    #[error("redaction pattern {pattern:?} is not a valid regex: {source}")]
    BadPattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("built-in redaction detector {detector} does not compile: {source}")]
    BuiltIn {
        detector: &'static str,
        #[source]
        source: regex::Error,
    },
}

/// One incident's redaction gateway. Cheap to share (`Send + Sync`); wrap it in an `Arc`.
pub struct Redactor {
    built_ins: &'static BuiltIns,
    patterns: Vec<Regex>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Known secret values and their base64 forms, longest first.
    known: Arc<[String]>,
    known_set: BTreeSet<String>,
    placeholder_by_value: HashMap<String, String>,
    value_by_placeholder: HashMap<String, String>,
    issued: u64,
}

impl State {
    fn placeholder_for(&mut self, value: &str, kind: &str) -> String {
        if let Some(existing) = self.placeholder_by_value.get(value) {
            return existing.clone();
        }
        self.issued += 1;
        let placeholder = format!("[REDACTED:{kind}:{}]", self.issued);
        self.placeholder_by_value
            .insert(value.to_owned(), placeholder.clone());
        self.value_by_placeholder
            .insert(placeholder.clone(), value.to_owned());
        placeholder
    }
}

impl fmt::Debug for Redactor {
    // Never prints a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Redactor")
            .field("patterns", &self.patterns.len())
            .field("known_values", &state.known.len())
            .field("placeholders", &state.issued)
            .finish()
    }
}

impl Redactor {
    /// A redactor with the built-in detectors plus `extra_patterns` (regexes; the named group
    /// `secret`, else group 1, else the whole match is redacted, as kind `pattern`).
    pub fn new(extra_patterns: &[String]) -> Result<Self, RedactError> {
        let built_ins = BUILT_INS.as_ref().map_err(Clone::clone)?;
        let patterns = extra_patterns
            .iter()
            .map(|pattern| {
                Regex::new(pattern).map_err(|source| RedactError::BadPattern {
                    pattern: pattern.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            built_ins,
            patterns,
            state: Mutex::new(State::default()),
        })
    }

    /// Values known to be secret (e.g. the data of Kubernetes Secrets), redacted wherever they
    /// appear, verbatim or base64-encoded (padded, unpadded, URL-safe). Surrounding whitespace
    /// is ignored (Secret data often ends in a newline); values shorter than
    /// [`MIN_KNOWN_SECRET_CHARS`] are ignored.
    pub fn add_secret_values(&self, values: impl IntoIterator<Item = String>) {
        let mut state = self.lock();
        let before = state.known_set.len();
        for value in values {
            let trimmed = value.trim();
            for variant in [value.as_str(), trimmed] {
                if variant.chars().count() < MIN_KNOWN_SECRET_CHARS {
                    continue;
                }
                let bytes = variant.as_bytes();
                state.known_set.insert(variant.to_owned());
                state.known_set.insert(base64_encode(bytes, STANDARD, true));
                state
                    .known_set
                    .insert(base64_encode(bytes, STANDARD, false));
                state
                    .known_set
                    .insert(base64_encode(bytes, URL_SAFE, false));
            }
        }
        if state.known_set.len() != before {
            let mut known: Vec<String> = state.known_set.iter().cloned().collect();
            known.sort_by_key(|value| std::cmp::Reverse(value.len()));
            state.known = known.into();
        }
    }

    /// `text` with every secret replaced by its placeholder. Idempotent: placeholders are never
    /// redacted again.
    pub fn redact(&self, text: &str) -> String {
        let known = Arc::clone(&self.lock().known);
        let mut out = text.to_owned();
        for _ in 0..MAX_PASSES {
            let hits = self.find_secrets(&out, &known);
            if hits.is_empty() {
                break;
            }
            out = self.replace(&out, &hits);
        }
        out
    }

    /// `value` with every string redacted. Object keys are kept; a field whose key names a
    /// secret (`password`, `apiKey`, `client_secret`…) has its string, number or array-of-scalars
    /// value replaced whole. Objects under such keys are walked normally, so references like
    /// `{"name": "db", "key": "password"}` survive.
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.redact(text)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, v)| (key.clone(), self.redact_field(key, v)))
                    .collect(),
            ),
            Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
        }
    }

    /// `text` with this redactor's placeholders replaced by the values they stand for. For local
    /// use only (applying a fix, writing a file); unknown placeholders are left as they are.
    pub fn restore(&self, text: &str) -> String {
        let state = self.lock();
        self.built_ins
            .placeholder
            .replace_all(text, |caps: &Captures<'_>| {
                let placeholder = caps.get(0).map_or("", |m| m.as_str());
                state
                    .value_by_placeholder
                    .get(placeholder)
                    .cloned()
                    .unwrap_or_else(|| placeholder.to_owned())
            })
            .into_owned()
    }

    fn redact_field(&self, key: &str, value: &Value) -> Value {
        let Some(class) = classify_key(key) else {
            return self.redact_json(value);
        };
        match value {
            Value::String(text)
                if !self.built_ins.placeholder.is_match(text) && class.vouches_for(text) =>
            {
                Value::String(self.lock().placeholder_for(text, class.kind))
            }
            Value::Number(number) if class.tier == Tier::AnyValue => {
                Value::String(self.lock().placeholder_for(&number.to_string(), class.kind))
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.redact_field(key, item))
                    .collect(),
            ),
            _ => self.redact_json(value),
        }
    }

    /// Non-overlapping secrets in `text`, in order. Overlaps go to the longest match (a PEM block
    /// over anything inside it), then to the more specific source.
    fn find_secrets(&self, text: &str, known: &[String]) -> Vec<Hit> {
        let mut candidates: Vec<(Hit, usize)> = Vec::new();
        for value in known {
            for (start, _) in text.match_indices(value.as_str()) {
                let hit = Hit::new(start..start + value.len(), "secret_value");
                candidates.push((hit, 0));
            }
        }
        for pattern in &self.patterns {
            for caps in pattern.captures_iter(text) {
                let secret = caps.name("secret").or_else(|| caps.get(1));
                if let Some(m) = secret.or_else(|| caps.get(0)) {
                    candidates.push((Hit::new(m.range(), "pattern"), 1));
                }
            }
        }
        for (index, detector) in self.built_ins.detectors.iter().enumerate() {
            detector.scan(text, |hit| candidates.push((hit, 2 + index)));
        }
        candidates.sort_by(|(a, a_rank), (b, b_rank)| {
            b.range
                .len()
                .cmp(&a.range.len())
                .then(a_rank.cmp(b_rank))
                .then(a.range.start.cmp(&b.range.start))
        });

        let protected: Vec<Range<usize>> = self
            .built_ins
            .placeholder
            .find_iter(text)
            .map(|m| m.range())
            .collect();
        let mut chosen: Vec<Hit> = Vec::new();
        for (hit, _) in candidates {
            let overlaps = |r: &Range<usize>| hit.range.start < r.end && r.start < hit.range.end;
            if hit.range.is_empty()
                || protected.iter().any(overlaps)
                || chosen.iter().any(|c| overlaps(&c.range))
            {
                continue;
            }
            chosen.push(hit);
        }
        chosen.sort_by_key(|hit| hit.range.start);
        chosen
    }

    /// `hits` must be non-overlapping and in order.
    fn replace(&self, text: &str, hits: &[Hit]) -> String {
        let mut state = self.lock();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for hit in hits {
            let (Some(before), Some(secret)) =
                (text.get(at..hit.range.start), text.get(hit.range.clone()))
            else {
                continue;
            };
            out.push_str(before);
            out.push_str(&state.placeholder_for(secret, hit.kind));
            at = hit.range.end;
        }
        out.push_str(text.get(at..).unwrap_or_default());
        out
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a single insert.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A secret found in a text: where it is and what kind of secret it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    range: Range<usize>,
    kind: &'static str,
}

impl Hit {
    fn new(range: Range<usize>, kind: &'static str) -> Self {
        Self { range, kind }
    }
}

// ---------------------------------------------------------------------------------------------
// Built-in detectors
// ---------------------------------------------------------------------------------------------

type Accept = fn(&Captures<'_>, &str) -> Option<Hit>;

struct Detector {
    regex: Regex,
    accept: Accept,
}

impl Detector {
    /// Every accepted hit. A rejected match is retried one character later, so a false lead
    /// (`bypass=` before `password=`) cannot hide a secret it overlaps.
    fn scan(&self, text: &str, mut found: impl FnMut(Hit)) {
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

struct BuiltIns {
    detectors: Vec<Detector>,
    placeholder: Regex,
}

static BUILT_INS: LazyLock<Result<BuiltIns, RedactError>> = LazyLock::new(BuiltIns::compile);

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

/// How much a secret-looking key name vouches for its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// `password`, `token`, `api_key`…: any real value is a secret.
    AnyValue,
    /// `signing_key`-ish but vaguer (`key`, `auth`, `cookie`, `salt`…): only random-looking values.
    RandomOnly,
}

#[derive(Debug, Clone, Copy)]
struct KeyClass {
    kind: &'static str,
    tier: Tier,
    /// `PWD=/app` is a working directory, not a password.
    is_pwd: bool,
}

impl KeyClass {
    fn vouches_for(&self, value: &str) -> bool {
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
fn classify_key(key: &str) -> Option<KeyClass> {
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
fn is_reference_or_mask(value: &str) -> bool {
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

fn has_digit(value: &str) -> bool {
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

/// `Basic …` is only credentials if it decodes to printable `user:password`.
fn is_basic_credentials(value: &str) -> bool {
    base64_decode(value).is_some_and(|decoded| {
        decoded.len() >= 3
            && decoded.contains(&b':')
            && decoded.iter().all(|b| (0x20..0x7f).contains(b))
    })
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Standard padded base64 (as a Kubernetes Secret's `data` holds values).
pub fn base64_standard(bytes: &[u8]) -> String {
    base64_encode(bytes, STANDARD, true)
}

fn base64_encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                let sextet = (n >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(alphabet[sextet as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Standard or URL-safe base64, padded or not; `None` if it isn't base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.trim_end_matches('=').bytes() {
        let sextet = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(&[]).unwrap()
    }

    /// Each case on a fresh redactor, so placeholders number from 1.
    fn assert_redacts(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            let r = redactor();
            let redacted = r.redact(input);
            assert_eq!(&redacted, expected, "redacting {input:?}");
            assert_eq!(r.restore(&redacted), *input, "restoring {input:?}");
        }
    }

    fn assert_untouched(inputs: &[&str]) {
        let r = redactor();
        for input in inputs {
            assert_eq!(r.redact(input), *input, "{input:?} is not a secret");
        }
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn secret_assignments_lose_their_value_and_keep_their_key() {
        assert_redacts(&[
            (
                "DB_PASSWORD=hunter2hunter",
                "DB_PASSWORD=[REDACTED:password:1]",
            ),
            (
                "login as admin passwd: Tr0ub4dor3",
                "login as admin passwd: [REDACTED:password:1]",
            ),
            ("pwd=s3cr3t!", "pwd=[REDACTED:password:1]"),
            (
                "secret=abc123def user=bob",
                "secret=[REDACTED:secret:1] user=bob",
            ),
            ("api_key=abcd1234efgh", "api_key=[REDACTED:api_key:1]"),
            ("X-Api-Key: 0a1b2c3d4e", "X-Api-Key: [REDACTED:api_key:1]"),
            (
                "token=tok_12345abcde, retrying",
                "token=[REDACTED:token:1], retrying",
            ),
            (
                "export GITHUB_TOKEN=abc",
                "export GITHUB_TOKEN=[REDACTED:token:1]",
            ),
            (
                "--db-password=letmein99 --port=5432",
                "--db-password=[REDACTED:password:1] --port=5432",
            ),
            (
                "config.dbPassword => 'let me in'",
                "config.dbPassword => '[REDACTED:password:1]'",
            ),
            (
                "  clientSecret: 9a8b7c6d",
                "  clientSecret: [REDACTED:secret:1]",
            ),
            (
                "  password: \"correct horse battery\"",
                "  password: \"[REDACTED:password:1]\"",
            ),
            (
                r#"{"user":"app","password":"p@ss w\"0rd"}"#,
                r#"{"user":"app","password":"[REDACTED:password:1]"}"#,
            ),
            (
                r#"level=error body="{\"apiKey\":\"k3y-v4lue-123\",\"retry\":true}""#,
                r#"level=error body="{\"apiKey\":\"[REDACTED:api_key:1]\",\"retry\":true}""#,
            ),
            (
                "GET /v1/items?token=abc123&page=2 200",
                "GET /v1/items?token=[REDACTED:token:1]&page=2 200",
            ),
            (
                "host=db user=app password=pg-s3cret dbname=app",
                "host=db user=app password=[REDACTED:password:1] dbname=app",
            ),
            (
                "Password=Pa55word;Server=db",
                "Password=[REDACTED:password:1];Server=db",
            ),
        ]);
    }

    #[test]
    fn kubernetes_env_entries_are_judged_by_their_name() {
        assert_redacts(&[
            (
                "env:\n- name: DB_PASSWORD\n  value: \"hunter2hunter\"\n- name: DB_HOST\n  value: db.prod.svc\n",
                "env:\n- name: DB_PASSWORD\n  value: \"[REDACTED:password:1]\"\n- name: DB_HOST\n  value: db.prod.svc\n",
            ),
            (
                r#"[{"name":"STRIPE_API_KEY","value":"rk_live_51Habc"},{"name":"LOG_LEVEL","value":"debug"}]"#,
                r#"[{"name":"STRIPE_API_KEY","value":"[REDACTED:api_key:1]"},{"name":"LOG_LEVEL","value":"debug"}]"#,
            ),
        ]);
    }

    #[test]
    fn ordinary_identifiers_and_prose_are_not_secrets() {
        assert_untouched(&[
            "commit 3f786850e387550fdab836ed7e6dc881de23001b merged",
            "request_id=0b6c3e2a-5f1d-4c8e-9a7b-2d4e6f8a0c1e uid: 9a7b2d4e-6f8a-4c1e-8b6c-3e2a5f1d0c8e",
            "pod/payment-service-7d4b9c-xk2p restarted; replicaset payment-service-7d4b9c",
            "image: registry.example.com/payments@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "2024-05-01T12:00:00.123Z level=info ts=1714564800 duration=12.5ms",
            "password_policy=strict password_min_length=12",
            "token_expiry=3600 tokenTTL: 5m secretName: db-credentials secret_ref=db",
            "PWD=/app OLDPWD=/ HOME=/root",
            "bypass=true compass=north",
            "invalid password: user admin not found",
            "password:  16 bytes\nusername:  3 bytes",
            "the token: was missing from the request",
            "401 Unauthorized: Bearer token expired",
            "authorization: denied for service account default",
            "Using Basic authentication for the registry",
            "password: ${DB_PASSWORD}",
            "DB_PASSWORD:  <set to the key 'password' in secret 'db'>  Optional: false",
            "password: ********",
            "password: null",
            "password: \"\"",
            "secretKeyRef: {name: db, key: password}",
            "key: app.kubernetes.io/name",
            "cache_key=user-42",
            "sk-learn-model-server-7d4b9c-xk2p",
            "postgres://db.prod.svc:5432/payments http://localhost:8080/metrics",
            "git clone git@github.com:org/repo.git",
            "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app",
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----",
            "certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=",
            "header eyJhbGciOiJIUzI1NiJ9 alone is not a token",
            "AKIA1234 is too short to be a key",
            "OOMKilled: container payments exceeded memory limit 512Mi",
        ]);
    }

    #[test]
    fn authorization_headers_lose_their_credentials() {
        assert_redacts(&[
            (
                "Authorization: Bearer abc123def456ghi789",
                "Authorization: Bearer [REDACTED:token:1]",
            ),
            (
                "authorization=Basic dXNlcjpwYXNzd29yZA==",
                "authorization=Basic [REDACTED:basic_auth:1]",
            ),
            (
                "Proxy-Authorization: Basic YWRtaW46czNjcjN0",
                "Proxy-Authorization: Basic [REDACTED:basic_auth:1]",
            ),
            (
                r#"curl -H "Authorization: token 0123456789abcdef" https://api"#,
                r#"curl -H "Authorization: token [REDACTED:token:1]" https://api"#,
            ),
            (
                "sent bearer 0123456789abcdefXYZ to upstream",
                "sent bearer [REDACTED:token:1] to upstream",
            ),
            (
                "retrying with Basic YWRtaW46czNjcjN0 header",
                "retrying with Basic [REDACTED:basic_auth:1] header",
            ),
        ]);
    }

    #[test]
    fn urls_lose_the_password_in_their_credentials() {
        assert_redacts(&[
            (
                "connecting to postgres://payments:Sup3rS3cret!@db.prod.svc:5432/payments",
                "connecting to postgres://payments:[REDACTED:connection_string:1]@db.prod.svc:5432/payments",
            ),
            (
                "mysql://root:toor123@mysql:3306/app",
                "mysql://root:[REDACTED:connection_string:1]@mysql:3306/app",
            ),
            (
                "mongodb+srv://admin:m0ng0-P4ss@cluster0.abc.mongodb.net/db",
                "mongodb+srv://admin:[REDACTED:connection_string:1]@cluster0.abc.mongodb.net/db",
            ),
            (
                "redis://:r3d1sP4ss@redis:6379/0",
                "redis://:[REDACTED:connection_string:1]@redis:6379/0",
            ),
            (
                "amqp://guest:gu3st-pw@rabbitmq:5672/",
                "amqp://guest:[REDACTED:connection_string:1]@rabbitmq:5672/",
            ),
            (
                "https://deploy:p@ss@word@git.example.com/repo.git",
                "https://deploy:[REDACTED:connection_string:1]@git.example.com/repo.git",
            ),
            (
                "jdbc:postgresql://app:jdbc-pw-9@db/app",
                "jdbc:postgresql://app:[REDACTED:connection_string:1]@db/app",
            ),
        ]);
    }

    #[test]
    fn shaped_tokens_are_recognised_anywhere() {
        let jwt_line = format!("sa token {JWT} mounted");
        let jwt_expected = "sa token [REDACTED:jwt:1] mounted".to_owned();
        assert_redacts(&[
            (&jwt_line, &jwt_expected),
            (
                "key id AKIAIOSFODNN7EXAMPLE in use",
                "key id [REDACTED:aws_key:1] in use",
            ),
            (
                "creds ASIAY34FZKBOKMUTVV7A expired",
                "creds [REDACTED:aws_key:1] expired",
            ),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key = [REDACTED:aws_secret_key:1]",
            ),
            (
                r#"{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#,
                r#"{"SecretAccessKey": "[REDACTED:aws_secret_key:1]"}"#,
            ),
            (
                "cloning with ghp_1234567890abcdefghijABCDEFGHIJ123456 failed",
                "cloning with [REDACTED:github_token:1] failed",
            ),
            (
                "pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF",
                "pat [REDACTED:github_token:1]",
            ),
            (
                "slack xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp posted",
                "slack [REDACTED:slack_token:1] posted",
            ),
            (
                "webhook https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
                "webhook https://hooks.slack.com/services/[REDACTED:slack_webhook:1]",
            ),
            (
                "using sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv",
                "using [REDACTED:openai_key:1]",
            ),
            (
                "using sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv",
                "using [REDACTED:anthropic_key:1]",
            ),
            (
                "maps AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q quota",
                "maps [REDACTED:google_api_key:1] quota",
            ),
        ]);
    }

    #[test]
    fn private_keys_are_redacted_as_whole_blocks() {
        let in_yaml = format!("tls.key: |\n{PEM}\ntls.crt: ok");
        let escaped = format!(
            r#"{{"private_key_id":"x","pem":"{}\n"}}"#,
            PEM.replace('\n', "\\n")
        );
        let escaped_expected = r#"{"private_key_id":"x","pem":"[REDACTED:private_key:1]\n"}"#;
        let truncated = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n... (truncated)";
        let kubeconfig = format!(
            "client-key-data: {}\n",
            base64_encode(PEM.as_bytes(), STANDARD, true)
        );
        assert_redacts(&[
            (
                &in_yaml,
                "tls.key: |\n[REDACTED:private_key:1]\ntls.crt: ok",
            ),
            (&escaped, escaped_expected),
            (truncated, "[REDACTED:private_key:1]\n... (truncated)"),
            (&kubeconfig, "client-key-data: [REDACTED:private_key:1]\n"),
        ]);
    }

    #[test]
    fn vague_keys_only_vouch_for_random_looking_values() {
        assert_redacts(&[
            (
                "signing_key=Zx9Kq2Lm8Np4Rt6Vw1Yb3",
                "signing_key=[REDACTED:secret:1]",
            ),
            (
                "session_cookie: 7f3a9c2e1b5d8f4a6c0e",
                "session_cookie: [REDACTED:secret:1]",
            ),
            ("auth: enabled key: primary", "auth: enabled key: primary"),
        ]);
    }

    #[test]
    fn the_same_secret_keeps_its_placeholder_and_different_ones_differ() {
        let r = redactor();
        assert_eq!(
            r.redact("password=aaaa1111"),
            "password=[REDACTED:password:1]"
        );
        assert_eq!(r.redact("token=bbbb2222"), "token=[REDACTED:token:2]");
        // Same value, found by another detector, in another call: same placeholder.
        assert_eq!(
            r.redact("postgres://u:aaaa1111@db/x token=bbbb2222"),
            "postgres://u:[REDACTED:password:1]@db/x token=[REDACTED:token:2]"
        );
        assert_eq!(r.redact("secret=cccc3333"), "secret=[REDACTED:secret:3]");
    }

    #[test]
    fn known_secret_values_are_redacted_verbatim_and_in_base64() {
        let r = redactor();
        r.add_secret_values([
            "hunter2hunter2".to_owned(),
            "short".to_owned(),
            "s3cr3t-value\n".to_owned(),
        ]);
        let b64 = base64_encode(b"hunter2hunter2", STANDARD, true);
        let text =
            format!("user typed hunter2hunter2 in a short note; data: {b64}; file s3cr3t-value");
        assert_eq!(
            r.redact(&text),
            "user typed [REDACTED:secret_value:1] in a short note; data: [REDACTED:secret_value:2]; file [REDACTED:secret_value:3]"
        );
        let unpadded = base64_encode(b"s3cr3t-value", URL_SAFE, false);
        assert!(!r.redact(&unpadded).contains(&unpadded));
        assert_eq!(r.restore(&r.redact(&text)), text);
    }

    #[test]
    fn json_strings_are_redacted_and_secret_keys_lose_any_value() {
        let r = redactor();
        let input = json!({
            "password": "hunter2hunter",
            "apiKey": 12345678,
            "password_policy": "strict",
            "enabled": true,
            "tokens": ["tok-a-123", "tok-b-456"],
            "credentials": {"username": "app", "secretKeyRef": {"name": "db", "key": "password"}},
            "logs": [["connecting to mysql://app:My5qlPa55@mysql/app"], {"token": null}],
            "cacheKey": "user-42",
        });
        let expected = json!({
            "password": "[REDACTED:password:1]",
            "apiKey": "[REDACTED:api_key:2]",
            "password_policy": "strict",
            "enabled": true,
            "tokens": ["[REDACTED:token:3]", "[REDACTED:token:4]"],
            "credentials": {"username": "app", "secretKeyRef": {"name": "db", "key": "password"}},
            "logs": [["connecting to mysql://app:[REDACTED:connection_string:5]@mysql/app"], {"token": null}],
            "cacheKey": "user-42",
        });
        // Numbering follows the map's iteration order; compare the shape, then the identities.
        let redacted = r.redact_json(&input);
        let unnumbered = |v: &Value| {
            let numbers = Regex::new(r":[0-9]+\]").unwrap();
            numbers.replace_all(&v.to_string(), ":N]").into_owned()
        };
        assert_eq!(unnumbered(&redacted), unnumbered(&expected));
        assert_ne!(redacted["tokens"][0], redacted["tokens"][1]);
        assert_eq!(r.redact_json(&redacted), redacted, "idempotent");
        let text = redacted.to_string();
        for secret in [
            "hunter2hunter",
            "12345678",
            "tok-a-123",
            "tok-b-456",
            "My5qlPa55",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }

    #[test]
    fn configured_patterns_redact_their_group_or_whole_match() {
        let r = Redactor::new(&[
            r"acme-[0-9a-f]{8}".to_owned(),
            r"license=(?P<secret>\S+)".to_owned(),
            r"pin (\d{4})".to_owned(),
        ])
        .unwrap();
        assert_eq!(
            r.redact("key acme-0badc0de license=L-42-XYZ pin 1234"),
            "key [REDACTED:pattern:1] license=[REDACTED:pattern:2] pin [REDACTED:pattern:3]"
        );
    }

    #[test]
    fn a_bad_configured_pattern_is_an_error_naming_it() {
        let err = Redactor::new(&["ok-[0-9]+".to_owned(), "broken[".to_owned()]).unwrap_err();
        assert!(matches!(&err, RedactError::BadPattern { pattern, .. } if pattern == "broken["));
        let message = err.to_string();
        assert!(message.contains("\"broken[\""), "{message}");
        assert!(message.contains("unclosed character class"), "{message}");
    }

    #[test]
    fn restore_puts_back_what_redact_took_and_nothing_else() {
        let r = redactor();
        let text = format!("DB_PASSWORD=hunter2hunter\nAuthorization: Bearer {JWT}\n{PEM}\n");
        let redacted = r.redact(&text);
        assert!(!redacted.contains("hunter2hunter") && !redacted.contains(JWT));
        assert_eq!(r.restore(&redacted), text);
        // A model's answer quoting a placeholder gets the value back; unknown ones stay.
        assert_eq!(
            r.restore("set [REDACTED:password:1] and [REDACTED:token:99]"),
            "set hunter2hunter and [REDACTED:token:99]"
        );
        // Another incident's redactor knows nothing of these placeholders.
        assert_eq!(redactor().restore(&redacted), redacted);
    }

    #[test]
    fn redacting_twice_changes_nothing() {
        let r = redactor();
        let text = format!(
            "password=hunter2hunter token: {JWT}\npostgres://a:b1c2d3@db/x\n{PEM}\nkey AKIAIOSFODNN7EXAMPLE"
        );
        let once = r.redact(&text);
        assert_eq!(r.redact(&once), once);
        assert_eq!(redactor().redact(&once), once);
    }

    #[test]
    fn redactor_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Redactor>();
    }

    #[test]
    fn planted_secrets_never_survive_and_nothing_else_changes() {
        let db_password = "Sup3rS3cret!";
        let bearer = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
        let mysql_password = "My5qlPa55";
        let slack = "xoxb-2048-4096-Zq8Xw7Vu6Ts5";
        let github = "ghs_0123456789abcdefghijABCDEFGHIJ012345";
        let redis_password = "r3d1s-P4ss";
        let mounted = "from-the-k8s-secret-42";
        let aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let blob = format!(
            "\
=== logs payments/payment-service-7d4b9c-xk2p ===
2024-05-01T12:00:00Z INFO connecting to postgres://payments:{db_password}@db.prod.svc:5432/payments
2024-05-01T12:00:01Z WARN GET /api/charge Authorization: Bearer {bearer} -> 401 (trace 3f786850e387550fdab836ed7e6dc881de23001b)
2024-05-01T12:00:02Z ERROR webhook payload {{\"channel\":\"#ops\",\"token\":\"{slack}\"}}
=== env ===
DB_HOST=db.prod.svc
DB_PASSWORD={db_password}
AWS_SECRET_ACCESS_KEY={aws_secret}
MOUNTED_CONFIG={mounted}
PASSWORD_POLICY=strict
PWD=/app
=== events ===
Warning  Failed  pod/payment-service-7d4b9c-xk2p  Failed to clone https://x-access-token:{github}@github.com/acme/payments: exit 128
Warning  BackOff  pod/payment-service-7d4b9c-xk2p  Back-off restarting failed container payments (uid 0b6c3e2a-5f1d-4c8e-9a7b-2d4e6f8a0c1e)
=== manifest ===
spec:
  containers:
  - name: payments
    image: registry.example.com/payments@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    env:
    - name: DB_PASSWORD
      value: \"{db_password}\"
    - name: REDIS_URL
      value: redis://:{redis_password}@redis:6379/0
=== config.json ===
{{\"database\": {{\"url\": \"mysql://app:{mysql_password}@mysql:3306/app\", \"pool\": 10}}, \"redis\": {{\"password\": \"{redis_password}\"}}}}
"
        );
        let expected = "\
=== logs payments/payment-service-7d4b9c-xk2p ===
2024-05-01T12:00:00Z INFO connecting to postgres://payments:[REDACTED:connection_string:1]@db.prod.svc:5432/payments
2024-05-01T12:00:01Z WARN GET /api/charge Authorization: Bearer [REDACTED:token:2] -> 401 (trace 3f786850e387550fdab836ed7e6dc881de23001b)
2024-05-01T12:00:02Z ERROR webhook payload {\"channel\":\"#ops\",\"token\":\"[REDACTED:slack_token:3]\"}
=== env ===
DB_HOST=db.prod.svc
DB_PASSWORD=[REDACTED:connection_string:1]
AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_key:4]
MOUNTED_CONFIG=[REDACTED:secret_value:5]
PASSWORD_POLICY=strict
PWD=/app
=== events ===
Warning  Failed  pod/payment-service-7d4b9c-xk2p  Failed to clone https://x-access-token:[REDACTED:github_token:6]@github.com/acme/payments: exit 128
Warning  BackOff  pod/payment-service-7d4b9c-xk2p  Back-off restarting failed container payments (uid 0b6c3e2a-5f1d-4c8e-9a7b-2d4e6f8a0c1e)
=== manifest ===
spec:
  containers:
  - name: payments
    image: registry.example.com/payments@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    env:
    - name: DB_PASSWORD
      value: \"[REDACTED:connection_string:1]\"
    - name: REDIS_URL
      value: redis://:[REDACTED:connection_string:7]@redis:6379/0
=== config.json ===
{\"database\": {\"url\": \"mysql://app:[REDACTED:connection_string:8]@mysql:3306/app\", \"pool\": 10}, \"redis\": {\"password\": \"[REDACTED:connection_string:7]\"}}
";
        let r = redactor();
        r.add_secret_values([mounted.to_owned()]);
        let redacted = r.redact(&blob);
        assert_eq!(redacted, expected);
        for secret in [
            db_password,
            bearer,
            mysql_password,
            slack,
            github,
            redis_password,
            mounted,
            aws_secret,
        ] {
            assert!(!redacted.contains(secret), "{secret} leaked");
        }
        assert_eq!(r.restore(&redacted), blob);
        assert_eq!(r.redact(&redacted), redacted);
    }
}

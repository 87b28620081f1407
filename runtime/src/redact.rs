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
//!
//! The parts: [`Redactor`] and its placeholder bookkeeping live here; `detectors` holds the
//! built-in detector table (a regex and an acceptance check per kind of credential); `keys`
//! judges whether a key name (`DB_PASSWORD`, `apiKey`, `secretName`) vouches for its value.
//! base64 is the `base64` crate's, here and in the detectors.

mod detectors;
mod keys;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use regex::{Captures, Regex};
use serde_json::Value;

use detectors::{BUILT_INS, BuiltIns};
use keys::{Tier, classify_key};

/// Known secret values shorter than this are ignored: they would redact common words.
pub const MIN_KNOWN_SECRET_CHARS: usize = 6;

/// Redaction runs until nothing new is found (so it is idempotent), at most this many times.
const MAX_PASSES: usize = 4;

/// The base64 forms a known secret value is also looked for in: standard padded (as a
/// Kubernetes Secret's `data` holds it), standard unpadded, and URL-safe unpadded.
const KNOWN_VALUE_ENCODINGS: [GeneralPurpose; 3] = [STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD];

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
                state.known_set.insert(variant.to_owned());
                for engine in &KNOWN_VALUE_ENCODINGS {
                    state.known_set.insert(engine.encode(variant));
                }
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

    /// Where `text` holds secrets, by the same detectors [`Redactor::redact`] uses: each one's
    /// line (from 1) and kind — never the value. For reviews that must name the place (Worf's
    /// scan of the GitOps repository).
    pub fn locate(&self, text: &str) -> Vec<(usize, &'static str)> {
        let known = Arc::clone(&self.lock().known);
        self.find_secrets(text, &known)
            .into_iter()
            .map(|hit| {
                let line = text
                    .get(..hit.range.start)
                    .map_or(0, |before| before.matches('\n').count());
                (line + 1, hit.kind)
            })
            .collect()
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

/// Standard padded base64 (as a Kubernetes Secret's `data` holds values).
pub fn base64_standard(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests;

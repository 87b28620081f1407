//! The bodies of squad's fuzz targets: one function per target, each taking the fuzzer's bytes.
//!
//! Each function feeds the bytes to a parser that reads input from outside squad (a webhook body
//! and its signature header, HolmesGPT's output, a model's answer, a scenario, `squad.toml`, a
//! manifest or a GitOps repository, a line of a log or an event) and asserts what must hold
//! beyond "no panic": an accepted value re-serializes and parses back to itself, an edit that
//! was accepted leaves a file that still parses and holds the value written, and so on.
//!
//! The same functions run in two places: the fuzz targets in `fuzz_targets/` (libFuzzer, through
//! `cargo fuzz`, see docs/fuzzing.md) and the main test suite, which replays every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through them
//! (`tests/fuzz_corpus.rs` includes this file as a module). So this file and its modules use only
//! crates the root package also has, and refer to each other with `super::`.

mod answers;
mod files;
mod holmes;
mod manifests;
mod messages;
mod webhooks;

pub use answers::model_answer;
pub use files::{scenario, settings};
pub use holmes::holmes_output;
pub use manifests::{gitops_repo, manifest};
pub use messages::diagnosis_messages;
pub use webhooks::{
    alertmanager_webhook, generic_alerts, github_webhook, pagerduty_webhook, webhook_signatures,
};

/// A target's body: the fuzzer's bytes in, a panic when something that must hold does not.
pub type Body = fn(&[u8]);

/// Every target: its name (the fuzz target's, and its corpus directory's) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("alertmanager_webhook", alertmanager_webhook),
    ("pagerduty_webhook", pagerduty_webhook),
    ("generic_alerts", generic_alerts),
    ("github_webhook", github_webhook),
    ("webhook_signatures", webhook_signatures),
    ("holmes_output", holmes_output),
    ("model_answer", model_answer),
    ("scenario", scenario),
    ("settings", settings),
    ("manifest", manifest),
    ("gitops_repo", gitops_repo),
    ("diagnosis_messages", diagnosis_messages),
];

/// The input as text, when it is UTF-8 (the parsers fed here take `&str`; a daemon or a loader
/// refuses invalid UTF-8 before they run).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The first line of the input (a selector: an event name, a header value, an embedded
/// scenario's name) and the rest.
fn split_first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

//! HolmesGPT's CLI as a hostile child: 100 MiB on stdout and stderr, an output file past 32 MiB,
//! an answer with bytes that are not UTF-8. squad keeps stderr's tail, reads the file up to its
//! cap, and reads stray bytes as U+FFFD.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use squad_adapters::holmes::{HolmesDiagnoser, MAX_OUTPUT_BYTES};
use squad_config::HolmesSettings;
use squad_protocols::{Alert, Diagnosis, WorkloadRef};
use squad_runtime::ports::{Diagnoser, DiagnosisRequest, PortError, PortResult};

use super::{MIB_KIB, in_child, measure_here, measured_in_child, runtime};

const ASK: &str = include_str!("../fixtures/holmesgpt/ask-json-output-0.45.0.json");

/// The answer squad asks HolmesGPT for: prose, then its JSON block.
const BLOCK: &str = "payment-api is OOMKilled.\n\n```json\n{\"root_cause\": \"memory_under_provisioned\", \"summary\": \"payment-api needs more memory\", \"confidence\": 0.8, \"recommendations\": [\"raise the memory limit\"], \"memory_limit\": \"512Mi\", \"memory_peak\": \"1.24Gi\"}\n```";

struct NoNative;

#[async_trait]
impl Diagnoser for NoNative {
    fn name(&self) -> &'static str {
        "native"
    }
    async fn diagnose(&self, _: &DiagnosisRequest) -> PortResult<Diagnosis> {
        Err(PortError::failed("native", "not in this test"))
    }
}

/// A fake `holmes` running `body` with `$out` the `--json-output-file` path.
fn fake_cli(dir: &Path, body: &str) -> String {
    let path = dir.join("holmes");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = version ]; then echo 'HolmesGPT 9.9.9-fake'; exit 0; fi\nout=''\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --json-output-file ]; then out=\"$2\"; fi; shift; done\n{body}\n"
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn investigate(command: String) -> Result<squad_adapters::holmes::HolmesAnswer, String> {
    let settings = HolmesSettings {
        command,
        model: Some("openai/test".into()),
        timeout_seconds: 120,
        env: [("OPENAI_API_BASE".into(), "http://127.0.0.1:9/v1".into())].into(),
        ..HolmesSettings::default()
    };
    let holmes = HolmesDiagnoser::new(settings, Arc::new(NoNative), None);
    let request = DiagnosisRequest {
        alert: Alert::firing("KubernetesPodOOMKilled")
            .with_label("namespace", "production")
            .with_label("pod", "payment-service-7d4b9c-xk2p"),
        workload: WorkloadRef {
            kind: "Deployment".into(),
            namespace: "production".into(),
            name: "payment-service".into(),
        },
        memory: Vec::new(),
    };
    runtime().block_on(holmes.investigate(&request))
}

/// The ask fixture answering `result`.
fn answer_file(dir: &Path, result: &str) -> std::path::PathBuf {
    let mut v: Value = serde_json::from_str(ASK).unwrap();
    v["result"] = json!(result);
    let path = dir.join("answer.json");
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

#[test]
fn a_holmesgpt_that_prints_100_mib_costs_only_its_stderr_tail() {
    if in_child() {
        let dir = tempfile::tempdir().unwrap();
        let answer = answer_file(dir.path(), BLOCK);
        let flood = "head -c 104857600 /dev/zero | tr '\\0' 'o'";
        let ok = fake_cli(
            dir.path(),
            &format!("{flood}\n{flood} >&2\ncp {} \"$out\"", answer.display()),
        );
        let failing = dir.path().join("failing");
        std::fs::create_dir(&failing).unwrap();
        let failing = fake_cli(
            &failing,
            &format!("{flood} >&2\necho 'Traceback: the end' >&2\nexit 3"),
        );
        measure_here(|| {
            let a = investigate(ok).unwrap();
            assert_eq!(a.structured.root_cause.as_str(), "memory_under_provisioned");
            let e = investigate(failing).unwrap_err();
            assert!(
                e.contains("exit status: 3") && e.ends_with("Traceback: the end"),
                "{}",
                &e[e.len().saturating_sub(300)..]
            );
            assert!(e.len() < 4_000, "{} bytes", e.len());
        });
        return;
    }
    let growth =
        measured_in_child("holmes::a_holmesgpt_that_prints_100_mib_costs_only_its_stderr_tail");
    // 300 MiB written to pipes; squad keeps 64 KiB of stderr.
    assert!(growth < 32 * MIB_KIB, "{growth} KiB");
}

#[test]
fn an_oversized_or_broken_holmesgpt_answer_is_a_clear_error_or_read_lossily() {
    let dir = tempfile::tempdir().unwrap();
    // An output file past the cap: refused, naming the cap.
    let big = fake_cli(
        dir.path(),
        &format!("head -c {} /dev/zero > \"$out\"", MAX_OUTPUT_BYTES + 1),
    );
    let e = investigate(big).unwrap_err();
    assert!(e.contains("more than 33554432 bytes"), "{e}");
    // A byte that is not UTF-8 in HolmesGPT's prose: read as U+FFFD, the diagnosis kept.
    let sub = dir.path().join("lossy");
    std::fs::create_dir(&sub).unwrap();
    let answer = answer_file(&sub, &BLOCK.replace("OOMKilled", "OOM@@Killed"));
    let text = std::fs::read(&answer).unwrap();
    let at = text.windows(2).position(|w| w == b"@@").unwrap();
    let broken = [&text[..at], b"\xff\xfe", &text[at + 2..]].concat();
    std::fs::write(&answer, broken).unwrap();
    let lossy = fake_cli(&sub, &format!("cp {} \"$out\"", answer.display()));
    let a = investigate(lossy).unwrap();
    assert!(
        a.run.text.contains("OOM\u{fffd}\u{fffd}Killed"),
        "{}",
        a.run.text
    );
    // Not JSON at all, 10,000 levels deep: a clear error.
    let sub = dir.path().join("deep");
    std::fs::create_dir(&sub).unwrap();
    let deep = sub.join("deep.json");
    std::fs::write(
        &deep,
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    )
    .unwrap();
    let e = investigate(fake_cli(&sub, &format!("cp {} \"$out\"", deep.display()))).unwrap_err();
    assert!(e.contains("recursion limit"), "{e}");
}

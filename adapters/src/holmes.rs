//! HolmesGPT as the diagnoser, cross-checked by squad's native analyzers.
//!
//! Two transports (`[holmes] transport`): the `holmes` CLI as a subprocess (`holmes ask` with the
//! question, or `holmes investigate alertmanager` when an Alertmanager URL is known), with a
//! timeout and a concurrency limit; or a HolmesGPT server's `POST /api/chat` with a
//! `response_format` asking for the fields squad needs. Both end in the same [`HolmesAnswer`]:
//! HolmesGPT's text, the tool calls it made (which become the evidence), token usage and cost.
//!
//! The question carries the alert, the workload and what squad already knows (past incidents of
//! the workload), and asks HolmesGPT to end with a JSON block squad parses strictly: the
//! root-cause category, a summary, a confidence, recommendations, and the memory limit and peak it
//! read. The native analyzers run beside it: their typed measurements are what the crew acts on,
//! and HolmesGPT's figures are checked against them; every agreement and disagreement is written
//! on the diagnosis (and so on the incident issue). When HolmesGPT fails (not installed, a crash,
//! a timeout, an answer in a shape this version of squad does not know), the native diagnosis is
//! used with the reason noted.

mod output;
pub mod proxy;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use squad_config::{HolmesSettings, HolmesTransport};
use squad_diagnosis::families;
use squad_protocols::{Diagnosis, DiagnosisSource, Evidence, Quantity, RootCause};
use squad_runtime::ports::{Diagnoser, DiagnosisRequest, PortResult};
use tokio::sync::Semaphore;

pub use output::{
    HolmesAnswer, HolmesRun, Structured, ToolEvidence, parse_ask_output, parse_chat_output,
    parse_investigate_output, structured_from_text,
};

/// The HolmesGPT version squad's parsing was written against.
pub const SUPPORTED_VERSION: &str = "0.45.0";

/// Characters of HolmesGPT's stderr kept for an error message.
const STDERR_TAIL: usize = 1_500;

/// The most of HolmesGPT's answer squad reads (32 MiB): its output file, or its server's reply.
/// HolmesGPT's own output carries the tool results it read, a few MB at most.
pub const MAX_OUTPUT_BYTES: usize = 32 << 20;

/// The bytes of the CLI's stderr kept while it runs (its stdout is read and dropped).
const STDERR_KEEP_BYTES: usize = 64 << 10;

/// HolmesGPT, with the native analyzers beside it.
pub struct HolmesDiagnoser {
    settings: HolmesSettings,
    native: Arc<dyn Diagnoser>,
    /// Where the values of Secrets come from, for the redaction of HolmesGPT's model traffic.
    secrets: Option<Arc<dyn squad_runtime::ports::Cluster>>,
    /// Extra redaction patterns (`[llm] redact_patterns`), as the crew's gateway uses them.
    redact_patterns: Vec<String>,
    /// `KUBECONFIG` for the CLI (the cluster squad reads), when squad knows one.
    kubeconfig: Option<PathBuf>,
    permits: Arc<Semaphore>,
}

impl HolmesDiagnoser {
    pub fn new(
        settings: HolmesSettings,
        native: Arc<dyn Diagnoser>,
        kubeconfig: Option<PathBuf>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(settings.max_concurrent.max(1)));
        HolmesDiagnoser {
            settings,
            native,
            secrets: None,
            redact_patterns: Vec::new(),
            kubeconfig,
            permits,
        }
    }

    /// Redacts these patterns too (regexes, as `[llm] redact_patterns`; checked when settings load).
    pub fn with_redact_patterns(mut self, patterns: Vec<String>) -> Self {
        self.redact_patterns = patterns;
        self
    }

    /// Reads the namespace's Secret values from `cluster` before each investigation, so the
    /// redacting proxy hides them wherever HolmesGPT's tools show them.
    pub fn with_secret_values_from(
        mut self,
        cluster: Arc<dyn squad_runtime::ports::Cluster>,
    ) -> Self {
        self.secrets = Some(cluster);
        self
    }

    /// Asks HolmesGPT about the request, through the configured transport.
    pub async fn investigate(&self, request: &DiagnosisRequest) -> Result<HolmesAnswer, String> {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| "the diagnoser is shutting down".to_string())?;
        // What squad writes into the question (alert annotations, past decisions) goes through the
        // redactor: HolmesGPT hands it to its model.
        let redactor = Arc::new(
            squad_runtime::Redactor::new(&self.redact_patterns)
                .map_err(|e| format!("the redactor: {e}"))?,
        );
        if let Some(cluster) = &self.secrets {
            match cluster.secret_values(&request.workload.namespace).await {
                Ok(values) => redactor.add_secret_values(values),
                Err(e) => tracing::warn!(
                    "Secret values unreadable for redaction ({e}); only the detectors apply"
                ),
            }
        }
        let question = redactor.redact(&question(request));
        let settings = self.settings.clone();
        let kubeconfig = self.kubeconfig.clone();
        let alert = request.alert.clone();
        crate::realtime::run(async move {
            match settings.transport {
                HolmesTransport::Cli => {
                    run_cli(&settings, kubeconfig, &question, &alert, redactor).await
                }
                HolmesTransport::Server => ask_server(&settings, &question).await,
            }
        })
        .await?
    }
}

#[async_trait]
impl Diagnoser for HolmesDiagnoser {
    fn name(&self) -> &'static str {
        "holmesgpt"
    }

    async fn diagnose(&self, request: &DiagnosisRequest) -> PortResult<Diagnosis> {
        // squad's own reading first: the crew's measurements, and the cross-check.
        let native = self.native.diagnose(request).await;
        match self.investigate(request).await {
            Ok(answer) => Ok(merge(answer, native.as_ref().ok())),
            Err(e) => {
                tracing::warn!("HolmesGPT failed; the native analyzers take over: {e}");
                let mut d = native?;
                d.fallback_reason = Some(format!(
                    "HolmesGPT did not diagnose ({e}); the native analyzers took over"
                ));
                Ok(d)
            }
        }
    }
}

/// The question put to HolmesGPT.
pub fn question(r: &DiagnosisRequest) -> String {
    let a = &r.alert;
    let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut q = format!(
        "Alert {} is firing for {} {} in namespace {}: {}\nAlert labels: {}\n",
        a.name,
        r.workload.kind,
        r.workload.name,
        r.workload.namespace,
        a.annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"))
            .map_or("", String::as_str),
        labels.join(", ")
    );
    if let Some(pod) = a.labels.get("pod") {
        q.push_str(&format!("The pod is {pod}."));
        if let Some(c) = a.labels.get("container") {
            q.push_str(&format!(" The container is {c}."));
        }
        q.push('\n');
    }
    if !r.memory.is_empty() {
        q.push_str("\nWhat past incidents of this workload taught (squad's decision record):\n");
        for m in &r.memory {
            q.push_str(&format!("- {m}\n"));
        }
    }
    q.push_str(&format!(
        "\nFind the root cause. Use your tools to read the pod, its events, logs and the workload's resources.\n\
         End your answer with one fenced JSON block, exactly these keys:\n\
         ```json\n{}\n```\n\
         root_cause is one of: {}. confidence is 0 to 1. memory_limit and memory_peak are the container's memory limit and the highest memory use you saw, as Kubernetes quantities (such as 512Mi), or null when you did not read them.",
        serde_json::to_string_pretty(&json!({
            "root_cause": "memory_under_provisioned",
            "summary": "one or two sentences",
            "confidence": 0.8,
            "recommendations": ["..."],
            "memory_limit": "512Mi",
            "memory_peak": "1.2Gi"
        }))
        .unwrap_or_default(),
        root_causes().join(", ")
    ));
    q
}

/// The categories HolmesGPT may answer with, as squad names them: every failure family's root
/// cause, and `unknown`.
pub fn root_causes() -> Vec<String> {
    families::names()
}

pub fn root_cause_of(name: &str) -> Option<RootCause> {
    families::root_cause(&name.trim().to_ascii_lowercase())
}

/// HolmesGPT's answer as squad's diagnosis: its conclusion and evidence, the native analyzers'
/// measurements (what the crew sizes from), and the cross-check between the two.
pub fn merge(h: HolmesAnswer, native: Option<&Diagnosis>) -> Diagnosis {
    let s = &h.structured;
    let h_run = &h.run;
    let mut d = Diagnosis::new(
        DiagnosisSource::Holmesgpt,
        s.root_cause.clone(),
        s.summary.clone(),
    );
    d.reason = families::of(&s.root_cause).reason().map(str::to_owned);
    d.confidence = s.confidence.clamp(0.0, 1.0);
    d.recommendations = s.recommendations.clone();
    d.evidence = h_run
        .tools
        .iter()
        .map(|t| Evidence {
            source: format!("holmesgpt {}", t.tool),
            observation: format!(
                "{}{}: {}",
                t.description,
                if t.ok { "" } else { " (failed)" },
                t.excerpt
            ),
        })
        .collect();
    d.usage = Some(h_run.usage);
    d.cost_usd = h_run.cost_usd;
    let Some(n) = native else {
        d.cross_check
            .push("squad's own reading of the cluster failed: nothing to check against".into());
        return d;
    };
    d.signals = n.signals.clone();
    if n.root_cause == s.root_cause {
        d.cross_check.push(format!(
            "agrees: root cause {} (squad's analyzers conclude the same)",
            s.root_cause.as_str()
        ));
    } else {
        d.cross_check.push(format!(
            "DISAGREES: HolmesGPT concludes {}, squad's analyzers {} ({})",
            s.root_cause.as_str(),
            n.root_cause.as_str(),
            n.summary
        ));
    }
    if let Some(m) = &n.signals.memory {
        compare(
            &mut d.cross_check,
            "memory limit",
            s.memory_limit.as_deref(),
            m.limit,
            0.0,
        );
        compare(
            &mut d.cross_check,
            "memory peak",
            s.memory_peak.as_deref(),
            Some(m.peak_24h),
            0.10,
        );
    }
    d
}

/// One figure HolmesGPT quoted against squad's: equal within `tolerance` (a fraction) agrees.
fn compare(
    out: &mut Vec<String>,
    what: &str,
    quoted: Option<&str>,
    measured: Option<Quantity>,
    tolerance: f64,
) {
    let measured_text = measured.map_or("none".to_string(), |q| q.to_string());
    match (quoted.map(str::trim).filter(|q| !q.is_empty()), measured) {
        (None, _) => out.push(format!(
            "not checked: HolmesGPT did not quote the {what} (squad reads {measured_text})"
        )),
        (Some(q), measured) => match q.parse::<Quantity>() {
            Err(_) => out.push(format!(
                "DISAGREES: HolmesGPT quotes the {what} as {q:?}, not a quantity (squad reads {measured_text})"
            )),
            Ok(qv) => {
                let agrees = measured.is_some_and(|m| {
                    let (a, b) = (qv.as_mib_f64(), m.as_mib_f64());
                    (a - b).abs() <= tolerance * b.max(1.0) + 0.5
                });
                if agrees {
                    out.push(format!("agrees: {what} {qv} (squad reads {measured_text})"));
                } else {
                    out.push(format!(
                        "DISAGREES: HolmesGPT quotes the {what} as {qv}, squad reads {measured_text}"
                    ));
                }
            }
        },
    }
}

/// Runs the CLI once and parses what it wrote.
async fn run_cli(
    s: &HolmesSettings,
    kubeconfig: Option<PathBuf>,
    question: &str,
    alert: &squad_protocols::Alert,
    redactor: Arc<squad_runtime::Redactor>,
) -> Result<HolmesAnswer, String> {
    let dir = tempfile::Builder::new()
        .prefix("squad-holmes")
        .tempdir()
        .map_err(|e| format!("a temporary directory for HolmesGPT's output: {e}"))?;
    let out = dir.path().join("holmes-output.json");
    let mut cmd = tokio::process::Command::new(&s.command);
    let investigate = s.alertmanager_url.is_some();
    if let Some(url) = &s.alertmanager_url {
        // `investigate` has no --no-interactive (it never asks); it fetches the alert itself.
        cmd.args(["investigate", "alertmanager", "--alertmanager-url", url]);
        cmd.arg("--alertmanager-alertname").arg(&alert.name);
        for key in ["namespace", "pod"] {
            if let Some(v) = alert.labels.get(key) {
                cmd.arg("--alertmanager-label").arg(format!("{key}={v}"));
            }
        }
    } else {
        cmd.arg("ask").arg(question).arg("--no-interactive");
    }
    cmd.arg("--json-output-file").arg(&out);
    if let Some(m) = &s.model {
        cmd.arg("--model").arg(m);
    }
    if let Some(c) = &s.config {
        cmd.arg("--config").arg(c);
    }
    // litellm fetches a price list from GitHub at every start unless told to use its own copy.
    cmd.env("LITELLM_LOCAL_MODEL_COST_MAP", "True");
    // HolmesGPT runs its tools under `ulimit -v` (800 MB by default on x86): kubectl's Go runtime
    // sometimes reserves more address space than that and dies with exit status 2 before it
    // reads anything (seen here in 1 of 6 runs). Unless the environment or `[holmes] env` says
    // otherwise, give the tools room.
    if std::env::var_os("TOOL_MEMORY_LIMIT_MB").is_none() {
        cmd.env("TOOL_MEMORY_LIMIT_MB", TOOL_MEMORY_LIMIT_MB);
    }
    cmd.envs(&s.env);
    // Lives until this function returns, i.e. until HolmesGPT has exited.
    let _proxy = if s.redact {
        let upstream = s
            .model_api_base
            .clone()
            .or_else(|| s.env.get("OPENAI_API_BASE").cloned())
            .or_else(|| std::env::var("OPENAI_API_BASE").ok())
            .unwrap_or_else(|| "https://api.openai.com/v1".into());
        let proxy = proxy::RedactingProxy::start(
            &upstream,
            redactor,
            Duration::from_secs(s.timeout_seconds),
        )
        .await?;
        cmd.env("OPENAI_API_BASE", proxy.url());
        cmd.env("OPENAI_BASE_URL", proxy.url());
        Some(proxy)
    } else {
        None
    };
    if let Some(k) = &kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    // stdin closed: with a pipe, holmes reads it to the end before starting (and hangs).
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start HolmesGPT ({}: {e}); install holmesgpt=={SUPPORTED_VERSION} or set [holmes] command",
            s.command
        )
    })?;
    let timeout = Duration::from_secs(s.timeout_seconds);
    // Both pipes drained as the child writes them, keeping only stderr's tail: a chatty run
    // costs squad 64 KiB, not what it printed.
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let run = async {
        let (_, stderr, status) = tokio::join!(
            crate::bounded::tail(stdout, 0),
            crate::bounded::tail(stderr, STDERR_KEEP_BYTES),
            child.wait()
        );
        status.map(|status| (status, stderr))
    };
    let output = match tokio::time::timeout(timeout, run).await {
        Err(_) => {
            // The child is killed when it drops on return (kill_on_drop).
            return Err(format!(
                "HolmesGPT did not answer within {} s (killed)",
                s.timeout_seconds
            ));
        }
        Ok(Err(e)) => return Err(format!("waiting for HolmesGPT: {e}")),
        Ok(Ok((status, stderr))) => HolmesExit { status, stderr },
    };
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let t = text.trim();
        let start = t
            .char_indices()
            .rev()
            .nth(STDERR_TAIL)
            .map_or(0, |(i, _)| i);
        t[start..].to_string()
    };
    if !output.status.success() {
        return Err(format!(
            "HolmesGPT exited with {}: {}",
            output.status,
            tail(&output.stderr)
        ));
    }
    let bytes = crate::bounded::file(&out, MAX_OUTPUT_BYTES).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "HolmesGPT exited 0 but wrote no output file ({e}); its stderr: {}",
                tail(&output.stderr)
            )
        } else {
            format!("HolmesGPT's output file: {e}")
        }
    })?;
    // A stray byte in a quoted log line is not a reason to drop the diagnosis.
    let text = String::from_utf8_lossy(&bytes);
    let parsed = if investigate {
        parse_investigate_output(&text, alert)
    } else {
        parse_ask_output(&text)
    }
    .and_then(HolmesRun::answer);
    match parsed {
        Ok(a) => Ok(a),
        Err(e) => Err(format!(
            "{e} (HolmesGPT {}; squad reads the output of {SUPPORTED_VERSION})",
            cli_version(s).await
        )),
    }
}

/// How the CLI ended: its exit status and the tail of its stderr.
struct HolmesExit {
    status: std::process::ExitStatus,
    stderr: Vec<u8>,
}

/// What `holmes version` says, for error messages.
/// The virtual-memory limit (MB) HolmesGPT's tools run under when nothing else sets it.
const TOOL_MEMORY_LIMIT_MB: &str = "4096";

async fn cli_version(s: &HolmesSettings) -> String {
    let run = tokio::process::Command::new(&s.command)
        .arg("version")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .envs(&s.env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(60), run).await {
        Ok(Ok(o)) => {
            let text = String::from_utf8_lossy(&o.stdout);
            text.split_whitespace()
                .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
                .map_or_else(|| "version unknown".to_string(), |v| v.to_string())
        }
        _ => "version unknown".into(),
    }
}

/// The server transport: `POST /api/chat` with a response format for squad's fields.
async fn ask_server(s: &HolmesSettings, question: &str) -> Result<HolmesAnswer, String> {
    let base = s.server_url.clone().unwrap_or_default();
    let url = format!("{}/api/chat", base.trim_end_matches('/'));
    crate::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(s.timeout_seconds))
        .build()
        .map_err(|e| format!("HTTP client for {url}: {e}"))?;
    let body = json!({
        "ask": question,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "squad_diagnosis", "strict": true, "schema": output::structured_schema()}
        }
    });
    let resp = http.post(&url).json(&body).send().await.map_err(|e| {
        if e.is_timeout() {
            format!(
                "HolmesGPT at {url} did not answer within {} s",
                s.timeout_seconds
            )
        } else {
            format!("cannot reach HolmesGPT at {url}: {e}")
        }
    })?;
    let status = resp.status();
    let text = crate::bounded::http_body(resp, MAX_OUTPUT_BYTES)
        .await
        .map_err(|e| format!("reading HolmesGPT's answer from {url}: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    if !status.is_success() {
        let head: String = text.chars().take(500).collect();
        return Err(format!(
            "HolmesGPT at {url} answered HTTP {}: {head}",
            status.as_u16()
        ));
    }
    output::parse_chat_output(&text)
        .and_then(HolmesRun::answer)
        .map_err(|e| format!("{e} (HolmesGPT server at {url})"))
}

/// What a CLI run would be given, for `squad config check`.
pub fn describe(s: &HolmesSettings) -> String {
    match s.transport {
        HolmesTransport::Cli => format!(
            "HolmesGPT CLI `{}`{}{}, timeout {} s, {} at once{}",
            s.command,
            s.model
                .as_ref()
                .map_or(String::new(), |m| format!(" --model {m}")),
            s.alertmanager_url
                .as_ref()
                .map_or(String::new(), |u| format!(
                    ", investigate alertmanager at {u}"
                )),
            s.timeout_seconds,
            s.max_concurrent,
            if s.redact {
                ", its model traffic redacted by squad's proxy"
            } else {
                ""
            }
        ),
        HolmesTransport::Server => format!(
            "HolmesGPT server {}/api/chat, timeout {} s, {} at once",
            s.server_url.as_deref().unwrap_or("?"),
            s.timeout_seconds,
            s.max_concurrent
        ),
    }
}

/// A JSON value's text, for evidence.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

//! The agent loop: a member puts its work to its model and keeps the answer only if it holds.
//!
//! Every member's deterministic skill produces a proposal first. With a model configured for the
//! member, [`deliberate`] sends the member's charter, the incident, the proposal and a set of
//! read-only [`Tool`]s through the redaction gateway ([`squad_runtime::Minds::chat`]); the model
//! may call tools (the loop runs them and sends the results back) and ends with an answer in the
//! member's output type, whose JSON Schema is generated from the Rust type. The answer is parsed
//! and checked against what the member knows; a rejected answer gets one chance to be corrected,
//! and an invalid, off-topic or over-budget answer falls back to the proposal. Either way the
//! incident records a [`EventKind::Deliberated`] with the model, the tokens, the tools called and
//! why a fallback happened. Tools only read; a model never writes to the cluster and never
//! merges: what the member writes is still built by the member's own code from the answer.

// The wall-time budget is real time on purpose: in a simulation the virtual clock holds still
// while a model thinks (see the llm adapter), but the budget limits what the model costs.
#[allow(clippy::disallowed_types)]
use std::time::Instant;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use squad_config::charters;
use squad_protocols::llm::{
    ChatMessage, ChatRequest, Rejection, ResponseSchema, ToolSpec, parse_answer,
};
use squad_protocols::{
    Assignment, Author, DeliberationOutcome, EventKind, IncidentId, Member, Usage, WorkloadRef,
};
use squad_runtime::redact::Redactor;

use crate::CrewContext;

/// A tool result starting with this is a file to show with line numbers.
const NUMBER_LINES: &str = "\u{0}number-lines\u{0}";

/// A tool result as the model sees it: redacted first, then (files) numbered.
fn present(result: String, redactor: &Redactor) -> String {
    match result.strip_prefix(NUMBER_LINES) {
        Some(text) => redactor
            .redact(text)
            .lines()
            .enumerate()
            .map(|(i, l)| format!("{:>4}  {l}", i + 1))
            .collect::<Vec<_>>()
            .join("\n"),
        None => result,
    }
}

/// How many characters of one tool result reach the model.
const MAX_TOOL_RESULT_CHARS: usize = 6_000;
/// Rejected answers the model may correct before the proposal is used.
const MAX_REPAIRS: u32 = 1;

/// What the loop asks of every model, after the member's charter.
const RULES: &str = "\n\n## How you work here\n\
- You are one member of squad's incident crew. Your deterministic skill already produced a proposal; review it against the evidence and answer with the final decision in the required JSON shape.\n\
- Use the tools to read what you need; they are read-only. You cannot change the cluster or merge anything: what you answer is checked, and the crew writes it through a pull request, an issue or a comment a human reviews.\n\
- Keep the proposal where it is right. Change it only with a reason grounded in what the tools or the incident show, and say that reason.\n\
- Values such as [REDACTED:kind:N] stand for secrets. Never try to guess them; refer to them by the placeholder.\n\
- Answer in English, concisely, with concrete names and numbers from the evidence.";

/// A read-only tool a member offers its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The workload's spec: replicas, containers, resources, env names, security context.
    Workload,
    /// The workload's pods and their container states.
    Pods,
    /// Events about one pod.
    PodEvents,
    /// The last lines of a pod's logs (current or previous container).
    PodLogs,
    /// The container's memory working set over the last hours (summary and points).
    MemoryHistory,
    /// Requests per second per route over the last hours.
    RequestRates,
    /// HorizontalPodAutoscalers in the namespace.
    Hpas,
    /// Files of the GitOps repository.
    GitopsListFiles,
    GitopsReadFile,
    /// The RBAC rules bound to the workload's ServiceAccount.
    RbacRules,
    NetworkPolicies,
    /// Known vulnerabilities of an image (Trivy reports).
    ImageVulnerabilities,
    /// The namespace's Secrets: names and key names, never values.
    SecretKeyNames,
    /// The application's source.
    AppListFiles,
    AppReadFile,
    AppSearchCode,
    /// B'Elanna's sizing rule, as a calculator.
    SizeMemory,
    /// State of a pull request on the GitOps repository.
    PrState,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PodArgs {
    /// A pod of the workload.
    pod: String,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LogArgs {
    /// A pod of the workload.
    pod: String,
    /// The previous (crashed) container's logs instead of the running one's.
    previous: bool,
    /// Lines from the end, at most 200.
    tail: u32,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HoursArgs {
    /// How far back, in hours (1 to 48).
    hours: u32,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PrefixArgs {
    /// Only paths starting with this ("" for all).
    prefix: String,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PathArgs {
    /// A path as listed.
    path: String,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ImageArgs {
    /// An image reference as the workload runs it.
    image: String,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// A regular expression, matched line by line.
    pattern: String,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SizeArgs {
    /// Headroom over the 24 h peak, in percent (the team's rule is 20).
    headroom_percent: u32,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PrArgs {
    /// The pull request's number.
    number: u64,
}

impl Tool {
    pub fn name(&self) -> &'static str {
        match self {
            Tool::Workload => "get_workload",
            Tool::Pods => "list_pods",
            Tool::PodEvents => "pod_events",
            Tool::PodLogs => "pod_logs",
            Tool::MemoryHistory => "memory_history",
            Tool::RequestRates => "request_rates",
            Tool::Hpas => "list_hpas",
            Tool::GitopsListFiles => "gitops_list_files",
            Tool::GitopsReadFile => "gitops_read_file",
            Tool::RbacRules => "rbac_rules",
            Tool::NetworkPolicies => "network_policies",
            Tool::ImageVulnerabilities => "image_vulnerabilities",
            Tool::SecretKeyNames => "secret_key_names",
            Tool::AppListFiles => "app_list_files",
            Tool::AppReadFile => "app_read_file",
            Tool::AppSearchCode => "app_search_code",
            Tool::SizeMemory => "size_memory",
            Tool::PrState => "pr_state",
        }
    }

    fn description(&self) -> &'static str {
        match self {
            Tool::Workload => {
                "The workload's spec: replicas, containers with image, resources, env variable names and security context, ServiceAccount."
            }
            Tool::Pods => "The workload's pods with phase, node, restarts and container states.",
            Tool::PodEvents => "Kubernetes events about one pod (starts, kills, back-offs).",
            Tool::PodLogs => "The last lines of a pod's container logs.",
            Tool::MemoryHistory => {
                "The container's memory working set (max over pods) over the last hours: min, median, peak, last, and points."
            }
            Tool::RequestRates => {
                "Requests per second to the workload per route over the last hours."
            }
            Tool::Hpas => "HorizontalPodAutoscalers in the workload's namespace.",
            Tool::GitopsListFiles => {
                "Paths of the files in the GitOps repository (default branch)."
            }
            Tool::GitopsReadFile => "A file of the GitOps repository (default branch).",
            Tool::RbacRules => "The RBAC rules bound to the workload's ServiceAccount.",
            Tool::NetworkPolicies => "NetworkPolicies in the workload's namespace.",
            Tool::ImageVulnerabilities => "Known vulnerabilities of an image (Trivy reports).",
            Tool::SecretKeyNames => "Secrets in the namespace: names and key names only.",
            Tool::AppListFiles => "Paths of the files in the application's source repository.",
            Tool::AppReadFile => "A file of the application's source, with line numbers.",
            Tool::AppSearchCode => {
                "Lines of the application's source matching a regular expression (path:line: text), at most 50."
            }
            Tool::SizeMemory => {
                "The team's memory sizing rule applied to the measured 24 h peak and median: limit = peak x (1 + headroom), request = median, rounded up; never below today's values."
            }
            Tool::PrState => {
                "State of a pull request on the GitOps repository (open, merged, closed)."
            }
        }
    }

    fn parameters(&self) -> Value {
        match self {
            Tool::Workload
            | Tool::Pods
            | Tool::Hpas
            | Tool::RbacRules
            | Tool::NetworkPolicies
            | Tool::SecretKeyNames => strict_schema::<NoArgs>(),
            Tool::PodEvents => strict_schema::<PodArgs>(),
            Tool::PodLogs => strict_schema::<LogArgs>(),
            Tool::MemoryHistory | Tool::RequestRates => strict_schema::<HoursArgs>(),
            Tool::GitopsListFiles | Tool::AppListFiles => strict_schema::<PrefixArgs>(),
            Tool::GitopsReadFile | Tool::AppReadFile => strict_schema::<PathArgs>(),
            Tool::ImageVulnerabilities => strict_schema::<ImageArgs>(),
            Tool::AppSearchCode => strict_schema::<SearchArgs>(),
            Tool::SizeMemory => strict_schema::<SizeArgs>(),
            Tool::PrState => strict_schema::<PrArgs>(),
        }
    }

    pub fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name().into(),
            description: self.description().into(),
            parameters: self.parameters(),
        }
    }

    /// Runs the tool for assignment `a`. Errors are answers too: the model reads them.
    async fn run(&self, ctx: &CrewContext, a: &Assignment, args: Value) -> Result<String, String> {
        fn parse<T: DeserializeOwned>(args: Value) -> Result<T, String> {
            serde_json::from_value(args).map_err(|e| format!("invalid arguments: {e}"))
        }
        fn json<T: Serialize>(v: &T) -> Result<String, String> {
            serde_json::to_string(v).map_err(|e| e.to_string())
        }
        let w = &a.workload;
        let err = |e: squad_runtime::ports::PortError| e.to_string();
        match self {
            Tool::Workload => json(&ctx.cluster.workload(w).await.map_err(err)?),
            Tool::Pods => json(&ctx.cluster.pods_of(w).await.map_err(err)?),
            Tool::PodEvents => {
                let p: PodArgs = parse(args)?;
                own_pod(ctx, w, &p.pod).await?;
                json(
                    &ctx.cluster
                        .events(&w.namespace, &p.pod)
                        .await
                        .map_err(err)?,
                )
            }
            Tool::PodLogs => {
                let p: LogArgs = parse(args)?;
                let pod = own_pod(ctx, w, &p.pod).await?;
                let container = main_container(a)
                    .or_else(|| pod.containers.first().map(|c| c.name.clone()))
                    .unwrap_or_default();
                let lines = ctx
                    .cluster
                    .logs(
                        &w.namespace,
                        &p.pod,
                        &container,
                        p.previous,
                        p.tail.clamp(1, 200) as usize,
                    )
                    .await
                    .map_err(err)?;
                Ok(lines.join("\n"))
            }
            Tool::MemoryHistory => {
                let h: HoursArgs = parse(args)?;
                let container = main_container(a).ok_or("the incident names no container")?;
                let hours = u64::from(h.hours.clamp(1, 48));
                let samples = ctx
                    .cluster
                    .memory_working_set(
                        w,
                        &container,
                        std::time::Duration::from_secs(hours * 3600),
                        std::time::Duration::from_secs(hours * 3600 / 48),
                    )
                    .await
                    .map_err(err)?;
                Ok(series_summary(&samples, 1.0 / (1024.0 * 1024.0), "MiB"))
            }
            Tool::RequestRates => {
                let h: HoursArgs = parse(args)?;
                let hours = u64::from(h.hours.clamp(1, 48));
                let routes = ctx
                    .cluster
                    .request_rates(
                        w,
                        std::time::Duration::from_secs(hours * 3600),
                        std::time::Duration::from_secs(hours * 3600 / 48),
                    )
                    .await
                    .map_err(err)?;
                Ok(routes
                    .iter()
                    .map(|(route, s)| format!("{route}: {}", series_summary(s, 1.0, "req/s")))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            Tool::Hpas => json(&ctx.cluster.hpas(&w.namespace).await.map_err(err)?),
            Tool::GitopsListFiles | Tool::AppListFiles => {
                let p: PrefixArgs = parse(args)?;
                let repo = if *self == Tool::AppListFiles {
                    &ctx.app_repo
                } else {
                    &ctx.forge
                };
                let base = repo.default_branch().await.map_err(err)?;
                Ok(repo
                    .list_files(&p.prefix, &base)
                    .await
                    .map_err(err)?
                    .join("\n"))
            }
            Tool::GitopsReadFile | Tool::AppReadFile => {
                let p: PathArgs = parse(args)?;
                let repo = if *self == Tool::AppReadFile {
                    &ctx.app_repo
                } else {
                    &ctx.forge
                };
                let base = repo.default_branch().await.map_err(err)?;
                let text = repo
                    .read_file(&p.path, &base)
                    .await
                    .map_err(err)?
                    .ok_or_else(|| format!("{} has no file {}", repo.repo(), p.path))?;
                // Numbered by the loop after redaction: a gutter between `name:` and `value:`
                // lines would hide an env entry from the detectors.
                Ok(format!("{NUMBER_LINES}{text}"))
            }
            Tool::RbacRules => {
                let info = ctx.cluster.workload(w).await.map_err(err)?;
                json(
                    &ctx.cluster
                        .rbac_rules(&w.namespace, &info.service_account)
                        .await
                        .map_err(err)?,
                )
            }
            Tool::NetworkPolicies => json(
                &ctx.cluster
                    .network_policies(&w.namespace)
                    .await
                    .map_err(err)?,
            ),
            Tool::ImageVulnerabilities => {
                let p: ImageArgs = parse(args)?;
                json(
                    &ctx.cluster
                        .image_vulnerabilities(&p.image)
                        .await
                        .map_err(err)?,
                )
            }
            Tool::SecretKeyNames => {
                json(&ctx.cluster.secret_keys(&w.namespace).await.map_err(err)?)
            }
            Tool::AppSearchCode => {
                let p: SearchArgs = parse(args)?;
                let re =
                    regex::Regex::new(&p.pattern).map_err(|e| format!("invalid pattern: {e}"))?;
                let repo = &ctx.app_repo;
                let base = repo.default_branch().await.map_err(err)?;
                let mut hits = Vec::new();
                for path in repo.list_files("", &base).await.map_err(err)? {
                    let Some(text) = repo.read_file(&path, &base).await.map_err(err)? else {
                        continue;
                    };
                    for (i, line) in text.lines().enumerate() {
                        if re.is_match(line) && hits.len() < 50 {
                            hits.push(format!("{path}:{}: {}", i + 1, line.trim()));
                        }
                    }
                }
                Ok(if hits.is_empty() {
                    "no match".into()
                } else {
                    hits.join("\n")
                })
            }
            Tool::SizeMemory => {
                let p: SizeArgs = parse(args)?;
                let m = a
                    .diagnosis
                    .signals
                    .memory
                    .as_ref()
                    .ok_or("the diagnosis has no memory measurements for this workload")?;
                let mut rule = ctx.settings.remediation.memory.clone();
                rule.headroom_percent = p.headroom_percent.min(400);
                json(&squad_diagnosis::families::memory::size_memory(m, &rule))
            }
            Tool::PrState => {
                let p: PrArgs = parse(args)?;
                json(&ctx.forge.pr_state(p.number).await.map_err(err)?)
            }
        }
    }
}

/// The container the incident is about.
fn main_container(a: &Assignment) -> Option<String> {
    let s = &a.diagnosis.signals;
    s.memory
        .as_ref()
        .map(|m| m.container.clone())
        .or_else(|| s.crash.as_ref().map(|c| c.container.clone()))
}

/// Tools read the incident's workload only: a pod must be one of its pods.
async fn own_pod(
    ctx: &CrewContext,
    w: &WorkloadRef,
    pod: &str,
) -> Result<squad_protocols::cluster::PodInfo, String> {
    let pods = ctx.cluster.pods_of(w).await.map_err(|e| e.to_string())?;
    let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    pods.iter().find(|p| p.name == pod).cloned().ok_or_else(|| {
        format!(
            "{pod} is not a pod of {w}; its pods are {}",
            names.join(", ")
        )
    })
}

/// Min, median, peak and last of a series, and up to 12 evenly spaced points.
fn series_summary(samples: &[squad_protocols::cluster::Sample], scale: f64, unit: &str) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    let mut values: Vec<f64> = samples.iter().map(|s| s.value * scale).collect();
    let last = values[values.len() - 1];
    let points: Vec<String> = samples
        .iter()
        .step_by(samples.len().div_ceil(12))
        .map(|s| format!("{} {:.1}", s.at.format("%H:%M"), s.value * scale))
        .collect();
    values.sort_by(f64::total_cmp);
    format!(
        "{} samples from {} to {}: min {:.1} {unit}, median {:.1} {unit}, peak {:.1} {unit}, last {last:.1} {unit}; points: {}",
        samples.len(),
        samples[0].at.to_rfc3339(),
        samples[samples.len() - 1].at.to_rfc3339(),
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
        points.join(", ")
    )
}

/// A JSON Schema for `T` in the form strict structured outputs accept: no `$schema`/`title`,
/// every object closed (`additionalProperties: false`) with all its properties required, and no
/// `format` keywords (OpenAI rejects the integer formats schemars writes).
pub fn strict_schema<T: JsonSchema>() -> Value {
    strict(serde_json::to_value(schemars::schema_for!(T)).unwrap_or(json!({})))
}

/// A JSON Schema as schemars writes it, in the strict form (see [`strict_schema`]).
pub fn strict(schema: Value) -> Value {
    let mut v = schema;
    let defs = v
        .as_object_mut()
        .and_then(|o| {
            o.remove("$schema");
            o.remove("title");
            o.remove("$defs")
        })
        .unwrap_or(json!({}));
    // Definitions inlined: the schema is nested under `final` in json_schema mode, where a
    // `#/$defs/...` reference no longer resolves. Answer types are not recursive.
    fn inline(v: &mut Value, defs: &Value, depth: u32) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    if let Some(def) = r
                        .strip_prefix("#/$defs/")
                        .and_then(|name| defs.get(name))
                        .filter(|_| depth < 16)
                    {
                        let mut def = def.clone();
                        inline(&mut def, defs, depth + 1);
                        o.remove("$ref");
                        if let Value::Object(d) = def {
                            for (k, x) in d {
                                o.entry(k).or_insert(x);
                            }
                        }
                        return;
                    }
                }
                for (_, child) in o.iter_mut() {
                    inline(child, defs, depth);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| inline(x, defs, depth)),
            _ => {}
        }
    }
    inline(&mut v, &defs, 0);
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("format");
                if o.get("type").and_then(Value::as_str) == Some("object")
                    || o.contains_key("properties")
                {
                    let keys: Vec<Value> = o
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().cloned().map(Value::String).collect())
                        .unwrap_or_default();
                    o.insert("required".into(), Value::Array(keys));
                    o.insert("additionalProperties".into(), Value::Bool(false));
                    if !o.contains_key("properties") {
                        o.insert("properties".into(), json!({}));
                    }
                }
                for (_, child) in o.iter_mut() {
                    walk(child);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// A member's charter: the GitOps repository's `.squad/agents/<name>/charter.md` (the Squad
/// convention) when it has one, else the charter squad ships.
pub async fn charter(ctx: &CrewContext, member: Member) -> String {
    let path = format!(".squad/agents/{}/charter.md", member.id());
    if let Ok(base) = ctx.forge.default_branch().await {
        if let Ok(Some(text)) = ctx.forge.read_file(&path, &base).await {
            if !text.trim().is_empty() {
                return text;
            }
        }
    }
    charters::charter(member).to_string()
}

/// The incident as every member's model sees it (before redaction, which the gateway does).
pub fn incident_brief(a: &Assignment) -> String {
    let d = &a.diagnosis;
    let issue = if a.issue.number == 0 {
        "the incident issue is not filed yet".to_string()
    } else {
        format!("incident issue #{}", a.issue.number)
    };
    let mut s = format!(
        "## Incident {}\nAlert `{}` on {} ({issue}).\n\n## Diagnosis\n{}\nRoot cause: `{}` (confidence {:.0}%).\n",
        a.incident,
        a.alert_name,
        a.workload,
        d.summary,
        d.root_cause.as_str(),
        d.confidence * 100.0
    );
    if !d.evidence.is_empty() {
        s.push_str("\nEvidence:\n");
        for e in &d.evidence {
            s.push_str(&format!("- {}: {}\n", e.source, e.observation));
        }
    }
    if !a.memory.is_empty() {
        s.push_str("\n## Past decisions about this workload\n");
        for m in &a.memory {
            s.push_str(&format!("- {m}\n"));
        }
    }
    if !a.reports.is_empty() {
        s.push_str("\n## What the rest of the crew reported\n");
        for r in &a.reports {
            s.push_str(&format!("- {}: {}\n", r.member.display_name(), r.summary));
        }
    }
    s
}

/// What a member asks its model.
pub struct Ask<'a, T> {
    pub member: Member,
    pub assignment: &'a Assignment,
    /// The decision asked for, in a sentence or two.
    pub task: String,
    /// What the member knows beyond the incident brief (its skill's findings).
    pub context: String,
    /// The deterministic skill's answer: the fallback, and what the model reviews.
    pub proposal: T,
    pub tools: &'a [Tool],
}

/// The answer a member goes on with.
#[derive(Debug, Clone)]
pub struct Thought<T> {
    pub answer: T,
    /// `profile/model` when the model's answer was used.
    pub by_model: Option<String>,
}

/// Where a deliberation stands against its budget.
#[allow(clippy::disallowed_types)]
struct Spend {
    started: Instant,
    usage: Usage,
    /// Calls and tokens spent before this deliberation (this member, this incident).
    member_calls_before: u64,
    incident_tokens_before: u64,
}

impl Spend {
    fn exceeded(&self, b: &squad_config::LlmBudget) -> Option<String> {
        let calls = self.member_calls_before + u64::from(self.usage.calls);
        let tokens = self.incident_tokens_before + self.usage.total_tokens();
        let wall = self.started.elapsed().as_secs();
        if calls >= u64::from(b.max_calls_per_member) {
            Some(format!(
                "call budget spent ({calls} of llm.budget.max_calls_per_member = {})",
                b.max_calls_per_member
            ))
        } else if tokens >= b.max_tokens_per_incident {
            Some(format!(
                "token budget spent ({tokens} of llm.budget.max_tokens_per_incident = {})",
                b.max_tokens_per_incident
            ))
        } else if wall >= b.max_wall_seconds_per_member {
            Some(format!(
                "wall-time budget spent ({wall} s of llm.budget.max_wall_seconds_per_member = {})",
                b.max_wall_seconds_per_member
            ))
        } else {
            None
        }
    }
}

/// Tool arguments with the incident's placeholders restored, for running the tool locally.
fn restore_json(r: &Redactor, v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(r.restore(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| restore_json(r, x)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), restore_json(r, x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn truncate(text: String) -> String {
    if text.chars().count() <= MAX_TOOL_RESULT_CHARS {
        return text;
    }
    let cut: String = text.chars().take(MAX_TOOL_RESULT_CHARS).collect();
    format!("{cut}\n[... truncated at {MAX_TOOL_RESULT_CHARS} characters]")
}

/// Puts `ask` to the member's model, if it has one, and returns the answer to go on with.
/// `check` validates an answer against what the member knows (`Err` says what is wrong).
pub async fn deliberate<T>(
    ctx: &CrewContext,
    ask: Ask<'_, T>,
    check: impl Fn(&T) -> Result<(), Rejection> + Sync,
) -> Thought<T>
where
    T: Serialize + DeserializeOwned + JsonSchema + Clone,
{
    if ctx.minds.model_of(ask.member).is_none() {
        return Thought {
            answer: ask.proposal,
            by_model: None,
        };
    }
    let proposal = match serde_json::to_string_pretty(&ask.proposal) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(member = %ask.member, "proposal not serialisable: {e}");
            return Thought {
                answer: ask.proposal,
                by_model: None,
            };
        }
    };
    let erased = ErasedAsk {
        member: ask.member,
        assignment: ask.assignment,
        task: ask.task.clone(),
        context: ask.context.clone(),
        proposal,
        schema: strict_schema::<T>(),
        tools: ask.tools,
        parse: &|text| {
            parse_answer::<T>(text).and_then(|answer| {
                serde_json::to_value(answer).map_err(|e| Rejection(e.to_string()))
            })
        },
        check: &|v| {
            serde_json::from_value::<T>(v.clone())
                .map_err(|e| Rejection(e.to_string()))
                .and_then(|answer| check(&answer))
        },
    };
    let thought = deliberate_erased(ctx, erased).await;
    match (
        thought
            .answer
            .and_then(|v| serde_json::from_value::<T>(v).ok()),
        thought.by_model,
    ) {
        (Some(answer), Some(model)) => Thought {
            answer,
            by_model: Some(model),
        },
        _ => Thought {
            answer: ask.proposal,
            by_model: None,
        },
    }
}

/// A failure family's proposal put to the member's model (see
/// [`squad_diagnosis::Family::proposal`]): the answer is JSON in the family's type, checked by
/// `check`; `None` when the model's answer is not used.
pub async fn deliberate_proposal(
    ctx: &CrewContext,
    member: Member,
    assignment: &Assignment,
    proposal: squad_diagnosis::Proposal,
    tools: &[Tool],
    check: impl Fn(&Value) -> Result<(), Rejection> + Sync,
) -> Thought<Option<Value>> {
    if ctx.minds.model_of(member).is_none() {
        return Thought {
            answer: None,
            by_model: None,
        };
    }
    let parse = proposal.parse;
    deliberate_erased(
        ctx,
        ErasedAsk {
            member,
            assignment,
            task: proposal.task,
            context: proposal.context,
            proposal: proposal.proposal,
            schema: strict(proposal.schema),
            tools,
            parse: &parse,
            check: &check,
        },
    )
    .await
}

/// An ask with its answer type erased to JSON: the proposal as the model reads it, the answer's
/// strict schema, and how to read and check an answer.
struct ErasedAsk<'a> {
    member: Member,
    assignment: &'a Assignment,
    task: String,
    context: String,
    proposal: String,
    schema: Value,
    tools: &'a [Tool],
    parse: &'a (dyn Fn(&str) -> Result<Value, Rejection> + Sync),
    check: &'a (dyn Fn(&Value) -> Result<(), Rejection> + Sync),
}

async fn deliberate_erased(ctx: &CrewContext, ask: ErasedAsk<'_>) -> Thought<Option<Value>> {
    let Some(info) = ctx.minds.model_of(ask.member).cloned() else {
        return Thought {
            answer: None,
            by_model: None,
        };
    };
    let a = ask.assignment;
    let before = ctx
        .journal
        .load(&a.incident)
        .map(|i| {
            let member = i.llm_usage.get(&ask.member).map_or(0, |u| u.calls);
            let tokens = i
                .llm_usage
                .values()
                .map(|u| u.prompt_tokens + u.completion_tokens)
                .sum();
            (member, tokens)
        })
        .unwrap_or((0, 0));
    #[allow(clippy::disallowed_types)]
    let mut spend = Spend {
        started: Instant::now(),
        usage: Usage::default(),
        member_calls_before: before.0,
        incident_tokens_before: before.1,
    };
    let mut tools_called = Vec::new();
    let outcome = run_loop(ctx, &ask, &mut spend, &mut tools_called).await;
    let (answer, result) = match outcome {
        Ok(answer) => (Some(answer), DeliberationOutcome::Accepted),
        Err(reason) => (None, DeliberationOutcome::Fallback { reason }),
    };
    if let DeliberationOutcome::Fallback { reason } = &result {
        tracing::info!(member = %ask.member, model = %info.label(), "model answer not used: {reason}");
    }
    let event = EventKind::Deliberated {
        member: ask.member,
        model: info.label(),
        outcome: result,
        usage: spend.usage,
        tools: tools_called,
        cost_usd: info.cost_usd(&spend.usage),
        wall_ms: spend.started.elapsed().as_millis() as u64,
    };
    if let Err(e) = ctx
        .journal
        .record(&a.incident, Author::from(ask.member), event)
    {
        tracing::warn!(member = %ask.member, "could not record the deliberation: {e}");
    }
    let by_model = answer.as_ref().map(|_| info.label());
    Thought { answer, by_model }
}

async fn run_loop(
    ctx: &CrewContext,
    ask: &ErasedAsk<'_>,
    spend: &mut Spend,
    tools_called: &mut Vec<String>,
) -> Result<Value, String> {
    let a = ask.assignment;
    let budget = *ctx.minds.budget();
    if let Some(reason) = spend.exceeded(&budget) {
        return Err(reason);
    }
    let redactor = redactor(ctx, &a.incident, &a.workload.namespace).await?;
    let proposal = &ask.proposal;
    let mut messages = vec![
        ChatMessage::system(format!("{}{RULES}", charter(ctx, ask.member).await)),
        ChatMessage::user(format!(
            "{}\n## What you found\n{}\n\n## Your task\n{}\n\n## Your deterministic skill's proposal\n```json\n{proposal}\n```\n\nReview it, use the tools if you need more, and give the final answer as JSON in the required shape.",
            incident_brief(a),
            ask.context.trim(),
            ask.task
        )),
    ];
    let tools: Vec<ToolSpec> = ask.tools.iter().map(Tool::spec).collect();
    let schema = ResponseSchema {
        name: format!("{}_answer", ask.member.id()),
        schema: ask.schema.clone(),
    };
    let max_answer_tokens = ctx
        .minds
        .model_of(ask.member)
        .map_or(640, |m| m.max_answer_tokens);
    let mut repairs = 0;
    loop {
        if let Some(reason) = spend.exceeded(&budget) {
            return Err(reason);
        }
        let req = ChatRequest {
            messages: messages.clone(),
            tools: tools.clone(),
            response_schema: Some(schema.clone()),
            max_tokens: Some(max_answer_tokens),
            temperature: Some(0.0),
        };
        let resp = ctx
            .minds
            .chat(&a.incident, ask.member, req)
            .await
            .map_err(|e| format!("the model call failed: {e}"))?;
        spend.usage.add(&resp.usage);
        if !resp.tool_calls.is_empty() {
            messages.push(ChatMessage::assistant_tool_calls(resp.tool_calls.clone()));
            for call in resp.tool_calls {
                let result = match ask.tools.iter().find(|t| t.name() == call.name) {
                    Some(tool) => {
                        tools_called.push(call.name.clone());
                        let result = tool
                            .run(ctx, a, restore_json(&redactor, &call.arguments))
                            .await
                            .unwrap_or_else(|e| format!("error: {e}"));
                        present(result, &redactor)
                    }
                    None => format!(
                        "error: there is no tool {:?}; the tools are {}",
                        call.name,
                        ask.tools
                            .iter()
                            .map(Tool::name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                messages.push(ChatMessage::tool_result(call.id, truncate(result)));
            }
            continue;
        }
        let text = resp.content.unwrap_or_default();
        let cut = resp.finish_reason == squad_protocols::llm::FinishReason::Length;
        let verdict = (ask.parse)(&text)
            .map_err(|e| {
                if cut {
                    Rejection(format!(
                        "the answer was cut off at {max_answer_tokens} tokens; be brief ({e})"
                    ))
                } else {
                    e
                }
            })
            .and_then(|answer| (ask.check)(&answer).map(|()| answer));
        match verdict {
            Ok(answer) => return Ok(answer),
            Err(reason) if repairs < MAX_REPAIRS => {
                repairs += 1;
                messages.push(ChatMessage::assistant(text));
                messages.push(ChatMessage::user(format!(
                    "That answer was rejected: {reason}. Answer again with JSON in the required shape, fixing this."
                )));
            }
            Err(reason) => return Err(format!("the answer was rejected: {reason}")),
        }
    }
}

/// The incident's redactor, seeded once with the values of the namespace's Secrets.
async fn redactor(
    ctx: &CrewContext,
    incident: &IncidentId,
    namespace: &str,
) -> Result<std::sync::Arc<Redactor>, String> {
    ctx.minds
        .redactor(incident, || async {
            match ctx.cluster.secret_values(namespace).await {
                Ok(values) => values,
                Err(e) => {
                    // Without them the detectors still run; values with no telltale shape
                    // could pass, so say so.
                    tracing::warn!(
                        namespace,
                        "Secret values unreadable for redaction ({e}); only the detectors apply"
                    );
                    Vec::new()
                }
            }
        })
        .await
        .map_err(|e| e.to_string())
}

pub use squad_protocols::llm::clean_text;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Serialize, serde::Deserialize, JsonSchema, Clone)]
    struct Out {
        /// A note.
        note: String,
        count: u32,
        items: Vec<Inner>,
        maybe: Option<String>,
    }

    #[derive(Debug, Serialize, serde::Deserialize, JsonSchema, Clone)]
    struct Inner {
        file: String,
    }

    #[test]
    fn strict_schemas_close_every_object_and_require_every_property() {
        let s = strict_schema::<Out>();
        assert!(
            s.get("$schema").is_none() && s.get("title").is_none(),
            "{s}"
        );
        assert_eq!(s["additionalProperties"], json!(false));
        assert_eq!(
            s["required"],
            json!(["count", "items", "maybe", "note"]),
            "{s}"
        );
        assert!(!s.to_string().contains("\"format\""), "{s}");
        assert!(!s.to_string().contains("$ref"), "{s}");
        let inner = &s["properties"]["items"]["items"];
        assert_eq!(inner["additionalProperties"], json!(false), "{s}");
        assert_eq!(inner["required"], json!(["file"]), "{s}");
        assert_eq!(strict_schema::<NoArgs>()["properties"], json!({}));
    }

    #[test]
    fn answers_parse_with_or_without_a_fence_and_name_what_is_wrong() {
        let ok: Inner = parse_answer("```json\n{\"file\": \"a.py\"}\n```").unwrap();
        assert_eq!(ok.file, "a.py");
        let e = parse_answer::<Inner>("I think the limit should be higher").unwrap_err();
        assert!(e.0.contains("not the required JSON"), "{e}");
    }

    #[test]
    fn summaries_give_min_median_peak() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T19:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let s: Vec<_> = [3.0, 1.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, v)| squad_protocols::cluster::Sample {
                at: at + chrono::Duration::minutes(i as i64),
                value: *v,
            })
            .collect();
        let text = series_summary(&s, 1.0, "x");
        assert!(
            text.contains("min 1.0 x, median 2.0 x, peak 3.0 x, last 2.0 x"),
            "{text}"
        );
    }
}

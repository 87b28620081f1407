//! The read-only tools a member offers its model: what each is called and takes (JSON Schemas
//! from the argument types), and how it runs against the incident's workload and repositories.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use squad_protocols::Assignment;
use squad_protocols::WorkloadRef;
use squad_protocols::llm::ToolSpec;
use squad_runtime::redact::Redactor;

use super::strict_schema;
use crate::CrewContext;

/// A tool result starting with this is a file to show with line numbers.
pub(super) const NUMBER_LINES: &str = "\u{0}number-lines\u{0}";

/// A tool result as the model sees it: redacted first, then (files) numbered.
pub(super) fn present(result: String, redactor: &Redactor) -> String {
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

/// Why a tool could not answer: the model reads it as the tool's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl From<&str> for ToolError {
    fn from(s: &str) -> ToolError {
        ToolError(s.to_owned())
    }
}

impl From<squad_runtime::ports::PortError> for ToolError {
    fn from(e: squad_runtime::ports::PortError) -> ToolError {
        ToolError(e.to_string())
    }
}

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
pub(super) struct NoArgs {}

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
    pub(super) async fn run(
        &self,
        ctx: &CrewContext,
        a: &Assignment,
        args: Value,
    ) -> Result<String, ToolError> {
        fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
            serde_json::from_value(args).map_err(|e| ToolError(format!("invalid arguments: {e}")))
        }
        fn json<T: Serialize>(v: &T) -> Result<String, ToolError> {
            serde_json::to_string(v).map_err(|e| ToolError(e.to_string()))
        }
        let w = &a.workload;
        match self {
            Tool::Workload => json(&ctx.cluster.workload(w).await?),
            Tool::Pods => json(&ctx.cluster.pods_of(w).await?),
            Tool::PodEvents => {
                let p: PodArgs = parse(args)?;
                own_pod(ctx, w, &p.pod).await?;
                json(&ctx.cluster.events(&w.namespace, &p.pod).await?)
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
                    .await?;
                Ok(lines.join("\n"))
            }
            Tool::MemoryHistory => {
                let h: HoursArgs = parse(args)?;
                let container =
                    main_container(a).ok_or(ToolError::from("the incident names no container"))?;
                let hours = u64::from(h.hours.clamp(1, 48));
                let samples = ctx
                    .cluster
                    .memory_working_set(
                        w,
                        &container,
                        std::time::Duration::from_secs(hours * 3600),
                        std::time::Duration::from_secs(hours * 3600 / 48),
                    )
                    .await?;
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
                    .await?;
                Ok(routes
                    .iter()
                    .map(|(route, s)| format!("{route}: {}", series_summary(s, 1.0, "req/s")))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            Tool::Hpas => json(&ctx.cluster.hpas(&w.namespace).await?),
            Tool::GitopsListFiles | Tool::AppListFiles => {
                let p: PrefixArgs = parse(args)?;
                let repo = if *self == Tool::AppListFiles {
                    &ctx.app_repo
                } else {
                    &ctx.forge
                };
                let base = repo.default_branch().await?;
                Ok(repo.list_files(&p.prefix, &base).await?.join("\n"))
            }
            Tool::GitopsReadFile | Tool::AppReadFile => {
                let p: PathArgs = parse(args)?;
                let repo = if *self == Tool::AppReadFile {
                    &ctx.app_repo
                } else {
                    &ctx.forge
                };
                let base = repo.default_branch().await?;
                let text = repo
                    .read_file(&p.path, &base)
                    .await?
                    .ok_or_else(|| ToolError(format!("{} has no file {}", repo.repo(), p.path)))?;
                // Numbered by the loop after redaction: a gutter between `name:` and `value:`
                // lines would hide an env entry from the detectors.
                Ok(format!("{NUMBER_LINES}{text}"))
            }
            Tool::RbacRules => {
                let info = ctx.cluster.workload(w).await?;
                json(
                    &ctx.cluster
                        .rbac_rules(&w.namespace, &info.service_account)
                        .await?,
                )
            }
            Tool::NetworkPolicies => json(&ctx.cluster.network_policies(&w.namespace).await?),
            Tool::ImageVulnerabilities => {
                let p: ImageArgs = parse(args)?;
                json(&ctx.cluster.image_vulnerabilities(&p.image).await?)
            }
            Tool::SecretKeyNames => json(&ctx.cluster.secret_keys(&w.namespace).await?),
            Tool::AppSearchCode => {
                let p: SearchArgs = parse(args)?;
                let re = regex::Regex::new(&p.pattern)
                    .map_err(|e| ToolError(format!("invalid pattern: {e}")))?;
                let repo = &ctx.app_repo;
                let base = repo.default_branch().await?;
                let mut hits = Vec::new();
                let paths = repo.list_files("", &base).await?;
                let mut walk = crate::walk::Walk::new("files", paths.len());
                for path in paths {
                    if !walk.more() || hits.len() >= 50 {
                        break;
                    }
                    let text = repo.read_file(&path, &base).await?;
                    walk.read(text.as_ref().map_or(0, String::len));
                    let Some(text) = text else {
                        continue;
                    };
                    for (i, line) in text.lines().enumerate() {
                        if re.is_match(line) && hits.len() < 50 {
                            hits.push(format!("{path}:{}: {}", i + 1, line.trim()));
                        }
                    }
                }
                let unread = walk.note().map(|n| format!("\n(searched in part: {n})"));
                Ok(if hits.is_empty() {
                    format!("no match{}", unread.unwrap_or_default())
                } else {
                    hits.join("\n") + &unread.unwrap_or_default()
                })
            }
            Tool::SizeMemory => {
                let p: SizeArgs = parse(args)?;
                let m = a.diagnosis.signals.memory.as_ref().ok_or(ToolError::from(
                    "the diagnosis has no memory measurements for this workload",
                ))?;
                let mut rule = ctx.settings.remediation.memory.clone();
                rule.headroom_percent = p.headroom_percent.min(400);
                json(&squad_diagnosis::families::memory::size_memory(m, &rule))
            }
            Tool::PrState => {
                let p: PrArgs = parse(args)?;
                json(&ctx.forge.pr_state(p.number).await?)
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
) -> Result<squad_protocols::cluster::PodInfo, ToolError> {
    let pods = ctx.cluster.pods_of(w).await?;
    let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    pods.iter().find(|p| p.name == pod).cloned().ok_or_else(|| {
        ToolError(format!(
            "{pod} is not a pod of {w}; its pods are {}",
            names.join(", ")
        ))
    })
}

/// Min, median, peak and last of a series, and up to 12 evenly spaced points.
pub(super) fn series_summary(
    samples: &[squad_protocols::cluster::Sample],
    scale: f64,
    unit: &str,
) -> String {
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

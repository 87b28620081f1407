//! The application a scenario runs: what it serves, what it needs to start, what it calls and
//! writes, and how it behaves under load (`[app]` in `scenario.toml`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    pub language: String,
    /// The source file of the request handler at fault, under `app/`.
    pub handler: String,
    pub route: String,
    /// The port it listens on; without one, every port the container declares (any port when
    /// it declares none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The paths it answers with 200 besides `route` (its health endpoints); any other path is a
    /// 404. Without `paths` the world does not model them: every path answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// The paths an uptime check outside the cluster requests through the Service, one request
    /// every [`AppSpec::HEALTH_CHECK_PERIOD_SECONDS`] each, answered by the pods that serve
    /// traffic (the scenario lists paths they serve). The app counts them in
    /// `http_requests_total` by route, beside `route`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<String>,
    /// The executables the image holds (`/app/server`, or a name found on `$PATH`). A container
    /// whose `command` names another never starts (`StartError`, exit 128: `exec: "x":
    /// executable file not found in $PATH`). Without the list every command exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executables: Option<Vec<String>>,
    /// For a Job: how long a run takes to complete (exit 0), in seconds, when nothing fails
    /// first. A Job's `activeDeadlineSeconds` shorter than that fails it (`DeadlineExceeded`).
    #[serde(default)]
    pub run_seconds: f64,
    /// How long it takes, after it starts, to be ready to serve (warming a cache, building an
    /// index, migrating at boot), in seconds: it listens at once, but answers its health
    /// endpoints with 503 until then (an HTTP readiness probe fails with `statuscode: 503`; a
    /// TCP one passes). Its pods are not Ready, so a rollout waits for them; past
    /// `progressDeadlineSeconds` the Deployment reports `ProgressDeadlineExceeded`. A liveness
    /// probe during start-up is not modelled (it passes).
    #[serde(default)]
    pub startup_seconds: f64,
    /// How long its health endpoints take to answer, in ms: `latency_ms + latency_ms_per_rps ×
    /// rps(t)`. A probe whose timeout is shorter fails (`context deadline exceeded`).
    #[serde(default)]
    pub latency_ms: f64,
    #[serde(default)]
    pub latency_ms_per_rps: f64,
    /// CPU the app burns, in millicores: `cpu_millicores + cpu_millicores_per_rps × rps(t)` is
    /// its mean demand. Work arrives in bursts, so a CPU limit throttles it in some periods
    /// well before the mean reaches the limit (see `SimCluster::cpu_at`).
    #[serde(default)]
    pub cpu_millicores: f64,
    #[serde(default)]
    pub cpu_millicores_per_rps: f64,
    /// What it keeps on its data volume (the first PersistentVolumeClaim its pods mount), in
    /// MiB, when the claim is first mounted; it then writes `writes_mib_per_hour` more, and
    /// `writes_kib_per_request` for each request it serves. At the volume's size its writes
    /// fail: it logs `disk_full_log` (`{path}`: the mount path) and exits 1.
    #[serde(default)]
    pub data_mib: f64,
    #[serde(default)]
    pub writes_mib_per_hour: f64,
    #[serde(default)]
    pub writes_kib_per_request: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_full_log: Option<String>,
    /// The Kubernetes API requests it makes at start-up with its pod's ServiceAccount. RBAC (the
    /// GitOps repo's Roles, ClusterRoles and bindings) decides each: at the first one refused
    /// it logs `forbidden_log` (`{error}`: the apiserver's message) and exits 1. Without
    /// `api_calls` the world does not model RBAC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_calls: Vec<squad_protocols::cluster::ApiRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbidden_log: Option<String>,
    /// The flags its binary defines (`-listen`, `--config`: leading dashes do not matter). A
    /// container whose command or args pass another exits at once, logging `bad_flag_log`
    /// (`{flag}`: the argument as given, `{name}`: the flag's bare name) and exiting with
    /// `bad_flag_exit_code`; by default in its language's words (Go's flag package: `flag
    /// provided but not defined: -x`, exit 2; Python's argparse: `error: unrecognized
    /// arguments: --x`, exit 2; others `error: unknown option '--x'`, exit 1). Without `flags`
    /// every flag is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_flag_log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_flag_exit_code: Option<i32>,
    /// What it connects to at start-up (`[[app.dependencies]]`), each looked up through the
    /// cluster's DNS (kube-dns) first when its host is a name. The NetworkPolicies of the
    /// workload's namespace decide whether its pods may reach each: when one is blocked the
    /// app waits `connect_timeout_seconds`, logs `dependency_log` and exits 1. Without
    /// dependencies the world does not model NetworkPolicies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_log: Option<String>,
    /// `[app.versions."<tag>"]`: any field above as the version of that image tag (or that
    /// exact image reference) has it; the others as above. A rollback to a tag brings back how
    /// that version behaved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

fn default_connect_timeout() -> u32 {
    10
}

/// A service the app connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// What the app calls it in its logs (`orders-db`).
    pub name: String,
    /// The host it dials: a DNS name (looked up first) or an address. A name of a Service of the
    /// GitOps repo (`svc`, `svc.ns`, `svc.ns.svc.cluster.local`) leads to that Service: its
    /// endpoints decide (see `cluster/services.rs`).
    pub host: String,
    /// Where a lookup of `host` leads when the repo has no Service by that name (a Service of
    /// the cluster outside the repo); for a repo Service, its cluster IP. Without one, and
    /// without a repo Service, the lookup finds no such host.
    #[serde(default)]
    pub ip: String,
    pub port: u16,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// The namespace of the pods behind an `ip` (the workload's when empty), and their labels
    /// (a repo Service's are its selector's).
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
    /// The namespace's labels (`kubernetes.io/metadata.name` is always among them).
    #[serde(default)]
    pub namespace_labels: BTreeMap<String, String>,
}

fn default_protocol() -> String {
    "TCP".into()
}

impl AppSpec {
    /// How often the uptime check of `health_checks` requests each path, in seconds.
    pub const HEALTH_CHECK_PERIOD_SECONDS: f64 = 10.0;

    /// The first argument of `argv` that is a flag the binary does not define, if any.
    pub fn unknown_flag<'a>(&self, argv: impl IntoIterator<Item = &'a String>) -> Option<String> {
        let flags = self.flags.as_ref()?;
        let bare = |f: &str| {
            f.trim_start_matches('-')
                .split('=')
                .next()
                .unwrap_or("")
                .to_owned()
        };
        argv.into_iter()
            .filter(|a| a.starts_with('-') && !bare(a).is_empty())
            .find(|a| !flags.iter().any(|f| bare(f) == bare(a)))
            .cloned()
    }

    /// What the app logs for an unknown flag, and the code it exits with.
    pub fn bad_flag(&self, flag: &str) -> (String, i32) {
        let name = flag.trim_start_matches('-').split('=').next().unwrap_or("");
        let (template, code) = match self.language.as_str() {
            "go" => ("flag provided but not defined: -{name}", 2),
            "python" => ("error: unrecognized arguments: {flag}", 2),
            _ => ("error: unknown option '{flag}'", 1),
        };
        let line = self
            .bad_flag_log
            .as_deref()
            .unwrap_or(template)
            .replace("{flag}", flag)
            .replace("{name}", name);
        (line, self.bad_flag_exit_code.unwrap_or(code))
    }

    /// Whether the scenario models the app's disk writes at all.
    pub fn writes(&self) -> bool {
        self.data_mib > 0.0 || self.writes_mib_per_hour > 0.0 || self.writes_kib_per_request > 0.0
    }

    /// Whether the image holds `command` (a path, or a name looked up on `$PATH`).
    pub fn has_executable(&self, command: &str) -> bool {
        self.executables.as_ref().is_none_or(|xs| {
            xs.iter().any(|x| {
                x == command || (!command.contains('/') && x.rsplit('/').next() == Some(command))
            })
        })
    }

    /// Whether the scenario models the latency of the app's health endpoints.
    pub fn models_latency(&self) -> bool {
        self.latency_ms > 0.0 || self.latency_ms_per_rps > 0.0
    }

    /// Whether the scenario models the app's CPU at all.
    pub fn burns_cpu(&self) -> bool {
        self.cpu_millicores > 0.0 || self.cpu_millicores_per_rps > 0.0
    }

    /// Whether the app answers `path` with 200.
    pub fn serves(&self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        self.paths
            .as_ref()
            .is_none_or(|ps| path == self.route || ps.iter().any(|p| p == path))
    }
}

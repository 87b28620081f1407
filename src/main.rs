//! The `squad` command line.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
#[cfg(feature = "sim")]
use squad::simulation::{self, ServeKube, SimulationOptions};
use squad_config::Settings;
#[cfg(feature = "sim")]
use squad_runtime::Faults;
#[cfg(feature = "sim")]
use squad_sim::Scenario;

#[derive(Parser)]
#[command(
    name = "squad",
    version,
    about = "A crew of AI agents that handles Kubernetes incidents end to end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The scenarios `squad simulate` ships with.
    #[cfg(feature = "sim")]
    Scenarios {
        #[command(subcommand)]
        command: ScenariosCommand,
    },
    /// Runs an incident end to end with no cluster, no GitHub and no API key.
    #[cfg(feature = "sim")]
    Simulate {
        /// A shipped scenario name (see `squad scenarios list`) or a scenario directory.
        scenario: String,
        /// Where the GitOps repo, the simulated GitHub and the incident store go; a second run on
        /// the same directory resumes the incident there.
        #[arg(long, default_value = "sim-out")]
        out: PathBuf,
        /// Act as the human reviewer: merge the remediation PR, then let Ralph verify the fix.
        #[arg(long)]
        approve: bool,
        /// Print what each crew member would do; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
        /// Start over: delete an earlier simulation in --out first.
        #[arg(long)]
        fresh: bool,
        /// A squad.toml with settings (sizing rule, supervision, verification window).
        #[arg(long)]
        config: Option<PathBuf>,
        /// After the run, keep serving the simulated cluster (Kubernetes API on 127.0.0.1, with
        /// `<out>/kubeconfig`) so kubectl can look at it; Ctrl-C stops.
        #[arg(long)]
        serve_kube: bool,
        /// The port for the simulated cluster's API (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[command(flatten)]
        llm: LlmArgs,
        /// Who diagnoses: squad's native analyzers, or HolmesGPT ([holmes] in --config says how
        /// to run it; the native analyzers cross-check it and take over when it fails).
        #[arg(long, value_parser = ["native", "holmes"])]
        diagnoser: Option<String>,
        /// Rehearse against a GitHub-compatible API instead of the built-in simulated GitHub
        /// (https://api.github.com, or https://<host>/api/v3); the token from GITHUB_TOKEN.
        #[arg(long, value_name = "URL", requires = "github_repo")]
        github_url: Option<String>,
        /// The GitOps repository there, OWNER/NAME: the crew's issues and PR go there, and the
        /// manifests are read from it.
        #[arg(long, value_name = "OWNER/NAME", requires = "github_url")]
        github_repo: Option<String>,
    },
    /// Diagnoses a pod in a real cluster with squad's native analyzers, read-only: prints the
    /// root cause, the evidence, and what could not be read (missing permissions, no Prometheus).
    Diagnose {
        /// The pod, as <namespace>/<pod>, or <pod> in the kubeconfig context's namespace; or a
        /// workload, as <namespace>/<kind>/<name> or <kind>/<name> (kind: deployment,
        /// statefulset, daemonset, job, cronjob), for one whose pods do not exist (a quota
        /// refusing them, a Job whose deadline deleted its pod).
        pod: String,
        /// The container (default: the workload's first).
        #[arg(long)]
        container: Option<String>,
        /// A kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// The kubeconfig context (default: its current context).
        #[arg(long)]
        context: Option<String>,
        /// Prometheus base URL for memory and traffic history.
        #[arg(long)]
        prometheus: Option<String>,
        /// A squad.toml ([kubernetes], [prometheus] and the rest).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the diagnosis as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The daemon: receives alerts (Alertmanager, PagerDuty, generic) over HTTP, groups them into
    /// incidents and runs the crew on them; SIGTERM stops it cleanly.
    Serve {
        /// squad.toml (see squad.example.toml); secrets may come from SQUAD_SERVER_TOKENS and
        /// SQUAD_PAGERDUTY_SECRETS.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Bearer tokens for `squad serve`.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The simulated cluster on its own.
    #[cfg(feature = "sim")]
    SimCluster {
        #[command(subcommand)]
        command: SimClusterCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validates a squad.toml (with the environment overrides) and prints what it sets.
    Check {
        /// The file to check.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Reads one token from stdin (never from the command line: it would land in the shell's
    /// history) and prints `sha256:<hex>` for `[server.auth] token_hashes`.
    Hash,
}

#[cfg(feature = "sim")]
#[derive(Subcommand)]
enum SimClusterCommand {
    /// Serves a scenario's cluster as a Kubernetes API (and Prometheus API) on 127.0.0.1 until
    /// Ctrl-C, in real time from the alert, and writes a kubeconfig for kubectl.
    Serve {
        /// A shipped scenario name or a scenario directory.
        scenario: String,
        /// The port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Where to write the kubeconfig (default: <out>/kubeconfig, or ./kubeconfig without --out).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// A simulation directory: serve the cluster as that simulation left it (e.g. after
        /// `squad simulate --approve`); an empty or new one is seeded from the scenario.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Answer these resources with 403 Forbidden (e.g. pods/log, secrets), repeatable.
        #[arg(long)]
        deny: Vec<String>,
    },
}

#[cfg(feature = "sim")]
#[derive(Subcommand)]
enum ScenariosCommand {
    /// Lists the shipped scenarios.
    List,
}

/// Which model the crew thinks with (default: `[llm]` of --config, else none).
#[derive(clap::Args, Debug, Clone, Default)]
struct LlmArgs {
    /// Every crew member uses this profile of the config's [llm].
    #[arg(long = "llm", value_name = "PROFILE")]
    profile: Option<String>,
    /// An OpenAI-compatible API base such as http://127.0.0.1:8081/v1 (no config file needed;
    /// the key, if any, from OPENAI_API_KEY).
    #[arg(long, value_name = "URL")]
    llm_base_url: Option<String>,
    /// The model name for --llm-base-url.
    #[arg(long, value_name = "NAME")]
    llm_model: Option<String>,
    /// How tools are offered: native, json_schema (for servers or small models without tool
    /// calls), or auto.
    #[arg(long, value_name = "MODE", value_parser = ["native", "json_schema", "auto"])]
    llm_tool_mode: Option<String>,
}

#[cfg(feature = "sim")]
impl LlmArgs {
    fn choice(&self) -> squad::models::LlmChoice {
        squad::models::LlmChoice {
            profile: self.profile.clone(),
            base_url: self.llm_base_url.clone(),
            model: self.llm_model.clone(),
            tool_mode: self.llm_tool_mode.as_deref().map(|m| match m {
                "native" => squad_config::LlmToolMode::Native,
                "json_schema" => squad_config::LlmToolMode::JsonSchema,
                _ => squad_config::LlmToolMode::Auto,
            }),
        }
    }
}

fn load_settings(path: Option<&PathBuf>) -> anyhow::Result<Settings> {
    let mut settings = match path {
        None => Settings::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
            Settings::from_toml(&p.display().to_string(), &text)?
        }
    };
    settings.apply_env(|k| std::env::var(k).ok());
    let origin = path.map_or("the environment".to_owned(), |p| p.display().to_string());
    settings.validate(&origin)?;
    Ok(settings)
}

/// What `config check` warns about on the daemon's edge: a listener others can reach without
/// TLS, and plain tokens written in the file.
fn edge_warnings(path: &std::path::Path, s: &Settings) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    if !s.server.listens_on_loopback() && s.server.tls.is_none() {
        out.push(format!(
            "server.listen {} is not a loopback address and [server.tls] is not set: bearer tokens and alerts cross the network in clear text; set [server.tls] cert_file and key_file (or listen on 127.0.0.1 behind a TLS-terminating proxy)",
            s.server.listen
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let in_file = Settings::from_toml(&path.display().to_string(), &text)?;
    if !in_file.server.auth.tokens.is_empty() {
        out.push(format!(
            "server.auth.tokens: {} plain token(s) written in {}; store their hashes instead: `squad token hash` (token on stdin), then [server.auth] token_hashes = [\"sha256:...\"]",
            in_file.server.auth.tokens.len(),
            path.display()
        ));
    }
    Ok(out)
}

/// Waits for SIGTERM or SIGINT.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `println!` that does not panic when stdout is gone (`squad ... | head`): the output is simply
/// dropped, as a Unix tool's would be.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[cfg(feature = "sim")]
fn announce(url: &str, kubeconfig: &std::path::Path, namespace: &str, prometheus: &str) {
    let k = kubeconfig.display();
    // A reader that went away (`| head`, a test that read the first line) must not stop the
    // server: a failed write to stdout is ignored here, where `println!` would panic.
    let _ = writeln!(
        std::io::stdout(),
        "\nThe simulated cluster is served at {url} (Ctrl-C stops).\n  kubeconfig: {k}\n  kubectl --kubeconfig {k} get pods -n {namespace}\n  kubectl --kubeconfig {k} describe pod <pod> -n {namespace}\n  kubectl --kubeconfig {k} get events,deploy,hpa,netpol -n {namespace}\n  Prometheus API: {prometheus} (metrics to scrape: {url}/metrics)"
    );
    let _ = std::io::stdout().flush();
}

fn main() -> ExitCode {
    // kube and the HTTP clients use rustls; pick its crypto provider before any client exists.
    squad_adapters::tls::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SQUAD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        #[cfg(feature = "sim")]
        Command::Scenarios {
            command: ScenariosCommand::List,
        } => {
            let names = Scenario::embedded_names();
            let width = names.iter().map(String::len).max().unwrap_or(0);
            for name in names {
                let s = Scenario::embedded(&name)?;
                out!("{name:<width$}  {}", s.description);
            }
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sim")]
        Command::Simulate {
            scenario,
            out,
            approve,
            dry_run,
            json,
            fresh,
            config,
            serve_kube,
            port,
            llm,
            diagnoser,
            github_url,
            github_repo,
        } => {
            let scenario = Scenario::load(&scenario)?;
            let ns = scenario.workload.namespace.clone();
            if serve_kube && dry_run {
                anyhow::bail!(
                    "--serve-kube: a dry run keeps nothing to serve; drop --dry-run (or use `squad sim-cluster serve`)"
                );
            }
            let mut settings = load_settings(config.as_ref())?;
            match diagnoser.as_deref() {
                Some("holmes") => settings.diagnoser.kind = squad_config::DiagnoserKind::Holmes,
                Some(_) => settings.diagnoser.kind = squad_config::DiagnoserKind::Native,
                None => {}
            }
            let minds = squad::models::minds(&settings, &llm.choice(), |v| std::env::var(v).ok())?;
            let github = match (github_url, github_repo) {
                (Some(url), Some(repo)) => {
                    let token = std::env::var("GITHUB_TOKEN")
                        .ok()
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "--github-repo {repo}: set GITHUB_TOKEN to a token that may write issues, pull requests and contents there"
                            )
                        })?;
                    Some(squad::simulation::GitHubTarget { url, repo, token })
                }
                _ => None,
            };
            let abort_after_events = match std::env::var("SQUAD_FAULT_ABORT_AFTER_EVENTS") {
                Ok(v) => Some(v.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "SQUAD_FAULT_ABORT_AFTER_EVENTS: expected a number of events, got {v:?}"
                    )
                })?),
                Err(_) => None,
            };
            // Virtual time: the runtime starts paused, so the 24 h history and the observation
            // window take milliseconds.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()?;
            let outcome = rt.block_on(simulation::run(SimulationOptions {
                scenario,
                out,
                approve,
                dry_run,
                fresh,
                settings,
                faults: Faults::none(),
                abort_after_events,
                serve: ServeKube {
                    port,
                    deny: Vec::new(),
                    keep: serve_kube,
                },
                minds,
                github,
            }))?;
            if json {
                out!("{}", serde_json::to_string_pretty(&outcome.summary)?);
            } else if dry_run {
                out!(
                    "Dry run of {}: nothing was written. The crew would:\n",
                    outcome.summary.scenario
                );
                for t in &outcome.summary.timeline {
                    if t.event.starts_with("starting: ")
                        || t.event.starts_with("diagnosis")
                        || t.event.starts_with("assigned")
                    {
                        out!(
                            "  {:<8} {}",
                            t.actor,
                            t.event.trim_start_matches("starting: ")
                        );
                    }
                }
                out!("\nWrites that were not made:");
                for i in &outcome.intents {
                    out!("  - {}", i.what);
                }
            } else {
                let _ = write!(std::io::stdout(), "{}", outcome.summary.render());
            }
            if let Some(served) = outcome.served {
                announce(
                    &served.api.url(),
                    &served.kubeconfig,
                    &ns,
                    &served.api.prometheus_url(),
                );
                rt.block_on(tokio::signal::ctrl_c())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Diagnose {
            pod,
            container,
            kubeconfig,
            context,
            prometheus,
            config,
            json,
        } => {
            let kind = |k: &str| match k {
                "deployment" | "deployments" | "deploy" => Some("Deployment"),
                "statefulset" | "statefulsets" | "sts" => Some("StatefulSet"),
                "daemonset" | "daemonsets" | "ds" => Some("DaemonSet"),
                "job" | "jobs" => Some("Job"),
                "cronjob" | "cronjobs" | "cj" => Some("CronJob"),
                _ => None,
            };
            let parts: Vec<&str> = pod.split('/').collect();
            let (namespace, pod, workload) = match parts.as_slice() {
                [p] if !p.is_empty() => (None, (*p).to_owned(), None),
                [k, n] if !n.is_empty() && kind(k).is_some() => {
                    (None, String::new(), kind(k).map(|k| (k, (*n).to_owned())))
                }
                [ns, p] if !ns.is_empty() && !p.is_empty() => {
                    (Some((*ns).to_owned()), (*p).to_owned(), None)
                }
                [ns, k, n] if !ns.is_empty() && !n.is_empty() && kind(k).is_some() => (
                    Some((*ns).to_owned()),
                    String::new(),
                    kind(k).map(|k| (k, (*n).to_owned())),
                ),
                _ => anyhow::bail!(
                    "pod: expected <namespace>/<pod>, <pod>, <namespace>/<kind>/<name> or <kind>/<name> (kind: deployment, statefulset, daemonset, job, cronjob), got {pod:?}"
                ),
            };
            let settings = load_settings(config.as_ref())?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let (d, workload) = rt.block_on(squad::diagnose::diagnose(
                squad::diagnose::DiagnoseOptions {
                    namespace,
                    pod,
                    workload: workload.map(|(k, n)| (k.to_owned(), n)),
                    container,
                    kubeconfig,
                    context,
                    prometheus,
                    settings,
                },
            ))?;
            if json {
                out!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                out!("{workload}: {}", d.summary);
                out!(
                    "root cause: {} (confidence {:.0}%)",
                    d.root_cause.as_str(),
                    d.confidence * 100.0
                );
                out!("\nevidence:");
                for e in &d.evidence {
                    out!("  - {}: {}", e.source, e.observation);
                }
                if !d.recommendations.is_empty() {
                    out!("\nrecommendations:");
                    for r in &d.recommendations {
                        out!("  - {r}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { config } => {
            let settings = load_settings(config.as_ref())?;
            if !settings.server.auth.any() {
                anyhow::bail!(
                    "server.auth.tokens or server.auth.token_hashes: expected at least one bearer token (token_hashes from `squad token hash`, tokens, or SQUAD_SERVER_TOKENS); the alert endpoints would accept no one"
                );
            }
            let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let daemon = squad::serve::Daemon::start(settings, Some(metrics)).await?;
                out!("squad serve: listening on {}", daemon.url());
                terminated().await;
                out!("squad serve: stopping (intake closed; finishing in-flight work)");
                daemon.shutdown().await;
                out!("squad serve: stopped");
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check { config },
        } => {
            let s = load_settings(Some(&config))?;
            if let Some(tls) = &s.server.tls {
                squad::serve::check_tls_files(tls)?;
            }
            out!("{}: valid", config.display());
            out!("  server.listen          {}", s.server.listen);
            out!(
                "  server.auth            {} hashed token(s), {} plain token(s){}",
                s.server.auth.token_hashes.len(),
                s.server.auth.tokens.len(),
                if s.server.auth.any() {
                    ""
                } else {
                    " — squad serve needs at least one"
                }
            );
            out!(
                "  server.tls             {}",
                s.server.tls.as_ref().map_or_else(
                    || "(none: plain HTTP)".to_owned(),
                    |t| format!(
                        "{} (checked every {} s and on SIGHUP){}",
                        t.cert_file,
                        t.reload_seconds,
                        if t.client_ca_file.is_some() {
                            "; client certificates required"
                        } else {
                            ""
                        }
                    )
                )
            );
            out!(
                "  server.rate_limit      {}",
                if s.server.rate_limit.per_second == 0 {
                    "off".to_owned()
                } else {
                    format!(
                        "{} requests/s per token, burst {}",
                        s.server.rate_limit.per_second, s.server.rate_limit.burst
                    )
                }
            );
            out!(
                "  pagerduty.secrets      {} secret(s)",
                s.pagerduty.secrets.len()
            );
            out!(
                "  store                  {}",
                match &s.store.url {
                    Some(url) => format!("PostgreSQL at {}", squad_pgstore::redacted_url(url)),
                    None => format!("redb at {}", squad::serve::store_path(&s).display()),
                }
            );
            out!(
                "  backend                {:?} (scenario {}, data in {})",
                s.backend.kind,
                s.backend.scenario,
                s.backend.data_dir
            );
            out!(
                "  intake.group_by        {}",
                if s.intake.group_by.is_empty() {
                    "auto (Alertmanager group key, else alertname + namespace + workload)"
                        .to_owned()
                } else {
                    s.intake.group_by.join(", ")
                }
            );
            out!(
                "  prometheus.url         {}",
                s.prometheus
                    .url
                    .as_deref()
                    .unwrap_or("(none: no memory/traffic history)")
            );
            out!(
                "  alertmanager.url       {}",
                s.alertmanager.url.as_deref().map_or_else(
                    || "(none: Ralph does not read whether the alert resolved)".to_owned(),
                    |url| format!(
                        "{url} (Ralph waits up to {} min after the window for the alert to resolve)",
                        s.verification.alert_grace_minutes
                    )
                )
            );
            match s.diagnoser.kind {
                squad_config::DiagnoserKind::Native => {
                    out!("  diagnoser              native analyzers")
                }
                squad_config::DiagnoserKind::Holmes => out!(
                    "  diagnoser              {} (native analyzers cross-check and take over)",
                    squad_adapters::holmes::describe(&s.holmes)
                ),
            }
            match &s.llm {
                None => out!("  llm                    (none: the deterministic skills decide)"),
                Some(l) => {
                    let minds =
                        squad::models::minds(&s, &squad::models::LlmChoice::default(), |v| {
                            std::env::var(v).ok()
                        })?;
                    out!(
                        "  llm                    {} profile(s); budget {} calls and {} s per member, {} tokens per incident",
                        l.profiles.len(),
                        l.budget.max_calls_per_member,
                        l.budget.max_wall_seconds_per_member,
                        l.budget.max_tokens_per_incident
                    );
                    for line in squad::models::describe(&minds) {
                        out!("    {line}");
                    }
                }
            }
            for warning in edge_warnings(&config, &s)? {
                out!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            command: TokenCommand::Hash,
        } => {
            use std::io::{IsTerminal as _, Read as _};
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("token (then Enter and Ctrl-D):");
            }
            let mut text = String::new();
            stdin
                .lock()
                .read_to_string(&mut text)
                .map_err(|e| anyhow::anyhow!("stdin: expected the token as UTF-8 text ({e})"))?;
            let token = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            if token.contains(['\n', '\r']) {
                anyhow::bail!("stdin: expected one token on one line, got several lines");
            }
            if token.len() < 16 {
                anyhow::bail!(
                    "stdin: expected a token of at least 16 characters (as [server.auth] requires), got {}",
                    token.len()
                );
            }
            out!("{}", squad::serve::hash_token(token));
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "sim")]
        Command::SimCluster {
            command:
                SimClusterCommand::Serve {
                    scenario,
                    port,
                    kubeconfig,
                    out,
                    deny,
                },
        } => {
            let scenario = Scenario::load(&scenario)?;
            let ns = scenario.workload.namespace.clone();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let served = simulation::serve_cluster(
                    scenario,
                    out,
                    &ServeKube {
                        port,
                        deny,
                        keep: true,
                    },
                )
                .await?;
                let api = &served.backends.api;
                let path = match kubeconfig {
                    Some(p) => {
                        api.write_kubeconfig(&p, &ns)?;
                        p
                    }
                    None if served.is_scratch() => {
                        let p = PathBuf::from("kubeconfig");
                        api.write_kubeconfig(&p, &ns)?;
                        p
                    }
                    None => served.backends.kubeconfig.clone(),
                };
                if served.resumed {
                    let _ = writeln!(
                        std::io::stdout(),
                        "Serving the cluster as the simulation in {} left it.",
                        path.parent()
                            .map_or(".".into(), |p| p.display().to_string())
                    );
                }
                announce(&api.url(), &path, &ns, &api.prometheus_url());
                tokio::signal::ctrl_c().await?;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

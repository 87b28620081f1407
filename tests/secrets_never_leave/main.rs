//! Secrets never leave: a property test over every shipped scenario and generated variants of
//! them. Secrets of every kind the redaction gateway knows (and opaque ones only known as the
//! data of a Secret, and one only a configured pattern matches) are planted in the app's logs, an
//! Event, the container's env, a Secret's data, a ConfigMap, the app's source, the GitOps
//! repository and the alert (`plant.rs`); the whole crew runs as `squad simulate --approve`
//! does, with a model for every member and, in some cases, HolmesGPT as the diagnoser; and none
//! of the planted values may appear, in clear, base64 or URL-encoded, in any output
//! (`outputs.rs`): an issue, a comment, a PR's title or body, a line a commit of squad's added
//! (runbooks, decision records and incident reports included), the timeline and the rest of
//! `--json`, the incident's log, a request to the model or to HolmesGPT, the tracing output, and,
//! through the binary once, `squad simulate --json`'s stdout and debug log and the daemon's REST
//! API, `/metrics` and log (`processes.rs`).
//!
//! Each run draws its secrets from a seed it prints; `SQUAD_SECRETS_SEED=<n>` replays one, and
//! `SQUAD_SECRETS_CASES=<n>` sets how many generated variants run (default 8). A failure names
//! the seed, the scenario and variant, the secret's kind, where it was planted and where it
//! leaked, with the text around it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod check;
mod outputs;
mod plant;
mod processes;
mod secrets;
mod servers;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::json;
use squad::simulation::{self, SimulationOptions};
use squad_config::{
    DiagnoserKind, HolmesSettings, HolmesTransport, LlmProfile, LlmSettings, LlmToolMode, Settings,
};
use squad_runtime::Faults;
use squad_runtime::redact::base64_standard;
use squad_sim::Scenario;
use squad_testkit::variants;

use check::{Leak, Needles};
use outputs::{Outputs, Trace};
use plant::{Planting, plant};
use secrets::{CUSTOM_PATTERN, Kind, Rng, Secret};

/// Generated variants run by default (`SQUAD_SECRETS_CASES` overrides).
const DEFAULT_CASES: usize = 8;

/// The run's seed: `SQUAD_SECRETS_SEED`, else drawn from the clock; printed once.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = std::env::var("SQUAD_SECRETS_SEED")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("secrets_never_leave: seed {seed} (SQUAD_SECRETS_SEED={seed} replays it)");
        seed
    })
}

/// A generator for `what`, from the run's seed: the same seed gives every test the same draws,
/// whatever order the tests run in.
fn rng_for(what: &str) -> Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in what.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Rng::new(seed() ^ h)
}

/// Who diagnoses.
#[derive(Debug, Clone, PartialEq)]
enum Diagnoser {
    /// squad's native analyzers (`squad simulate`'s default).
    Native,
    /// A HolmesGPT server (`[holmes] transport = "server"`), played on loopback.
    HolmesServer,
    /// The real HolmesGPT CLI (its path, and kubectl's), its model scripted on loopback behind
    /// squad's redacting proxy.
    HolmesCli { holmes: PathBuf, kubectl: PathBuf },
}

/// A scenario with secrets planted, ready to run.
struct Case {
    /// `<scenario> (<variant>)`.
    label: String,
    scenario: Scenario,
    planting: Planting,
    diagnoser: Diagnoser,
}

impl Case {
    fn new(label: String, mut scenario: Scenario, rng: &mut Rng, diagnoser: Diagnoser) -> Case {
        let planting = plant(&mut scenario, rng);
        Case {
            label,
            scenario,
            planting,
            diagnoser,
        }
    }

    /// How the crew's model reads the workload with its tools.
    fn tool_args(&self) -> servers::ToolArgs {
        let s = &self.scenario;
        servers::ToolArgs {
            pod: s.workload.pods.first().cloned().unwrap_or_default(),
            manifest: s.workload.manifest.clone(),
            handler: s.app.handler.clone(),
            image: s.image.name.clone(),
        }
    }

    /// What HolmesGPT's tools show it: the pod's logs and the planted Secret as kubectl prints
    /// them.
    fn holmes_script(&self) -> servers::HolmesScript {
        let s = &self.scenario;
        let logs = if s.logs.previous.is_empty() {
            &s.logs.current
        } else {
            &s.logs.previous
        };
        let mut secret_yaml = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  namespace: {}\ndata:\n",
            plant::SECRET,
            s.workload.namespace
        );
        for (k, v) in s.secret_values.get(plant::SECRET).into_iter().flatten() {
            secret_yaml.push_str(&format!("  {k}: {}\n", base64_standard(v.as_bytes())));
        }
        servers::HolmesScript {
            root_cause: s
                .expect
                .as_ref()
                .map_or("unknown".into(), |e| e.root_cause.clone()),
            pod: s.workload.pods.first().cloned().unwrap_or_default(),
            namespace: s.workload.namespace.clone(),
            logs: logs.join("\n"),
            secret_yaml,
        }
    }
}

/// The settings of a run: a model for every member (the parrot at `model`), the pattern for
/// [`Kind::Custom`] values, and HolmesGPT's server at `holmes` as the diagnoser when given.
pub(crate) fn settings_for(model: &str, holmes: Option<&str>) -> Settings {
    let mut s = Settings {
        llm: Some(LlmSettings {
            default: Some("parrot".into()),
            profiles: [(
                "parrot".to_string(),
                LlmProfile {
                    base_url: Some(model.into()),
                    model: "parrot".into(),
                    tool_mode: LlmToolMode::Native,
                    timeout_seconds: 60,
                    max_concurrent: 4,
                    max_retries: 0,
                    ..LlmProfile::default()
                },
            )]
            .into(),
            redact_patterns: vec![CUSTOM_PATTERN.into()],
            ..LlmSettings::default()
        }),
        ..Settings::default()
    };
    if let Some(url) = holmes {
        s.diagnoser.kind = DiagnoserKind::Holmes;
        s.holmes = HolmesSettings {
            transport: HolmesTransport::Server,
            server_url: Some(url.into()),
            timeout_seconds: 60,
            ..HolmesSettings::default()
        };
    }
    s
}

/// What one case found.
struct Report {
    label: String,
    plantings: usize,
    outputs: usize,
    leaks: Vec<Leak>,
    /// Planted values found in the incident store on disk (where squad keeps what it read; not
    /// an output, reported for the record).
    at_rest: Vec<Leak>,
    /// Plantings the scenario had no place for, with why.
    skipped: Vec<String>,
    /// How the run ended otherwise than the scenario expects, or failed.
    problem: Option<String>,
}

/// Servers run on a real-time runtime of their own, as a model server would.
fn servers_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The HolmesGPT CLI and kubectl, or `None` (a failure under `CI=true`): `scripts/tools`
/// installs them.
fn holmes_cli() -> Option<Diagnoser> {
    let cache = std::env::var_os("SQUAD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cache/squad"));
    let holmes = std::env::var_os("SQUAD_HOLMES")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("holmes-venv/bin/holmes"));
    let kubectl = std::env::var_os("SQUAD_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("venv/bin/kubectl"));
    if holmes.is_file() && kubectl.is_file() {
        return Some(Diagnoser::HolmesCli { holmes, kubectl });
    }
    let why = format!(
        "no HolmesGPT at {} or no kubectl at {} (run scripts/tools)",
        holmes.display(),
        kubectl.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; CI=true, so this is a failure"
    );
    eprintln!("SKIPPED {why}");
    None
}

/// `[holmes]` for the real CLI: only its `bash` toolset (the prompt stays the same whatever
/// this machine has), kubectl first on its PATH, its model at `model` behind squad's proxy.
fn holmes_cli_settings(holmes: &Path, kubectl: &Path, model: &str, dir: &Path) -> HolmesSettings {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let config = dir.join("holmes.yaml");
    let mut yaml = "api_key: dummy\nmax_steps: 6\ntoolsets:\n".to_string();
    for t in [
        "kubernetes/core",
        "kubernetes/logs",
        "kubernetes/kube-prometheus-stack",
        "kubernetes/live-metrics",
        "core_investigation",
        "internet",
        "connectivity_check",
        "skills",
        "docker/core",
        "helm/core",
    ] {
        yaml.push_str(&format!("  {t}: {{enabled: false}}\n"));
    }
    yaml.push_str("  bash: {enabled: true}\n");
    std::fs::write(&config, yaml).unwrap();
    let path = format!(
        "{}:{}",
        kubectl.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    HolmesSettings {
        command: holmes.display().to_string(),
        model: Some("openai/test-model".into()),
        config: Some(config.display().to_string()),
        env: [
            ("HOME".to_string(), home.display().to_string()),
            ("PATH".to_string(), path),
        ]
        .into(),
        timeout_seconds: 180,
        model_api_base: Some(model.into()),
        ..HolmesSettings::default()
    }
}

/// Runs the case in process as `squad simulate --approve` does and checks every output.
fn run_case(case: &Case) -> Report {
    let trace = Trace::global();
    let from = trace.len();
    let servers = servers_runtime();
    let model = servers::start_model(&servers, case.tool_args());
    let holmes = (case.diagnoser == Diagnoser::HolmesServer)
        .then(|| servers::start_holmes(&servers, case.holmes_script()));
    let mut settings = settings_for(&model.url, holmes.as_ref().map(|h| h.url.as_str()));
    let scratch = tempfile::tempdir().unwrap();
    let holmes_model = match &case.diagnoser {
        Diagnoser::HolmesCli { holmes, kubectl } => {
            let m = servers::start_holmes_model(&servers, &case.holmes_script());
            settings.diagnoser.kind = DiagnoserKind::Holmes;
            settings.holmes = holmes_cli_settings(holmes, kubectl, &m.url, scratch.path());
            Some(m)
        }
        _ => None,
    };
    let minds = squad::models::minds(&settings, &Default::default(), |_| None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // `SQUAD_SECRETS_KEEP=<dir>`: each case's output directory is kept there, to read.
    let out = match std::env::var_os("SQUAD_SECRETS_KEEP") {
        Some(keep) => Path::new(&keep).join(case.label.replace([' ', '(', ')', ','], "_")),
        None => dir.path().join("out"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let outcome = rt.block_on(simulation::run(SimulationOptions {
        scenario: case.scenario.clone(),
        out: out.clone(),
        approve: true,
        dry_run: false,
        fresh: false,
        settings,
        faults: Faults::none(),
        abort_after_events: None,
        serve: Default::default(),
        minds,
        github: None,
    }));
    drop(rt);
    let mut report = Report {
        label: case.label.clone(),
        plantings: case.planting.planted.len(),
        outputs: 0,
        leaks: Vec::new(),
        at_rest: Vec::new(),
        skipped: case.planting.skipped.clone(),
        problem: None,
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            report.problem = Some(format!("{}: the run failed: {e:#}", case.label));
            return report;
        }
    };
    let mut o = Outputs::default();
    o.json("--json", &serde_json::to_value(&outcome.summary).unwrap());
    o.github(&outcome.github);
    let since = case.scenario.now;
    o.commits("the GitOps repository", &out.join("gitops"), since);
    o.commits("the application's repository", &out.join("app"), since);
    o.file("forge.json", &out.join("forge.json"));
    let mut store = Outputs::default();
    store.incident_log(&out.join("incidents.redb"));
    o.requests("model request", &model.bodies());
    if let Some(h) = &holmes {
        o.requests("HolmesGPT request", &h.bodies());
    }
    if let Some(m) = &holmes_model {
        o.requests("a request of HolmesGPT's to its model", &m.bodies());
        // What HolmesGPT's tools showed its model: the logs, with the planted lines.
        let shown: Vec<String> = m
            .bodies()
            .iter()
            .flat_map(|b| b["messages"].as_array().cloned().unwrap_or_default())
            .filter(|x| x["role"] == "tool")
            .map(|x| x["content"].as_str().unwrap_or_default().to_owned())
            .collect();
        if !shown.iter().any(|t| t.contains("DEBUG cache: session")) {
            report.problem = Some(format!(
                "{}: HolmesGPT's model never saw the pod's logs; its tools showed: {shown:?}",
                case.label
            ));
        }
    }
    drop(servers);
    let traced = trace.since(from);
    if !traced.contains("DEBUG") {
        report
            .problem
            .get_or_insert(format!("{}: no tracing output was captured", case.label));
    }
    o.push("the tracing output (debug)", traced);
    report.outputs = o.0.len();
    let needles = Needles::new(&case.planting.planted);
    report.leaks = needles.scan(&o.0);
    report.at_rest = needles.scan(&store.0);

    // The gateway was on the way: the model was asked, and what it read had secrets replaced.
    let wire = serde_json::to_string(&model.bodies()).unwrap();
    if model.bodies().is_empty() || !wire.contains("[REDACTED:") {
        report.problem.get_or_insert(format!(
            "{}: the model was not asked, or nothing it read was redacted",
            case.label
        ));
    }
    // Worf's scan of the repository names the file, the line and the kind of each literal
    // credential it finds (the values, the scan above shows, never).
    let review = issue_texts(&outcome.summary);
    let planted_env = case
        .planting
        .planted
        .iter()
        .any(|p| p.site == plant::ENV_SITE);
    if planted_env && review.contains("**Worf**") {
        let named = regex::Regex::new(&format!(
            r"{}[^\n]*line \d+ \([a-z_]+\)",
            regex::escape(&case.scenario.workload.manifest)
        ))
        .unwrap();
        if !named.is_match(&review) {
            report.problem.get_or_insert(format!(
                "{}: Worf's review does not name {} with the line and kind of its literal credentials",
                case.label, case.scenario.workload.manifest
            ));
        }
    }
    // HolmesGPT's answer is what the crew went on (not the native analyzers' fallback).
    if let (true, Some(d)) = (
        case.diagnoser != Diagnoser::Native,
        &outcome.summary.diagnosis,
    ) && d.source != "holmesgpt"
    {
        report.problem.get_or_insert(format!(
            "{}: HolmesGPT did not diagnose: {:?}",
            case.label, d.fallback_reason
        ));
    }
    // The planting kept the story: the run still ends as the scenario expects, so every output
    // the scenario makes was made and checked.
    let s = &outcome.summary;
    if let (Some(expect), Some(d)) = (&case.scenario.expect, &s.diagnosis) {
        let got = (
            d.root_cause.as_str(),
            !s.pull_requests.is_empty(),
            s.state.as_str(),
        );
        let want = (expect.root_cause.as_str(), expect.pr, expect.state.as_str());
        if got != want {
            report.problem.get_or_insert(format!(
                "{}: with the secrets planted the run ended {got:?}, expected {want:?}: {}",
                case.label, d.summary
            ));
        }
    }
    report
}

/// The issues' and comments' text of a run's summary, as one string.
fn issue_texts(s: &squad::summary::Summary) -> String {
    let mut out = String::new();
    for i in &s.issues {
        out.push_str(&i.body);
        for c in &i.comments {
            out.push('\n');
            out.push_str(&c.body);
        }
    }
    out
}

/// Fails with every leak and problem of `reports`, or prints what was checked.
fn conclude(what: &str, reports: &[Report], secs: f64) {
    let leaks: Vec<String> = reports
        .iter()
        .flat_map(|r| r.leaks.iter().map(move |l| format!("{}: {l}", r.label)))
        .collect();
    let problems: Vec<&String> = reports.iter().filter_map(|r| r.problem.as_ref()).collect();
    let outputs: usize = reports.iter().map(|r| r.outputs).sum();
    let plantings: usize = reports.iter().map(|r| r.plantings).sum();
    eprintln!(
        "secrets_never_leave: {what}: {} runs, {plantings} planted secrets, {outputs} outputs checked, {} leaks, in {secs:.1} s (seed {})",
        reports.len(),
        leaks.len(),
        seed()
    );
    let at_rest: Vec<String> = reports
        .iter()
        .flat_map(|r| r.at_rest.iter().map(move |l| format!("{}: {l}", r.label)))
        .collect();
    if let Ok(path) = std::env::var("SQUAD_SECRETS_REPORT") {
        let mut all = leaks.clone();
        all.extend(at_rest.iter().map(|l| format!("AT REST {l}")));
        all.extend(problems.iter().map(|p| format!("PROBLEM {p}")));
        std::fs::write(format!("{path}.{}", what.replace(' ', "-")), all.join("\n")).unwrap();
    }
    for r in reports {
        for why in &r.skipped {
            eprintln!("secrets_never_leave: {}: not planted: {why}", r.label);
        }
    }
    if !at_rest.is_empty() {
        eprintln!(
            "secrets_never_leave: {what}: {} planted values are kept in the incident store on disk (not an output: it holds what was read, as read)",
            at_rest.len()
        );
    }
    if leaks.is_empty() && problems.is_empty() {
        return;
    }
    let mut message = format!(
        "seed {} (SQUAD_SECRETS_SEED={} replays it): {} leaks, {} problems\n",
        seed(),
        seed(),
        leaks.len(),
        problems.len()
    );
    for p in &problems {
        message.push_str(&format!("PROBLEM {p}\n"));
    }
    for l in leaks.iter().take(60) {
        message.push_str(&format!("LEAK {l}\n"));
    }
    if leaks.len() > 60 {
        message.push_str(&format!("… and {} more leaks\n", leaks.len() - 60));
    }
    panic!("{message}");
}

/// The shipped scenarios to run: all, or those `SQUAD_SCENARIOS` lists (comma-separated).
fn scenario_names() -> Vec<String> {
    let only: Option<Vec<String>> = std::env::var("SQUAD_SCENARIOS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    Scenario::embedded_names()
        .into_iter()
        .filter(|n| only.as_ref().is_none_or(|o| o.contains(n)))
        .collect()
}

/// Runs `cases` on two threads (the suite's machines have two cores), each built on its thread.
fn run_all(cases: Vec<Box<dyn FnOnce() -> Case + Send>>) -> Vec<Report> {
    let cases = std::sync::Mutex::new(cases.into_iter().enumerate().collect::<Vec<_>>());
    let reports = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some((i, make)) = cases.lock().unwrap().pop() else {
                        break;
                    };
                    let report = run_case(&make());
                    reports.lock().unwrap().push((i, report));
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, r)| r).collect()
}

#[allow(clippy::disallowed_types)]
fn started() -> std::time::Instant {
    std::time::Instant::now()
}

#[test]
fn every_kind_of_planted_secret_is_one_the_gateway_knows() {
    // The test's own premise: what it plants, in the context it plants it, the redaction
    // gateway recognises (a value the gateway cannot know is not squad's leak).
    let mut rng = rng_for("kinds");
    for kind in Kind::ALL {
        let s = Secret::generate(kind, &mut rng);
        let v = &s.value;
        let text = match kind {
            Kind::AwsSecretAccessKey => format!("aws_secret_access_key={v}"),
            Kind::SlackWebhook => format!("post to https://hooks.slack.com/services/{v} now"),
            Kind::UrlPassword => format!("postgres://svc:{v}@db.internal:5432/app"),
            Kind::BearerToken => format!("Authorization: Bearer {v}"),
            Kind::BasicAuth => format!("Authorization: Basic {v}"),
            Kind::Password => format!("password={v}"),
            _ => format!("value {v} here"),
        };
        let r = squad_runtime::Redactor::new(&[CUSTOM_PATTERN.into()]).unwrap();
        r.add_secret_values([v.clone()].into_iter().filter(|_| kind == Kind::Opaque));
        let redacted = r.redact(&text);
        for needle in s.needles() {
            if kind == Kind::BasicAuth && Some(&needle) == s.inner.as_ref() {
                continue;
            }
            assert!(
                !redacted.contains(&needle),
                "{kind:?}: the gateway does not hide {needle:?} in {redacted:?}"
            );
        }
    }
}

#[test]
fn no_secret_planted_in_a_shipped_scenario_leaves() {
    let t = started();
    let cases: Vec<Box<dyn FnOnce() -> Case + Send>> = scenario_names()
        .into_iter()
        .map(|name| {
            Box::new(move || {
                let mut rng = rng_for(&format!("shipped {name}"));
                let s = Scenario::embedded(&name).unwrap();
                Case::new(format!("{name} (shipped)"), s, &mut rng, Diagnoser::Native)
            }) as Box<dyn FnOnce() -> Case + Send>
        })
        .collect();
    assert!(!cases.is_empty(), "no scenario selected");
    let reports = run_all(cases);
    conclude(
        "every shipped scenario",
        &reports,
        t.elapsed().as_secs_f64(),
    );
}

/// `n` shipped scenarios, each changed by a variant drawn at random (one that applies to it).
fn generated(n: usize, rng: &mut Rng) -> Vec<(String, Scenario)> {
    let names = scenario_names();
    let mut out = Vec::new();
    let mut tries = 0;
    while out.len() < n && tries < n * 20 {
        tries += 1;
        let name = &names[rng.below(names.len())];
        let variant = variants::ALL[rng.below(variants::ALL.len())];
        let shipped = Scenario::embedded(name).unwrap();
        let files = variants::files_of(name).unwrap();
        let Some(files) = (variant.change)(&shipped, files).unwrap() else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let written = variants::write(&files, &dir.path().join("scenario")).unwrap();
        let s = Scenario::from_dir(&written)
            .unwrap_or_else(|e| panic!("{name} ({}): does not load: {e}", variant.name));
        out.push((format!("{name} ({})", variant.name), s));
    }
    out
}

#[test]
fn no_secret_planted_in_a_generated_variant_leaves() {
    let t = started();
    let n = std::env::var("SQUAD_SECRETS_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let mut rng = rng_for("variants");
    let cases: Vec<Box<dyn FnOnce() -> Case + Send>> = generated(n, &mut rng)
        .into_iter()
        .enumerate()
        .map(|(i, (label, s))| {
            let mut rng = rng.fork();
            // Every other case is diagnosed by HolmesGPT.
            let (label, diagnoser) = if i % 2 == 1 {
                (
                    format!("{label}, HolmesGPT diagnosing"),
                    Diagnoser::HolmesServer,
                )
            } else {
                (label, Diagnoser::Native)
            };
            Box::new(move || Case::new(label, s, &mut rng, diagnoser))
                as Box<dyn FnOnce() -> Case + Send>
        })
        .collect();
    let reports = run_all(cases);
    conclude("generated variants", &reports, t.elapsed().as_secs_f64());
}

#[test]
fn no_secret_leaves_through_the_binary_its_log_or_the_daemon() {
    let t = started();
    let mut rng = rng_for("processes");
    let names = scenario_names();
    let name = names[rng.below(names.len())].clone();
    let case = Case::new(
        format!("{name} (squad simulate --json)"),
        Scenario::embedded(&name).unwrap(),
        &mut rng,
        Diagnoser::HolmesServer,
    );
    let mut reports = vec![processes::simulate_cli(&case)];
    // The daemon runs the canonical incident: its alert, its PR, its metrics.
    let daemon = Case::new(
        "oomkilled (squad serve)".into(),
        Scenario::embedded("oomkilled").unwrap(),
        &mut rng,
        Diagnoser::Native,
    );
    reports.push(processes::serve(&daemon));
    conclude(
        "the binary and the daemon",
        &reports,
        t.elapsed().as_secs_f64(),
    );
}

#[test]
fn no_secret_reaches_holmesgpts_model_through_its_cli() {
    // The real HolmesGPT reads the pod's logs and the planted Secret with kubectl; squad's
    // proxy stands between it and its model.
    let Some(diagnoser) = holmes_cli() else {
        return;
    };
    let t = started();
    let mut rng = rng_for("holmesgpt cli");
    let names: Vec<String> = scenario_names()
        .into_iter()
        .filter(|n| {
            let s = Scenario::embedded(n).unwrap();
            !s.logs.previous.is_empty() && s.expect.as_ref().is_some_and(|e| e.pr)
        })
        .collect();
    let Some(name) = names.get(rng.below(names.len().max(1))).cloned() else {
        return;
    };
    let case = Case::new(
        format!("{name} (HolmesGPT's CLI diagnosing)"),
        Scenario::embedded(&name).unwrap(),
        &mut rng,
        diagnoser,
    );
    let reports = vec![run_case(&case)];
    conclude("HolmesGPT's CLI", &reports, t.elapsed().as_secs_f64());
}

/// A scenario's directory written out (`scenario.toml` from the planted model) for the binary.
fn write_scenario(s: &Scenario, dir: &Path) {
    let mut files = s.files.clone();
    files.insert("scenario.toml".into(), toml::to_string(s).unwrap());
    variants::write(&files, dir).unwrap();
}

/// The parrot's `[llm]` section and, when given, HolmesGPT's server, as squad.toml says them.
fn config_toml(model: &str, holmes: Option<&str>) -> String {
    let mut t = format!(
        "[llm]\ndefault = \"parrot\"\nredact_patterns = [{}]\n[llm.profiles.parrot]\nbase_url = \"{model}\"\nmodel = \"parrot\"\ntool_mode = \"native\"\nmax_retries = 0\n",
        json!(CUSTOM_PATTERN)
    );
    if let Some(url) = holmes {
        t.push_str(&format!(
            "[diagnoser]\nkind = \"holmes\"\n[holmes]\ntransport = \"server\"\nserver_url = \"{url}\"\ntimeout_seconds = 60\n"
        ));
    }
    t
}

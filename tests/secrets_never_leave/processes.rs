//! The binary, once each way: `squad simulate --approve --json` on a planted scenario directory
//! (its stdout, its debug log on stderr, what it wrote), and `squad serve` on one (its REST API,
//! `/metrics` and debug log after an alert has run through the crew).

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::check::Needles;
use crate::outputs::Outputs;
use crate::{Case, Diagnoser, Report, config_toml, servers, servers_runtime, write_scenario};

/// The daemon's API token in the tests.
const TOKEN: &str = "secrets-test-token-0123456789";

/// Checks `o` and says what the case found; `problem` when the process did not do its part.
fn report(case: &Case, o: &Outputs, store: &Outputs, problem: Option<String>) -> Report {
    let needles = Needles::new(&case.planting.planted);
    Report {
        label: case.label.clone(),
        plantings: case.planting.planted.len(),
        outputs: o.0.len(),
        leaks: needles.scan(&o.0),
        at_rest: needles.scan(&store.0),
        skipped: case.planting.skipped.clone(),
        problem,
    }
}

/// The GitHub requests a `squad` process logged to `dir` (`SQUAD_GITHUB_REQUEST_LOG_DIR`).
fn logged_github_requests(dir: &Path) -> Vec<squad_sim::github_api::Recorded> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            out.push(squad_sim::github_api::Recorded {
                method: v["method"].as_str().unwrap_or_default().to_owned(),
                path: v["path"].as_str().unwrap_or_default().to_owned(),
                body: v["body"].clone(),
            });
        }
    }
    out
}

/// `squad simulate <dir> --approve --json` with the parrot (and HolmesGPT) configured and the
/// debug log on.
pub fn simulate_cli(case: &Case) -> Report {
    let servers = servers_runtime();
    let model = servers::start_model(&servers, case.tool_args());
    let holmes = (case.diagnoser == Diagnoser::HolmesServer)
        .then(|| servers::start_holmes(&servers, case.holmes_script()));
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario");
    write_scenario(&case.scenario, &scenario);
    let config = dir.path().join("squad.toml");
    std::fs::write(
        &config,
        config_toml(&model.url, holmes.as_ref().map(|h| h.url.as_str())),
    )
    .unwrap();
    let requests = dir.path().join("github-requests");
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_squad"))
        .arg("simulate")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .args(["--approve", "--json", "--config"])
        .arg(&config)
        .env("SQUAD_LOG", "debug")
        .env("SQUAD_GITHUB_REQUEST_LOG_DIR", &requests)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    let mut o = Outputs::default();
    match serde_json::from_str::<Value>(&stdout) {
        Ok(v) => o.json("squad simulate --json (stdout)", &v),
        Err(_) => o.push("squad simulate --json (stdout)", stdout.clone()),
    }
    o.push(
        "squad simulate's log (stderr, SQUAD_LOG=debug)",
        stderr.clone(),
    );
    o.github(&logged_github_requests(&requests));
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
    let mut problem = (!run.status.success()).then(|| {
        format!(
            "{}: squad simulate exited with {}: {}",
            case.label,
            run.status,
            stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        )
    });
    if !stderr.contains("DEBUG") {
        problem.get_or_insert(format!("{}: no debug log on stderr", case.label));
    }
    report(case, &o, &store, problem)
}

/// The daemon, killed when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `squad serve` on the planted scenario: the scenario's alert posted as Alertmanager sends it,
/// the crew run to its PR (or its end), then the REST API, `/metrics` and the debug log read.
pub fn serve(case: &Case) -> Report {
    let servers = servers_runtime();
    let model = servers::start_model(&servers, case.tool_args());
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario");
    write_scenario(&case.scenario, &scenario);
    let data = dir.path().join("data");
    let config = dir.path().join("squad.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.auth]\ntokens = [\"{TOKEN}\"]\n[backend]\nkind = \"simulation\"\nscenario = \"{}\"\ndata_dir = \"{}\"\n{}",
            scenario.display(),
            data.display(),
            config_toml(&model.url, None)
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let since = Utc::now() - chrono::Duration::seconds(5);
    let mut child = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("SQUAD_LOG", "debug")
        .env_remove("SQUAD_SERVER_TOKENS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let daemon = Daemon(child);
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(u) = line.trim().strip_prefix("squad serve: listening on ") {
                    break u.to_owned();
                }
            }
            _ => {
                drop(daemon);
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("squad serve did not start: {text}");
            }
        }
    };
    std::thread::spawn(move || for _ in lines {});

    let alert = case.scenario.alert();
    let mut labels = alert.labels.clone();
    labels.insert("alertname".into(), alert.name.clone());
    let body = json!({
        "receiver": "squad", "status": "firing", "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", alert.name),
        "alerts": [{"status": "firing", "labels": labels, "annotations": alert.annotations,
                    "startsAt": Utc::now().to_rfc3339(), "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": "5ec7e75ecre75000"}]
    });
    squad_adapters::tls::install_crypto_provider();
    let http = servers.block_on(async { reqwest::Client::new() });
    let call = |method: reqwest::Method, path: &str, body: Option<&Value>| -> (u16, String) {
        servers.block_on(async {
            let mut r = http
                .request(method, format!("{url}{path}"))
                .bearer_auth(TOKEN);
            if let Some(b) = body {
                r = r.json(b);
            }
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    };
    let (code, text) = call(
        reqwest::Method::POST,
        "/v1/alerts/alertmanager",
        Some(&body),
    );
    assert_eq!(code, 202, "the daemon refused the alert: {text}");
    let mut problem = None;
    let mut id = String::new();
    for i in 0..600 {
        let (_, text) = call(reqwest::Method::GET, "/v1/incidents", None);
        let list: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let first = &list["incidents"][0];
        let state = first["state"].as_str().unwrap_or_default();
        if matches!(state, "awaiting_approval" | "resolved" | "escalated") {
            id = first["id"].as_str().unwrap_or_default().to_owned();
            break;
        }
        if i == 599 {
            problem = Some(format!(
                "{}: the incident did not settle: {text}",
                case.label
            ));
        }
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut o = Outputs::default();
    for path in [
        "/v1/incidents".to_owned(),
        format!("/v1/incidents/{id}"),
        "/metrics".to_owned(),
    ] {
        let (code, text) = call(reqwest::Method::GET, &path, None);
        if code != 200 {
            problem.get_or_insert(format!(
                "{}: GET {path} answered {code}: {text}",
                case.label
            ));
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => o.json(&format!("the daemon's GET {path}"), &v),
            Err(_) => o.push(format!("the daemon's GET {path}"), text),
        }
    }
    drop(daemon);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    if !logged.contains("DEBUG") {
        problem.get_or_insert(format!("{}: no debug log from the daemon", case.label));
    }
    o.push("the daemon's log (stderr, SQUAD_LOG=debug)", logged);
    let sim = data.join("sim");
    o.commits("the GitOps repository", &sim.join("gitops"), since);
    o.commits("the application's repository", &sim.join("app"), since);
    o.file("forge.json", &sim.join("forge.json"));
    let mut store = Outputs::default();
    store.incident_log(&data.join("incidents.redb"));
    o.requests("model request", &model.bodies());
    report(case, &o, &store, problem)
}

//! The `squad` binary as a user runs it: bad input, dry runs, the JSON summary, and a process
//! killed at every point of an incident and resumed without doing anything twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn squad(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_squad"));
    c.args(args).env_remove("SQUAD_FAULT_ABORT_AFTER_EVENTS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn scenarios_list_names_every_scenario_with_its_description_in_one_column() {
    let out = squad(&["scenarios", "list"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let names = squad_sim::Scenario::embedded_names();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), names.len(), "{text}");
    let column = names.iter().map(String::len).max().unwrap() + 2;
    for (line, name) in lines.iter().zip(&names) {
        let description = squad_sim::Scenario::embedded(name).unwrap().description;
        assert_eq!(*line, format!("{name:<column$}{description}"), "{text}");
    }
}

#[test]
fn unknown_scenario_is_a_clear_error() {
    let out = squad(&["simulate", "nope", "--dry-run"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown scenario \"nope\"") && err.contains("oomkilled"),
        "{err}"
    );
}

#[test]
fn malformed_scenario_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("scenario.toml"),
        "name = \"x\"\ndescription = 3\n",
    )
    .unwrap();
    let out = squad(
        &["simulate", dir.path().to_str().unwrap(), "--dry-run"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scenario.toml") && err.contains("description"),
        "{err}"
    );
}

#[test]
fn dry_run_prints_the_crew_plan_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = squad(
        &[
            "simulate",
            "oomkilled",
            "--dry-run",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nothing was written"), "{text}");
    assert!(
        text.contains(
            "open PR \"fix(infra): increase payment-service memory limits (OOM incident)\""
        ),
        "{text}"
    );
    assert!(
        text.contains("file issue \"[Incident] OOMKilled: payment-service (production)\""),
        "{text}"
    );
    assert!(!out_dir.exists(), "a dry run must not create --out");
}

#[test]
fn json_summary_has_the_stable_fields() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(&squad(
        &[
            "simulate",
            "oomkilled",
            "--json",
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ],
        &[],
    ));
    for field in [
        "incident",
        "scenario",
        "state",
        "repo",
        "issues",
        "pull_requests",
        "timeline",
        "diagnosis",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert_eq!(v["scenario"], "oomkilled");
    assert_eq!(v["state"], "awaiting_approval");
    assert_eq!(v["pull_requests"][0]["base"], "main");
    assert_eq!(v["diagnosis"]["source"], "native");
    let t = &v["timeline"][0];
    assert!(chrono::DateTime::parse_from_rfc3339(t["at"].as_str().unwrap()).is_ok());
    assert_eq!(t["actor"], "picard");
    assert!(Path::new(v["repo"].as_str().unwrap()).join(".git").exists());
}

/// Kills the process (abort, as `kill -9`) right after each stored event in turn, then resumes:
/// whatever the point, the incident completes with exactly one of each artifact.
#[test]
fn killed_at_any_event_the_incident_resumes_without_repeating_an_action() {
    let dir = tempfile::tempdir().unwrap();
    // How many events a clean run stores.
    let clean = json(&squad(
        &[
            "simulate",
            "oomkilled",
            "--json",
            "--approve",
            "--out",
            dir.path().join("clean").to_str().unwrap(),
        ],
        &[],
    ));
    let total = clean["timeline"].as_array().unwrap().len();
    assert!(total > 30, "{total}");
    // Two at a time: each kill point is its own simulation directory.
    std::thread::scope(|scope| {
        for lane in 0..2 {
            let dir = dir.path();
            scope.spawn(move || {
                for n in (1..total).filter(|n| n % 2 == lane) {
                    killed_after(dir, n, total);
                }
            });
        }
    });
}

/// Kills the oomkilled simulation in `dir` after its `n`th event of `total`, runs it again, and
/// checks it resolved with every action taken once.
fn killed_after(dir: &std::path::Path, n: usize, total: usize) {
    let out = dir.join(format!("kill-{n}"));
    let o = out.to_str().unwrap();
    let killed = squad(
        &["simulate", "oomkilled", "--approve", "--out", o],
        &[("SQUAD_FAULT_ABORT_AFTER_EVENTS", &n.to_string())],
    );
    assert!(
        !killed.status.success() || n >= total,
        "run {n} was not killed"
    );
    let v = json(&squad(
        &["simulate", "oomkilled", "--json", "--approve", "--out", o],
        &[],
    ));
    assert_eq!(v["state"], "resolved", "killed after event {n}");
    let issues = v["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 3, "killed after event {n}: {issues:#?}");
    assert_eq!(
        v["pull_requests"].as_array().unwrap().len(),
        1,
        "killed after event {n}"
    );
    for c in ["belanna", "worf", "data", "scribe", "ralph"] {
        let count = issues[0]["comments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["author"] == c)
            .count();
        assert_eq!(
            count, 1,
            "killed after event {n}: {c} commented {count} times"
        );
    }
    let repo = git2::Repository::open(out.join("gitops")).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_ref("refs/heads/main").unwrap();
    let scribe_commits = walk
        .filter(|oid| {
            repo.find_commit(*oid.as_ref().unwrap())
                .unwrap()
                .message()
                .unwrap_or("")
                .starts_with("docs(squad): record incident")
        })
        .count();
    assert_eq!(scribe_commits, 1, "killed after event {n}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// A `squad sim-cluster serve` process, killed on drop.
struct Served {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(scenario: &str, extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sim");
        let child = Command::new(env!("CARGO_BIN_EXE_squad"))
            .args(["sim-cluster", "serve", scenario, "--out"])
            .arg(&out)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut served = Served { child, dir };
        // The kubeconfig is written once the server listens; its first line tells the URL.
        let mut reader = std::io::BufReader::new(served.child.stdout.take().unwrap());
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0 {
            if line.contains("is served at") {
                break;
            }
            line.clear();
        }
        assert!(
            line.contains("is served at"),
            "sim-cluster serve did not start"
        );
        served
    }

    fn kubeconfig(&self) -> std::path::PathBuf {
        self.dir.path().join("sim").join("kubeconfig")
    }

    fn url(&self) -> String {
        let text = std::fs::read_to_string(self.kubeconfig()).unwrap();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap()
            .to_owned()
    }
}

#[test]
fn diagnose_reads_a_served_cluster_over_the_kubernetes_and_prometheus_apis() {
    let s = Served::start("oomkilled", &[]);
    let kc = s.kubeconfig();
    let prom = format!("{}/prometheus", s.url());
    let out = squad(
        &[
            "diagnose",
            "production/payment-service-7d4b9c-xk2p",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--prometheus",
            &prom,
            "--json",
        ],
        &[],
    );
    let d = json(&out);
    assert_eq!(d["root_cause"], "memory_under_provisioned", "{d}");
    assert!(d["summary"].as_str().unwrap().contains("+338%"), "{d}");

    // Without Prometheus the diagnosis still comes, and says what it could not read.
    let out = squad(
        &[
            "diagnose",
            "production/payment-service-7d4b9c-xk2p",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("memory history unavailable") && text.contains("no Prometheus is configured"),
        "{text}"
    );
}

#[test]
fn diagnose_with_logs_forbidden_notes_it_and_still_concludes() {
    let s = Served::start("crashloop", &["--deny", "pods/log"]);
    let scenario = squad_sim::Scenario::embedded("crashloop").unwrap();
    // No namespace: the served kubeconfig's context selects the scenario's.
    let pod = scenario.workload.pods[0].clone();
    let kc = s.kubeconfig();
    let out = squad(
        &["diagnose", &pod, "--kubeconfig", kc.to_str().unwrap()],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("root cause: crash_loop"), "{text}");
    assert!(
        text.contains("container logs not readable") && text.contains("forbidden"),
        "{text}"
    );
}

#[test]
fn diagnose_bad_input_and_an_unreachable_cluster_are_clear_errors() {
    for bad in ["a/b/c", "/p", "ns/", "", "ns/deployment/", "a/b/c/d"] {
        let out = squad(&["diagnose", bad], &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "expected <namespace>/<pod>, <pod>, <namespace>/<kind>/<name> or <kind>/<name>"
            ),
            "{bad}: {err}"
        );
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n")).unwrap();
    let out = squad(
        &[
            "diagnose",
            "production/p",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the API server") && err.contains(&port.to_string()),
        "{err}"
    );
    // A context the kubeconfig does not have is named.
    let out = squad(
        &[
            "diagnose",
            "production/p",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--context",
            "prod-eu",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && err.contains("prod-eu"),
        "{err}"
    );
}

#[test]
fn simulate_serve_kube_keeps_the_resolved_cluster_up_for_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let mut child = Command::new(env!("CARGO_BIN_EXE_squad"))
        .args([
            "simulate",
            "oomkilled",
            "--approve",
            "--serve-kube",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("is served at") {
            break;
        }
        line.clear();
    }
    let kubectl = std::env::var_os("SQUAD_KUBECTL").unwrap_or_else(|| "kubectl".into());
    let got = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(out.join("kubeconfig"))
        .arg("--cache-dir")
        .arg(out.join("kubectl-cache"))
        .args(["get", "hpa,pods", "-n", "production"])
        .output();
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("is RESOLVED"), "{seen}");
    let got = got.unwrap();
    let text = String::from_utf8_lossy(&got.stdout);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(
        text.contains("horizontalpodautoscaler.autoscaling/payment-service")
            && text.contains("1/1     Running"),
        "{text}"
    );
}

#[test]
fn model_options_are_checked_and_config_check_says_who_thinks_with_what() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let err = |args: &[&str], env: &[(&str, &str)]| {
        let o = squad(args, env);
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = err(
        &["simulate", "oomkilled", "--out", out, "--llm", "cloud"],
        &[],
    );
    assert!(
        e.contains("--llm cloud") && e.contains("no [llm] section"),
        "{e}"
    );
    let e = err(
        &[
            "simulate",
            "oomkilled",
            "--out",
            out,
            "--llm-base-url",
            "http://127.0.0.1:9/v1",
        ],
        &[],
    );
    assert!(e.contains("--llm-model"), "{e}");
    let e = err(
        &[
            "simulate",
            "oomkilled",
            "--out",
            out,
            "--llm-base-url",
            "https://api.openai.com/v1",
            "--llm-model",
            "gpt-4.1-mini",
        ],
        &[("OPENAI_API_KEY", "")],
    );
    assert!(e.contains("OPENAI_API_KEY"), "{e}");
    let config = dir.path().join("squad.toml");
    std::fs::write(
        &config,
        "[llm]\ndefault = \"local\"\n[llm.profiles.local]\nbase_url = \"http://127.0.0.1:8081/v1\"\nmodel = \"smollm2\"\n[llm.profiles.cloud]\nprovider = \"openai\"\nmodel = \"gpt-4.1-mini\"\n[llm.members]\npicard = \"cloud\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // The cloud profile needs its key: config check says which variable.
    let e = err(
        &["config", "check", "--config", config],
        &[("OPENAI_API_KEY", "")],
    );
    assert!(e.contains("OPENAI_API_KEY"), "{e}");
    let o = squad(
        &["config", "check", "--config", config],
        &[("OPENAI_API_KEY", "sk-test-not-a-real-key-000000")],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.contains("Picard    cloud/gpt-4.1-mini at https://api.openai.com/v1/chat/completions"),
        "{text}"
    );
    assert!(
        text.contains("Scribe    local/smollm2 at http://127.0.0.1:8081/v1/chat/completions"),
        "{text}"
    );
    assert!(!text.contains("sk-test-not-a-real-key"), "{text}");
}

#[test]
fn holmes_as_diagnoser_falls_back_to_the_native_analyzers_when_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("squad.toml");
    std::fs::write(
        &config,
        "[diagnoser]\nkind = \"holmes\"\n[holmes]\ncommand = \"/nonexistent/holmes\"\nmodel = \"openai/gpt-4.1-mini\"\ntimeout_seconds = 60\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = dir.path().join("out");
    let s = json(&squad(
        &[
            "simulate",
            "oomkilled",
            "--json",
            "--config",
            config,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    let d = &s["diagnosis"];
    assert_eq!(d["source"], "native");
    let reason = d["fallback_reason"].as_str().unwrap();
    assert!(
        reason.contains("cannot start HolmesGPT (/nonexistent/holmes")
            && reason.contains("install holmesgpt==0.45.0"),
        "{reason}"
    );
    assert_eq!(s["state"], "awaiting_approval");
    assert!(
        s["issues"][0]["body"]
            .as_str()
            .unwrap()
            .contains("the native analyzers took over")
    );
    // --diagnoser native overrides the file: no HolmesGPT, no fallback.
    let out2 = dir.path().join("out2");
    let s = json(&squad(
        &[
            "simulate",
            "oomkilled",
            "--json",
            "--config",
            config,
            "--diagnoser",
            "native",
            "--out",
            out2.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(
        s["diagnosis"].get("fallback_reason").is_none(),
        "{}",
        s["diagnosis"]
    );
    let check = squad(&["config", "check", "--config", config], &[]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.contains("diagnoser              HolmesGPT CLI `/nonexistent/holmes` --model openai/gpt-4.1-mini, timeout 60 s, 2 at once"),
        "{text}"
    );
    // A key in the file is refused, naming the field.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[holmes]\nenv = { OPENAI_API_KEY = \"sk-live-oops\" }\n",
    )
    .unwrap();
    let bad = squad(
        &[
            "config",
            "check",
            "--config",
            dir.path().join("bad.toml").to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("holmes.env.OPENAI_API_KEY"),
        "{err}"
    );
    assert!(!err.contains("sk-live-oops"), "{err}");
    let bad = std::fs::write(
        dir.path().join("bad2.toml"),
        "[holmes]\ntransport = \"server\"\n",
    );
    bad.unwrap();
    let bad = squad(
        &[
            "config",
            "check",
            "--config",
            dir.path().join("bad2.toml").to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("holmes.server_url"), "{err}");
}

/// `squad diagnose` on the workload of every shipped scenario, served over the Kubernetes API
/// (addressed as `<namespace>/<kind>/<name>`: a quota refusal leaves no pod to name): the
/// native analyzers name the scenario's family from what the API says, and, for the families
/// that read history (memory, CPU, volume usage), from the served Prometheus API too.
#[test]
fn diagnose_names_every_shipped_scenarios_family_over_the_apis() {
    // Two at a time: each serves its cluster from a process of its own, and most of the time
    // goes to the served model computing a day of history.
    let names = squad_sim::Scenario::embedded_names();
    let halves: Vec<(Vec<String>, Vec<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|k| {
                let mine: Vec<String> = names.iter().skip(k).step_by(2).cloned().collect();
                scope.spawn(move || diagnose_each(&mine))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let (wrong, with_history): (Vec<String>, Vec<String>) =
        halves
            .into_iter()
            .fold((Vec::new(), Vec::new()), |(mut w, mut h), (a, b)| {
                w.extend(a);
                h.extend(b);
                (w, h)
            });
    eprintln!("diagnosed with Prometheus' history: {with_history:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The families that need history do need it (else this test would not exercise it).
    assert!(
        ["oomkilled", "cpu-throttling", "volume-full"]
            .iter()
            .all(|n| with_history.iter().any(|w| w == n)),
        "{with_history:?}"
    );
}

/// `squad diagnose` on each scenario's workload: the wrong answers, and the scenarios that
/// needed Prometheus' history to be right.
fn diagnose_each(names: &[String]) -> (Vec<String>, Vec<String>) {
    let mut wrong = Vec::new();
    let mut with_history = Vec::new();
    for name in names {
        let scenario = squad_sim::Scenario::embedded(name).unwrap();
        let Some(expect) = scenario.expect.as_ref() else {
            continue;
        };
        let s = Served::start(name, &[]);
        let kc = s.kubeconfig();
        let prom = format!("{}/prometheus", s.url());
        let target = format!(
            "{}/{}/{}",
            scenario.workload.namespace,
            scenario.workload.kind.to_lowercase(),
            scenario.workload.name
        );
        let mut args = vec![
            "diagnose",
            target.as_str(),
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--json",
        ];
        let mut d = json(&squad(&args, &[]));
        // The history is slow to serve from the model: asked for only where it decides.
        if d["root_cause"] != expect.root_cause.as_str() {
            args.extend(["--prometheus", prom.as_str()]);
            d = json(&squad(&args, &[]));
            with_history.push(name.clone());
        }
        if d["root_cause"] != expect.root_cause.as_str() {
            wrong.push(format!(
                "{name}: {} ({}), expected {}",
                d["root_cause"], d["summary"], expect.root_cause
            ));
        }
    }
    (wrong, with_history)
}

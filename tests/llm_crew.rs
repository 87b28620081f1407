//! The whole crew on the LLM path, over real HTTP on loopback:
//! - replayed from a cassette recorded from a real model (SmolLM2-135M under llama.cpp), so a
//!   prompt change shows up as a cassette miss with a diff (`SQUAD_RECORD_CASSETTES=1` re-records
//!   against a freshly started llama.cpp server; review the diff of `tests/cassettes/`);
//! - against a scripted model server that calls tools and answers well and badly on purpose:
//!   the tools run and their results go back, a good answer changes what the crew writes, a bad
//!   one is rejected, corrected once, then replaced by the deterministic skill, and budgets hold;
//! - with secrets planted in logs, env, events and Secret values across the scenario: none of
//!   them reaches the model server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use squad::simulation::{self, SimulationOptions};
use squad::summary::Summary;
use squad_config::{LlmBudget, LlmProfile, LlmSettings, LlmToolMode, Settings};
use squad_runtime::{Faults, Minds};
use squad_sim::Scenario;
use squad_sim::llm_cassette::{CassetteServer, Mode};
use squad_testkit::llama;

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Servers run on a real-time runtime of their own, as a model server would.
fn servers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn minds(base_url: &str, model: &str, mode: LlmToolMode, budget: LlmBudget) -> Arc<Minds> {
    minds_with(
        base_url,
        model,
        mode,
        budget,
        LlmProfile::default().max_answer_tokens,
    )
}

fn minds_with(
    base_url: &str,
    model: &str,
    mode: LlmToolMode,
    budget: LlmBudget,
    max_answer_tokens: u32,
) -> Arc<Minds> {
    let llm = LlmSettings {
        default: Some("test".into()),
        profiles: [(
            "test".to_string(),
            LlmProfile {
                base_url: Some(base_url.into()),
                model: model.into(),
                tool_mode: mode,
                timeout_seconds: 300,
                max_concurrent: 1,
                max_retries: 0,
                prompt_usd_per_million: Some(0.15),
                completion_usd_per_million: Some(0.6),
                max_answer_tokens,
                ..LlmProfile::default()
            },
        )]
        .into(),
        budget,
        ..LlmSettings::default()
    };
    Arc::new(squad_adapters::llm::minds_from_settings(&llm, |_| None).unwrap())
}

fn run(scenario: Scenario, out: &Path, minds: Arc<Minds>, approve: bool) -> Summary {
    paused()
        .block_on(simulation::run(SimulationOptions {
            scenario,
            out: out.to_path_buf(),
            approve,
            dry_run: false,
            fresh: false,
            settings: Settings::default(),
            faults: Faults::none(),
            abort_after_events: None,
            serve: Default::default(),
            minds,
            github: None,
        }))
        .unwrap()
        .summary
}

/// Runs the scenario to the end as a human who approves would: once to the PR, then merged.
fn run_approved(scenario: Scenario, out: &Path, minds: Arc<Minds>) -> Summary {
    run(scenario.clone(), out, minds.clone(), false);
    run(scenario, out, minds, true)
}

fn deliberations(s: &Summary) -> Vec<(String, String)> {
    s.timeline
        .iter()
        .filter(|t| t.event.contains("'s model "))
        .map(|t| (t.actor.clone(), t.event.clone()))
        .collect()
}

const MEMBERS: [&str; 6] = ["picard", "belanna", "worf", "data", "scribe", "ralph"];

fn cassette_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cassettes/oomkilled-crew")
}

#[test]
fn the_whole_crew_runs_oomkilled_on_a_recorded_real_model() {
    let record = std::env::var("SQUAD_RECORD_CASSETTES").as_deref() == Ok("1");
    let srv = servers();
    let llama = if record {
        assert!(
            llama::available_or_skip("recording").unwrap(),
            "no llama.cpp server to record from"
        );
        let _ = std::fs::remove_dir_all(cassette_dir());
        Some(srv.block_on(llama::RealLlama::start()).unwrap())
    } else {
        None
    };
    let mode = match &llama {
        Some(l) => Mode::Record {
            upstream: l.base_url(),
            api_key: None,
        },
        None => Mode::Replay,
    };
    let cassette = srv
        .block_on(CassetteServer::start(cassette_dir(), mode))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = run_approved(
        Scenario::embedded("oomkilled").unwrap(),
        dir.path(),
        minds(
            &cassette.url(),
            llama::MODEL,
            LlmToolMode::JsonSchema,
            LlmBudget::default(),
        ),
    );
    let misses = cassette.misses();
    assert!(
        misses.is_empty(),
        "{} request(s) not in the cassette (a prompt changed? re-record with SQUAD_RECORD_CASSETTES=1 and review the diff):\n{}",
        misses.len(),
        misses
            .iter()
            .map(|m| m.message.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    // The incident completes on the LLM path, with every member's deliberation on record.
    assert_eq!(s.state, "resolved", "{:#?}", s.timeline);
    let d = deliberations(&s);
    for m in MEMBERS {
        assert!(
            d.iter().any(|(actor, _)| actor == m),
            "{m} did not deliberate: {d:#?}"
        );
        assert!(s.llm_usage[m].calls >= 1, "{m}: {:?}", s.llm_usage[m]);
    }
    // Usage on the incident is what the model server reported, call for call.
    let requests = cassette.requests();
    let recorded: Vec<Value> = std::fs::read_dir(cassette_dir())
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    let usage_of = |req: &Value| {
        recorded
            .iter()
            .find(|x| squad_sim::llm_cassette::same_request(&x["request"], req))
            .map(|x| {
                (
                    x["response"]["usage"]["prompt_tokens"].as_u64().unwrap(),
                    x["response"]["usage"]["completion_tokens"]
                        .as_u64()
                        .unwrap(),
                )
            })
            .expect("every request was answered from the cassette")
    };
    let (prompt, completion) = requests
        .iter()
        .map(usage_of)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let calls: u64 = s.llm_usage.values().map(|u| u.calls).sum();
    assert_eq!(calls, requests.len() as u64);
    assert_eq!(
        s.llm_usage.values().map(|u| u.prompt_tokens).sum::<u64>(),
        prompt
    );
    assert_eq!(
        s.llm_usage
            .values()
            .map(|u| u.completion_tokens)
            .sum::<u64>(),
        completion
    );
    // Every answer used left its mark in what the crew wrote; every one not used says why.
    let fallbacks: u64 = s.llm_usage.values().map(|u| u.fallbacks).sum();
    let rejected = d.iter().filter(|(_, e)| e.contains("was not used")).count() as u64;
    assert_eq!(fallbacks, rejected, "{d:#?}");
    let written: String = s
        .issues
        .iter()
        .flat_map(|i| {
            std::iter::once(i.body.clone()).chain(i.comments.iter().map(|c| c.body.clone()))
        })
        .chain(s.pull_requests.iter().map(|p| p.body.clone()))
        .collect();
    let accepted = d
        .iter()
        .filter(|(_, e)| e.contains("its answer was used"))
        .count();
    assert!(
        written.matches("with test/").count() >= accepted.min(1),
        "no trace of the model's answers in the artifacts"
    );
    for (m, u) in &s.llm_usage {
        println!(
            "{m:<8} calls {:>2}  prompt {:>6}  completion {:>5}  fallbacks {}",
            u.calls, u.prompt_tokens, u.completion_tokens, u.fallbacks
        );
    }
    if record {
        println!(
            "recorded {} exchange(s) in {}",
            cassette.stats().recorded,
            cassette_dir().display()
        );
    }
}

/// What the scripted model answers, per member: a list of steps, taken one per call.
#[derive(Clone)]
enum Step {
    Tool(&'static str, Value),
    Final(Value),
}

struct Script {
    steps: std::collections::HashMap<&'static str, Vec<Step>>,
    received: Mutex<Vec<Value>>,
}

/// The member a request is from: its response schema is named `<member>_answer`.
fn member_of(body: &Value) -> String {
    body["response_format"]["json_schema"]["name"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches("_answer")
        .to_string()
}

async fn scripted(State(script): State<Arc<Script>>, Json(body): Json<Value>) -> Json<Value> {
    script.received.lock().unwrap().push(body.clone());
    let member = member_of(&body);
    // Each assistant turn so far is one step taken.
    let taken = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .count();
    let steps = script
        .steps
        .get(member.as_str())
        .cloned()
        .unwrap_or_default();
    let step = steps.get(taken).or(steps.last()).cloned();
    let prompt_tokens = body.to_string().len() as u64 / 4;
    let (message, finish) = match step {
        Some(Step::Tool(name, args)) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_{member}_{taken}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]}),
            "tool_calls",
        ),
        Some(Step::Final(answer)) => (
            json!({"role": "assistant", "content": answer.to_string()}),
            "stop",
        ),
        None => (
            json!({"role": "assistant", "content": "I have no idea."}),
            "stop",
        ),
    };
    Json(json!({
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 25, "total_tokens": prompt_tokens + 25}
    }))
}

/// Starts the scripted model on loopback; returns its base URL.
fn start_scripted(rt: &tokio::runtime::Runtime, script: Arc<Script>) -> String {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(scripted))
            .with_state(script);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/v1")
    })
}

fn script(steps: Vec<(&'static str, Vec<Step>)>) -> Arc<Script> {
    Arc::new(Script {
        steps: steps.into_iter().collect(),
        received: Mutex::new(Vec::new()),
    })
}

#[test]
fn tools_run_good_answers_change_the_fix_and_bad_ones_fall_back() {
    let rt = servers();
    let s = script(vec![
        // Raises the priority (allowed) and names the workload.
        (
            "picard",
            vec![Step::Final(
                json!({"priority": "P1", "assessment": "payment-service checkout is down for customers: OOM kills under a traffic surge. B'Elanna resizes, Worf and Data review."}),
            )],
        ),
        // Reads the memory history and the sizing rule, then asks for more headroom and no HPA.
        (
            "belanna",
            vec![
                Step::Tool("memory_history", json!({"hours": 24})),
                Step::Tool("size_memory", json!({"headroom_percent": 50})),
                Step::Final(
                    json!({"limit": "2Gi", "request": "512Mi", "add_hpa": false, "rationale": "The surge is sustained; 50% headroom over the 1270Mi peak rounds to 2Gi, and two replicas are enough."}),
                ),
            ],
        ),
        // Ranks a risk the review never found, twice: rejected, corrected once, then fallback.
        (
            "worf",
            vec![Step::Final(
                json!({"summary": "The image is old and the namespace is open to the world.", "fix_first": ["kernel is outdated"]}),
            )],
        ),
        // Searches the code and points at a real line.
        (
            "data",
            vec![
                Step::Tool("app_search_code", json!({"pattern": "def |cache"})),
                Step::Final(
                    json!({"assessment": "The checkout handler allocates per request and releases it; memory follows traffic, no leak.", "suspects": [{"file": "app/payments/checkout.py", "line": 1, "why": "entry point of the checkout handler"}]}),
                ),
            ],
        ),
        (
            "scribe",
            vec![Step::Final(
                json!({"lessons": ["payment-service memory was sized for launch traffic; size from measured peaks.", "Alert at 80% of the memory limit."]}),
            )],
        ),
        // Contradicts the measurement: rejected.
        (
            "ralph",
            vec![Step::Final(
                json!({"note": "The fix failed and the pods are not healthy.", "next_steps": []}),
            )],
        ),
    ]);
    let url = start_scripted(&rt, s.clone());
    let dir = tempfile::tempdir().unwrap();
    let sum = run_approved(
        Scenario::embedded("oomkilled").unwrap(),
        dir.path(),
        minds(&url, "scripted", LlmToolMode::Native, LlmBudget::default()),
    );
    assert_eq!(sum.state, "resolved", "{:#?}", sum.timeline);
    let d = deliberations(&sum);
    let event = |m: &str| {
        d.iter()
            .find(|(a, _)| a == m)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("{m} did not deliberate: {d:#?}"))
    };
    // B'Elanna: two tools ran, their results went back, and the PR carries the model's sizing.
    assert!(
        event("belanna").contains("its answer was used"),
        "{}",
        event("belanna")
    );
    assert!(
        event("belanna").contains("tools memory_history, size_memory"),
        "{}",
        event("belanna")
    );
    assert_eq!(sum.llm_usage["belanna"].calls, 3);
    let pr = &sum.pull_requests[0];
    assert!(
        pr.body.contains("| limit | 512Mi | **2Gi** |"),
        "{}",
        pr.body
    );
    assert!(pr.body.contains("No HPA added"), "{}", pr.body);
    assert!(
        !pr.files.iter().any(|f| f.ends_with("hpa.yaml")),
        "{:?}",
        pr.files
    );
    let repo = squad_adapters::git::GitRepo::open(&PathBuf::from(&sum.repo)).unwrap();
    let manifest = repo
        .read(&pr.branch, "k8s/production/payment-service/deployment.yaml")
        .unwrap()
        .unwrap();
    assert!(manifest.contains("memory: 2Gi"), "{manifest}");
    let received = s.received.lock().unwrap().clone();
    let belanna: Vec<&Value> = received
        .iter()
        .filter(|b| member_of(b) == "belanna")
        .collect();
    let last = belanna.last().unwrap()["messages"].as_array().unwrap();
    let sized = last
        .iter()
        .find(|m| m["role"] == "tool" && m["content"].as_str().unwrap().contains("\"limit\""))
        .expect("the size_memory result went back to the model");
    assert!(
        sized["content"].as_str().unwrap().contains("2Gi"),
        "{sized}"
    );
    // The charter is the system prompt, and the tools are offered natively.
    assert!(last[0]["content"].as_str().unwrap().contains("B'Elanna"));
    assert!(belanna[0]["tools"].as_array().unwrap().len() >= 5);
    // Worf: rejected, told why, rejected again, fallback; the comment has no model assessment.
    let worf = event("worf");
    assert!(
        worf.contains("was not used") && worf.contains("not one of the review's findings"),
        "{worf}"
    );
    assert_eq!(sum.llm_usage["worf"].calls, 2);
    assert_eq!(sum.llm_usage["worf"].fallbacks, 1);
    let second = received
        .iter()
        .filter(|b| member_of(b) == "worf")
        .nth(1)
        .unwrap();
    assert!(
        second.to_string().contains("That answer was rejected"),
        "{second}"
    );
    let comments: Vec<(String, String)> = sum.issues[0]
        .comments
        .iter()
        .map(|c| (c.author.clone(), c.body.clone()))
        .collect();
    let worf_comment = &comments.iter().find(|(a, _)| a == "worf").unwrap().1;
    assert!(!worf_comment.contains("### Assessment"), "{worf_comment}");
    // Data and Scribe: used.
    assert!(
        event("data").contains("tools app_search_code"),
        "{}",
        event("data")
    );
    let data_comment = &comments.iter().find(|(a, _)| a == "data").unwrap().1;
    assert!(
        data_comment.contains("allocates per request"),
        "{data_comment}"
    );
    let decisions = repo.read("main", ".squad/decisions.md").unwrap().unwrap();
    assert!(
        decisions.contains("size from measured peaks"),
        "{decisions}"
    );
    // Picard raised nothing it may not: P1 stays, the issue opens with the assessment.
    assert!(
        sum.issues[0].body.contains("## Assessment — P1"),
        "{}",
        sum.issues[0].body
    );
    assert!(sum.issues[0].labels.contains(&"priority:p1".to_string()));
    // Ralph's note contradicted the measurement: the verdict stands, the note is not used.
    assert!(
        event("ralph").contains("was not used"),
        "{}",
        event("ralph")
    );
    let ralph = &comments.iter().find(|(a, _)| a == "ralph").unwrap().1;
    assert!(
        ralph.contains("Resolving") && !ralph.contains("fix failed"),
        "{ralph}"
    );
    // Costs are estimated from the profile's prices.
    assert!(sum.llm_usage["belanna"].estimated_cost_usd.unwrap() > 0.0);
}

#[test]
fn budgets_stop_a_model_that_keeps_calling_tools() {
    let rt = servers();
    let s = script(vec![("belanna", vec![Step::Tool("list_pods", json!({}))])]);
    let url = start_scripted(&rt, s.clone());
    let dir = tempfile::tempdir().unwrap();
    let budget = LlmBudget {
        max_calls_per_member: 3,
        ..LlmBudget::default()
    };
    let sum = run(
        Scenario::embedded("oomkilled").unwrap(),
        dir.path(),
        minds(&url, "scripted", LlmToolMode::Native, budget),
        false,
    );
    assert_eq!(sum.state, "awaiting_approval");
    assert_eq!(sum.llm_usage["belanna"].calls, 3);
    assert_eq!(sum.llm_usage["belanna"].fallbacks, 1);
    let d = deliberations(&sum);
    let b = &d.iter().find(|(a, _)| a == "belanna").unwrap().1;
    assert!(
        b.contains("call budget spent (3 of llm.budget.max_calls_per_member = 3)"),
        "{b}"
    );
    // The deterministic sizing went out.
    assert!(sum.pull_requests[0].body.contains("**1.5Gi**"));
}

/// Secrets planted across the scenario, each with no other way into a prompt than the tools.
const PLANTED: &[&str] = &[
    // A Secret's value with no telltale shape: only the Secret's data reveals it.
    "correct-horse-battery-staple-42",
    // Credentials in a connection string, in a Secret and a log line.
    "pg-Xy7vQ2-secret",
    // A GitHub token in an event message.
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    // An AWS key pair in the logs.
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    // A literal API token in the manifest's env.
    "sk_live_51HfakeStripeKeyForTests000000",
];

fn planted_scenario(dir: &Path) -> Scenario {
    let src = Scenario::embedded("oomkilled").unwrap();
    let sdir = dir.join("scenario");
    for (p, c) in &src.files {
        let f = sdir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        let c = if p.ends_with("manifests/k8s/production/payment-service/deployment.yaml") {
            c.replace(
                "            - name: GUNICORN_WORKERS\n",
                "            - name: STRIPE_API_KEY\n              value: \"sk_live_51HfakeStripeKeyForTests000000\"\n            - name: GUNICORN_WORKERS\n",
            )
        } else {
            c.clone()
        };
        std::fs::write(f, c).unwrap();
    }
    let mut s = src.clone();
    s.secrets
        .get_or_insert_default()
        .insert("payment-db".into(), vec!["password".into(), "url".into()]);
    s.secret_values.insert(
        "payment-db".into(),
        [
            (
                "password".to_string(),
                "correct-horse-battery-staple-42".to_string(),
            ),
            (
                "url".to_string(),
                "postgres://payments:pg-Xy7vQ2-secret@db.internal:5432/payments".to_string(),
            ),
        ]
        .into(),
    );
    s.logs.previous.extend([
        "DEBUG db: connecting to postgres://payments:pg-Xy7vQ2-secret@db.internal:5432/payments".to_string(),
        "DEBUG db: auth with correct-horse-battery-staple-42".to_string(),
        "DEBUG s3: AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
    ]);
    s.pod_events.push(squad_sim::scenario::EventSpec {
        kind: "Warning".into(),
        reason: "Unhealthy".into(),
        message: "Readiness probe failed: GET /healthz with header Authorization: token ghp_0123456789abcdefghijABCDEFGHIJ012345 returned 503".into(),
    });
    std::fs::write(sdir.join("scenario.toml"), toml::to_string(&s).unwrap()).unwrap();
    // The team's own charter for Worf, the Squad way: `.squad/agents/worf/charter.md`.
    let charter = sdir.join("manifests/.squad/agents/worf/charter.md");
    std::fs::create_dir_all(charter.parent().unwrap()).unwrap();
    std::fs::write(
        &charter,
        "# Worf\nYou are Worf, security officer of the Acme payments team. PCI scope first.\n",
    )
    .unwrap();
    Scenario::from_dir(&sdir).unwrap()
}

#[test]
fn planted_secrets_never_reach_the_model_server() {
    let rt = servers();
    let dir = tempfile::tempdir().unwrap();
    let scenario = planted_scenario(dir.path());
    let pod = scenario.workload.pods[0].clone();
    let manifest = scenario.workload.manifest.clone();
    // Every member pulls what could carry a secret: logs, events, the workload, the manifest,
    // and echoes a tool result back in its answer.
    let reads = |extra: Vec<Step>| {
        let mut v = vec![
            Step::Tool(
                "pod_logs",
                json!({"pod": pod, "previous": true, "tail": 50}),
            ),
            Step::Tool("pod_events", json!({"pod": pod})),
        ];
        v.extend(extra);
        v
    };
    let s = script(vec![
        ("picard", reads(vec![Step::Tool("get_workload", json!({}))])),
        (
            "belanna",
            reads(vec![
                Step::Tool("gitops_read_file", json!({"path": manifest})),
                Step::Tool("get_workload", json!({})),
            ]),
        ),
        (
            "worf",
            vec![
                Step::Tool("secret_key_names", json!({})),
                Step::Tool("get_workload", json!({})),
            ],
        ),
        (
            "data",
            reads(vec![Step::Tool("app_search_code", json!({"pattern": "."}))]),
        ),
        (
            "scribe",
            vec![Step::Tool("gitops_read_file", json!({"path": manifest}))],
        ),
        ("ralph", reads(vec![])),
    ]);
    let url = start_scripted(&rt, s.clone());
    let sum = run_approved(
        scenario,
        &dir.path().join("out"),
        minds(&url, "scripted", LlmToolMode::Native, LlmBudget::default()),
    );
    assert!(
        matches!(sum.state.as_str(), "resolved" | "escalated"),
        "{}",
        sum.state
    );
    let received = s.received.lock().unwrap().clone();
    let wire = serde_json::to_string(&received).unwrap();
    if let Ok(path) = std::env::var("SQUAD_DUMP_WIRE") {
        std::fs::write(path, serde_json::to_string_pretty(&received).unwrap()).unwrap();
    }
    for m in MEMBERS {
        assert!(
            received.iter().any(|b| member_of(b) == m),
            "{m} sent nothing to the model"
        );
    }
    // Worf's charter is the repository's, not the shipped one.
    let worf = received.iter().find(|b| member_of(b) == "worf").unwrap();
    let system = worf["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("# Worf\nYou are Worf, security officer of the Acme payments team."),
        "{system}"
    );
    let belanna = received.iter().find(|b| member_of(b) == "belanna").unwrap();
    assert!(
        belanna["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("B'Elanna")
    );
    // The tools did fetch what carries the secrets...
    assert!(
        wire.contains("Readiness probe failed"),
        "events were not sent"
    );
    assert!(
        wire.contains("DEBUG db: connecting to"),
        "logs were not sent"
    );
    assert!(wire.contains("STRIPE_API_KEY"), "the manifest was not sent");
    assert!(wire.contains("[REDACTED:"), "nothing was redacted");
    // ...and none of the secrets, nor the Secret values' base64, reached the server.
    for secret in PLANTED {
        assert!(!wire.contains(secret), "{secret} reached the model server");
        let b64 = squad_runtime::redact::base64_standard(secret.as_bytes());
        assert!(
            !wire.contains(&b64),
            "{secret} (base64) reached the model server"
        );
    }
}

/// The real-model tier: the whole crew against SmolLM2-135M under llama.cpp, live. The model's
/// answers are well-formed nonsense more often than not; the flow must hold anyway: every member
/// calls it, every answer used passed its check, the nonsense is rejected and the deterministic
/// skill takes over, the incident completes and the usage is on record.
#[test]
fn the_whole_crew_runs_oomkilled_against_a_real_small_model() {
    if !llama::available_or_skip("the real-model crew run").unwrap() {
        return;
    }
    let srv = servers();
    let model = srv.block_on(llama::RealLlama::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Real wall time: the simulation's clock is virtual.
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    // 256 answer tokens, not the default 640: SmolLM2's nonsense runs to the limit, and on one
    // CPU thread each token costs; its good answers here are under 130 tokens.
    let s = run_approved(
        Scenario::embedded("oomkilled").unwrap(),
        dir.path(),
        minds_with(
            &model.base_url(),
            llama::MODEL,
            LlmToolMode::JsonSchema,
            LlmBudget::default(),
            256,
        ),
    );
    let wall = started.elapsed();
    let d = deliberations(&s);
    println!(
        "real-model crew run: {:.1} s wall, state {}",
        wall.as_secs_f64(),
        s.state
    );
    for (m, u) in &s.llm_usage {
        println!(
            "{m:<8} calls {:>2}  prompt {:>6}  completion {:>5}  fallbacks {}",
            u.calls, u.prompt_tokens, u.completion_tokens, u.fallbacks
        );
    }
    for (a, e) in &d {
        println!("{a:<8} {}", e.chars().take(300).collect::<String>());
    }
    assert_eq!(s.state, "resolved", "{:#?}", s.timeline);
    for m in MEMBERS {
        assert!(s.llm_usage[m].calls >= 1, "{m} made no call: {d:#?}");
        assert!(s.llm_usage[m].prompt_tokens > 0, "{m}: no usage recorded");
    }
    // Nonsense is rejected with a reason, and the deterministic skill decides.
    let rejected: Vec<&(String, String)> = d
        .iter()
        .filter(|(_, e)| e.contains("was not used") && e.contains("rejected"))
        .collect();
    assert!(
        !rejected.is_empty(),
        "SmolLM2 had every answer accepted; expected its nonsense to be rejected somewhere: {d:#?}"
    );
    // What was used passed the checks: the PR's limit holds the observed peak (1270Mi).
    let pr = &s.pull_requests[0].body;
    let limit = pr
        .lines()
        .find(|l| l.starts_with("| limit |"))
        .and_then(|l| l.split("**").nth(1))
        .unwrap();
    let q: squad_protocols::Quantity = limit.parse().unwrap();
    assert!(q.as_mib_f64() >= 1270.0, "{pr}");
    assert!(s.verification.as_ref().unwrap().healthy);
}

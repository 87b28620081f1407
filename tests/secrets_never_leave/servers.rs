//! The ports that leave the process, played on loopback and recorded: an OpenAI-compatible model
//! and a HolmesGPT server. Every request body they receive is kept for the leak check.
//!
//! The model is a curious parrot: on a member's first turn it calls every tool it is offered
//! (the logs, the events, the workload, the manifest, the source, …), so whatever those read
//! passes the gateway; then it answers with the member's own proposal, so the crew goes on as
//! its deterministic skills would and the run reaches every output. HolmesGPT reads the pod's
//! logs and the planted Secret as its tools would and quotes a log line in its summary, as a
//! model summarising them may.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

/// What the parrot fills tool arguments with.
#[derive(Debug, Clone, Default)]
pub struct ToolArgs {
    pub pod: String,
    pub manifest: String,
    pub handler: String,
    pub image: String,
}

/// A recording server on loopback.
pub struct Recorder {
    pub url: String,
    pub received: Arc<Mutex<Vec<Value>>>,
}

impl Recorder {
    pub fn bodies(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

struct Parrot {
    args: ToolArgs,
    received: Arc<Mutex<Vec<Value>>>,
}

/// The tool call's arguments, or `None` when one is not known.
fn fill(args: &ToolArgs, tool: &str, parameters: &Value) -> Option<Value> {
    let mut out = serde_json::Map::new();
    let props = parameters["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, _) in props {
        let v = match name.as_str() {
            "pod" => json!(args.pod),
            "previous" => json!(true),
            "tail" => json!(200),
            "hours" => json!(6),
            "prefix" => json!(""),
            "path" if tool.starts_with("gitops") => json!(args.manifest),
            "path" => json!(args.handler),
            "pattern" => json!("(?i)password|secret|token|key"),
            "image" => json!(args.image),
            "number" => json!(1),
            "headroom_percent" => json!(20),
            _ => return None,
        };
        out.insert(name, v);
    }
    Some(Value::Object(out))
}

/// The proposal a member's first message carries, as it reached the model.
fn proposal(body: &Value) -> Option<String> {
    const START: &str = "## Your deterministic skill's proposal\n```json\n";
    body["messages"].as_array()?.iter().find_map(|m| {
        let text = m["content"].as_str()?;
        let at = text.find(START)? + START.len();
        let rest = &text[at..];
        Some(rest[..rest.find("\n```")?].to_owned())
    })
}

async fn parrot(State(p): State<Arc<Parrot>>, Json(body): Json<Value>) -> Json<Value> {
    p.received.lock().unwrap().push(body.clone());
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let called = messages.iter().any(|m| m["role"] == "tool");
    let tools = body["tools"].as_array().cloned().unwrap_or_default();
    let calls: Vec<Value> = if called {
        Vec::new()
    } else {
        tools
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let name = t["function"]["name"].as_str()?;
                let args = fill(&p.args, name, &t["function"]["parameters"])?;
                Some(json!({"id": format!("call_{i}"), "type": "function",
                            "function": {"name": name, "arguments": args.to_string()}}))
            })
            .collect()
    };
    let prompt_tokens = body.to_string().len() as u64 / 4;
    let (message, finish) = if calls.is_empty() {
        let answer = proposal(&body).unwrap_or_else(|| "{}".into());
        (json!({"role": "assistant", "content": answer}), "stop")
    } else {
        (
            json!({"role": "assistant", "content": null, "tool_calls": calls}),
            "tool_calls",
        )
    };
    Json(json!({
        "id": "chatcmpl-parrot", "object": "chat.completion", "created": 0, "model": "parrot",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 40,
                  "total_tokens": prompt_tokens + 40}
    }))
}

/// What the fake HolmesGPT answers with.
#[derive(Debug, Clone, Default)]
pub struct HolmesScript {
    /// The root cause it concludes (the scenario's expected one).
    pub root_cause: String,
    pub pod: String,
    pub namespace: String,
    /// What `kubectl logs --previous` showed it.
    pub logs: String,
    /// What `kubectl get secret -o yaml` showed it.
    pub secret_yaml: String,
}

struct Holmes {
    script: HolmesScript,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn holmes(State(h): State<Arc<Holmes>>, Json(body): Json<Value>) -> Json<Value> {
    h.received.lock().unwrap().push(body.clone());
    let s = &h.script;
    // A model summarising what the tools showed may quote a line of it.
    let quoted = s
        .logs
        .lines()
        .find(|l| l.contains("password="))
        .unwrap_or("");
    Json(json!({
        "analysis": {
            "root_cause": s.root_cause,
            "summary": format!("The pod {} keeps failing; its logs say: {quoted}", s.pod),
            "confidence": 0.7,
            "recommendations": ["read the logs of the previous container", format!("check the settings the app loaded ({quoted})")],
            "memory_limit": null,
            "memory_peak": null
        },
        "tool_calls": [
            {"tool_name": "bash", "description": format!("kubectl logs {} -n {} --previous", s.pod, s.namespace),
             "result": {"status": "success", "data": s.logs}},
            {"tool_name": "kubectl_get_yaml", "description": format!("kubectl get secret planted-credentials -n {} -o yaml", s.namespace),
             "result": {"status": "success", "data": s.secret_yaml}}
        ],
        "conversation_history": [],
        "metadata": {"usage": {"prompt_tokens": 1200, "completion_tokens": 150}, "total_cost": 0.0}
    }))
}

/// Serves `app` on a free loopback port from `rt` (a real-time runtime: a model thinks in real
/// time, whatever the simulation's clock does).
fn serve(rt: &tokio::runtime::Runtime, app: axum::Router) -> String {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    })
}

/// The parrot model; its URL is an OpenAI-compatible base (`…/v1`).
pub fn start_model(rt: &tokio::runtime::Runtime, args: ToolArgs) -> Recorder {
    let received = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(Parrot {
        args,
        received: received.clone(),
    });
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(parrot))
        .with_state(state);
    Recorder {
        url: format!("{}/v1", serve(rt, app)),
        received,
    }
}

/// The HolmesGPT server (`POST /api/chat`).
pub fn start_holmes(rt: &tokio::runtime::Runtime, script: HolmesScript) -> Recorder {
    let received = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(Holmes {
        script,
        received: received.clone(),
    });
    let app = axum::Router::new()
        .route("/api/chat", post(holmes))
        .with_state(state);
    Recorder {
        url: serve(rt, app),
        received,
    }
}

/// What the real HolmesGPT's model is scripted to do: read the pod's previous logs and the
/// planted Secret with HolmesGPT's `bash` tool, then conclude.
struct HolmesModel {
    pod: String,
    namespace: String,
    root_cause: String,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn holmes_model(State(m): State<Arc<HolmesModel>>, Json(body): Json<Value>) -> Json<Value> {
    m.received.lock().unwrap().push(body.clone());
    let called = body["messages"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x["role"] == "tool"));
    // Both reads at once, as HolmesGPT's prompt asks of its model: one round of tools.
    let commands = [
        (
            format!(
                "kubectl logs {} -n {} --previous --tail=100",
                m.pod, m.namespace
            ),
            "kubectl logs",
        ),
        (
            format!(
                "kubectl get secret {} -n {} -o yaml",
                crate::plant::SECRET,
                m.namespace
            ),
            "kubectl get",
        ),
    ];
    let prompt = body.to_string().len() as u64 / 4;
    let (message, finish) = match called {
        false => (
            json!({"role": "assistant", "content": null, "tool_calls": commands.iter().enumerate().map(|(i, (command, prefix))| json!({
                "id": format!("call_{i}"), "type": "function",
                "function": {"name": "bash", "arguments": json!({
                    "command": command, "suggested_prefixes": [prefix],
                    "timeout": null}).to_string()}})).collect::<Vec<_>>()}),
            "tool_calls",
        ),
        true => (
            json!({"role": "assistant", "content": format!(
                "The logs and the workload's Secret were read.\n\n```json\n{}\n```",
                json!({"root_cause": m.root_cause, "summary": "read the logs and the Secret",
                       "confidence": 0.6, "recommendations": [], "memory_limit": null,
                       "memory_peak": null}))}),
            "stop",
        ),
    };
    Json(json!({
        "id": "chatcmpl-holmes", "object": "chat.completion", "created": 0, "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 30, "total_tokens": prompt + 30}
    }))
}

/// The model the real HolmesGPT CLI talks to (through squad's redacting proxy); `…/v1`.
pub fn start_holmes_model(rt: &tokio::runtime::Runtime, script: &HolmesScript) -> Recorder {
    let received = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(HolmesModel {
        pod: script.pod.clone(),
        namespace: script.namespace.clone(),
        root_cause: script.root_cause.clone(),
        received: received.clone(),
    });
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(holmes_model))
        .with_state(state);
    Recorder {
        url: format!("{}/v1", serve(rt, app)),
        received,
    }
}

//! A real small model behind llama.cpp's OpenAI-compatible server, on a loopback port, for the
//! LLM tier: SmolLM2-135M-Instruct (Q4_1 GGUF) served by xllamacpp's embedded llama.cpp server,
//! both from PyPI. `scripts/tools` installs them and a launcher, `squad-llama-server`, which takes
//! llama-server-like flags (`--model --host --port --ctx-size --threads --alias`).
//!
//! Start-up is async (it polls with `tokio::time`; run it on a real clock) and takes about a
//! second. Dropping the value stops the server. The paths come from `SQUAD_LLAMA_SERVER` and
//! `SQUAD_SMOLLM2_GGUF`, or the cache `${SQUAD_CACHE:-$HOME/.cache/squad}` that `scripts/tools`
//! fills.
//!
//! What the model is good for: it answers in a second or two and llama.cpp enforces a
//! `response_format` JSON schema on it, but its content is well-formed nonsense and it has no
//! native tool calls (its chat template cannot render `tools`; see `tests/llm_real.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::process::{Service, free_port};
use tokio::time::Instant;

/// The model id the server is started with (`--alias`), which it reports in `/v1/models`.
pub const MODEL: &str = "SmolLM2-135M-Instruct";
const CONTEXT_TOKENS: u32 = 4096;
/// One thread, not two: on this 2-core machine, with anything else running (a cargo build, a
/// second test binary), llama.cpp's two spinning worker threads made a 57-token call take
/// 1.5–17 s instead of 0.75 s, and start-up 1.5 s instead of 0.5 s. One thread is as fast idle.
const THREADS: u32 = 1;
const READY_WITHIN: Duration = Duration::from_secs(120);

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SQUAD_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".cache").join("squad")
}

/// The launcher `scripts/tools` writes: `SQUAD_LLAMA_SERVER`, or its place in the cache.
fn server_path() -> PathBuf {
    std::env::var_os("SQUAD_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("bin").join("squad-llama-server"))
}

/// The SmolLM2 GGUF: `SQUAD_SMOLLM2_GGUF`, or its place in the cache.
fn model_path() -> PathBuf {
    std::env::var_os("SQUAD_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            cache_dir()
                .join("models")
                .join("SmolLM2-135M-Instruct.Q4_1.gguf")
        })
}

/// Whether the server and the model are installed; under CI=true a missing one is a failure,
/// not a skip.
pub fn available_or_skip(test: &str) -> Result<bool> {
    let (server, model) = (server_path(), model_path());
    if server.is_file() && model.is_file() {
        return Ok(true);
    }
    let why = format!(
        "{test}: no llama.cpp server at {} or no model at {} (run scripts/tools)",
        server.display(),
        model.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        bail!("{why}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {why}");
    Ok(false)
}

/// One chat completion: the response body, its HTTP status and how long the call took.
#[derive(Debug)]
pub struct Exchange {
    pub status: u16,
    pub body: Value,
    pub elapsed: Duration,
}

pub struct RealLlama {
    // Held for their Drop, in this order: the process stops before its state is removed.
    _service: Service,
    port: u16,
    _dir: TempDir,
}

impl RealLlama {
    /// Starts the server on a free loopback port and waits until `/v1/models` answers.
    pub async fn start() -> Result<RealLlama> {
        let (server, model) = (server_path(), model_path());
        let dir = tempfile::Builder::new().prefix("squad-llama").tempdir()?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("llama.log"))?;
        let child = Command::new(&server)
            .arg("--model")
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--ctx-size", &CONTEXT_TOKENS.to_string()])
            .args(["--threads", &THREADS.to_string()])
            .args(["--alias", MODEL])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {} (run scripts/tools)", server.display()))?;
        let mut service = Service::new("llama.cpp server", child, dir.path().join("llama.log"));
        service
            .wait_ready(&format!("http://127.0.0.1:{port}/v1/models"), READY_WITHIN)
            .await?;
        Ok(RealLlama {
            _service: service,
            port,
            _dir: dir,
        })
    }

    /// The OpenAI base URL, ending in `/v1`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The server's root, for llama.cpp's own endpoints (`/health`, `/props`).
    fn root_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn model(&self) -> &'static str {
        MODEL
    }

    /// POSTs `body` to `/v1/chat/completions` (with curl, off the async threads) and times it.
    pub async fn chat(&self, body: &Value) -> Result<Exchange> {
        let url = format!("{}/chat/completions", self.base_url());
        let body = serde_json::to_string(body)?;
        let started = Instant::now();
        let (status, text) = tokio::task::spawn_blocking(move || {
            curl(&["-X", "POST", "--data-binary", &body], &url)
        })
        .await??;
        let elapsed = started.elapsed();
        let body = serde_json::from_str(&text)
            .with_context(|| format!("chat completion answered {status} with non-JSON: {text}"))?;
        Ok(Exchange {
            status,
            body,
            elapsed,
        })
    }

    /// GETs one of llama.cpp's own endpoints (e.g. `/props`) as JSON.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.root_url());
        let (status, text) = tokio::task::spawn_blocking(move || curl(&[], &url)).await??;
        if status != 200 {
            bail!("GET {path} answered {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("GET {path}: non-JSON {text}"))
    }
}

/// One HTTP exchange with curl: (status, body). The status line is appended by `-w`.
fn curl(args: &[&str], url: &str) -> Result<(u16, String)> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "120",
            "-H",
            "content-type: application/json",
        ])
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .context("run curl")?;
    if !out.status.success() {
        bail!(
            "curl {url} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout).context("curl output is not UTF-8")?;
    let (body, status) = text
        .rsplit_once('\n')
        .with_context(|| format!("curl output without a status line: {text}"))?;
    let status = status
        .trim()
        .parse()
        .with_context(|| format!("curl status {status:?}"))?;
    Ok((status, body.to_owned()))
}

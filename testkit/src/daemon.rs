//! `squad serve` as a child process, the way an operator runs it: started on a config file,
//! its listening address read from its first line of output, its log in a file beside the
//! config, killed with SIGKILL (`kill -9`) and restarted on the same config and data; and its
//! HTTP API through reqwest, with the bearer token the config names.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// One `squad serve` process; SIGKILLed on drop.
pub struct Daemon {
    bin: PathBuf,
    config: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// `http://127.0.0.1:<port>` while it runs.
    pub url: String,
    log: PathBuf,
    /// How many times it was started.
    pub starts: u32,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Daemon {
    /// Starts `bin serve --config config` with `env` set (and `SQUAD_SERVER_TOKENS` unset, so
    /// the config's tokens are the ones that count); its stderr goes to `<config
    /// stem>.log` beside the config.
    pub fn start(bin: &Path, config: &Path, env: &[(&str, &str)]) -> Result<Daemon> {
        let stem = config
            .file_stem()
            .map_or_else(|| "daemon".into(), |s| s.to_string_lossy().into_owned());
        let mut d = Daemon {
            bin: bin.to_owned(),
            config: config.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            url: String::new(),
            log: config.with_file_name(format!("{stem}.log")),
            starts: 0,
        };
        d.spawn()?;
        Ok(d)
    }

    fn spawn(&mut self) -> Result<()> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let mut child = Command::new(&self.bin)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env_remove("SQUAD_SERVER_TOKENS")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawn {}", self.bin.display()))?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let mut out = std::io::BufReader::new(stdout);
        let mut line = String::new();
        while out.read_line(&mut line)? > 0 {
            if let Some(url) = line.trim().strip_prefix("squad serve: listening on ") {
                self.url = url.to_owned();
                // Drained, so that a full pipe never blocks the daemon.
                std::thread::spawn(move || for _ in out.lines() {});
                self.child = Some(child);
                self.starts += 1;
                return Ok(());
            }
            line.clear();
        }
        let status = child.wait()?;
        bail!("squad serve did not start ({status}):\n{}", self.log())
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `kill -9`, then a start on the same config and data.
    pub fn kill_and_restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A daemon's HTTP API with one bearer token.
pub struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    pub fn new(token: &str) -> Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()?,
            token: token.to_owned(),
        })
    }

    /// POSTs `body`; the status (0 when there was no answer) and the answer's text.
    pub async fn post(&self, base: &str, path: &str, body: &Value) -> (u16, String) {
        self.send(self.http.post(format!("{base}{path}")).json(body))
            .await
    }

    /// The status and text of a GET (0 when there was no answer).
    pub async fn get_text(&self, base: &str, path: &str) -> (u16, String) {
        self.send(self.http.get(format!("{base}{path}"))).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, String) {
        match request.bearer_auth(&self.token).send().await {
            Ok(r) => {
                let code = r.status().as_u16();
                (code, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    }

    /// A GET's JSON; None unless it answered 2xx with JSON.
    pub async fn get(&self, base: &str, path: &str) -> Option<Value> {
        let (code, text) = self.get_text(base, path).await;
        if !(200..300).contains(&code) {
            return None;
        }
        serde_json::from_str(&text).ok()
    }

    /// Every incident with its timeline; None when the daemon did not answer.
    pub async fn incidents(&self, base: &str) -> Option<Vec<Value>> {
        let list = self.get(base, "/v1/incidents").await?;
        let mut out = Vec::new();
        for i in list["incidents"].as_array()? {
            let id = i["id"].as_str()?;
            out.push(self.get(base, &format!("/v1/incidents/{id}")).await?);
        }
        Some(out)
    }
}

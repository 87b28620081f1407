//! `squad serve` as a child process on a loopback port, and a raw HTTP/1.1 client for it: raw,
//! so a request can carry bytes no HTTP library would send (headers that are not UTF-8).

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const TOKEN: &str = "hostile-input-token-0123456789";
pub const GITHUB_SECRET: &str = "whsec-hostile-input";

pub struct Daemon {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn config(dir: &Path, body_limit: usize) -> std::path::PathBuf {
    let path = dir.join("squad.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbody_limit_bytes = {body_limit}\nshutdown_grace_seconds = 5\n[server.auth]\ntokens = [\"{TOKEN}\"]\n[backend]\ndata_dir = \"{}\"\n[intake]\nrepeat_note_seconds = 1\n[github]\nwebhook_secrets = [\"{GITHUB_SECRET}\"]\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

impl Daemon {
    /// Starts `squad serve` on the simulated backend with a body limit of `body_limit` bytes.
    pub fn start(body_limit: usize) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), body_limit);
        let mut child = Command::new(env!("CARGO_BIN_EXE_squad"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("SQUAD_SERVER_TOKENS")
            .env_remove("SQUAD_PAGERDUTY_SECRETS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 {
            if let Some(url) = line.trim().strip_prefix("squad serve: listening on ") {
                let addr = url.trim_start_matches("http://").to_owned();
                std::thread::spawn(move || for _ in out.lines() {});
                return Daemon {
                    child,
                    addr,
                    _dir: dir,
                };
            }
            line.clear();
        }
        panic!("squad serve did not start ({:?})", child.wait());
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// One request on its own connection; `headers` as raw bytes.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) -> Answer {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        for (k, v) in headers {
            head.extend_from_slice(k);
            head.extend_from_slice(b": ");
            head.extend_from_slice(v);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        // The server may answer (413) and close before it has read a large body.
        let _ = stream
            .write_all(&head)
            .and_then(|()| stream.write_all(body));
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        parse_answer(&raw)
    }

    /// A POST with the bearer token and a JSON content type.
    pub fn post(&self, path: &str, body: &[u8]) -> Answer {
        let auth = format!("Bearer {TOKEN}");
        self.send(
            "POST",
            path,
            &[
                (b"Authorization", auth.as_bytes()),
                (b"Content-Type", b"application/json"),
            ],
            body,
        )
    }

    pub fn get(&self, path: &str) -> Answer {
        let auth = format!("Bearer {TOKEN}");
        self.send("GET", path, &[(b"Authorization", auth.as_bytes())], b"")
    }

    /// A gauge or counter of `/metrics` (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (real time) until the intake has processed `accepted` alerts, all it accepted.
    pub fn wait_processed(&self, accepted: u64) {
        for _ in 0..1200 {
            let (a, p) = (
                self.metric("squad_intake_accepted"),
                self.metric("squad_intake_processed"),
            );
            if a as u64 == accepted && p as u64 == accepted {
                return;
            }
            super::pause();
        }
        panic!(
            "the intake did not process {accepted} accepted alerts: accepted {}, processed {}",
            self.metric("squad_intake_accepted"),
            self.metric("squad_intake_processed")
        );
    }
}

fn parse_answer(raw: &[u8]) -> Answer {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            status: 0,
            body: raw.to_vec(),
        };
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    Answer { status, body }
}

fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = raw.get(start + size + 2..).unwrap_or_default();
    }
    out
}

//! A real Prometheus (Debian's 2.42, `/usr/bin/prometheus`) on a loopback port, for tests that
//! check the simulated metrics against it. `scripts/tools` installs it.
//!
//! Include it with `#[path = "support/prometheus.rs"] mod prometheus;`. Start-up is async (it
//! polls with `tokio::time`; run it on a real clock). Dropping the value stops the process and
//! removes its state.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Whether Prometheus is installed; under CI=true a missing one is a failure, not a skip.
pub fn available_or_skip(test: &str) -> Result<bool> {
    if Path::new(PROMETHEUS).exists() && Path::new(PROMTOOL).exists() {
        return Ok(true);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        bail!(
            "{test}: no Prometheus at {PROMETHEUS}; CI=true, so this is a failure, not a skip (scripts/tools installs it)"
        );
    }
    eprintln!("SKIPPED {test}: no Prometheus at {PROMETHEUS} (run scripts/tools)");
    Ok(false)
}

pub struct RealPrometheus {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl RealPrometheus {
    /// Starts Prometheus with `config` (prometheus.yml text) on a fresh TSDB, or on `tsdb` (a
    /// directory of blocks, e.g. from `promtool tsdb create-blocks-from`), and waits until ready.
    pub async fn start(config: &str, tsdb: Option<&Path>) -> Result<RealPrometheus> {
        RealPrometheus::start_with_files(config, &[], tsdb).await
    }

    /// Like [`RealPrometheus::start`], with `files` (name, text) written next to the config
    /// first, e.g. a rules file the config names in `rule_files` (Prometheus resolves relative
    /// paths there against the config's directory).
    pub async fn start_with_files(
        config: &str,
        files: &[(&str, &str)],
        tsdb: Option<&Path>,
    ) -> Result<RealPrometheus> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text)
                .with_context(|| format!("write {name} for prometheus"))?;
        }
        let data: PathBuf = match tsdb {
            Some(p) => p.to_path_buf(),
            None => dir.path().join("data"),
        };
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=3650d")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.external-url=http://127.0.0.1:{port}/"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {PROMETHEUS}"))?;
        let mut p = RealPrometheus {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new("curl")
                .args(["-sf", "-o", "/dev/null"])
                .arg(format!("http://127.0.0.1:{port}/-/ready"))
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(p);
            }
            if let Some(c) = p.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "prometheus exited ({status}) before it was ready:\n{}",
                    p.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!("prometheus not ready within 60 s:\n{}", p.log_tail());
            }
            sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            for _ in 0..50 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                // Drop cannot await; a short blocking wait for the process to exit.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Loads OpenMetrics text (with timestamps) into a TSDB directory with promtool.
pub fn backfill(openmetrics: &str, into: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("history.om");
    std::fs::write(&file, openmetrics)?;
    let out = Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(into)
        .output()?;
    if !out.status.success() {
        bail!(
            "promtool tsdb create-blocks-from openmetrics failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(())
}

//! A real Prometheus (Debian's 2.42, `/usr/bin/prometheus`) on a loopback port, for tests that
//! check the simulated metrics against it. `scripts/tools` installs it.
//!
//! Start-up is async (it polls with `tokio::time`; run it on a real clock). Dropping the value
//! stops the process and removes its state.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::process::{Service, free_port};

const PROMETHEUS: &str = "/usr/bin/prometheus";
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
    // Dropped before `_dir`, which is held for its Drop: the process stops before its state is
    // removed.
    service: Service,
    port: u16,
    _dir: TempDir,
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
        let mut service = Service::new("prometheus", child, dir.path().join("prometheus.log"));
        service
            .wait_ready(
                &format!("http://127.0.0.1:{port}/-/ready"),
                Duration::from_secs(60),
            )
            .await?;
        Ok(RealPrometheus {
            service,
            port,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> String {
        self.service.log_tail()
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

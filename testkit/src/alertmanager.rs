//! A real Alertmanager (Debian's 0.25, `/usr/bin/prometheus-alertmanager`) on a loopback port,
//! for tests that check what squad receives from a real alerting pipeline. `scripts/tools`
//! installs it.
//!
//! Start-up is async (it polls with `tokio::time`; run it on a real clock). Dropping the value
//! stops the process and removes its state.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::process::{Service, free_port};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Whether Alertmanager is installed; under CI=true a missing one is a failure, not a skip.
pub fn available_or_skip(test: &str) -> Result<bool> {
    if Path::new(ALERTMANAGER).exists() {
        return Ok(true);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        bail!(
            "{test}: no Alertmanager at {ALERTMANAGER}; CI=true, so this is a failure, not a skip (scripts/tools installs it)"
        );
    }
    eprintln!("SKIPPED {test}: no Alertmanager at {ALERTMANAGER} (run scripts/tools)");
    Ok(false)
}

pub struct RealAlertmanager {
    // Dropped before `_dir`, which is held for its Drop: the process stops before its state is
    // removed.
    service: Service,
    port: u16,
    _dir: TempDir,
}

impl RealAlertmanager {
    /// Starts Alertmanager with `config` (alertmanager.yml text) and fresh storage, and waits
    /// until ready. Clustering is off: its gossip would bind 0.0.0.0:9094 and hold back the first
    /// notification by about 10 s while it waits for peers to settle.
    pub async fn start(config: &str) -> Result<RealAlertmanager> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("alertmanager.log"))?;
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.external-url=http://127.0.0.1:{port}/"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {ALERTMANAGER}"))?;
        let mut service = Service::new("alertmanager", child, dir.path().join("alertmanager.log"));
        service
            .wait_ready(
                &format!("http://127.0.0.1:{port}/-/ready"),
                Duration::from_secs(60),
            )
            .await?;
        Ok(RealAlertmanager {
            service,
            port,
            _dir: dir,
        })
    }

    /// `host:port`, as Prometheus' `alerting.alertmanagers` targets want it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> String {
        self.service.log_tail()
    }
}

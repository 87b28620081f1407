//! A server process started by a test harness (Prometheus, Alertmanager, llama.cpp): a free
//! loopback port, its output in a log file, a readiness wait that fails fast when the process
//! exits, the log's tail for failure messages, and a stop on drop (SIGTERM, then SIGKILL).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::time::{Instant, sleep};

const LOG_TAIL_LINES: usize = 30;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub struct Service {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    stop_within: Duration,
}

impl Service {
    /// Wraps a spawned process whose output goes to `log`.
    pub fn new(name: &'static str, child: Child, log: PathBuf) -> Service {
        Service {
            name,
            child: Some(child),
            log,
            stop_within: Duration::from_secs(5),
        }
    }

    /// Waits until `url` answers 2xx (curl), failing early if the process exits.
    pub async fn wait_ready(&mut self, url: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let ok = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "--max-time", "2"])
                .arg(url)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready within {within:?}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let polls = self.stop_within.as_millis() / 100;
            for _ in 0..polls {
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

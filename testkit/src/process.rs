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

/// A port on 127.0.0.1 that was free a moment ago, for a process the harness starts.
pub fn free_port() -> Result<u16> {
    let [port] = free_ports()?;
    Ok(port)
}

/// `N` distinct loopback ports that were free a moment ago, for processes the harness starts
/// (which bind them after this returns).
///
/// They come from below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`): a port
/// taken from inside it (`bind 127.0.0.1:0`) can be handed to any outgoing connection between
/// the moment it is released here and the moment the process binds it, and a suite that makes
/// thousands of loopback requests loses that race now and then ("bind: address already in
/// use"). Below the range only another explicit bind can take a port; each is checked by
/// binding it, held until all `N` are chosen, never handed out twice by one process (harnesses
/// started concurrently bind theirs later), and the search starts at a point that differs per
/// call.
pub fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let (low, high) = (FIRST_PORT, ephemeral_start().max(FIRST_PORT + 1024));
    let span = u32::from(high - low);
    let mut at = u32::try_from(search_start() % u64::from(span)).unwrap_or(0);
    let mut held = Vec::with_capacity(N);
    // Ports this process handed out before are never handed out again: a harness started
    // concurrently (ten apiservers at once) may not have bound its ports yet.
    let mut handed = HANDED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..span {
        let port = low + u16::try_from(at).unwrap_or(0);
        at = (at + 1) % span;
        if handed.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            if held.len() == N {
                break;
            }
        }
    }
    if held.len() < N {
        bail!(
            "found only {} free loopback ports in {low}..{high}, wanted {N}",
            held.len()
        );
    }
    let mut ports = [0; N];
    for (port, l) in ports.iter_mut().zip(&held) {
        *port = l.local_addr()?.port();
        handed.insert(*port);
    }
    Ok(ports)
}

/// Every port [`free_ports`] has handed out in this process.
static HANDED: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Below this are well-known and commonly configured service ports.
const FIRST_PORT: u16 = 20_000;

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A starting offset that differs between calls and processes.
fn search_start() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

pub struct Service {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    stop_within: Duration,
    stop_signal: &'static str,
}

impl Service {
    /// Wraps a spawned process whose output goes to `log`.
    pub fn new(name: &'static str, child: Child, log: PathBuf) -> Service {
        Service {
            name,
            child: Some(child),
            log,
            stop_within: Duration::from_secs(5),
            stop_signal: "TERM",
        }
    }

    /// Stops the process with `signal` (a name `kill` takes: `INT`, `QUIT`) instead of TERM.
    pub fn stopped_by(mut self, signal: &'static str) -> Service {
        self.stop_signal = signal;
        self
    }

    /// Waits until `url` answers 2xx (curl), failing early if the process exits.
    pub async fn wait_ready(&mut self, url: &str, within: Duration) -> Result<()> {
        self.wait_until(
            || {
                Command::new("curl")
                    .args(["-sf", "-o", "/dev/null", "--max-time", "2"])
                    .arg(url)
                    .status()
                    .is_ok_and(|s| s.success())
            },
            within,
        )
        .await
    }

    /// Waits until `ready()` says so, failing early if the process exits.
    pub async fn wait_until(&mut self, ready: impl Fn() -> bool, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if ready() {
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
            let _ = Command::new("kill")
                .arg(format!("-{}", self.stop_signal))
                .arg(c.id().to_string())
                .status();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Released at once, a port could be found free again by the next call: one process never
    /// gets it twice, so harnesses started together cannot race for it.
    #[test]
    fn no_port_is_handed_out_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            for port in free_ports::<4>().unwrap() {
                assert!(seen.insert(port), "port {port} handed out twice");
            }
        }
    }
}

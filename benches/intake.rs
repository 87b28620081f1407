//! Intake load tool: `squad serve` beside a real Alertmanager 0.25, same alerts, same clients, same
//! run; then an alert storm into a fresh `squad serve`.
//!
//! `cargo bench --bench intake` (harness = false; everything on loopback):
//!
//! 1. Sustained intake. For each batch size (`SQUAD_BENCH_BATCH` alerts per request, then one)
//!    and each target (a fresh process per pass), `SQUAD_BENCH_CLIENTS` client tasks sharing one
//!    connection pool post for `SQUAD_BENCH_WARMUP` + `SQUAD_BENCH_SECONDS` seconds. Requests that
//!    complete inside the measured window count towards throughput and latency; errors count over
//!    the whole pass. squad answers 202 only once the alerts are fsynced into its intake log;
//!    Alertmanager answers 200 once they are in its in-memory store (it persists only silences
//!    and the notification log) and routes them to a null receiver.
//!    With openssl on the PATH (`SQUAD_BENCH_TLS=0` skips it), `squad serve` runs a second pass over
//!    HTTPS (`[server.tls]`, an ECDSA P-256 certificate from a throwaway CA) right after the plain
//!    one, and the ratio of the two is printed. The rate limit is set far above the load, so its
//!    bookkeeping is measured but never refuses.
//! 2. Storm. `SQUAD_BENCH_STORM` alerts as fast as the clients go, then the time until the intake
//!    has processed them all, then what the crew made of the incidents.
//!
//! `cargo test` runs bench targets without `--bench`; then this is a smoke run (1 s passes, a
//! 1,000-alert storm) that fails on request errors or wrong incident counts.
//!
//! Alerts are `KubernetesPodOOMKilled` over `SQUAD_BENCH_WORKLOADS` Deployments in `production`,
//! round-robin, every alert with its own pod name (`<workload>-<rs hash>-<pod hash>`). In the
//! storm the first workload is the simulated cluster's own `payment-service`, so one incident is
//! diagnosed and fixed for real; in the sustained passes none is (the replay of a real fix is
//! tens of seconds of CPU, which would land inside the measured window). Diagnoses of the
//! others fail and escalate, which is expected.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

#[path = "intake/passes.rs"]
mod passes;
#[path = "intake/storm.rs"]
mod storm;
#[path = "intake/tls.rs"]
mod tls;
use passes::{PassReport, TaskTally, print_passes, sustained};
use storm::StormOutcome;
use tls::TlsFiles;

const TOKEN: &str = "bench-token-0123456789";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const ALERT_NAME: &str = "KubernetesPodOOMKilled";
const NAMESPACE: &str = "production";

/// Run parameters, each overridable by an environment variable.
struct Config {
    seconds: u64,
    warmup: u64,
    clients: usize,
    batch: usize,
    storm: u64,
    workloads: usize,
    settle_seconds: u64,
    /// `cargo test` runs bench targets without `--bench`: then a short smoke run that fails on
    /// errors or wrong counts, as criterion's test mode runs each benchmark once.
    smoke: bool,
}

fn env_or<T: FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|e| anyhow!("{name}={v:?}: expected a number ({e})")),
        Err(_) => Ok(default),
    }
}

impl Config {
    fn from_env() -> Result<Config> {
        let smoke = !std::env::args().any(|a| a == "--bench");
        let (seconds, warmup, storm) = if smoke {
            (1, 0, 1_000)
        } else {
            (10, 2, 50_000)
        };
        let c = Config {
            seconds: env_or("SQUAD_BENCH_SECONDS", seconds)?,
            warmup: env_or("SQUAD_BENCH_WARMUP", warmup)?,
            clients: env_or("SQUAD_BENCH_CLIENTS", 16)?,
            batch: env_or("SQUAD_BENCH_BATCH", 10)?,
            storm: env_or("SQUAD_BENCH_STORM", storm)?,
            workloads: env_or("SQUAD_BENCH_WORKLOADS", 20)?,
            settle_seconds: env_or("SQUAD_BENCH_SETTLE", 30)?,
            smoke,
        };
        if c.seconds == 0 || c.clients == 0 || c.workloads == 0 {
            bail!(
                "SQUAD_BENCH_SECONDS, SQUAD_BENCH_CLIENTS and SQUAD_BENCH_WORKLOADS must be positive"
            );
        }
        if !(1..=1000).contains(&c.batch) {
            bail!(
                "SQUAD_BENCH_BATCH={}: expected 1..=1000 (squad's per-body limit)",
                c.batch
            );
        }
        Ok(c)
    }

    fn batch_sizes(&self) -> Vec<usize> {
        if self.batch == 1 {
            vec![1]
        } else {
            vec![self.batch, 1]
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads: alert i is the same alert for both targets, only the envelope differs.

/// Kubernetes' alphabet for generated name suffixes (no vowels, no look-alikes).
const K8S_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn k8s_suffix(mut n: u64, width: usize) -> String {
    let base = K8S_ALPHABET.len() as u64;
    let mut out = vec![b'b'; width];
    for slot in out.iter_mut().rev() {
        *slot = K8S_ALPHABET[(n % base) as usize];
        n /= base;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Workload {
    name: String,
    replica_set: String,
    container: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Squad,
    /// `squad serve` with `[server.tls]`.
    SquadTls,
    /// `squad serve` with `[store] url` on a PostgreSQL the tool starts.
    SquadPostgres,
    Alertmanager,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Squad => "squad serve",
            Kind::SquadTls => "squad serve TLS",
            Kind::SquadPostgres => "squad serve pg",
            Kind::Alertmanager => "alertmanager",
        }
    }
}

struct Payloads {
    workloads: Vec<Workload>,
    starts_at: String,
    ends_at: String,
}

impl Payloads {
    /// `real`: the first workload is the simulated cluster's own, whose incident the crew
    /// diagnoses and fixes for real (a replay of tens of seconds of CPU); otherwise every
    /// workload is one the cluster does not have, whose incident escalates at once.
    fn new(workloads: usize, real: bool) -> Payloads {
        let now = chrono::Utc::now();
        let workloads = (0..workloads)
            .map(|w| {
                if w == 0 && real {
                    // The simulated cluster's own workload (scenario `oomkilled`).
                    Workload {
                        name: "payment-service".into(),
                        replica_set: "7d4b9c".into(),
                        container: "payment-api".into(),
                    }
                } else {
                    Workload {
                        name: format!("svc-{w:02}"),
                        replica_set: k8s_suffix(w as u64 * 7_919 + 104_729, 9),
                        container: "app".into(),
                    }
                }
            })
            .collect();
        Payloads {
            workloads,
            starts_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ends_at: (now + chrono::Duration::hours(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    fn alert(&self, kind: Kind, i: u64) -> Value {
        let n = self.workloads.len() as u64;
        let Some(w) = self.workloads.get((i % n) as usize) else {
            return Value::Null;
        };
        let pod = format!("{}-{}-{}", w.name, w.replica_set, k8s_suffix(i / n, 5));
        let summary = format!(
            "Container {} in pod {NAMESPACE}/{pod} was OOMKilled",
            w.container
        );
        match kind {
            Kind::Squad | Kind::SquadTls | Kind::SquadPostgres => json!({
                "name": ALERT_NAME,
                "status": "firing",
                "labels": {
                    "namespace": NAMESPACE,
                    "pod": pod,
                    "container": w.container,
                    "reason": "OOMKilled",
                    "severity": "critical",
                },
                "annotations": {"summary": summary},
                "starts_at": self.starts_at,
            }),
            Kind::Alertmanager => json!({
                "labels": {
                    "alertname": ALERT_NAME,
                    "namespace": NAMESPACE,
                    "pod": pod,
                    "container": w.container,
                    "reason": "OOMKilled",
                    "severity": "critical",
                },
                "annotations": {"summary": summary},
                "startsAt": self.starts_at,
                "endsAt": self.ends_at,
            }),
        }
    }

    fn body(&self, kind: Kind, alerts: Range<u64>) -> Vec<u8> {
        let alerts: Vec<Value> = alerts.map(|i| self.alert(kind, i)).collect();
        let body = match kind {
            Kind::Squad | Kind::SquadTls | Kind::SquadPostgres => json!({ "alerts": alerts }),
            Kind::Alertmanager => Value::Array(alerts),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Target processes.

/// A child process, killed (and its directory removed) on drop.
struct Proc {
    child: Child,
    dir: TempDir,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status}):\n{}", self.log_tail())),
            _ => None,
        }
    }
}

struct Target {
    kind: Kind,
    base: String,
    proc: Proc,
    /// From the spawn to the first 200 of its readiness endpoint.
    ready_in: Duration,
}

/// What a target may need besides its kind: the TLS files, the PostgreSQL server.
#[derive(Clone, Copy, Default)]
struct Extras<'a> {
    tls: Option<&'a TlsFiles>,
    pg: Option<&'a squad_testkit::postgres::RealPostgres>,
}

/// A fresh database name per `squad serve pg` start.
static DATABASES: AtomicU64 = AtomicU64::new(0);

impl Target {
    fn post_url(&self) -> String {
        match self.kind {
            Kind::Squad | Kind::SquadTls | Kind::SquadPostgres => {
                format!("{}/v1/alerts", self.base)
            }
            Kind::Alertmanager => format!("{}/api/v2/alerts", self.base),
        }
    }

    async fn start(kind: Kind, client: &reqwest::Client, extras: Extras<'_>) -> Result<Target> {
        match kind {
            Kind::Squad => start_squad(client, kind, None, None).await,
            Kind::SquadTls => start_squad(client, kind, extras.tls, None).await,
            Kind::SquadPostgres => {
                let pg = extras
                    .pg
                    .context("squad serve pg: no PostgreSQL was started")?;
                let n = DATABASES.fetch_add(1, Ordering::Relaxed);
                let url = pg.create_database(&format!("bench_{n}"))?;
                start_squad(client, kind, None, Some(&url)).await
            }
            Kind::Alertmanager => start_alertmanager(client).await,
        }
    }
}

async fn start_squad(
    client: &reqwest::Client,
    kind: Kind,
    tls: Option<&TlsFiles>,
    store_url: Option<&str>,
) -> Result<Target> {
    let dir = tempfile::Builder::new().prefix("squad-bench-").tempdir()?;
    let config = dir.path().join("squad.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbody_limit_bytes = 4194304\n\
             [server.auth]\ntokens = [\"{TOKEN}\"]\n\
             [server.rate_limit]\nper_second = 1000000\nburst = 1000000\n{}\
             [backend]\ndata_dir = \"{}\"\n\
             [intake]\nrepeat_note_seconds = 5\n{}",
            tls.map_or_else(String::new, |t| format!(
                "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                t.cert.display(),
                t.key.display()
            )),
            data.display(),
            store_url.map_or_else(String::new, |u| format!("[store]\nurl = \"{u}\"\n"))
        ),
    )?;
    let log = dir.path().join("squad.log");
    let spawned = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_squad"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("start squad serve")?;
    let stdout = child.stdout.take();
    let mut proc = Proc { child, dir, log };
    let Some(stdout) = stdout else {
        bail!("squad serve: no stdout");
    };
    // A plain thread reads the announcement, then drains stdout until the process ends.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("squad serve: listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Some(base)) => {
                let ready_in = ready(client, &format!("{base}/readyz"), &mut proc, spawned).await?;
                return Ok(Target {
                    kind,
                    base,
                    proc,
                    ready_in,
                });
            }
            Ok(None) | Err(_) => {
                if let Some(why) = proc.exited() {
                    bail!("squad serve {why}");
                }
                if Instant::now() > deadline {
                    bail!(
                        "squad serve not listening within 60 s:\n{}",
                        proc.log_tail()
                    );
                }
            }
        }
    }
}

async fn start_alertmanager(client: &reqwest::Client) -> Result<Target> {
    let dir = tempfile::Builder::new()
        .prefix("squad-bench-am-")
        .tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
    )?;
    let log = dir.path().join("alertmanager.log");
    let spawned = Instant::now();
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.external-url=http://127.0.0.1:{port}/"))
        // No gossip: it would bind 0.0.0.0:9094 and hold start-up back.
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("start {ALERTMANAGER}"))?;
    let mut proc = Proc { child, dir, log };
    let base = format!("http://127.0.0.1:{port}");
    let ready_in = ready(client, &format!("{base}/-/ready"), &mut proc, spawned).await?;
    Ok(Target {
        kind: Kind::Alertmanager,
        base,
        proc,
        ready_in,
    })
}

/// Polls `url` every 5 ms until it answers 2xx; the time since `spawned`.
async fn ready(
    client: &reqwest::Client,
    url: &str,
    proc: &mut Proc,
    spawned: Instant,
) -> Result<Duration> {
    let deadline = spawned + Duration::from_secs(60);
    loop {
        let ok = client
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(spawned.elapsed());
        }
        if let Some(why) = proc.exited() {
            bail!("{url}: {why}");
        }
        if Instant::now() > deadline {
            bail!("{url}: not ready within 60 s:\n{}", proc.log_tail());
        }
        sleep(Duration::from_millis(5)).await;
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    hwm_kib: u64,
}

fn mem(pid: u32) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// Clients.

fn client(cfg: &Config, tls: Option<&TlsFiles>) -> Result<reqwest::Client> {
    squad_adapters::tls::install_crypto_provider();
    let builder = match tls {
        Some(t) => reqwest::Client::builder().tls_certs_only([t.ca()?]),
        None => reqwest::Client::builder(),
    };
    builder
        .pool_max_idle_per_host(cfg.clients)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .context("reqwest client")
}

/// Posts one body; `Ok` on a 2xx answer (its body read), else what went wrong.
async fn post(
    client: &reqwest::Client,
    url: &str,
    kind: Kind,
    body: Vec<u8>,
) -> Result<(), String> {
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if kind != Kind::Alertmanager {
        req = req.bearer_auth(TOKEN);
    }
    let resp = req.send().await.map_err(|e| format!("request: {e}"))?;
    let status = resp.status();
    let text = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&text[..text.len().min(200)])
        ))
    }
}

async fn metrics_text(client: &reqwest::Client, base: &str) -> Result<String> {
    let resp = client.get(format!("{base}/metrics")).send().await?;
    if !resp.status().is_success() {
        bail!("GET /metrics: {}", resp.status());
    }
    Ok(resp.text().await?)
}

/// The value of an unlabelled series in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------

fn alertmanager_version() -> Option<String> {
    let out = Command::new(ALERTMANAGER).arg("--version").output().ok()?;
    let text = [out.stdout, out.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(str::to_owned)
}

async fn run() -> Result<()> {
    let cfg = Config::from_env()?;
    // The sustained passes measure the intake: the crew's replay of a real fix would run inside
    // the measured window, at a moment that differs per pass. The storm keeps it.
    let payloads = Arc::new(Payloads::new(cfg.workloads, false));
    let storm_payloads = Arc::new(Payloads::new(cfg.workloads, true));
    let have_am = Path::new(ALERTMANAGER).exists();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "squad intake bench{} (loopback, {cpus} CPUs shared by clients and targets)",
        if cfg.smoke {
            ": smoke run (no --bench: cargo test); `cargo bench --bench intake` measures"
        } else {
            ""
        }
    );
    println!(
        "  sustained: {} client tasks, batches of {:?} alerts per request, {} s warm-up + {} s measured per pass, fresh process per pass",
        cfg.clients,
        cfg.batch_sizes(),
        cfg.warmup,
        cfg.seconds
    );
    println!(
        "  storm: {} alerts into a fresh squad serve, batches of {}, {} clients; settle wait up to {} s",
        cfg.storm, cfg.batch, cfg.clients, cfg.settle_seconds
    );
    println!(
        "  alerts: {ALERT_NAME} over {} workloads in {NAMESPACE} (the storm's first: payment-service), a distinct pod per alert",
        cfg.workloads
    );
    println!("  squad: {}", env!("CARGO_BIN_EXE_squad"));
    println!(
        "  alertmanager: {}",
        if have_am {
            alertmanager_version().unwrap_or_else(|| ALERTMANAGER.to_owned())
        } else {
            format!("not installed at {ALERTMANAGER}: squad alone")
        }
    );
    println!(
        "  env: SQUAD_BENCH_SECONDS, SQUAD_BENCH_WARMUP, SQUAD_BENCH_CLIENTS, SQUAD_BENCH_BATCH, SQUAD_BENCH_STORM, SQUAD_BENCH_WORKLOADS, SQUAD_BENCH_SETTLE, SQUAD_BENCH_TLS, SQUAD_BENCH_POSTGRES"
    );

    let tls = if std::env::var("SQUAD_BENCH_TLS").is_ok_and(|v| v.trim() == "0") {
        None
    } else {
        match TlsFiles::generate() {
            Ok(t) => Some(t),
            Err(e) => {
                println!("  https: skipped ({e:#})");
                None
            }
        }
    };
    // PostgreSQL (scripts/tools installs it): `squad serve` on `[store] url` too, unless
    // SQUAD_BENCH_POSTGRES=0.
    let pg = if std::env::var("SQUAD_BENCH_POSTGRES").is_ok_and(|v| v.trim() == "0")
        || !squad_testkit::postgres::available_or_skip("intake bench")?
    {
        None
    } else {
        Some(squad_testkit::postgres::RealPostgres::start().await?)
    };
    let started = Instant::now();
    println!("\n== sustained intake ==");
    let mut reports = Vec::new();
    for batch in cfg.batch_sizes() {
        for kind in [
            Kind::Squad,
            Kind::SquadTls,
            Kind::SquadPostgres,
            Kind::Alertmanager,
        ] {
            if (kind == Kind::Alertmanager && !have_am)
                || (kind == Kind::SquadTls && tls.is_none())
                || (kind == Kind::SquadPostgres && pg.is_none())
            {
                continue;
            }
            eprintln!("intake bench: {} batch {batch} ...", kind.name());
            let extras = Extras {
                tls: tls.as_ref(),
                pg: pg.as_ref(),
            };
            reports.push(sustained(&cfg, &payloads, kind, batch, extras).await?);
        }
    }
    print_passes(&reports);

    let outcome = if cfg.storm > 0 {
        println!("\n== storm ==");
        eprintln!("intake bench: storm of {} ...", cfg.storm);
        Some(storm::storm(&cfg, &storm_payloads).await?)
    } else {
        None
    };
    println!("\ntotal run time {:.1} s", started.elapsed().as_secs_f64());
    if cfg.smoke {
        smoke_check(&reports, outcome.as_ref())?;
    }
    Ok(())
}

/// Under `cargo test`: the tool must still work end to end, whatever the figures.
fn smoke_check(reports: &[PassReport], storm: Option<&StormOutcome>) -> Result<()> {
    for r in reports {
        if r.tally.errors > 0 || r.tally.alerts == 0 {
            bail!(
                "{} batch {}: {} alerts accepted, {} errors (first: {})",
                r.kind.name(),
                r.batch,
                r.tally.alerts,
                r.tally.errors,
                r.tally.first_error.as_deref().unwrap_or("none")
            );
        }
    }
    if let Some(s) = storm
        && (s.errors > 0 || !s.processed_all || !s.settled || s.incidents != s.expected_incidents)
    {
        bail!(
            "storm: {} errors, processed all: {}, settled: {}, {} incidents (expected {})",
            s.errors,
            s.processed_all,
            s.settled,
            s.incidents,
            s.expected_incidents
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("intake bench: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C drops the run, and with it every child process and temporary directory.
    let result = rt.block_on(async {
        tokio::select! {
            r = run() => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intake bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

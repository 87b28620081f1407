//! Sustained intake: each target taking alerts as fast as the clients send them, for a window.

use super::*;

#[derive(Default)]
pub(super) struct TaskTally {
    pub(super) alerts: u64,
    pub(super) requests: u64,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    pub(super) latencies_us: Vec<u64>,
}

pub(super) struct PassReport {
    pub(super) kind: Kind,
    pub(super) clients: usize,
    pub(super) batch: usize,
    pub(super) window: Duration,
    pub(super) tally: TaskTally,
    /// Resident memory 1 s after it was ready, before any load.
    idle: Mem,
    after: Mem,
    ready_in: Duration,
    /// squad only: the median latency of a 4 KiB append and fdatasync on the data directory's
    /// file system, measured right before the pass (the floor under every durable answer).
    fsync: Option<Duration>,
    /// squad only: accepted and processed by its intake at the end of the pass.
    intake: Option<(f64, f64)>,
}

impl PassReport {
    fn alerts_per_s(&self) -> f64 {
        self.tally.alerts as f64 / self.window.as_secs_f64()
    }

    fn requests_per_s(&self) -> f64 {
        self.tally.requests as f64 / self.window.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let l = &self.tally.latencies_us;
        if l.is_empty() {
            return f64::NAN;
        }
        let rank = ((p * l.len() as f64).ceil() as usize).clamp(1, l.len());
        l[rank - 1] as f64 / 1000.0
    }
}

pub(super) async fn sustained(
    cfg: &Config,
    payloads: &Arc<Payloads>,
    kind: Kind,
    batch: usize,
    extras: Extras<'_>,
) -> Result<PassReport> {
    let client = client(cfg, extras.tls)?;
    let fsync = match kind {
        Kind::Alertmanager => None,
        _ => Some(
            tokio::task::spawn_blocking(|| fsync_latency(100))
                .await
                .context("fsync probe")??,
        ),
    };
    let target = Target::start(kind, &client, extras).await?;
    let pid = target.proc.pid();
    sleep(Duration::from_secs(1)).await;
    let idle = mem(pid);
    let url: Arc<str> = target.post_url().into();
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let measure_from = t0 + Duration::from_secs(cfg.warmup);
    let until = measure_from + Duration::from_secs(cfg.seconds);
    let mut tasks = Vec::with_capacity(cfg.clients);
    for _ in 0..cfg.clients {
        let (client, url, next, payloads) =
            (client.clone(), url.clone(), next.clone(), payloads.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = TaskTally::default();
            while Instant::now() < until {
                let first = next.fetch_add(batch as u64, Ordering::Relaxed);
                let body = payloads.body(kind, first..first + batch as u64);
                let sent = Instant::now();
                let outcome = post(&client, &url, kind, body).await;
                let done = Instant::now();
                match outcome {
                    Ok(()) if done >= measure_from && done <= until => {
                        t.alerts += batch as u64;
                        t.requests += 1;
                        t.latencies_us.push((done - sent).as_micros() as u64);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        t.errors += 1;
                        t.first_error.get_or_insert(e);
                    }
                }
            }
            t
        }));
    }
    let mut tally = TaskTally::default();
    for task in tasks {
        let t = task.await.context("client task")?;
        tally.alerts += t.alerts;
        tally.requests += t.requests;
        tally.errors += t.errors;
        if tally.first_error.is_none() {
            tally.first_error = t.first_error;
        }
        tally.latencies_us.extend(t.latencies_us);
    }
    tally.latencies_us.sort_unstable();
    let after = mem(pid);
    let intake = match kind {
        Kind::Squad | Kind::SquadTls | Kind::SquadPostgres => {
            let text = metrics_text(&client, &target.base).await?;
            Some((
                metric(&text, "squad_intake_accepted").unwrap_or(f64::NAN),
                metric(&text, "squad_intake_processed").unwrap_or(f64::NAN),
            ))
        }
        Kind::Alertmanager => None,
    };
    let ready_in = target.ready_in;
    drop(target);
    Ok(PassReport {
        kind,
        clients: cfg.clients,
        batch,
        window: Duration::from_secs(cfg.seconds),
        tally,
        idle,
        after,
        ready_in,
        fsync,
        intake,
    })
}

/// The median time of `n` appends of 4 KiB, each followed by fdatasync, in a file on the file
/// system the targets' data directories are on (the system's temporary directory).
fn fsync_latency(n: usize) -> Result<Duration> {
    use std::io::Write;
    let dir = tempfile::Builder::new()
        .prefix("squad-bench-fsync-")
        .tempdir()?;
    let mut file = std::fs::File::create(dir.path().join("probe"))?;
    let block = [0u8; 4096];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(t.elapsed());
    }
    times.sort_unstable();
    Ok(times[n / 2])
}

pub(super) fn print_passes(reports: &[PassReport]) {
    println!(
        "{:<15} {:>5} {:>10} {:>9} {:>8} {:>8} {:>8} {:>6} {:>19} {:>9} {:>9}",
        "target",
        "batch",
        "alerts/s",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "VmRSS MiB idle->aft",
        "VmHWM MiB",
        "ready ms"
    );
    for r in reports {
        println!(
            "{:<15} {:>5} {:>10.0} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8.1} -> {:>7.1} {:>9.1} {:>9.1}",
            r.kind.name(),
            r.batch,
            r.alerts_per_s(),
            r.requests_per_s(),
            r.percentile_ms(0.50),
            r.percentile_ms(0.99),
            r.percentile_ms(1.0),
            r.tally.errors,
            mib(r.idle.rss_kib),
            mib(r.after.rss_kib),
            mib(r.after.hwm_kib),
            r.ready_in.as_secs_f64() * 1000.0,
        );
    }
    for r in reports {
        if let Some(e) = &r.tally.first_error {
            println!("  {} batch {}: first error: {e}", r.kind.name(), r.batch);
        }
        if let Some(f) = r.fsync {
            let bound = (r.clients * r.batch) as f64 / f.as_secs_f64();
            println!(
                "  {} batch {}: fdatasync p50 {:.2} ms just before: with every answer after a flush, {} clients of {} alerts cannot exceed {bound:.0} alerts/s ({:.0}% of it reached)",
                r.kind.name(),
                r.batch,
                f.as_secs_f64() * 1000.0,
                r.clients,
                r.batch,
                100.0 * r.alerts_per_s() / bound
            );
        }
        if let Some((accepted, processed)) = r.intake {
            println!(
                "  {} batch {}: at the end of the pass the intake had accepted {accepted:.0} and processed {processed:.0} alerts (warm-up included)",
                r.kind.name(),
                r.batch
            );
        }
    }
    let batches: Vec<usize> = {
        let mut b: Vec<usize> = reports.iter().map(|r| r.batch).collect();
        b.dedup();
        b
    };
    for batch in batches {
        let find = |k: Kind| reports.iter().find(|r| r.batch == batch && r.kind == k);
        if let (Some(s), Some(a)) = (find(Kind::Squad), find(Kind::Alertmanager)) {
            println!(
                "ratio squad/alertmanager, batch {batch}: throughput {:.2}x, p99 latency {:.2}x",
                s.alerts_per_s() / a.alerts_per_s(),
                s.percentile_ms(0.99) / a.percentile_ms(0.99)
            );
        }
        if let (Some(p), Some(a)) = (find(Kind::SquadPostgres), find(Kind::Alertmanager)) {
            println!(
                "ratio squad on PostgreSQL/alertmanager, batch {batch}: throughput {:.2}x, p99 latency {:.2}x",
                p.alerts_per_s() / a.alerts_per_s(),
                p.percentile_ms(0.99) / a.percentile_ms(0.99)
            );
        }
        if let (Some(t), Some(s)) = (find(Kind::SquadTls), find(Kind::Squad)) {
            println!(
                "ratio squad HTTPS/HTTP, batch {batch}: throughput {:.2}x, p99 latency {:.2}x",
                t.alerts_per_s() / s.alerts_per_s(),
                t.percentile_ms(0.99) / s.percentile_ms(0.99)
            );
        }
    }
}

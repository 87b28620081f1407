//! The storm: many alerts for many workloads at once, then the incidents they open, settled.

use super::*;

/// What the smoke check needs from a storm run.
pub(super) struct StormOutcome {
    pub(super) errors: u64,
    pub(super) processed_all: bool,
    pub(super) settled: bool,
    pub(super) incidents: usize,
    pub(super) expected_incidents: usize,
}

pub(super) async fn storm(cfg: &Config, payloads: &Arc<Payloads>) -> Result<StormOutcome> {
    let client = client(cfg, None)?;
    let target = Target::start(Kind::Squad, &client, Extras::default()).await?;
    let pid = target.proc.pid();
    let before = mem(pid);
    let url: Arc<str> = target.post_url().into();
    let total = cfg.storm;
    let batch = cfg.batch as u64;
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(cfg.clients);
    for _ in 0..cfg.clients {
        let (client, url, next, payloads) =
            (client.clone(), url.clone(), next.clone(), payloads.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = TaskTally::default();
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    return t;
                }
                let last = (first + batch).min(total);
                let body = payloads.body(Kind::Squad, first..last);
                let sent = Instant::now();
                match post(&client, &url, Kind::Squad, body).await {
                    Ok(()) => {
                        t.alerts += last - first;
                        t.requests += 1;
                        t.latencies_us.push(sent.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        t.errors += 1;
                        t.first_error.get_or_insert(e);
                    }
                }
            }
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
    let accepted_in = t0.elapsed();
    tally.latencies_us.sort_unstable();
    let accepted = tally.alerts;

    // Until the intake has processed everything it accepted.
    let process_deadline = Instant::now() + Duration::from_secs(120);
    let mut processed = 0.0;
    let processed_in = loop {
        if let Ok(text) = metrics_text(&client, &target.base).await {
            processed = metric(&text, "squad_intake_processed").unwrap_or(0.0);
            if processed >= accepted as f64 {
                break Some(t0.elapsed());
            }
        }
        if Instant::now() > process_deadline {
            break None;
        }
        sleep(Duration::from_millis(50)).await;
    };

    // Then give the crew (and the repeat counter, written every repeat_note_seconds) time.
    let settle_start = Instant::now();
    let settle_deadline = settle_start + Duration::from_secs(cfg.settle_seconds);
    let (incidents, settled) = loop {
        let list = incidents(&client, &target.base).await?;
        let busy = list
            .iter()
            .any(|i| matches!(i.state.as_str(), "open" | "diagnosing"));
        let repeats: u64 = list.iter().map(|i| i.repeats).sum();
        let all_counted = repeats + list.len() as u64 >= accepted;
        if !busy && all_counted {
            break (list, true);
        }
        if Instant::now() > settle_deadline {
            break (list, false);
        }
        sleep(Duration::from_millis(250)).await;
    };
    let settled_in = settle_start.elapsed();
    let after = mem(pid);
    let text = metrics_text(&client, &target.base)
        .await
        .unwrap_or_default();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |p: f64| {
        let l = &tally.latencies_us;
        if l.is_empty() {
            return f64::NAN;
        }
        let rank = ((p * l.len() as f64).ceil() as usize).clamp(1, l.len());
        l[rank - 1] as f64 / 1000.0
    };
    println!(
        "posted {total} alerts in {} requests of up to {batch}: {accepted} accepted, {} errors",
        tally.requests + tally.errors,
        tally.errors
    );
    if let Some(e) = &tally.first_error {
        println!("  first error: {e}");
    }
    println!(
        "time to accept all:   {:>9.0} ms  ({:.0} alerts/s; request p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms)",
        ms(accepted_in),
        accepted as f64 / accepted_in.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    match processed_in {
        Some(d) => println!(
            "time to process all:  {:>9.0} ms  ({:.0} alerts/s from the first post)",
            ms(d),
            accepted as f64 / d.as_secs_f64()
        ),
        None => println!(
            "time to process all:  not within 120 s after the last accept ({processed:.0} of {accepted} processed)"
        ),
    }
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &incidents {
        *states.entry(i.state.as_str()).or_default() += 1;
    }
    let diagnosed = incidents.iter().filter(|i| i.root_cause.is_some()).count();
    let past_diagnosis = incidents
        .iter()
        .filter(|i| !matches!(i.state.as_str(), "open" | "diagnosing"))
        .count();
    let repeats: u64 = incidents.iter().map(|i| i.repeats).sum();
    let expected_incidents = cfg
        .workloads
        .min(usize::try_from(accepted).unwrap_or(usize::MAX));
    println!(
        "incidents opened:     {:>9}  (expected {expected_incidents}); {} after waiting {:.1} s",
        incidents.len(),
        if settled { "settled" } else { "NOT settled" },
        settled_in.as_secs_f64()
    );
    println!(
        "states:               {}",
        states
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("with a root cause:    {diagnosed:>9}; past diagnosing: {past_diagnosis}");
    for i in incidents.iter().filter(|i| i.root_cause.is_some()) {
        println!(
            "  {} {} [{}]: {}",
            i.id,
            i.workload,
            i.state,
            i.root_cause.as_deref().unwrap_or("")
        );
    }
    println!(
        "summed repeats:       {repeats:>9}  (expected {})",
        accepted.saturating_sub(incidents.len() as u64)
    );
    println!(
        "/metrics:             squad_incidents_opened_total {}, squad_alerts_deduplicated_total {}, squad_intake_accepted {}, squad_intake_processed {}",
        metric(&text, "squad_incidents_opened_total").unwrap_or(f64::NAN),
        metric(&text, "squad_alerts_deduplicated_total").unwrap_or(f64::NAN),
        metric(&text, "squad_intake_accepted").unwrap_or(f64::NAN),
        metric(&text, "squad_intake_processed").unwrap_or(f64::NAN),
    );
    let store = dir_size(target.proc.dir.path());
    println!(
        "memory:               VmRSS {:.1} MiB before, {:.1} MiB after; peak VmHWM {:.1} MiB; data dir {:.1} MiB",
        mib(before.rss_kib),
        mib(after.rss_kib),
        mib(after.hwm_kib),
        store as f64 / (1024.0 * 1024.0)
    );
    drop(target);
    Ok(StormOutcome {
        errors: tally.errors,
        processed_all: processed_in.is_some(),
        settled,
        incidents: incidents.len(),
        expected_incidents,
    })
}

struct IncidentRow {
    id: String,
    state: String,
    workload: String,
    root_cause: Option<String>,
    repeats: u64,
}

async fn incidents(client: &reqwest::Client, base: &str) -> Result<Vec<IncidentRow>> {
    let resp = client
        .get(format!("{base}/v1/incidents"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("GET /v1/incidents: {}", resp.status());
    }
    let v: Value = resp.json().await?;
    let list = v["incidents"].as_array().cloned().unwrap_or_default();
    Ok(list
        .iter()
        .map(|i| IncidentRow {
            id: i["id"].as_str().unwrap_or("").to_owned(),
            state: i["state"].as_str().unwrap_or("").to_owned(),
            workload: i["workload"].as_str().unwrap_or("").to_owned(),
            root_cause: i["root_cause"].as_str().map(str::to_owned),
            repeats: i["repeats"].as_u64().unwrap_or(0),
        })
        .collect())
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

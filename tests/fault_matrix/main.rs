//! The fault matrix: `squad serve` on the Kubernetes backend, with many incidents in flight at
//! once, every port behind a fault-injecting proxy (GitHub 5xx, 429, timeouts, lost answers to
//! writes, down; Kubernetes 403/5xx/timeouts/down; Prometheus down; the model slow, failing or
//! answering garbage; HolmesGPT crashing), crossed with `kill -9` of the daemon at several
//! points. Measured per row: incidents lost, actions duplicated, incidents stuck without a
//! timeline entry saying why; all three must be 0.
//!
//! The default run is a short subset; `SQUAD_FAULT_MATRIX=full` runs every row, with and without
//! kills (`scripts/fault-matrix`). `SQUAD_FAULT_MATRIX_TABLE=<file>` writes the table there.
//! docs/faults.md says what is injected and how kills are placed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The matrix runs real processes on the wall clock: its deadlines and polls are real time.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod measure;
mod proxy;
mod rows;
mod run;
mod world;

use std::time::{Duration, Instant};

#[test]
fn faults_at_every_port_and_kill_9_lose_duplicate_and_strand_nothing() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let full = std::env::var("SQUAD_FAULT_MATRIX").as_deref() == Ok("full");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let cluster = world::Cluster::start("oomkilled");
    // Past it, a row still goes on while its incidents make progress, for up to 150 s more.
    let deadline = Duration::from_secs(if full { 240 } else { 150 });
    let base = run::run(rt.handle(), &cluster, &rows::baseline(), 0, deadline);
    let baseline_entries = base.entries;
    let mut rows = if full { rows::full() } else { rows::short() };
    // SQUAD_FAULT_MATRIX_ROWS=<text>,<text>: only the rows whose "port fault" contains one.
    if let Ok(only) = std::env::var("SQUAD_FAULT_MATRIX_ROWS") {
        rows.retain(|r| {
            let name = format!("{} {}", r.port.name(), r.fault);
            only.split(',').any(|o| name.contains(o))
        });
    }
    // Two rows at a time (each has its own world and daemon).
    let lanes = 2;
    let mut outcomes: Vec<Option<measure::Outcome>> = vec![None; rows.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..lanes)
            .map(|lane| {
                let (rows, cluster, rt) = (&rows, &cluster, rt.handle());
                scope.spawn(move || {
                    rows.iter()
                        .enumerate()
                        .filter(|(i, _)| i % lanes == lane)
                        .map(|(i, r)| (i, run::run(rt, cluster, r, baseline_entries, deadline)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, o) in h.join().unwrap() {
                outcomes[i] = Some(o);
            }
        }
    });
    let mut all = vec![base.clone()];
    for mut o in outcomes.into_iter().flatten() {
        // More commits than the fault-free run made is a duplicated action too.
        if o.commits > base.commits {
            o.duplicated += o.commits - base.commits;
            o.notes.push(format!(
                "{} commits more than the baseline's {}",
                o.commits - base.commits,
                base.commits
            ));
        }
        all.push(o);
    }
    let table = measure::table(&all);
    println!(
        "\n{table}\n{} rows, {} s",
        all.len(),
        started.elapsed().as_secs()
    );
    if let Ok(path) = std::env::var("SQUAD_FAULT_MATRIX_TABLE") {
        std::fs::write(path, &table).unwrap();
    }
    let bad: Vec<&measure::Outcome> = all.iter().filter(|o| !o.clean()).collect();
    assert!(
        bad.is_empty(),
        "rows with an incident lost, an action duplicated or an incident stuck without a reason:\n{table}"
    );
    // The matrix measured something: every row opened the incidents, and the faults fired.
    assert!(
        all.iter().all(|o| o.incidents >= run::ALERTS.len()),
        "{table}"
    );
    assert!(
        all.iter().all(|o| o.port == "-" || o.injected > 0),
        "a row whose fault never fired measures nothing:\n{table}"
    );
    assert!(
        all.iter().any(|o| o.kills > 0),
        "no row killed the daemon:\n{table}"
    );
}

//! Replicas on one PostgreSQL and the real kube-apiserver's Leases: `squad serve` twice, incidents
//! in flight on both, `kill -9` the replica that holds the intake (and its share of the shards)
//! → the other takes its Leases over once they expire and finishes every incident. Measured: the
//! takeover time, incidents lost (an alert answered 202 whose incident never settles or never
//! exists), actions duplicated (two incidents for one alert group, a forge marker twice, a
//! commit twice), and the time until every incident settled.
//!
//! `SQUAD_FAILOVER_RATES=1` also runs the same alerts on 1, 2 and 3 replicas (no kill) and
//! prints incidents per minute for each: the README's table.
//!
//! Skips with a message when the apiserver or PostgreSQL is not installed, unless `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use squad_protocols::WorkloadRef;
use squad_runtime::shards::{INTAKE, shard_lease, shard_of};
use tokio::time::{Instant, sleep};
use world::{Fleet, NAMESPACE, Run, SHARDS};

/// Each workload gets one incident per alert name.
const ALERT_NAMES: [&str; 2] = ["KubernetesPodOOMKilled", "KubePodCrashLooping"];
/// Workloads, each in a shard of its own.
const WORKLOADS: usize = 4;
const SETTLED: [&str; 3] = ["awaiting_approval", "resolved", "escalated"];
/// How long every incident may take to settle (B'Elanna's replay is most of it, on 2 cores).
const SETTLE_WITHIN: Duration = Duration::from_secs(900);

/// The leases a daemon holds, from its `/metrics` (`squad_lease_held{lease="…"} 1`).
async fn held(run: &Run, d: usize) -> Option<BTreeSet<String>> {
    let (code, text) = run.api.get_text(&run.daemons[d].url, "/metrics").await;
    if code != 200 {
        return None;
    }
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix("squad_lease_held{lease=\""))
            .filter_map(|l| l.split_once("\"} "))
            .filter(|(_, v)| v.trim() == "1")
            .map(|(lease, _)| lease.to_owned())
            .collect(),
    )
}

fn every_lease() -> BTreeSet<String> {
    (0..SHARDS)
        .map(shard_lease)
        .chain([INTAKE.to_owned()])
        .collect()
}

/// Waits until the daemons `live` hold every lease between them, each at least one shard.
async fn spread(run: &Run, live: &[usize]) -> Duration {
    let t0 = Instant::now();
    loop {
        let mut all = BTreeSet::new();
        let mut each = true;
        for &d in live {
            let h = held(run, d).await.unwrap_or_default();
            each &= h.iter().any(|l| l != INTAKE);
            all.extend(h);
        }
        if each && all == every_lease() {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the leases did not spread over {live:?} in 90 s: {all:?}\n{}",
            run.daemons[live[0]].log()
        );
        sleep(Duration::from_millis(200)).await;
    }
}

/// The (alert, workload) groups the alerts open incidents for.
fn expected(fleet: &Fleet) -> BTreeSet<(String, String)> {
    fleet
        .workloads
        .iter()
        .flat_map(|w| {
            ALERT_NAMES
                .iter()
                .map(move |n| ((*n).to_owned(), format!("Deployment {NAMESPACE}/{w}")))
        })
        .collect()
}

fn group(i: &Value) -> (String, String) {
    (
        i["alert"].as_str().unwrap_or("").to_owned(),
        i["workload"].as_str().unwrap_or("").to_owned(),
    )
}

fn is_settled(i: &Value) -> bool {
    SETTLED.contains(&i["state"].as_str().unwrap_or(""))
}

/// Every incident, from the first of `live` that answers.
async fn incidents(run: &Run, live: &[usize]) -> Vec<Value> {
    for &d in live {
        if let Some(list) = run.api.incidents(&run.daemons[d].url).await {
            return list;
        }
    }
    Vec::new()
}

/// Polls until every expected group has a settled incident; the incidents at the end.
async fn until_settled(run: &Run, live: &[usize], want: &BTreeSet<(String, String)>) -> Vec<Value> {
    let t0 = Instant::now();
    loop {
        let list = incidents(run, live).await;
        let done: BTreeSet<_> = list.iter().filter(|i| is_settled(i)).map(group).collect();
        if want.is_subset(&done) || t0.elapsed() > SETTLE_WITHIN {
            return list;
        }
        sleep(Duration::from_millis(500)).await;
    }
}

/// Incidents lost and actions duplicated, with what they were.
struct Count {
    lost: usize,
    duplicated: usize,
    states: BTreeMap<String, usize>,
    notes: Vec<String>,
}

fn count(run: &Run, list: &[Value], want: &BTreeSet<(String, String)>) -> Count {
    let mut c = Count {
        lost: 0,
        duplicated: 0,
        states: BTreeMap::new(),
        notes: Vec::new(),
    };
    let mut groups: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in list {
        *groups.entry(group(i)).or_default() += 1;
        *c.states
            .entry(i["state"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    for g in want {
        let settled = list.iter().any(|i| group(i) == *g && is_settled(i));
        if !settled {
            c.lost += 1;
            c.notes
                .push(format!("no settled incident for {} on {}", g.0, g.1));
        }
    }
    for (g, n) in &groups {
        if *n > 1 {
            c.duplicated += n - 1;
            c.notes
                .push(format!("{n} incidents for {} on {}", g.0, g.1));
        }
    }
    for (m, n) in squad_testkit::effects::markers(&run.forge).unwrap() {
        if n > 1 {
            c.duplicated += n - 1;
            c.notes.push(format!("{m} {n} times"));
        }
    }
    // Why the escalated ones escalated (the reason of their last move there), each once.
    let why: BTreeSet<String> = list
        .iter()
        .filter(|i| i["state"] == "escalated")
        .filter_map(|i| {
            i["timeline"]
                .as_array()?
                .iter()
                .filter_map(|e| e["event"].as_str())
                .rfind(|e| e.contains("-> escalated"))
                .map(|e| {
                    e.split_once(": ")
                        .map_or(e, |(_, r)| r)
                        .chars()
                        .take(160)
                        .collect()
                })
        })
        .collect();
    c.notes
        .extend(why.into_iter().map(|w| format!("escalated: {w}")));
    let commits = squad_testkit::effects::commits(&run.repo, run.seed).unwrap();
    c.duplicated += commits.duplicated;
    c.notes.extend(commits.notes);
    c
}

/// The shard lease of an incident's workload (`Deployment ns/name`).
fn lease_of(i: &Value) -> String {
    let w = i["workload"].as_str().unwrap_or("");
    let (ns, name) = w
        .split_once(' ')
        .and_then(|(_, r)| r.split_once('/'))
        .unwrap_or(("", ""));
    shard_lease(shard_of(&WorkloadRef::deployment(ns, name), SHARDS))
}

fn minutes(d: Duration) -> f64 {
    d.as_secs_f64() / 60.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_s_incidents_are_finished_by_the_other() {
    const TEST: &str = "a_killed_replica_s_incidents_are_finished_by_the_other";
    let Some(fleet) = Fleet::start(TEST, WORKLOADS).await else {
        return;
    };
    let want = expected(&fleet);
    let mut run = Run::start(&fleet, "failover", 2).await;
    let spread_in = spread(&run, &[0, 1]).await;
    let t0 = Instant::now();
    let (code, text) = run
        .api
        .post(
            &run.daemons[1].url,
            "/v1/alerts",
            &fleet.alerts(&ALERT_NAMES),
        )
        .await;
    assert_eq!(code, 202, "{text}");

    // The victim: the replica holding the intake, killed once every incident exists and one of
    // its own has begun (a few timeline entries) but none of its own has settled.
    let victim = if held(&run, 0).await.unwrap().contains(INTAKE) {
        0
    } else {
        1
    };
    let survivor = 1 - victim;
    let victims_leases = held(&run, victim).await.unwrap();
    let kill_by = Instant::now() + Duration::from_secs(180);
    let in_flight = loop {
        let list = incidents(&run, &[0, 1]).await;
        let mine: Vec<&Value> = list
            .iter()
            .filter(|i| victims_leases.contains(&lease_of(i)))
            .collect();
        let all_there = want.iter().all(|g| list.iter().any(|i| group(i) == *g));
        let begun = mine
            .iter()
            .any(|i| i["timeline"].as_array().map_or(0, Vec::len) >= 4);
        let unsettled = mine.iter().filter(|i| !is_settled(i)).count();
        if (all_there && begun && unsettled == mine.len()) || Instant::now() > kill_by {
            break unsettled;
        }
        sleep(Duration::from_millis(100)).await;
    };
    let killed_at = Instant::now();
    run.daemons[victim].kill();

    // The takeover: the survivor holds every lease.
    let takeover = loop {
        if held(&run, survivor).await.unwrap_or_default() == every_lease() {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "the survivor did not take the leases over in 60 s\n{}",
            run.daemons[survivor].log()
        );
        sleep(Duration::from_millis(100)).await;
    };
    // /readyz says the same as /metrics.
    let (code, ready) = run
        .api
        .get_text(&run.daemons[survivor].url, "/readyz")
        .await;
    assert_eq!(code, 200, "{ready}");
    assert!(
        ready.contains(&format!("shards held: {SHARDS} of {SHARDS}"))
            && ready.ends_with("; intake: held"),
        "{ready}"
    );
    let list = until_settled(&run, &[survivor], &want).await;
    let all_in = t0.elapsed();
    let c = count(&run, &list, &want);
    // SQUAD_FAILOVER_DUMP=<file>: the incidents with their timelines, to look at.
    if let Ok(path) = std::env::var("SQUAD_FAILOVER_DUMP") {
        std::fs::write(path, serde_json::to_string_pretty(&list).unwrap()).unwrap();
    }
    println!(
        "failover: 2 replicas, {} incidents ({} of them on the killed replica's shards, {in_flight} in flight at the kill); leases spread in {:.1} s; takeover {:.1} s after kill -9 (Leases of 6 s); {} lost, {} duplicated; all settled {:.1} s after the alerts ({:.2} incidents/min); states {:?}; {}",
        want.len(),
        list.iter()
            .filter(|i| victims_leases.contains(&lease_of(i)))
            .count(),
        spread_in.as_secs_f64(),
        takeover.as_secs_f64(),
        c.lost,
        c.duplicated,
        all_in.as_secs_f64(),
        want.len() as f64 / minutes(all_in),
        c.states,
        c.notes.join("; ")
    );
    assert!(
        in_flight > 0,
        "the killed replica had nothing in flight: the test did not test a takeover"
    );
    assert_eq!(
        (c.lost, c.duplicated),
        (0, 0),
        "{}\n--- survivor's log (tail):\n{}",
        c.notes.join("\n"),
        tail(&run.daemons[survivor].log())
    );

    drop(run);
    if std::env::var("SQUAD_FAILOVER_RATES").as_deref() == Ok("1") {
        rates(&fleet, &want).await;
    }
}

fn tail(log: &str) -> &str {
    let cut = log.len().saturating_sub(6000);
    let cut = (cut..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(0);
    &log[cut..]
}

/// The same alerts on 1, 2 and 3 replicas, nobody killed: incidents per minute.
async fn rates(fleet: &Fleet, want: &BTreeSet<(String, String)>) {
    let mut table = vec![
        "| replicas | incidents | all settled in | incidents/min | lost | duplicated |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    for replicas in 1..=3 {
        let run = Run::start(fleet, &format!("rate_{replicas}"), replicas).await;
        let live: Vec<usize> = (0..replicas).collect();
        spread(&run, &live).await;
        let t0 = Instant::now();
        let (code, text) = run
            .api
            .post(
                &run.daemons[0].url,
                "/v1/alerts",
                &fleet.alerts(&ALERT_NAMES),
            )
            .await;
        assert_eq!(code, 202, "{text}");
        let list = until_settled(&run, &live, want).await;
        let took = t0.elapsed();
        let c = count(&run, &list, want);
        table.push(format!(
            "| {replicas} | {} | {:.1} s | {:.2} | {} | {} |",
            want.len(),
            took.as_secs_f64(),
            want.len() as f64 / minutes(took),
            c.lost,
            c.duplicated
        ));
        assert_eq!((c.lost, c.duplicated), (0, 0), "{}", c.notes.join("\n"));
    }
    println!("{}", table.join("\n"));
}

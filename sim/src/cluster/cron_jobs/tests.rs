#![allow(clippy::unwrap_used)]
use std::time::Duration;

use serde_json::Value;

use super::super::testing::served;
use super::*;
use crate::Scenario;

/// The Jobs the world serves now, by name, with their outcome (`Complete`, `Failed`, or "").
fn jobs(sim: &SimCluster) -> Vec<(String, String)> {
    let world = sim.world().unwrap();
    world
        .of_kind("Job", None)
        .map(|j| {
            let outcome = j["status"]["conditions"]
                .as_array()
                .and_then(|c| c.first())
                .map_or(String::new(), |c| c["type"].as_str().unwrap().to_owned());
            (objects::name(j).to_owned(), outcome)
        })
        .collect()
}

fn cron_events(sim: &SimCluster, reason: &str) -> Vec<String> {
    let s = &sim.scenario;
    sim.events(&s.workload.namespace, &s.workload.name)
        .unwrap()
        .into_iter()
        .filter(|e| e.reason == reason)
        .map(|e| e.message)
        .collect()
}

/// Commits the CronJob's manifest with `edit` applied to its text.
fn commit(
    git: &squad_adapters::git::GitRepo,
    s: &Scenario,
    at: DateTime<Utc>,
    edit: impl Fn(&str) -> String,
) {
    let path = &s.workload.manifest;
    let text = git.read("main", path).unwrap().unwrap();
    git.commit(
        "main",
        None,
        "invoice-sweeper: edit",
        &[(path.clone(), edit(&text))],
        at,
        false,
    )
    .unwrap();
}

/// Hourly since 2.4.0 (5.5 h ago): the five runs since failed at the deadline; the controller
/// keeps the newest failed one and the three newest that completed (2.3.1, 11 min each), and
/// names each Job after its scheduled minute.
#[test]
fn hourly_runs_keep_the_history_the_cronjob_asks_for() {
    let s = Scenario::embedded("cronjob-failed").unwrap();
    let (sim, _git, _clock, _dir) = served(s.clone());
    let minute = |h: u32| {
        let t: DateTime<Utc> = format!("2026-12-05T{h:02}:00:00Z").parse().unwrap();
        format!("invoice-sweeper-{}", t.timestamp() / 60)
    };
    assert_eq!(
        jobs(&sim),
        [
            (minute(7), "Complete".into()),
            (minute(8), "Complete".into()),
            (minute(9), "Complete".into()),
            (minute(14), "Failed".into()),
        ]
    );
    assert_eq!(minute(14), s.alert.labels["job_name"]);
    let saw = cron_events(&sim, "SawCompletedJob");
    let failed = saw.iter().filter(|m| m.ends_with("status: Failed")).count();
    assert_eq!(failed, 5, "{saw:?}");
    // The deadline deleted the last Job's pod: nothing of it runs; the completed ones' pods stay.
    let pods: Vec<String> = sim
        .pods_of(&s.workload_ref())
        .unwrap()
        .into_iter()
        .map(|p| format!("{} {}", p.name, p.phase))
        .collect();
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert!(pods.iter().all(|p| p.ends_with("Succeeded")), "{pods:?}");
    let world = sim.world().unwrap();
    let cron: &Value = world.of_kind("CronJob", None).next().unwrap();
    assert_eq!(
        cron["status"]["lastScheduleTime"], "2026-12-05T14:00:00Z",
        "{cron}"
    );
    assert_eq!(cron["status"]["lastSuccessfulTime"], "2026-12-05T09:11:00Z");
    assert!(cron["status"]["active"].is_null());
}

/// Runs longer than the interval: `Forbid` skips the hours an earlier run still holds
/// (`JobAlreadyActive`), `Replace` deletes the running one, `Allow` lets them overlap.
#[test]
fn concurrency_policies_decide_what_an_overlap_does() {
    let mut s = Scenario::embedded("cronjob-failed").unwrap();
    // 2.4.0 runs 105 minutes, and nothing stops it.
    s.app.run_seconds = 6300.0;
    let long = |policy: &'static str| {
        move |t: &str| {
            t.replace("activeDeadlineSeconds: 900", "activeDeadlineSeconds: 86400")
                .replace(
                    "concurrencyPolicy: Forbid",
                    &format!("concurrencyPolicy: {policy}"),
                )
        }
    };
    let at = s.now - chrono::Duration::minutes(330);
    let (sim, git, _clock, _dir) = served(s.clone());
    commit(&git, &s, at, long("Forbid"));
    // 09:10: runs at 10:00 (to 11:45), 12:00 (to 13:45), 14:00; 11:00 and 13:00 skipped.
    let skipped: Vec<_> = sim
        .events(&s.workload.namespace, &s.workload.name)
        .unwrap()
        .into_iter()
        .filter(|e| e.reason == "JobAlreadyActive")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].count, 2);
    assert_eq!(
        skipped[0].message,
        "Not starting job because prior execution is running and concurrency policy is Forbid"
    );
    let created = cron_events(&sim, "SuccessfulCreate");
    let hour = |h: u32| {
        let t: DateTime<Utc> = format!("2026-12-05T{h:02}:00:00Z").parse().unwrap();
        format!("Created job invoice-sweeper-{}", t.timestamp() / 60)
    };
    for (h, made) in [(10, true), (11, false), (12, true), (13, false), (14, true)] {
        assert_eq!(created.contains(&hour(h)), made, "{h}:00 {created:?}");
    }

    let (sim, git, _clock, _dir) = served(s.clone());
    commit(&git, &s, at, long("Replace"));
    assert!(cron_events(&sim, "JobAlreadyActive").is_empty());
    // Each hour's run deletes the one before it, still running.
    let running: Vec<_> = jobs(&sim).into_iter().filter(|j| j.1.is_empty()).collect();
    assert_eq!(running.len(), 1, "{running:?}");

    let (sim, git, _clock, _dir) = served(s.clone());
    commit(&git, &s, at, long("Allow"));
    let running: Vec<_> = jobs(&sim).into_iter().filter(|j| j.1.is_empty()).collect();
    assert_eq!(running.len(), 2, "13:00 and 14:00 overlap: {running:?}");
}

/// A suspended CronJob creates nothing from then on; a schedule that does not parse neither,
/// and the controller says so.
#[test]
fn suspended_or_unparseable_creates_nothing() {
    let s = Scenario::embedded("cronjob-failed").unwrap();
    let at = s.now - chrono::Duration::minutes(330);
    let (sim, git, _clock, _dir) = served(s.clone());
    commit(&git, &s, at, |t| {
        t.replace(
            "concurrencyPolicy: Forbid",
            "concurrencyPolicy: Forbid\n  suspend: true",
        )
    });
    let names: Vec<String> = jobs(&sim).into_iter().map(|j| j.0).collect();
    assert_eq!(
        names.len(),
        3,
        "only 2.3.1's, before the suspension: {names:?}"
    );

    let (sim, git, _clock, _dir) = served(s.clone());
    commit(&git, &s, at, |t| t.replace("\"0 * * * *\"", "\"0 * * *\""));
    assert_eq!(jobs(&sim).len(), 3);
    let said = cron_events(&sim, "UnparseableSchedule");
    assert_eq!(said.len(), 1, "{said:?}");
}

/// The fix: a deadline above the run time. The next hourly Job runs its 19 minutes through
/// and completes; the newest failed one stays until a newer one fails (or someone deletes it).
#[tokio::test(start_paused = true)]
async fn a_deadline_above_the_run_time_lets_the_next_run_complete() {
    let s = Scenario::embedded("cronjob-failed").unwrap();
    let (sim, git, clock, _dir) = served(s.clone());
    commit(&git, &s, clock.now(), |t| {
        t.replace("activeDeadlineSeconds: 900", "activeDeadlineSeconds: 1800")
    });
    // 14:40 -> 15:25: the 15:00 run (19 min) completed at 15:19.
    clock.sleep(Duration::from_secs(45 * 60)).await;
    let js = jobs(&sim);
    let last = js.last().unwrap();
    assert_eq!(last.1, "Complete", "{js:?}");
    assert!(js.iter().any(|j| j.1 == "Failed"), "{js:?}");
    assert_eq!(js.iter().filter(|j| j.1 == "Complete").count(), 3);
}

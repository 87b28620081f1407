//! CronJobs: a workload of kind `CronJob`. Each commit that changes its manifest updates it in
//! place (a rollout here: later Jobs take the new template); the CronJob controller creates a
//! Job from `spec.jobTemplate` at each time `spec.schedule` names (in UTC), named
//! `<cronjob>-<minutes since the epoch>` as the controller names them, unless `suspend` is set.
//! Each Job then runs as a Job workload does (`jobs.rs`). `concurrencyPolicy`: `Allow` runs
//! them side by side, `Forbid` skips a time while an earlier Job is still active
//! (`JobAlreadyActive`), `Replace` deletes the active one first. Once a Job finishes the
//! controller keeps the newest `successfulJobsHistoryLimit` (3) succeeded and
//! `failedJobsHistoryLimit` (1) failed Jobs and deletes the older ones with their pods. A schedule
//! the controller cannot parse creates nothing (`UnparseableSchedule`).
//!
//! Computed once per GitOps head (with the rest of `Desired`): the last 24 scheduled times up
//! to the scenario's `now` (so the history a CronJob keeps is there), and every one after it up
//! to a day past the clock.

use chrono::{DateTime, Utc};
use serde_json::json;
use squad_gitops::objects;
use squad_protocols::cluster::ClusterEvent;

use super::jobs::Outcome;
use super::metrics::labels;
use super::{Desired, Rollout, SimCluster, secs};
use crate::series::{Labels, SeriesKind};

/// How many scheduled times before the scenario's `now` the controller is replayed over.
const HISTORY_RUNS: usize = 24;
/// At most this many Jobs in all (a schedule of every minute, replayed for a day).
const MAX_RUNS: usize = 1500;

/// A Job the CronJob controller created.
#[derive(Debug, Clone)]
pub(super) struct CronChild {
    /// The Job as a rollout of its own: its object built from the job template, created at
    /// its scheduled time, with its pods' names.
    pub rollout: Rollout,
    /// When the controller deleted it (history limit, or `Replace`).
    pub deleted: Option<DateTime<Utc>>,
    /// When it finished, and whether it succeeded.
    pub finished: Option<(DateTime<Utc>, bool)>,
}

impl CronChild {
    pub(super) fn exists_at(&self, t: DateTime<Utc>) -> bool {
        self.rollout.at <= t && self.deleted.is_none_or(|d| d > t)
    }

    fn name(&self) -> &str {
        &self.rollout.workload.name
    }
}

/// What the controller did for a CronJob, over the replayed times.
#[derive(Debug, Clone, Default)]
pub(super) struct CronRuns {
    pub children: Vec<CronChild>,
    /// Times skipped under `Forbid` while an earlier Job was active.
    pub skipped: Vec<DateTime<Utc>>,
    /// Revisions whose schedule does not parse, with the parser's message and since when.
    pub unparseable: Vec<(DateTime<Utc>, String)>,
}

impl CronRuns {
    pub(super) fn existing(&self, t: DateTime<Utc>) -> impl Iterator<Item = &CronChild> {
        self.children.iter().filter(move |c| c.exists_at(t))
    }
}

impl SimCluster {
    pub(super) fn is_cron_job(&self) -> bool {
        self.scenario.workload.kind == "CronJob"
    }

    /// A Job workload or a CronJob's Jobs: pods that run to completion, no ReplicaSets.
    pub(super) fn is_batch(&self) -> bool {
        self.is_job() || self.is_cron_job()
    }

    /// The scheduled times of each CronJob rollout (suspended ones have none).
    fn scheduled_times(
        &self,
        d: &Desired,
        end: DateTime<Utc>,
    ) -> (Vec<(usize, DateTime<Utc>)>, CronRuns) {
        let now = self.scenario.now;
        let mut runs = CronRuns::default();
        let mut times = Vec::new();
        for (i, r) in d.rollouts.iter().enumerate() {
            let until = d.rollouts.get(i + 1).map_or(end, |n| n.at.min(end));
            let spec = &r.object["spec"];
            if spec["suspend"].as_bool().unwrap_or(false) {
                continue;
            }
            let schedule = match objects::schedule(spec["schedule"].as_str().unwrap_or("")) {
                Ok(s) => s,
                Err(e) => {
                    runs.unparseable.push((r.at, e));
                    continue;
                }
            };
            // Back from the scenario's now (or the rollout's end) over the history kept, then on.
            let mut back = Vec::new();
            let mut t = schedule.last_at_or_before(until.min(now));
            while let Some(x) = t.filter(|x| *x >= r.at && back.len() < HISTORY_RUNS) {
                if x < until {
                    back.push(x);
                }
                t = schedule.last_at_or_before(x - secs(1));
            }
            back.reverse();
            let mut next = match back.last() {
                Some(last) => schedule.next_after(*last),
                None => schedule.next_after(r.at - secs(1)),
            };
            while let Some(x) = next.filter(|x| *x < until && back.len() < MAX_RUNS) {
                back.push(x);
                next = schedule.next_after(x);
            }
            times.extend(back.into_iter().map(|t| (i, t)));
        }
        (times, runs)
    }

    /// The Jobs the CronJob controller creates, and what becomes of them.
    pub(super) fn cron_runs(&self, d: &Desired) -> CronRuns {
        if !self.is_cron_job() {
            return CronRuns::default();
        }
        let s = &self.scenario;
        let end = self.clock.now() + chrono::Duration::days(1);
        let (times, mut runs) = self.scheduled_times(d, end);
        for (i, at) in &times {
            let parent = &d.rollouts[*i];
            let policy = parent.object["spec"]["concurrencyPolicy"]
                .as_str()
                .unwrap_or("Allow");
            let active: Vec<usize> = runs
                .children
                .iter()
                .enumerate()
                .filter(|(_, c)| c.exists_at(*at) && c.finished.is_none_or(|f| f.0 > *at))
                .map(|(j, _)| j)
                .collect();
            match policy {
                "Forbid" if !active.is_empty() => {
                    runs.skipped.push(*at);
                    continue;
                }
                "Replace" => {
                    for j in active {
                        runs.children[j].deleted = Some(*at);
                        runs.children[j].finished = None;
                    }
                }
                _ => {}
            }
            let mut child = self.cron_child(parent, *at);
            // The scenario's pod names go to the Job they are named after (`<job>-<suffix>`).
            let prefix = format!("{}-", child.workload.name);
            let given: Vec<String> = s
                .workload
                .pods
                .iter()
                .filter(|p| p.strip_prefix(&prefix).is_some_and(|x| !x.contains('-')))
                .cloned()
                .collect();
            child.pods = self.job_pods(&child, &given);
            let finished = match self.job_run(d, &child, end).outcome {
                Some(Outcome::Complete(t)) => Some((t, true)),
                Some(Outcome::Failed { at, .. }) => Some((at, false)),
                None => None,
            };
            runs.children.push(CronChild {
                rollout: child,
                deleted: None,
                finished,
            });
        }
        // The history limits: when a Job finishes, the controller deletes the oldest finished
        // Jobs of its outcome beyond the limit.
        for succeeded in [true, false] {
            let mut done: Vec<(DateTime<Utc>, usize)> = runs
                .children
                .iter()
                .enumerate()
                .filter_map(|(j, c)| c.finished.filter(|f| f.1 == succeeded).map(|f| (f.0, j)))
                .collect();
            done.sort();
            for (n, (at, j)) in done.iter().enumerate() {
                let limit = self.history_limit(&runs.children[*j].rollout, succeeded, d);
                // Pushed out when the `limit`-th later one finishes (at once with no history).
                let pushed = if limit == 0 {
                    Some(*at)
                } else {
                    done.get(n + limit).map(|x| x.0)
                };
                if let Some(p) = pushed {
                    let c = &mut runs.children[*j];
                    c.deleted = Some(c.deleted.map_or(p, |x| x.min(p)));
                }
            }
        }
        runs
    }

    /// The history limit the CronJob declared when `child` was created.
    fn history_limit(&self, child: &Rollout, succeeded: bool, d: &Desired) -> usize {
        let parent = d
            .rollouts
            .iter()
            .rev()
            .find(|r| r.at <= child.at)
            .or(d.rollouts.first());
        let (key, default) = if succeeded {
            ("successfulJobsHistoryLimit", 3)
        } else {
            ("failedJobsHistoryLimit", 1)
        };
        parent.map_or(default, |p| {
            p.object["spec"][key]
                .as_u64()
                .map_or(default, |v| v as usize)
        })
    }

    /// The Job the controller creates from `parent`'s template for the time `at`.
    fn cron_child(&self, parent: &Rollout, at: DateTime<Utc>) -> Rollout {
        let cron = objects::name(&parent.object);
        let name = format!("{cron}-{}", at.timestamp() / 60);
        let template = &parent.object["spec"]["jobTemplate"];
        let mut meta = template["metadata"].clone();
        if !meta.is_object() {
            meta = json!({});
        }
        meta["name"] = json!(name);
        meta["namespace"] = json!(self.scenario.workload.namespace);
        let object = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                            "spec": template["spec"].clone()});
        let mut child = parent.clone();
        child.workload = objects::workload_info(&object, &self.scenario.workload.namespace);
        child.object = object;
        child.at = at;
        child.pods = Vec::new();
        child.rescaled = Vec::new();
        child.respecified = Vec::new();
        child
    }

    /// What the CronJob controller said about the CronJob up to `now`.
    pub(super) fn cron_events(&self, d: &Desired, now: DateTime<Utc>) -> Vec<ClusterEvent> {
        let object = format!("CronJob/{}", self.scenario.workload.name);
        let event = |kind: &str, reason: &str, message: String, at: DateTime<Utc>| {
            ClusterEvent::once(object.clone(), kind, reason, message, at)
        };
        let mut out = Vec::new();
        for c in &d.cron.children {
            if c.rollout.at > now {
                continue;
            }
            out.push(event(
                "Normal",
                "SuccessfulCreate",
                format!("Created job {}", c.name()),
                c.rollout.at,
            ));
            if let Some((at, ok)) = c.finished.filter(|f| f.0 <= now) {
                let status = if ok { "Complete" } else { "Failed" };
                out.push(event(
                    "Normal",
                    "SawCompletedJob",
                    format!("Saw completed job: {}, status: {status}", c.name()),
                    at,
                ));
            }
            if let Some(at) = c.deleted.filter(|t| *t <= now) {
                out.push(event(
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted job {}", c.name()),
                    at,
                ));
            }
        }
        // The same message again: one event, counted.
        let skipped: Vec<_> = d.cron.skipped.iter().filter(|t| **t <= now).collect();
        if let (Some(first), Some(last)) = (skipped.first(), skipped.last()) {
            let mut e = event(
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
                **first,
            );
            e.last_seen = **last;
            e.count = skipped.len() as u32;
            out.push(e);
        }
        for (at, why) in d.cron.unparseable.iter().filter(|u| u.0 <= now) {
            out.push(event(
                "Warning",
                "UnparseableSchedule",
                format!("unparseable schedule: {why}"),
                *at,
            ));
        }
        out.sort_by_key(|e| e.first_seen);
        out
    }

    /// kube-state-metrics' series of the CronJob and of each Job it has at `t`.
    pub(super) fn cron_points(
        &self,
        d: &Desired,
        t: DateTime<Utc>,
        push: &mut impl FnMut(SeriesKind, Labels, f64),
    ) {
        let Some(r) = Self::rollout_at(d, t) else {
            return;
        };
        let s = &self.scenario;
        let ns = s.workload.namespace.as_str();
        let cron = s.workload.name.as_str();
        let series = |name: &str, extra: &[(&str, &str)]| {
            let mut l = labels(&[("namespace", ns), ("cronjob", cron)]);
            l.insert("__name__".into(), name.into());
            for (k, v) in extra {
                l.insert((*k).into(), (*v).into());
            }
            l
        };
        let spec = &r.object["spec"];
        let schedule = spec["schedule"].as_str().unwrap_or("");
        let policy = spec["concurrencyPolicy"].as_str().unwrap_or("Allow");
        push(
            SeriesKind::Gauge,
            series(
                "kube_cronjob_info",
                &[("schedule", schedule), ("concurrency_policy", policy)],
            ),
            1.0,
        );
        let suspended = spec["suspend"].as_bool().unwrap_or(false);
        push(
            SeriesKind::Gauge,
            series("kube_cronjob_spec_suspend", &[]),
            f64::from(u8::from(suspended)),
        );
        let existing: Vec<&CronChild> = d.cron.existing(t).collect();
        let active = existing
            .iter()
            .filter(|c| c.finished.is_none_or(|f| f.0 > t))
            .count();
        push(
            SeriesKind::Gauge,
            series("kube_cronjob_status_active", &[]),
            active as f64,
        );
        let last = d.cron.children.iter().rfind(|c| c.rollout.at <= t);
        if let Some(c) = last {
            push(
                SeriesKind::Gauge,
                series("kube_cronjob_status_last_schedule_time", &[]),
                c.rollout.at.timestamp() as f64,
            );
        }
        let success = d
            .cron
            .children
            .iter()
            .filter_map(|c| c.finished.filter(|f| f.1 && f.0 <= t).map(|f| f.0))
            .max();
        if let Some(at) = success {
            push(
                SeriesKind::Gauge,
                series("kube_cronjob_status_last_successful_time", &[]),
                at.timestamp() as f64,
            );
        }
        if !suspended
            && let Ok(sched) = objects::schedule(schedule)
            && let Some(next) = sched.next_after(t)
        {
            push(
                SeriesKind::Gauge,
                series("kube_cronjob_next_schedule_time", &[]),
                next.timestamp() as f64,
            );
        }
        for c in existing {
            self.job_points_of(d, &c.rollout, t, Some(("CronJob", cron)), push);
        }
    }
}

#[cfg(test)]
mod tests;

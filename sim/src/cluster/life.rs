//! A container's life under one rollout: its starts and kills as the kubelet runs it (OOM kills
//! at the memory limit, exit 1 without a required variable, StartError for a command the image
//! does not hold, liveness kills once the app answers slower than the probe's timeout), with the
//! kubelet's back-off between them.

use chrono::{DateTime, Utc};
use squad_protocols::cluster::{ContainerSpec, Termination};

use super::{Blocker, Desired, Rollout, STEP_SECONDS, SimCluster, prober, secs};

/// A container's life under one rollout, up to some time.
#[derive(Debug, Clone, Default)]
pub(super) struct Life {
    /// Start times of each run of the container, oldest first.
    pub(super) starts: Vec<DateTime<Utc>>,
    pub(super) kills: Vec<Termination>,
    /// Whether, at the end of the simulated span, the container waits in back-off.
    pub(super) waiting: bool,
    /// Failed attempts to start the container (it never started: see `blocked`), oldest first.
    pub(super) attempts: Vec<DateTime<Utc>>,
    pub(super) blocked: Option<Blocker>,
}

impl Life {
    /// Why the container waits at `t`, when it does.
    pub(super) fn waiting_reason(&self, t: DateTime<Utc>) -> Option<&'static str> {
        match (&self.blocked, self.attempts.first()) {
            (Some(b), Some(first)) if *first <= t => Some(b.waiting_reason(*first, t)),
            _ => None,
        }
    }
}

/// The kubelet's back-off after `n` consecutive failures (10 s doubling, at most 5 min).
pub(super) fn backoff(n: u32) -> i64 {
    (10i64 << n.saturating_sub(1).min(5)).min(300)
}

impl SimCluster {
    pub(super) fn missing_env(&self, c: &ContainerSpec) -> Option<String> {
        self.scenario
            .load_for(&c.image)
            .required_env
            .iter()
            .find(|v| !c.env.iter().any(|e| &e.name == *v))
            .cloned()
    }

    /// How long the app's health endpoints take to answer at `t`, in ms.
    pub(super) fn latency_ms(&self, d: &Desired, r: &Rollout, t: DateTime<Utc>) -> f64 {
        let a = self.app(r);
        a.latency_ms + a.latency_ms_per_rps * self.rps(d, t)
    }

    /// When the liveness probe of a run that started at `started` has failed `failureThreshold`
    /// times in a row (the kubelet then kills the container), if before `end`. The app's latency
    /// grows with a pod's request rate, which never falls within a scenario while the replica
    /// count holds, so within each span of one replica count a probe that fails once keeps
    /// failing: the first failing probe is found by bisection, span after span.
    fn liveness_kill(
        &self,
        d: &Desired,
        r: &Rollout,
        c: &ContainerSpec,
        started: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let probe = c.liveness_probe.as_ref()?;
        let period = i64::from(probe.period_seconds.max(1));
        let first = started + secs(i64::from(probe.initial_delay_seconds));
        if first > end {
            return None;
        }
        let at = |k: i64| first + secs(k * period);
        let fails = |k: i64| {
            prober::failure_at(self.app(r), c, probe, self.latency_ms(d, r, at(k))).is_some()
        };
        let last = (end - first).num_seconds() / period;
        let threshold = i64::from(probe.failure_threshold.max(1));
        // The spans of one replica count, as probe indices.
        let mut ends: Vec<i64> = d
            .scale
            .changes_between(first, end)
            .map(|c| ((c - first).num_seconds() + period - 1) / period - 1)
            .filter(|k| *k >= 0 && *k < last)
            .collect();
        ends.push(last);
        let mut from = 0;
        for until in ends {
            if until >= from && fails(until) {
                let (mut lo, mut hi) = (from, until);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if fails(mid) {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                let k = lo + threshold - 1;
                if k <= last && fails(k) {
                    let kill = at(k);
                    return (kill <= end).then_some(kill);
                }
            }
            from = until + 1;
        }
        None
    }

    /// The container's `command` when the image does not hold it.
    /// What the app logs and exits with when its command or args pass a flag it does not
    /// define.
    pub(super) fn bad_flag_of(&self, c: &ContainerSpec) -> Option<(String, i32)> {
        let argv = c.command.iter().skip(1).chain(&c.args);
        let app = self.scenario.app_for(&c.image);
        let flag = app.unknown_flag(argv)?;
        Some(app.bad_flag(&flag))
    }

    pub(super) fn missing_executable(&self, c: &ContainerSpec) -> Option<String> {
        c.command
            .first()
            .filter(|cmd| !self.scenario.app_for(&c.image).has_executable(cmd))
            .cloned()
    }

    /// Simulates the container of a rollout from its start until `end`.
    pub(super) fn life(&self, d: &Desired, r: &Rollout, end: DateTime<Utc>) -> Life {
        let end = self
            .scaled_down_at(d, r)
            .filter(|n| *n > r.at)
            .map_or(end, |n| n.min(end));
        if let Some(b) = &r.blocked {
            return Life {
                waiting: true,
                attempts: b.attempts(r.at, end),
                blocked: Some(b.clone()),
                ..Life::default()
            };
        }
        let Some(c) = self.container_spec(r) else {
            return Life::default();
        };
        let limit = c
            .limits
            .get("memory")
            .map(|q| q.bytes() as f64)
            .unwrap_or(f64::INFINITY);
        // A variable it needs is missing, or RBAC refuses a request it makes at start-up.
        let missing = self.missing_env(c).or_else(|| self.forbidden(d, r));
        let not_found = self.missing_executable(c);
        let bad_flag = self.bad_flag_of(c).map(|(_, code)| code);
        let mut life = Life {
            starts: vec![r.at],
            ..Life::default()
        };
        let mut started = r.at;
        let mut t = r.at;
        let mut consecutive: u32 = 0;
        // The kubelet stops a container its liveness probe failed, with the pod's grace period
        // (30 s unless set); the app does not stop on SIGTERM while it is stuck, so it is killed:
        // exit 137, reason Error.
        let grace = r.object["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30);
        let mut live_kill = self.liveness_kill(d, r, c, started, end);
        let disk_full_from = self.disk_full_from(d, r, r.at, end);
        while t <= end {
            let kill = if not_found.is_some() {
                // The runtime cannot exec the command: the container never runs.
                (started <= end).then(|| Termination {
                    reason: "StartError".into(),
                    exit_code: 128,
                    finished_at: started,
                })
            } else if let Some(code) = bad_flag {
                // The flag parser rejects the args before the app does anything.
                let at = started + secs(1);
                (at <= end).then(|| Termination {
                    reason: "Error".into(),
                    exit_code: code,
                    finished_at: at,
                })
            } else if missing.is_some() {
                let at = started + secs(2);
                (at <= end).then(|| Termination {
                    reason: "Error".into(),
                    exit_code: 1,
                    finished_at: at,
                })
            } else if let Some((_, how)) = self.unreachable(d, r, started) {
                // A refusal or an unknown name ends it at once; otherwise it waits for the
                // dependency it cannot reach, then gives up.
                let wait = if how.at_once() {
                    1
                } else {
                    i64::from(self.app(r).connect_timeout_seconds.max(1))
                };
                let at = started + secs(wait);
                (at <= end).then(|| Termination {
                    reason: "Error".into(),
                    exit_code: 1,
                    finished_at: at,
                })
            } else if let Some(at) = live_kill.filter(|k| *k <= t && *k + secs(grace) <= end) {
                Some(Termination {
                    reason: "Error".into(),
                    exit_code: 137,
                    finished_at: at + secs(grace),
                })
            } else if disk_full_from.is_some_and(|f| f <= t) {
                // A write fails for want of space: the app exits.
                let at = t.max(started + secs(2));
                (at <= end).then(|| Termination {
                    reason: "Error".into(),
                    exit_code: 1,
                    finished_at: at,
                })
            } else if self.demand(d, r, t, started) > limit {
                Some(Termination {
                    reason: "OOMKilled".into(),
                    exit_code: 137,
                    finished_at: t,
                })
            } else {
                None
            };
            match kill {
                Some(k) => {
                    consecutive += 1;
                    started = k.finished_at + secs(backoff(consecutive));
                    life.kills.push(k);
                    if started > end {
                        life.waiting = true;
                        break;
                    }
                    life.starts.push(started);
                    t = started;
                    live_kill = self.liveness_kill(d, r, c, started, end);
                }
                None => {
                    if (t - started).num_seconds() >= 600 {
                        consecutive = 0;
                    }
                    t += secs(STEP_SECONDS);
                }
            }
        }
        life
    }
}

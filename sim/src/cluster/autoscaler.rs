//! The HorizontalPodAutoscaler controller over the workload, and how its replica count shares the
//! load.
//!
//! The load model's rates (`[load]`, `[app]`) hold per pod at the workload's replicas as the
//! manifest in force at the scenario's now declares them (1 when it omits them): the traffic in
//! total is that many times a pod's, and `n` pods each take `1/n` of it. Without an HPA, `n` is
//! the newest rollout's declared replicas; with one (a `HorizontalPodAutoscaler` of the GitOps
//! repo whose `scaleTargetRef` is the workload), its controller sets `n` as kube-controller-manager
//! does, every 15 s:
//! - utilisation is a pod's usage over the sum of its containers' requests for the resource
//!   (cAdvisor's CPU, capped by a CPU limit, or the memory demand); a container without that
//!   request makes the metric invalid (`failed to get cpu utilization: missing request for cpu`,
//!   `ScalingActive=False`, `FailedGetResourceMetric`) and the replicas stay where they are;
//! - the proposal is `ceil(n × usage / target)` outside a 10% tolerance, the largest over the
//!   metrics; scale-down takes the highest proposal of the stabilisation window (300 s unless
//!   `behavior.scaleDown.stabilizationWindowSeconds` says), scale-up at most `max(2n, n + 4)` per
//!   sync (the default policies);
//! - within `[minReplicas, maxReplicas]`: a proposal beyond is clamped and `ScalingLimited=True`
//!   (`TooManyReplicas`: `the desired replica count is more than the maximum replica count`).
//!
//! A GitOps sync of a manifest that declares `spec.replicas` writes it back (the HPA corrects it
//! at its next sync). Stated simplifications: every pod of the workload is ready and alike (a
//! new pod serves at once); metrics other than a resource's `Utilization` or `AverageValue`
//! target, and `behavior` policies other than the stabilisation windows, are not modelled (an
//! HPA that has only those holds the replicas where they are).

use chrono::{DateTime, Utc};
use serde_json::Value;
use squad_gitops::objects;
use squad_runtime::ports::PortResult;

use super::metrics::cpu_rate;
use super::{Rollout, SimCluster, secs};

/// How often the controller syncs, in seconds.
const SYNC_SECONDS: i64 = 15;
/// How far past the scenario's now the replica count is computed; it holds after that.
const HORIZON_DAYS: i64 = 14;
/// The controller's tolerance around the target ratio.
const TOLERANCE: f64 = 0.1;

/// What one metric of an HPA aims at.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Target {
    /// Percent of the pods' requests.
    Utilization(u32),
    /// Per pod, in cores (cpu) or bytes (memory).
    AverageValue(f64),
}

/// One HPA over the workload, as a commit on main declares it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Autoscaler {
    pub name: String,
    pub min: u32,
    pub max: u32,
    /// `(resource, target)`: `cpu` or `memory`.
    pub metrics: Vec<(String, Target)>,
    pub scale_down_window: i64,
    pub scale_up_window: i64,
}

impl Autoscaler {
    /// The HPA `o` declares, in any of `autoscaling/v1`, `v2beta1`, `v2beta2` and `v2`.
    pub(super) fn parse(o: &Value) -> Autoscaler {
        let spec = &o["spec"];
        let mut metrics = Vec::new();
        if let Some(pct) = spec["targetCPUUtilizationPercentage"].as_u64() {
            metrics.push(("cpu".to_owned(), Target::Utilization(pct as u32)));
        }
        for m in spec["metrics"].as_array().into_iter().flatten() {
            if m["type"] != "Resource" {
                continue;
            }
            let r = &m["resource"];
            let name = r["name"].as_str().unwrap_or("").to_owned();
            let target = if let Some(u) = r["target"]["averageUtilization"]
                .as_u64()
                .or_else(|| r["targetAverageUtilization"].as_u64())
            {
                Target::Utilization(u as u32)
            } else if let Some(q) = r["target"]["averageValue"]
                .as_str()
                .or_else(|| r["targetAverageValue"].as_str())
                .and_then(|q| q.parse::<squad_protocols::Quantity>().ok())
            {
                Target::AverageValue(if name == "cpu" {
                    q.milli() as f64 / 1000.0
                } else {
                    q.bytes() as f64
                })
            } else {
                continue;
            };
            if name == "cpu" || name == "memory" {
                metrics.push((name, target));
            }
        }
        // Without metrics, the controller's default: 80% of the CPU requested.
        if metrics.is_empty() && spec["metrics"].as_array().is_none_or(Vec::is_empty) {
            metrics.push(("cpu".to_owned(), Target::Utilization(80)));
        }
        let window = |dir: &str, default: i64| {
            spec["behavior"][dir]["stabilizationWindowSeconds"]
                .as_i64()
                .unwrap_or(default)
        };
        Autoscaler {
            name: objects::name(o).to_owned(),
            min: spec["minReplicas"].as_u64().unwrap_or(1).max(1) as u32,
            max: spec["maxReplicas"].as_u64().unwrap_or(1).max(1) as u32,
            metrics,
            scale_down_window: window("scaleDown", 300),
            scale_up_window: window("scaleUp", 0),
        }
    }
}

/// One metric as the controller read it at a sync: its usage per pod (cores or bytes) and
/// utilisation (percent of the request, when the target is one).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reading {
    pub resource: String,
    pub average: f64,
    pub utilization: Option<u32>,
}

/// What the controller decided at a sync, kept where it changed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decision {
    pub at: DateTime<Utc>,
    /// The replicas after the sync (`status.currentReplicas` from then).
    pub replicas: u32,
    /// `status.desiredReplicas`.
    pub desired: u32,
    /// `AbleToScale` (always True here): its reason and message.
    pub able: (&'static str, String),
    /// `ScalingActive`: the metric it scaled on, or why no replica count could be computed.
    pub active: Result<String, String>,
    /// `ScalingLimited` True: reason and message; `None`: `DesiredWithinRange`.
    pub limited: Option<(&'static str, &'static str)>,
    /// Why it rescaled at this sync, when it did (`SuccessfulRescale`'s reason).
    pub rescaled: Option<String>,
}

/// What one metric's reading of a rollout's pods divides by and is capped at.
#[derive(Debug, Clone)]
struct Sizing {
    /// The sum of the containers' requests for the resource (cores or bytes), or why a
    /// utilisation cannot be computed.
    request: Result<f64, String>,
    /// The app container's CPU limit in cores.
    cpu_limit: Option<f64>,
}

/// The replica count over time, and the HPA's decisions.
#[derive(Debug, Clone, Default)]
pub(super) struct Scaling {
    /// The replicas at which the load model's rates hold per pod.
    reference: u32,
    /// `(from, replicas)`, oldest first; before the first, `reference`.
    steps: Vec<(DateTime<Utc>, u32)>,
    /// The HPA in force from each synced commit on main (`None`: none).
    pub hpas: Vec<(DateTime<Utc>, Option<Autoscaler>)>,
    /// The controller's decisions where anything it reports changed, oldest first.
    pub decisions: Vec<Decision>,
}

impl Scaling {
    /// The workload's replicas (the Deployment's `spec.replicas`) at `t`.
    pub(super) fn replicas_at(&self, t: DateTime<Utc>) -> u32 {
        let i = self.steps.partition_point(|(at, _)| *at <= t);
        if i == 0 {
            self.reference
        } else {
            self.steps[i - 1].1
        }
    }

    /// The share of the reference load one pod takes at `t`.
    pub(super) fn share(&self, t: DateTime<Utc>) -> f64 {
        f64::from(self.reference.max(1)) / f64::from(self.replicas_at(t).max(1))
    }

    /// The instants in `(t0, t)` at which the replica count changes.
    pub(super) fn changes_between(
        &self,
        t0: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.steps
            .iter()
            .map(|(at, _)| *at)
            .filter(move |at| *at > t0 && *at < t)
    }

    /// The most replicas the workload ever has (its pods' names are drawn for that many).
    pub(super) fn most(&self) -> u32 {
        self.steps
            .iter()
            .map(|(_, n)| *n)
            .chain([self.reference])
            .max()
            .unwrap_or(1)
    }

    /// When the pod at `index` (of the pods a rollout holds, oldest first) was last created by a
    /// scale-up at or before `t`, if after `since`.
    pub(super) fn scaled_up_at(
        &self,
        index: u32,
        since: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut prev = self.replicas_at(since);
        let mut at = None;
        for (when, n) in self.steps.iter().filter(|(w, _)| *w > since && *w <= t) {
            if prev <= index && *n > index {
                at = Some(*when);
            }
            prev = *n;
        }
        at
    }

    /// The HPA in force at `t`, if any.
    pub(super) fn hpa_at(&self, t: DateTime<Utc>) -> Option<&Autoscaler> {
        self.hpa_index_at(t).and_then(|i| self.hpas[i].1.as_ref())
    }

    /// Where in `hpas` the HPA in force at `t` is, if one is.
    fn hpa_index_at(&self, t: DateTime<Utc>) -> Option<usize> {
        let i = self.hpas.iter().rposition(|(at, _)| *at <= t)?;
        self.hpas[i].1.as_ref().map(|_| i)
    }

    /// The controller's last decision at or before `t`.
    pub(super) fn decision_at(&self, t: DateTime<Utc>) -> Option<&Decision> {
        self.decisions.iter().rev().find(|d| d.at <= t)
    }

    /// When the condition `kind` last took the status it has at `t`.
    pub(super) fn transition(
        &self,
        t: DateTime<Utc>,
        status: impl Fn(&Decision) -> bool,
    ) -> Option<DateTime<Utc>> {
        let now = self.decision_at(t)?;
        let wanted = status(now);
        let mut at = now.at;
        for d in self.decisions.iter().rev().filter(|d| d.at <= t) {
            if status(d) != wanted {
                break;
            }
            at = d.at;
        }
        Some(at)
    }
}

fn explicit_replicas(r: &Rollout) -> Option<u32> {
    r.object["spec"]["replicas"].as_u64().map(|n| n as u32)
}

impl SimCluster {
    /// The HPA over the workload among `objects`, if any.
    pub(super) fn autoscaler_among(&self, objects: &[Value]) -> Option<Autoscaler> {
        let w = &self.scenario.workload;
        objects
            .iter()
            .find(|o| {
                objects::kind(o) == "HorizontalPodAutoscaler"
                    && o["metadata"]["namespace"].as_str().unwrap_or(&w.namespace) == w.namespace
                    && o["spec"]["scaleTargetRef"]["kind"] == w.kind.as_str()
                    && o["spec"]["scaleTargetRef"]["name"] == w.name.as_str()
            })
            .map(Autoscaler::parse)
    }

    /// The replica count over time, given the rollouts and the main head's objects: the
    /// rollouts' declared replicas, and the HPA controller's decisions while an HPA is in force.
    pub(super) fn scaling(&self, rollouts: &[Rollout], head: &[Value]) -> PortResult<Scaling> {
        let s = &self.scenario;
        // What the GitOps sync writes, in order: each rollout's declared replicas, then those
        // of the commits that only rescaled it — `(at, replicas, declared explicitly, index of
        // the rollout in force)`.
        let mut syncs: Vec<(DateTime<Utc>, u32, bool, usize)> = Vec::new();
        for (i, r) in rollouts.iter().enumerate() {
            syncs.push((r.at, r.workload.replicas, explicit_replicas(r).is_some(), i));
            syncs.extend(
                r.rescaled
                    .iter()
                    .map(|(at, n, explicit)| (*at, *n, *explicit, i)),
            );
        }
        syncs.sort_by_key(|x| x.0);
        // The scenario's own history sets the reference (a commit made during the run, at its
        // `now` or later, does not).
        let reference = syncs
            .iter()
            .rev()
            .find(|x| x.0 < s.now)
            .or(syncs.first())
            .map_or(1, |x| x.1.max(1));
        let mut out = Scaling {
            reference,
            ..Scaling::default()
        };
        if self.is_batch() {
            return Ok(out);
        }
        // The HPA of each commit on main, read only when the head has one.
        if self.autoscaler_among(head).is_some() {
            let mut log = self
                .git
                .log("main", "")
                .map_err(|e| squad_runtime::ports::PortError::failed("read the GitOps repo", e))?;
            log.reverse();
            for commit in log {
                let hpa = self.autoscaler_among(&self.objects_at(&commit.id)?);
                if out.hpas.last().is_none_or(|(_, last)| *last != hpa) {
                    out.hpas.push((super::synced_at(&commit, s.now), hpa));
                }
            }
        }
        let Some(&(start, first_replicas, _, _)) = syncs.first() else {
            return Ok(out);
        };
        let mut n = first_replicas;
        out.steps.push((start, n));
        let end = s.now.max(self.clock.now()) + chrono::Duration::days(HORIZON_DAYS);
        // Each sync: the rollout syncs first (its declared replicas, when it declares them),
        // then the HPA.
        let mut recommendations: Vec<(i64, u32)> = Vec::new();
        let mut sized: Option<((usize, usize), Vec<Sizing>)> = None;
        let mut synced = 0usize;
        let mut declared = first_replicas;
        let mut t = start;
        while t <= end {
            let mut next = n;
            while synced < syncs.len() && syncs[synced].0 <= t {
                let (at, replicas, explicit, _) = syncs[synced];
                declared = replicas;
                if synced == 0 || out.hpa_at(at).is_none() || explicit {
                    next = replicas;
                }
                synced += 1;
            }
            let newest_index = syncs[synced.max(1) - 1].3;
            let newest = &rollouts[newest_index];
            let in_force = out
                .hpa_index_at(t)
                .and_then(|h| Some((h, out.hpas[h].1.as_ref()?)));
            match in_force {
                None => {
                    next = declared;
                    recommendations.clear();
                }
                Some((h, hpa)) => {
                    // What the metrics divide by changes only with the rollout or the HPA.
                    if sized
                        .as_ref()
                        .is_some_and(|(key, _)| *key != (newest_index, h))
                    {
                        sized = None;
                    }
                    let (_, sizings) = sized.get_or_insert_with(|| {
                        let each = hpa
                            .metrics
                            .iter()
                            .map(|(resource, target)| self.sizing(resource, target, newest))
                            .collect();
                        ((newest_index, h), each)
                    });
                    let decision = self.decide(
                        hpa,
                        (newest, sizings),
                        t,
                        (next, reference),
                        &mut recommendations,
                    );
                    next = decision.replicas;
                    let changed = out.decisions.last().is_none_or(|last| {
                        (
                            last.replicas,
                            last.desired,
                            &last.able,
                            &last.active,
                            last.limited,
                        ) != (
                            decision.replicas,
                            decision.desired,
                            &decision.able,
                            &decision.active,
                            decision.limited,
                        )
                    });
                    if changed || decision.rescaled.is_some() {
                        out.decisions.push(decision);
                    }
                }
            }
            if next != n {
                n = next;
                out.steps.push((t, n));
            }
            // Between syncs nothing changes; jump over spans without an HPA.
            t = if out.hpa_at(t).is_some() {
                t + secs(SYNC_SECONDS)
            } else {
                let later = syncs
                    .get(synced)
                    .map(|x| x.0)
                    .into_iter()
                    .chain(out.hpas.iter().map(|(at, _)| *at).filter(|at| *at > t))
                    .min();
                match later {
                    Some(later) => later,
                    None => break,
                }
            };
        }
        Ok(out)
    }

    /// One metric at a sync, for the pods of rollout `r` at `t`, each taking `share` of the
    /// reference load: usage per pod, or why it cannot be read.
    pub(super) fn read_metric(
        &self,
        resource: &str,
        target: &Target,
        r: &Rollout,
        t: DateTime<Utc>,
        share: f64,
    ) -> Result<Reading, String> {
        self.reading(
            resource,
            target,
            (r, &self.sizing(resource, target, r)),
            t,
            share,
        )
    }

    /// What rollout `r`'s pods request of `resource` and the app's CPU limit: what a reading
    /// of the metric divides by and is capped at.
    fn sizing(&self, resource: &str, target: &Target, r: &Rollout) -> Sizing {
        let spec = objects::pod_spec(&r.object);
        let quantity = |v: &Value| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
                .and_then(|q| q.parse::<squad_protocols::Quantity>().ok())
        };
        let mut request = Ok(0.0);
        for c in spec["containers"].as_array().into_iter().flatten() {
            let Some(q) = quantity(&c["resources"]["requests"][resource]) else {
                if matches!(target, Target::Utilization(_)) {
                    request = Err(format!(
                        "failed to get {resource} utilization: missing request for {resource}"
                    ));
                    break;
                }
                continue;
            };
            if let Ok(sum) = request.as_mut() {
                *sum += if resource == "cpu" {
                    q.milli() as f64 / 1000.0
                } else {
                    q.bytes() as f64
                };
            }
        }
        let cpu_limit = self
            .container_object(r)
            .and_then(|c| quantity(&c["resources"]["limits"]["cpu"]))
            .map(|q| q.milli() as f64 / 1000.0);
        Sizing { request, cpu_limit }
    }

    /// The metric read with `sizing` of rollout `r` (see [`Self::read_metric`]).
    fn reading(
        &self,
        resource: &str,
        target: &Target,
        (r, sizing): (&Rollout, &Sizing),
        t: DateTime<Utc>,
        share: f64,
    ) -> Result<Reading, String> {
        let request = sizing.request.clone()?;
        let rps = self.traffic(t) * share;
        let average = if resource == "cpu" {
            cpu_rate(self.cpu_demand(r, rps), sizing.cpu_limit).used
        } else {
            let l = self.load(r);
            let hours = (t - r.at).num_seconds().max(0) as f64 / 3600.0;
            (l.base_mib + l.per_rps_mib * rps + l.leak_mib_per_hour * hours) * super::MIB
        };
        let utilization = matches!(target, Target::Utilization(_))
            .then(|| (average * 100.0 / request.max(f64::MIN_POSITIVE)).floor() as u32);
        Ok(Reading {
            resource: resource.to_owned(),
            average,
            utilization,
        })
    }

    /// The controller's sync at `t` with `n` replicas.
    fn decide(
        &self,
        hpa: &Autoscaler,
        (r, sizings): (&Rollout, &[Sizing]),
        t: DateTime<Utc>,
        (n, reference): (u32, u32),
        recommendations: &mut Vec<(i64, u32)>,
    ) -> Decision {
        let described = |resource: &str, target: &Target| match target {
            Target::Utilization(_) => {
                format!("{resource} resource utilization (percentage of request)")
            }
            Target::AverageValue(_) => format!("{resource} resource"),
        };
        let mut base = Decision {
            at: t,
            replicas: n,
            desired: n,
            able: (
                "ReadyForNewScale",
                "recommended size matches current size".into(),
            ),
            active: Err(String::new()),
            limited: None,
            rescaled: None,
        };
        // Outside [min, max], the controller rescales without reading metrics.
        if n > hpa.max || n < hpa.min {
            let (to, why) = if n > hpa.max {
                (hpa.max, "Current number of replicas above Spec.MaxReplicas")
            } else {
                (hpa.min, "Current number of replicas below Spec.MinReplicas")
            };
            base.replicas = to;
            base.desired = to;
            base.able = (
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {to}"),
            );
            base.active = Ok(String::new());
            base.rescaled = Some(format!("New size: {to}; reason: {why}"));
            return base;
        }
        let mut proposals = Vec::new();
        let mut errors = Vec::new();
        for ((resource, target), sizing) in hpa.metrics.iter().zip(sizings) {
            let share = f64::from(reference.max(1)) / f64::from(n.max(1));
            match self.reading(resource, target, (r, sizing), t, share) {
                Ok(reading) => {
                    let ratio = match (target, reading.utilization) {
                        (Target::Utilization(goal), Some(u)) => {
                            f64::from(u) / f64::from((*goal).max(1))
                        }
                        (Target::AverageValue(goal), _) => {
                            reading.average / goal.max(f64::MIN_POSITIVE)
                        }
                        _ => 1.0,
                    };
                    let proposal = if (ratio - 1.0).abs() <= TOLERANCE {
                        n
                    } else {
                        (ratio * f64::from(n)).ceil() as u32
                    };
                    proposals.push((proposal, described(resource, target), ratio > 1.0));
                }
                Err(e) => errors.push(e),
            }
        }
        let Some((proposal, metric, above)) = proposals.into_iter().max_by_key(|(p, _, _)| *p)
        else {
            let first = errors.first().cloned().unwrap_or_default();
            base.active = Err(format!(
                "the HPA was unable to compute the replica count: {first}"
            ));
            return base;
        };
        base.active = Ok(metric.clone());
        // Stabilisation: a scale-down takes the highest recommendation of its window, a
        // scale-up the lowest of its.
        let now = t.timestamp();
        recommendations.push((now, proposal));
        let keep = hpa.scale_down_window.max(hpa.scale_up_window);
        recommendations.retain(|(at, _)| *at + keep >= now);
        let within = |w: i64| {
            recommendations
                .iter()
                .filter(move |(at, _)| *at + w >= now)
                .map(|(_, p)| *p)
        };
        let mut desired = proposal;
        let mut stabilized = false;
        if proposal < n {
            let highest = within(hpa.scale_down_window)
                .max()
                .unwrap_or(proposal)
                .min(n);
            stabilized = highest > proposal;
            desired = highest;
        } else if proposal > n {
            let lowest = within(hpa.scale_up_window).min().unwrap_or(proposal).max(n);
            stabilized = lowest < proposal;
            desired = lowest;
        }
        // The default scale-up policies: 100% or 4 pods per 15 s, the larger.
        let rate = (2 * n).max(n + 4);
        let mut limited = None;
        if desired > hpa.max {
            desired = hpa.max;
            limited = Some((
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            ));
        } else if desired < hpa.min {
            desired = hpa.min;
            limited = Some((
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            ));
        } else if desired > rate {
            desired = rate;
            limited = Some((
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            ));
        }
        base.desired = desired;
        base.limited = limited;
        if desired != n {
            base.replicas = desired;
            base.able = (
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {desired}"),
            );
            base.rescaled = Some(format!(
                "New size: {desired}; reason: {}",
                if above {
                    format!("{metric} above target")
                } else {
                    "All metrics below target".into()
                }
            ));
        } else if stabilized {
            base.able = (
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation".into(),
            );
        }
        base
    }
}

mod report;
#[cfg(test)]
mod tests;

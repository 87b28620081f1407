//! The app's data volume: the first PersistentVolumeClaim its pods mount, once bound. The app
//! keeps `[app] data_mib` there when the claim is first mounted and writes more over time
//! (`writes_mib_per_hour`, and `writes_kib_per_request` of the traffic it serves), so the
//! kubelet's volume stats follow; at the volume's size, its writes fail: it logs
//! `disk_full_log` and exits 1, again at every restart, until the volume has room. The
//! volume's size is the claim's request at the synced commit.

use chrono::{DateTime, Utc};
use squad_gitops::objects;
use squad_protocols::Quantity;

use super::storage::{self, ClaimState};
use super::{Desired, MIB, Rollout, SimCluster};

/// The data volume of a rollout's pods at one instant.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Disk {
    pub claim: String,
    /// Where the container mounts it (empty when the container does not).
    pub mount: String,
    /// Bytes the app holds there (at most `capacity`).
    pub used: f64,
    pub capacity: f64,
}

impl Disk {
    pub fn full(&self) -> bool {
        self.capacity > 0.0 && self.used >= self.capacity
    }
}

impl SimCluster {
    /// The data volume of `r`'s pods at `t`: the first claim they mount that is bound.
    pub(super) fn disk_at(&self, d: &Desired, r: &Rollout, t: DateTime<Utc>) -> Option<Disk> {
        let s = &self.scenario;
        let spec = objects::pod_spec(&r.object);
        let (volume, claim) = spec["volumes"]
            .as_array()?
            .iter()
            .filter_map(|v| {
                let claim = v["persistentVolumeClaim"]["claimName"].as_str()?;
                Some((v["name"].as_str().unwrap_or(""), claim))
            })
            .find(|(_, c)| {
                matches!(
                    storage::claim_state(s, &d.objects, c),
                    ClaimState::Bound { .. }
                )
            })?;
        let object = storage::claim(s, &d.objects, claim)?;
        let capacity = object["spec"]["resources"]["requests"]["storage"]
            .as_str()
            .and_then(|q| q.parse::<Quantity>().ok())
            .map_or(0.0, |q| q.bytes() as f64);
        let since = self
            .claims_of(d)
            .into_iter()
            .find(|(c, _)| objects::name(c) == claim)
            .map_or(r.at, |(_, since)| since);
        let mount = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == s.workload.container.as_str())
            .flat_map(|c| c["volumeMounts"].as_array().cloned().unwrap_or_default())
            .find(|m| m["name"] == volume)
            .and_then(|m| m["mountPath"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let app = self.app(r);
        let hours = (t - since).num_seconds().max(0) as f64 / 3600.0;
        let written = app.data_mib * MIB
            + app.writes_mib_per_hour * hours * MIB
            + if app.writes_kib_per_request > 0.0 && t > since {
                app.writes_kib_per_request * 1024.0 * self.requests_between(d, since, t)
            } else {
                0.0
            };
        Some(Disk {
            claim: claim.to_owned(),
            mount,
            used: written.min(capacity),
            capacity,
        })
    }

    /// Whether `r`'s container finds its data volume full at `t` (its writes fail).
    pub(super) fn disk_full(&self, d: &Desired, r: &Rollout, t: DateTime<Utc>) -> bool {
        self.app(r).writes() && self.disk_at(d, r, t).is_some_and(|disk| disk.full())
    }

    /// The first instant in `[from, end]` at which `r`'s container finds its data volume full,
    /// if it does by `end`. What the app holds only grows, so the instant is found by bisection
    /// (to the second), not by stepping through the span.
    pub(super) fn disk_full_from(
        &self,
        d: &Desired,
        r: &Rollout,
        from: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if end < from || !self.disk_full(d, r, end) {
            return None;
        }
        let (mut lo, mut hi) = (from, end);
        if self.disk_full(d, r, lo) {
            return Some(lo);
        }
        while (hi - lo).num_seconds() > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.disk_full(d, r, mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }

    /// The line the app logs when a write fails for want of space.
    pub(super) fn disk_full_line(&self, disk: &Disk) -> String {
        let template =
            self.scenario.app.disk_full_log.clone().unwrap_or_else(|| {
                "ERROR could not write to {path}: No space left on device".into()
            });
        let path = if disk.mount.is_empty() {
            "/data".to_owned()
        } else {
            disk.mount.clone()
        };
        template.replace("{path}", &path)
    }
}

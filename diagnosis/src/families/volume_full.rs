//! Volume full: the volume bound to a claim the workload mounts is (nearly) out of space. The
//! kubelet's volume stats say so (`kubelet_volume_stats_available_bytes` over
//! `…_capacity_bytes`), and KubePersistentVolumeFillingUp fires when under 3% is free, or under
//! 15% with the last 6 h's trend reaching zero within four days. Once it is full, the app's
//! writes fail (`No space left on device` in its logs) and it usually crashes. The family
//! measures how fast the volume fills and when it will be full, and whether its StorageClass
//! lets the claim grow: the fix (a larger `storage` request when the class allows expansion)
//! comes with the remediations; until then the crew escalates with the numbers. The proof is
//! the capacity grown and the free share back over the threshold.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::{Sample, VolumeUsage};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, Verification, WorkloadRef};

use crate::readings::slope;
use crate::{
    Change, Detection, Facts, Family, FollowupContext, IssueDraft, Lookup, Observation, Readings,
    Remedy, RemedyInput, Rules, Runbook, family_signals,
};

pub struct VolumeFull;

pub const ROOT_CAUSE: &str = "volume_full";

/// KubePersistentVolumeFillingUp's thresholds: critical under 3% free; warning under 15% free
/// when the 6 h trend reaches zero within four days.
const CRITICAL_FREE: f64 = 0.03;
const WARNING_FREE: f64 = 0.15;
const PREDICTION_HOURS: f64 = 4.0 * 24.0;
const TREND_HOURS: i64 = 6;
/// How long a resized volume should last at the current growth, and the share kept free then.
const LAST_DAYS: f64 = 30.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

const ENOSPC: &str = "no space left on device";

/// What the family measured, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeSignals {
    pub claim: String,
    pub used_bytes: f64,
    pub capacity_bytes: f64,
    /// Growth over the last 6 h, in bytes per hour (negative: shrinking).
    pub growth_bytes_per_hour: f64,
    /// Hours until full at that growth; `None` when it is not growing.
    pub hours_to_full: Option<f64>,
    pub storage_class: Option<String>,
    /// Whether the class lets the claim grow (`None`: the class is not known).
    pub expandable: Option<bool>,
    /// The size that lasts [`LAST_DAYS`] at the current growth with a fifth free, in whole GiB.
    pub suggested_gib: u64,
    /// The app's own line about a failed write, when its logs have one.
    pub log_line: Option<String>,
}

/// `19.5Gi`, `812Mi`.
fn size(bytes: f64) -> String {
    if bytes.abs() >= GIB {
        format!("{:.1}Gi", bytes / GIB)
    } else {
        format!("{:.0}Mi", bytes / 1024.0 / 1024.0)
    }
}

/// `about 2 h`, `about 40 min`, `about 3 days`.
fn duration(hours: f64) -> String {
    if hours < 1.0 {
        format!("about {:.0} min", (hours * 60.0).max(1.0))
    } else if hours < 48.0 {
        format!("about {:.0} h", hours)
    } else {
        format!("about {:.0} days", hours / 24.0)
    }
}

fn last(series: &[Sample]) -> Option<&Sample> {
    series.iter().max_by_key(|s| s.at)
}

/// Bytes per hour over the last [`TREND_HOURS`] of `used`.
fn growth(used: &[Sample]) -> f64 {
    let Some(end) = last(used).map(|s| s.at) else {
        return 0.0;
    };
    let from = end - chrono::Duration::hours(TREND_HOURS);
    let points: Vec<(f64, f64)> = used
        .iter()
        .filter(|s| s.at >= from)
        .map(|s| ((s.at - from).num_seconds() as f64 / 3600.0, s.value))
        .collect();
    slope(&points).unwrap_or(0.0)
}

/// One volume read: (claim, used, capacity, growth per hour).
fn read(v: &VolumeUsage) -> Option<(f64, f64, f64)> {
    let used = last(&v.used)?.value;
    let capacity = last(&v.capacity)?.value;
    (capacity > 0.0).then(|| (used, capacity, growth(&v.used)))
}

impl Family for VolumeFull {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        None
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let log_line = facts
            .logs
            .iter()
            .rev()
            .find(|l| l.to_lowercase().contains(ENOSPC))
            .cloned();
        // The fullest volume.
        let (volume, (used, capacity, per_hour)) = facts
            .volumes
            .iter()
            .filter_map(|v| read(v).map(|r| (v, r)))
            .max_by(|a, b| (a.1.0 / a.1.1).total_cmp(&(b.1.0 / b.1.1)))?;
        let free = 1.0 - used / capacity;
        let hours_to_full = (per_hour > 0.0).then(|| (capacity - used).max(0.0) / per_hour);
        let full = free <= 0.001 || log_line.is_some() && free < WARNING_FREE;
        let filling = free < CRITICAL_FREE
            || free < WARNING_FREE && hours_to_full.is_some_and(|h| h <= PREDICTION_HOURS);
        if !full && !filling {
            return None;
        }
        let claim = facts.claims.iter().find(|c| c.name == volume.claim);
        let class_name = claim.and_then(|c| c.storage_class.clone()).or_else(|| {
            facts
                .storage_classes
                .iter()
                .find(|c| c.default)
                .map(|c| c.name.clone())
        });
        let class = class_name
            .as_deref()
            .and_then(|n| facts.storage_classes.iter().find(|c| c.name == n));
        let expandable = class.map(|c| c.allow_volume_expansion);
        let needed = (used + per_hour.max(0.0) * 24.0 * LAST_DAYS).max(capacity * 1.5) / 0.8;
        let suggested_gib = (needed / GIB).ceil().max(1.0) as u64;

        let mut d = Detection::new(String::new(), 0.9, &[]);
        d.evidence.push(Evidence {
            source: "kubelet volume stats".into(),
            observation: format!(
                "claim {}: {} of {} used ({:.1}% free), growing {}/h over the last {TREND_HOURS} h",
                volume.claim,
                size(used),
                size(capacity),
                free * 100.0,
                size(per_hour)
            ),
        });
        if let Some(line) = &log_line {
            d.evidence.push(Evidence {
                source: "container logs".into(),
                observation: line.clone(),
            });
        }
        if let Some(c) = class {
            d.evidence.push(Evidence {
                source: "StorageClasses".into(),
                observation: format!(
                    "claim {}'s StorageClass {} ({}) {}",
                    volume.claim,
                    c.name,
                    c.provisioner,
                    if c.allow_volume_expansion {
                        "allows volume expansion"
                    } else {
                        "does not allow volume expansion"
                    }
                ),
            });
        }
        let state = if full {
            format!(
                "is full ({} of {}): the app's writes fail",
                size(used),
                size(capacity)
            )
        } else {
            format!(
                "is {:.1}% full ({} of {}), growing {}/h{}",
                100.0 - free * 100.0,
                size(used),
                size(capacity),
                size(per_hour),
                hours_to_full
                    .map(|h| format!(": full in {}", duration(h)))
                    .unwrap_or_default()
            )
        };
        let class_words = match (class_name.as_deref(), expandable) {
            (Some(n), Some(true)) => format!("; StorageClass {n} allows expansion"),
            (Some(n), Some(false)) => format!("; StorageClass {n} does not allow expansion"),
            _ => String::new(),
        };
        d.summary = format!(
            "the volume of claim {} ({}) {state}{class_words}",
            volume.claim, facts.workload.name
        );
        d.recommendations.push(match expandable {
            Some(false) => format!(
                "the class cannot grow the claim: free space (retention, compaction, old data) now, then move the data to a claim of a class that allows expansion, sized {suggested_gib}Gi"
            ),
            _ => format!(
                "raise claim {}'s storage request to {suggested_gib}Gi (lasts about {LAST_DAYS:.0} days at the current growth with a fifth free); a claim never shrinks",
                volume.claim
            ),
        });
        d.recommendations.push(
            "find what writes: the app's retention, logs or temporary files on the volume; growth that follows traffic is data, growth at flat traffic is a leak of files".into(),
        );
        d.signals = serde_json::to_value(VolumeSignals {
            claim: volume.claim.clone(),
            used_bytes: used,
            capacity_bytes: capacity,
            growth_bytes_per_hour: per_hour,
            hours_to_full,
            storage_class: class_name,
            expandable,
            suggested_gib,
            log_line,
        })
        .ok();
        Some(d)
    }

    fn lookups(&self, facts: &Facts) -> Vec<Lookup> {
        if facts.info.claims.is_empty() {
            Vec::new()
        } else {
            vec![Lookup::Claims]
        }
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the claim's size against its growth, and whether its StorageClass allows expansion",
            ),
            (
                Member::Worf,
                "whether what fills the volume (logs, dumps) holds data that must not be kept",
            ),
            (
                Member::Data,
                "what the app writes to the volume and its retention",
            ),
        ]
    }

    fn repo_objects(&self, d: &Diagnosis) -> Vec<(String, String)> {
        family_signals::<VolumeSignals>(d)
            .map(|s| vec![("PersistentVolumeClaim".to_owned(), s.claim)])
            .unwrap_or_default()
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let human = "a human grows the claim (when its class allows expansion) or frees space";
        let Some(s) = family_signals::<VolumeSignals>(d) else {
            return Remedy::not_yet("volumes filling up", d, human);
        };
        match s.expandable {
            Some(true) => {}
            Some(false) => {
                return Remedy::owned_by(
                    "the app's owners with the platform team (storage)",
                    d,
                    &format!(
                        "free space now (retention, compaction) and move the data to a claim of a class that allows expansion, sized {}Gi: StorageClass {} cannot grow this one",
                        s.suggested_gib,
                        s.storage_class.as_deref().unwrap_or("?")
                    ),
                );
            }
            None => return Remedy::not_yet("a claim whose StorageClass is unknown", d, human),
        }
        // A claim the repository declares grows where it is declared; a StatefulSet's claim
        // templates are immutable, so those claims are grown by hand.
        let Some(claim) = input.repo.object("PersistentVolumeClaim", &s.claim) else {
            return Remedy::Escalate {
                reason: format!(
                    "{}: the GitOps repository does not declare claim {} (a StatefulSet's volumeClaimTemplates are immutable): a human patches the claim to {}Gi (`kubectl patch pvc -n {} {} -p '{{\"spec\":{{\"resources\":{{\"requests\":{{\"storage\":\"{}Gi\"}}}}}}}}'`) and the template for the claims to come",
                    d.summary,
                    s.claim,
                    s.suggested_gib,
                    input.workload.namespace,
                    s.claim,
                    s.suggested_gib
                ),
            };
        };
        let size = format!("{}Gi", s.suggested_gib);
        let Some(edit) =
            crate::undo::set_scalar(claim, &["spec", "resources", "requests", "storage"], &size)
        else {
            return Remedy::not_yet("this claim's shape", d, human);
        };
        let gib = |b: f64| b / GIB;
        let why = format!(
            "claim {} is {:.1}% full ({:.1}Gi of {:.1}Gi), growing {:.2}Gi a day",
            s.claim,
            100.0 * s.used_bytes / s.capacity_bytes.max(1.0),
            gib(s.used_bytes),
            gib(s.capacity_bytes),
            gib(s.growth_bytes_per_hour) * 24.0
        );
        Remedy::Change(Change {
            branch_word: "grow-volume".into(),
            title: format!("fix(storage): grow claim {} to {size}", s.claim),
            edits: vec![edit],
            notes: format!(
                "### A larger claim\n{why}. StorageClass {} allows expansion, so the claim grows in place (the CSI driver resizes the volume and the filesystem; no pod restarts on most drivers). Rule: the space used plus {LAST_DAYS:.0} days of growth at the current rate, with a fifth kept free (and at least 1.5× today's size) → **{size}**. A claim never shrinks. The growth itself (no retention) is Data's follow-up.\n",
                s.storage_class.as_deref().unwrap_or("?")
            ),
            findings: vec![squad_protocols::Finding {
                severity: squad_protocols::Severity::High,
                title: "volume running out of space".into(),
                detail: why,
            }],
        })
    }

    fn verify_needs(&self) -> crate::VerifyNeeds {
        crate::VerifyNeeds {
            volumes: true,
            ..crate::VerifyNeeds::default()
        }
    }

    /// The default verdict, and every volume the pods mount with more than the alert's 15% free
    /// at the end of the window.
    fn verify(&self, d: &Diagnosis, obs: &Observation, rules: &Rules<'_>) -> Verification {
        let mut v = crate::family::default_verdict(d, obs, rules);
        if obs.volumes.is_empty() {
            v.healthy = false;
            v.detail = format!("no volume stats to show the space freed; {}", v.detail);
            return v;
        }
        for vol in &obs.volumes {
            let (Some(used), Some(cap)) = (vol.used.last(), vol.capacity.last()) else {
                continue;
            };
            let free = 1.0 - used.value / cap.value.max(1.0);
            let words = format!(
                "claim {}: {:.1}% free of {:.1}Gi",
                vol.claim,
                free * 100.0,
                cap.value / GIB
            );
            if free < WARNING_FREE {
                v.healthy = false;
                v.detail = format!(
                    "{words}, under the {:.0}% threshold; {}",
                    WARNING_FREE * 100.0,
                    v.detail
                );
            } else {
                v.detail.push_str(&format!("; {words}"));
            }
        }
        v
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "volume-full".into(),
            meaning: "The volume bound to a PersistentVolumeClaim is almost out of space (KubePersistentVolumeFillingUp: under 3% free, or under 15% and the last 6 h's trend reaches zero within four days). When it is full, the app's writes fail (`No space left on device`) and it usually crash-loops.".into(),
            checks: "1. `kubectl get pvc -n <ns>` (CAPACITY, STORAGECLASS) and `kubectl get storageclass <class> -o jsonpath='{.allowVolumeExpansion}'`.\n2. The trend: `kubelet_volume_stats_used_bytes{namespace=\"<ns>\", persistentvolumeclaim=\"<claim>\"}` over a day, against the traffic.\n3. What fills it: `kubectl exec -n <ns> <pod> -- du -xh --max-depth=2 <mount path>`.\n4. `kubectl logs -n <ns> <pod> --previous | grep -i 'no space left'`.".into(),
            fixes: "- **Class allows expansion**: raise the claim's `spec.resources.requests.storage` in the repo (a claim never shrinks); a StatefulSet's claim templates are immutable, so patch each claim and the template separately.\n- **It does not**: free space now (retention, compaction), then migrate to a claim of an expandable class.\n- **Growth at flat traffic**: something leaks files (logs, temp files, dumps): fix the retention, not only the size.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Size {workload}'s volumes from their measured growth, and give them a retention policy."
            ),
            "Use StorageClasses with allowVolumeExpansion for data that grows.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Find what fills {}'s volume and give it a retention policy",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) {}'s volume ran out of space.\n\n\
                 1. List what takes the space: `kubectl exec -n {} {} -- du -xh --max-depth=2 <mount path>`.\n\
                 2. Compare the growth with the traffic over a week: data that follows requests needs room; files that grow at flat traffic need a retention.\n\
                 3. Set the retention (and alert at 80% used), then size the claim for 30 days of growth.",
                cx.incident, cx.issue, cx.workload.name, cx.workload.namespace, cx.pod
            ),
            label: "capacity".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::{ClaimInfo, StorageClassInfo};

    use super::*;
    use crate::testing;

    /// A volume of `capacity_gib` at `used_gib` now, having grown `per_hour_gib` per hour.
    fn filling(capacity_gib: f64, used_gib: f64, per_hour_gib: f64, expandable: bool) -> Facts {
        let mut f = testing::facts("", 0, |_| 200.0, |_| 20.0);
        let c = &mut f.pod.as_mut().unwrap().containers[0];
        c.last_termination = None;
        c.state = "running".into();
        c.restart_count = 0;
        f.info.claims = vec!["orders-data".into()];
        let now = testing::now();
        let at = |h: i64| now - chrono::Duration::hours(h);
        f.volumes = vec![VolumeUsage {
            claim: "orders-data".into(),
            used: (0..24)
                .rev()
                .map(|h| Sample {
                    at: at(h),
                    value: (used_gib - per_hour_gib * h as f64) * GIB,
                })
                .collect(),
            capacity: (0..24)
                .rev()
                .map(|h| Sample {
                    at: at(h),
                    value: capacity_gib * GIB,
                })
                .collect(),
        }];
        f.claims = vec![ClaimInfo {
            name: "orders-data".into(),
            phase: "Bound".into(),
            storage_class: Some("gp3".into()),
            access_modes: vec!["ReadWriteOnce".into()],
            requested: format!("{capacity_gib}Gi").parse().ok(),
            capacity: format!("{capacity_gib}Gi").parse().ok(),
            volume: "pvc-1".into(),
        }];
        f.storage_classes = vec![StorageClassInfo {
            name: "gp3".into(),
            provisioner: "ebs.csi.aws.com".into(),
            default: true,
            allow_volume_expansion: expandable,
            binding_mode: "WaitForFirstConsumer".into(),
        }];
        f
    }

    #[test]
    fn the_claim_grows_where_it_is_declared_and_the_verdict_reads_the_space() {
        let f = filling(40.0, 39.0, 0.25, true);
        let d = testing::diagnosis(&f);
        let (settings, workload) = (testing::settings(), testing::workload());
        let mut repo = testing::manifest();
        repo.objects.push(crate::RepoObject {
            kind: "PersistentVolumeClaim".into(),
            name: "orders-data".into(),
            path: "pvc.yaml".into(),
            text: "kind: PersistentVolumeClaim\nmetadata:\n  name: orders-data\nspec:\n  resources:\n    requests:\n      storage: 40Gi # sized at launch\n".into(),
            history: Vec::new(),
        });
        let cluster = crate::ClusterView::default();
        let Remedy::Change(c) =
            VolumeFull.remedy(&d, &testing::input(&settings, &workload, &repo, &cluster))
        else {
            panic!("expected a change");
        };
        assert!(
            matches!(&c.edits[..], [crate::Edit::SetObjectKey { lines: Some(l), .. }] if l == &["storage: 274Gi # sized at launch"]),
            "{:?}",
            c.edits
        );
        // Not expandable: the owners free space and move the data.
        let d = testing::diagnosis(&filling(40.0, 39.0, 0.25, false));
        assert!(testing::escalation(&VolumeFull, &d).contains("cannot grow this one"));
        // The verdict: still under 15% free is not fixed, whatever the pods say.
        let obs = |f: &Facts| Observation {
            window_minutes: 60,
            restarts: 0,
            oom_kills: 0,
            memory: Vec::new(),
            limit: None,
            traffic: Vec::new(),
            rollout: None,
            throttled: Vec::new(),
            volumes: f.volumes.clone(),
            services: Vec::new(),
            hpas: Vec::new(),
            claims: Vec::new(),
            warnings: Vec::new(),
        };
        let rules = crate::Rules::of(&settings);
        let d = testing::diagnosis(&f);
        let full = VolumeFull.verify(&d, &obs(&f), &rules);
        assert!(!full.healthy);
        assert!(
            full.detail
                .starts_with("claim orders-data: 2.5% free of 40.0Gi"),
            "{}",
            full.detail
        );
        let grown = filling(274.0, 39.0, 0.25, true);
        assert!(VolumeFull.verify(&d, &obs(&grown), &rules).healthy);
    }

    #[test]
    fn a_volume_almost_full_says_when_it_fills_and_how_big_to_make_it() {
        let f = filling(40.0, 39.0, 0.25, true);
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "the volume of claim orders-data (cart) is 97.5% full (39.0Gi of 40.0Gi), growing 256Mi/h: full in about 4 h; StorageClass gp3 allows expansion"
        );
        let s: VolumeSignals = crate::family_signals(&d).unwrap();
        // 39 + 0.25 × 720 = 219 GiB, over 0.8: 274 GiB.
        assert_eq!(s.suggested_gib, 274);
        assert!((s.hours_to_full.unwrap() - 4.0).abs() < 0.01);
        let reason = testing::escalation(&VolumeFull, &d);
        assert!(reason.contains("orders-data"), "{reason}");
    }

    #[test]
    fn a_full_volume_that_cannot_grow_is_named_with_the_apps_failed_write() {
        let mut f = filling(10.0, 10.0, 0.1, false);
        f.logs = vec![
            "2026-12-01 09:14:02 UTC [1] PANIC:  could not write to file \"pg_wal/xlogtemp.1\": No space left on device".into(),
        ];
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert!(
            d.summary.contains("is full (10.0Gi of 10.0Gi): the app's writes fail; StorageClass gp3 does not allow expansion"),
            "{}",
            d.summary
        );
        assert!(
            d.evidence
                .iter()
                .any(|e| e.observation.contains("No space left on device"))
        );
    }

    #[test]
    fn a_volume_with_room_or_growing_slowly_is_not_this_family() {
        // 80% used: room.
        let f = filling(50.0, 40.0, 0.5, true);
        assert!(VolumeFull.detect(&f, &Readings::of(&f)).is_none());
        // 88% used but full only in 20 days: not yet.
        let f = filling(100.0, 88.0, 0.025, true);
        assert!(VolumeFull.detect(&f, &Readings::of(&f)).is_none());
        // 88% used and full in 2 days: filling up.
        let f = filling(100.0, 88.0, 0.25, true);
        assert!(VolumeFull.detect(&f, &Readings::of(&f)).is_some());
        let f = testing::oom_under_load();
        assert!(VolumeFull.detect(&f, &Readings::of(&f)).is_none());
    }
}

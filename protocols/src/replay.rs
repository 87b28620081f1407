//! A fix replayed in the world model before it is proposed: what the workload does over a stated
//! horizon under the same load, without the change and with it.

use serde::{Deserialize, Serialize};

use crate::Quantity;

/// What the workload does over the horizon in one of the replayed worlds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The replicas the workload asks for at the end.
    pub desired: u32,
    /// Its pods with every container ready at the end.
    pub ready: u32,
    /// Each pod that is not, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
    /// Container restarts over the horizon.
    pub restarts: u32,
    /// Of which OOM kills (pods whose last termination in the horizon was one).
    pub oom_kills: u32,
    /// The container's peak working set over the horizon, and its memory limit at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Quantity>,
}

impl Outcome {
    /// Every replica Ready, nothing restarted, memory under the limit.
    pub fn holds(&self) -> bool {
        self.ready >= self.desired
            && self.not_ready.is_empty()
            && self.restarts == 0
            && self.oom_kills == 0
            && match (self.peak, self.limit) {
                (Some(p), Some(l)) => p < l,
                _ => true,
            }
    }

    /// In words: `3 of 3 replicas Ready, 0 restarts, 0 OOM kills, peak 612Mi = 60% of the 1Gi limit`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} of {} replicas Ready, {} restart(s), {} OOM kill(s)",
            self.ready, self.desired, self.restarts, self.oom_kills
        );
        match (self.peak, self.limit) {
            (Some(p), Some(l)) if l.bytes() > 0 => s.push_str(&format!(
                ", peak {:.0} MiB = {:.0}% of the {l} limit",
                p.as_mib_f64(),
                p.as_mib_f64() / l.as_mib_f64() * 100.0
            )),
            (Some(p), _) => s.push_str(&format!(", peak {:.0} MiB", p.as_mib_f64())),
            _ => {}
        }
        if let Some(first) = self.not_ready.first() {
            s.push_str(&format!(" ({first})"));
        }
        s
    }
}

/// The replay of a fix: the same world, the same load, `horizon_hours` ahead, without the change
/// and with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    pub horizon_hours: u64,
    pub without: Outcome,
    pub with: Outcome,
    /// What the world model was seeded from, in words (`the simulated world`, `the cluster's
    /// facts read at …`); empty in replays recorded before it was said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub seeded_from: String,
}

/// Where the GitOps repository declares a workload, as the remedy found it: the file that
/// declares its object and what renders it for the workload's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declared {
    /// The file whose document declares the workload (in a Kustomize repository, the base's;
    /// with Helm, the chart's template).
    pub manifest: String,
    /// The Kustomize overlay directory the environment renders, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<String>,
    /// The Argo CD Application file that renders the chart, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<String>,
}

impl Replay {
    /// Whether the fix holds in the replay.
    pub fn holds(&self) -> bool {
        self.with.holds()
    }

    /// The PR's section: what the replay predicts beside what happens without the change.
    pub fn table(&self) -> String {
        format!(
            "### Replay ({} h, the same load)\nThe fix was replayed in squad's world model, seeded from {}, before this PR was opened.\n\n| | without this change | with it |\n|---|---|---|\n| replicas Ready | {} of {} | {} of {} |\n| restarts | {} | {} |\n| OOM kills | {} | {} |\n| peak memory | {} | {} |\n\nPrediction: **{}**.\n",
            self.horizon_hours,
            if self.seeded_from.is_empty() {
                "what was just read"
            } else {
                &self.seeded_from
            },
            self.without.ready,
            self.without.desired,
            self.with.ready,
            self.with.desired,
            self.without.restarts,
            self.with.restarts,
            self.without.oom_kills,
            self.with.oom_kills,
            peak(&self.without),
            peak(&self.with),
            if self.holds() {
                "the fix holds"
            } else {
                "the fix does not hold"
            }
        )
    }
}

fn peak(o: &Outcome) -> String {
    match (o.peak, o.limit) {
        (Some(p), Some(l)) if l.bytes() > 0 => format!(
            "{:.0} MiB ({:.0}% of {l})",
            p.as_mib_f64(),
            p.as_mib_f64() / l.as_mib_f64() * 100.0
        ),
        (Some(p), _) => format!("{:.0} MiB", p.as_mib_f64()),
        _ => "—".into(),
    }
}

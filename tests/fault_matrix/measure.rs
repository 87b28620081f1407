//! What a row is measured by: incidents lost, actions duplicated, incidents stuck without a
//! timeline entry saying why.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::rows::Row;
use crate::run::{SETTLED, expected};
use crate::world::World;

#[derive(Debug, Clone)]
pub struct Outcome {
    pub port: String,
    pub fault: String,
    pub kills: u32,
    pub incidents: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub stuck: usize,
    /// Commits the crew made on the GitOps repository (for the comparison with the baseline).
    pub commits: usize,
    /// Timeline entries over all incidents.
    pub entries: usize,
    /// Faults the proxy injected.
    pub injected: u64,
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.stuck == 0
    }
}

pub use squad_testkit::effects::main_head;

/// Whether an entry explains why the incident is still waiting.
fn explains(entry: &str) -> bool {
    let e = entry.to_ascii_lowercase();
    [
        "failed (attempt",
        "retry",
        "retrying",
        "backoff",
        "waiting",
        "unavailable",
        "did not answer",
        "escalat",
    ]
    .iter()
    .any(|w| e.contains(w))
}

#[allow(clippy::too_many_arguments)]
pub fn measure(
    row: &Row,
    answered: usize,
    incidents: &[Value],
    world: &World,
    seed: &git2::Oid,
    kills: u32,
    (injected, requests): (BTreeMap<String, u64>, u64),
    took: Duration,
) -> Outcome {
    let mut notes = Vec::new();
    // Lost: an answered alert's group with no incident; duplicated: a group with two.
    let mut groups: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in incidents {
        let key = (
            i["alert"].as_str().unwrap_or("").to_owned(),
            i["workload"].as_str().unwrap_or("").to_owned(),
        );
        *groups.entry(key).or_default() += 1;
    }
    let want = expected();
    assert_eq!(want.len(), answered);
    let lost = want.iter().filter(|k| !groups.contains_key(k)).count();
    let mut duplicated = 0;
    for (k, n) in &groups {
        if *n > 1 {
            duplicated += n - 1;
            notes.push(format!("{n} incidents for {} on {}", k.0, k.1));
        }
    }
    for (m, n) in squad_testkit::effects::markers(&world.forge).unwrap() {
        if n > 1 {
            duplicated += n - 1;
            notes.push(format!("{m} {n} times"));
        }
    }
    let c = squad_testkit::effects::commits(&world.repo, *seed).unwrap();
    let total_commits = c.total;
    duplicated += c.duplicated;
    notes.extend(c.notes);
    // Stuck: not settled, and the last entry does not say why.
    let mut stuck = 0;
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for i in incidents {
        let state = i["state"].as_str().unwrap_or("?").to_owned();
        *states.entry(state.clone()).or_default() += 1;
        if SETTLED.contains(&state.as_str()) {
            continue;
        }
        let last = i["timeline"]
            .as_array()
            .and_then(|t| t.last())
            .map(|e| e["event"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        if !explains(&last) {
            stuck += 1;
            notes.push(format!(
                "{} stuck in {state} after \"{last}\"",
                i["id"].as_str().unwrap_or("?")
            ));
        }
    }
    // Why the escalated ones escalated (the reason of their last state change).
    let mut why: BTreeMap<String, usize> = BTreeMap::new();
    let names = regex::Regex::new(r"inc-[0-9a-f]+|#\d+").unwrap();
    for i in incidents.iter().filter(|i| i["state"] == "escalated") {
        let reason = i["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["event"].as_str())
            .rfind(|e| e.contains("-> escalated"))
            .map(|e| {
                let r = e.split_once(": ").map_or(e, |(_, r)| r);
                // Incident-specific names out, so that equal reasons count together.
                let r = names.replace_all(r, "…");
                r.chars().take(110).collect::<String>()
            })
            .unwrap_or_default();
        *why.entry(reason).or_default() += 1;
    }
    let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    notes.insert(0, states.join(", "));
    for (r, n) in why {
        notes.push(format!("escalated ({n}): {r}"));
    }
    if !injected.is_empty() {
        let inj: Vec<String> = injected.iter().map(|(f, n)| format!("{f}×{n}")).collect();
        notes.push(format!(
            "injected {} in {requests} requests",
            inj.join(", ")
        ));
    }
    notes.push(format!("{total_commits} commits, {} s", took.as_secs()));
    Outcome {
        port: row.port.name().to_owned(),
        fault: row.fault.clone(),
        kills,
        incidents: incidents.len(),
        lost,
        duplicated,
        stuck,
        commits: total_commits,
        entries: incidents
            .iter()
            .map(|i| i["timeline"].as_array().map_or(0, Vec::len))
            .sum(),
        injected: injected.values().sum(),
        notes,
    }
}

/// The markdown table.
pub fn table(rows: &[Outcome]) -> String {
    let mut t = String::from(
        "| port | fault | kills | incidents | lost | duplicated | stuck | notes |\n|---|---|---|---|---|---|---|---|\n",
    );
    for o in rows {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            o.port,
            o.fault,
            o.kills,
            o.incidents,
            o.lost,
            o.duplicated,
            o.stuck,
            o.notes.join("; ").replace('|', "\\|")
        ));
    }
    t
}

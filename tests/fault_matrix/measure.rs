//! What a row is measured by: incidents lost, actions duplicated, incidents stuck without a
//! timeline entry saying why.

use std::collections::BTreeMap;
use std::path::Path;
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

/// The default branch's head when the row started.
pub fn main_head(repo: &Path) -> git2::Oid {
    let r = git2::Repository::open(repo).unwrap();
    r.refname_to_id("refs/heads/main").unwrap()
}

/// The hidden markers every effect on the forge carries, and how often each is there.
fn markers(world: &World) -> BTreeMap<String, usize> {
    let re = regex::Regex::new(r"<!-- squad:[^ ]+ -->").unwrap();
    let state = world.forge.snapshot();
    let mut bodies: Vec<&str> = Vec::new();
    for i in &state.issues {
        bodies.push(&i.body);
        bodies.extend(i.comments.iter().map(|c| c.body.as_str()));
    }
    bodies.extend(state.pulls.iter().map(|p| p.body.as_str()));
    let mut count = BTreeMap::new();
    for b in bodies {
        for m in re.find_iter(b) {
            *count.entry(m.as_str().to_owned()).or_insert(0) += 1;
        }
    }
    count
}

/// The crew's commits: the record commits on main since `seed` (by incident) and each PR
/// branch's commits that main does not have.
fn commits(repo: &Path, seed: git2::Oid) -> (usize, usize, Vec<String>) {
    let r = git2::Repository::open(repo).unwrap();
    let mut notes = Vec::new();
    let mut total = 0;
    let mut duplicated = 0;
    let mut walk = r.revwalk().unwrap();
    walk.push_ref("refs/heads/main").unwrap();
    walk.hide(seed).unwrap();
    let mut records: BTreeMap<String, usize> = BTreeMap::new();
    for oid in walk {
        let c = r.find_commit(oid.unwrap()).unwrap();
        let msg = c.message().unwrap_or("").to_owned();
        let key = msg
            .strip_prefix("docs(squad): record incident ")
            .and_then(|m| m.split_whitespace().next())
            .unwrap_or(&msg)
            .to_owned();
        *records.entry(key).or_default() += 1;
        total += 1;
    }
    for (k, n) in &records {
        if *n > 1 {
            duplicated += n - 1;
            notes.push(format!("{n} record commits for {k}"));
        }
    }
    for b in r.branches(Some(git2::BranchType::Local)).unwrap() {
        let (b, _) = b.unwrap();
        let name = b.name().unwrap().unwrap_or("").to_owned();
        if name == "main" {
            continue;
        }
        let mut walk = r.revwalk().unwrap();
        walk.push(b.get().target().unwrap()).unwrap();
        walk.hide_ref("refs/heads/main").unwrap();
        walk.hide(seed).unwrap();
        let n = walk.count();
        total += n;
        if n > 1 {
            duplicated += n - 1;
            notes.push(format!("{n} commits on {name}"));
        }
    }
    (total, duplicated, notes)
}

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
    for (m, n) in markers(world) {
        if n > 1 {
            duplicated += n - 1;
            notes.push(format!("{m} {n} times"));
        }
    }
    let (total_commits, dup_commits, commit_notes) = commits(&world.repo, *seed);
    duplicated += dup_commits;
    notes.extend(commit_notes);
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

//! Replicas that share one ReadWriteOnce claim: the Multi-Attach error is not between a rollout's
//! old and new pods but between pods of the *same* ReplicaSet (or StatefulSet) that the scheduler
//! spread over nodes. The first pod's node holds the volume; every replica elsewhere waits in
//! `ContainerCreating` for as long as it exists. `strategy: Recreate` changes nothing (no rollout
//! is in progress): the workload asks for more pods than its storage can serve.
//!
//! The evidence: the pods the attach/detach controller names as holding the volume (`Volume is
//! already used by pod(s) a, b`) are named after the waiting pod's own owner (`<owner>-<suffix>`,
//! as the ReplicaSet and StatefulSet controllers name their pods) — or, when it names none, the
//! Deployment's rollout is complete (`NewReplicaSetAvailable`: no old pod is left to hold it);
//! the workload runs more than one replica; and the claim the volume belongs to allows
//! ReadWriteOnce (or ReadWriteOncePod) only.
//!
//! The fix: when the newest change of the manifest's `replicas` raised it from the one pod that
//! ran, that line goes back; otherwise (an HPA scales it, or it never ran with one) the app's
//! owners decide how it scales out: a claim per replica (a StatefulSet with
//! `volumeClaimTemplates`) or a ReadWriteMany class whose replicas may share files.

use serde::{Deserialize, Serialize};
use squad_protocols::Diagnosis;
use squad_protocols::cluster::HpaInfo;

use crate::{Facts, Remedy, RemedyInput};

/// The replicas that share the volume, kept in the diagnosis' signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedByReplicas {
    /// The waiting pod's owner, `Kind/name` (`ReplicaSet/web-7d9f`).
    pub owner: String,
    /// The pods the attach/detach controller says hold the volume (none when it names none).
    pub holders: Vec<String>,
    /// The claim the volume belongs to, and its access modes.
    pub claim: String,
    pub access_modes: Vec<String>,
    /// The replicas the workload runs.
    pub replicas: u32,
    /// The HPAs that scale the workload: `(name, minReplicas, maxReplicas)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub autoscalers: Vec<(String, u32, u32)>,
}

/// What the decision is, in the words the notes and the escalation share.
pub const SCALING_OUT: &str = "replicas on several nodes cannot share one ReadWriteOnce volume: scaling out needs storage per replica (a StatefulSet with `volumeClaimTemplates`, each pod its own claim) or a ReadWriteMany class (a file system: EFS, Filestore, Azure Files, CephFS, NFS) whose replicas may write the same files at once, which the app's owners decide — the app must be built for either";

/// The pods a Multi-Attach error names as holding the volume (`… Volume is already used by
/// pod(s) a, b`).
pub fn holders(message: &str) -> Vec<String> {
    message
        .split_once("already used by pod(s)")
        .map(|(_, rest)| {
            rest.split(',')
                .map(|p| p.trim().trim_end_matches('.').to_owned())
                .filter(|p| !p.is_empty() && !p.contains(' '))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the claim's access modes let it attach to one node only.
fn exclusive(modes: &[String]) -> bool {
    !modes.is_empty()
        && modes
            .iter()
            .all(|m| m == "ReadWriteOnce" || m == "ReadWriteOncePod")
}

/// The replicas case, when the facts show it: the waiting pod's own replicas hold the volume
/// `pv` (see the module doc), named in `message`.
pub fn shared_by_replicas(
    facts: &Facts,
    pv: Option<&str>,
    message: &str,
) -> Option<SharedByReplicas> {
    let owner = facts.pod.as_ref()?.owner.clone()?;
    let (_, owner_name) = owner.split_once('/')?;
    let holders = holders(message);
    let own = if holders.is_empty() {
        // Nobody named: no rollout in progress means no old pod of the workload holds it.
        facts
            .info
            .conditions
            .iter()
            .any(|c| c.kind == "Progressing" && c.reason == "NewReplicaSetAvailable")
    } else {
        holders.iter().all(|h| {
            h.rsplit_once('-')
                .is_some_and(|(prefix, _)| prefix == owner_name)
        })
    };
    if !own {
        return None;
    }
    let autoscalers: Vec<&HpaInfo> = facts.autoscalers.iter().collect();
    let replicas = autoscalers
        .iter()
        .map(|h| h.current_replicas.max(h.desired_replicas))
        .chain([facts.info.replicas])
        .max()
        .unwrap_or(0);
    if replicas < 2 {
        return None;
    }
    let mounted: Vec<_> = facts
        .claims
        .iter()
        .filter(|c| facts.info.claims.contains(&c.name))
        .collect();
    // The claim bound to the volume the error names, else the one claim the pods mount.
    let named = pv.and_then(|pv| mounted.iter().find(|c| c.volume == pv).copied());
    let only = match mounted.as_slice() {
        [one] => Some(*one),
        _ => None,
    };
    let claim = named.or(only)?;
    if !exclusive(&claim.access_modes) {
        return None;
    }
    Some(SharedByReplicas {
        owner,
        holders,
        claim: claim.name.clone(),
        access_modes: claim.access_modes.clone(),
        replicas,
        autoscalers: autoscalers
            .iter()
            .map(|h| (h.name.clone(), h.min_replicas, h.max_replicas))
            .collect(),
    })
}

/// The summary's words for it.
pub fn what(s: &SharedByReplicas, volume: Option<&str>, node: &str, workload: &str) -> String {
    let held = if s.holders.is_empty() {
        "held on another node".to_owned()
    } else {
        format!(
            "held on another node by {} (its own {})",
            s.holders.join(", "),
            s.owner.replacen('/', " ", 1)
        )
    };
    format!(
        "volume {} is {held}, so it cannot attach to {node}: {} replicas of {workload} share claim {} ({}), which attaches to one node at a time; no rollout is in progress, the replicas themselves need the volume",
        volume.unwrap_or("(unnamed)"),
        s.replicas,
        s.claim,
        s.access_modes.join(", ")
    )
}

/// What a human does, for the diagnosis.
pub fn recommendations(s: &SharedByReplicas) -> Vec<String> {
    vec![
        format!(
            "run the one replica that can hold claim {} (the replicas elsewhere never start), until the app's owners choose how it scales out",
            s.claim
        ),
        format!("{SCALING_OUT}."),
        "`strategy: Recreate` does not help here: it orders a rollout's old and new pods, and these pods belong to one ReplicaSet".into(),
    ]
}

/// The fix: undo the change that raised the manifest's `replicas` from the one pod that ran;
/// else the app's owners decide.
pub fn remedy(d: &Diagnosis, s: &SharedByReplicas, input: &RemedyInput<'_>) -> Remedy {
    let w = input.workload;
    let target = format!("{}/{}", w.kind, w.name);
    // An HPA sets the replicas whatever the manifest says.
    let hpas: Vec<(String, u32, u32)> = match &input.cluster.hpas {
        Some(Ok(all)) => all
            .iter()
            .filter(|h| h.target == target)
            .map(|h| (h.name.clone(), h.min_replicas, h.max_replicas))
            .collect(),
        _ => s.autoscalers.clone(),
    };
    if let Some((name, min, max)) = hpas.first() {
        return Remedy::owned_by(
            "the app's owners",
            d,
            &format!(
                "decide how {} scales out: HPA {name} scales it between minReplicas {min} and maxReplicas {max}, and {SCALING_OUT}. No pull request: lowering the HPA's bounds to 1 gives up the scaling it was set up for, and `strategy: Recreate` would not help (no rollout is in progress)",
                w.name
            ),
        );
    }
    let obj = input.repo.workload(w);
    let escalate = |why: &str| {
        Remedy::owned_by(
            "the app's owners",
            d,
            &format!(
                "decide how {} scales out ({why}): {SCALING_OUT}. No pull request: `strategy: Recreate` would not help (no rollout is in progress)",
                w.name
            ),
        )
    };
    let Some(undo) = crate::undo::find_keys(&obj, &[&["spec", "replicas"]]) else {
        return escalate("no change of its `replicas` in the repository's history to undo");
    };
    let replicas = |text: &str| {
        squad_gitops::objects::parse(&obj.path, text)
            .ok()?
            .into_iter()
            .find(|o| {
                squad_gitops::objects::kind(o) == w.kind && squad_gitops::objects::name(o) == w.name
            })
            .map(|o| o["spec"]["replicas"].as_u64().unwrap_or(1))
    };
    let (Some(before), Some(now)) = (replicas(&undo.before.content), replicas(&obj.text)) else {
        return escalate("its manifest's versions could not be read");
    };
    if before > 1 || now <= before {
        return escalate(&format!(
            "its `replicas` was {before} before the last change of it, so no count of one pod ran to go back to"
        ));
    }
    let why = format!(
        "{} replicas of {} share ReadWriteOnce claim {}: the volume attaches to one node at a time, so the replicas the scheduler puts on other nodes wait in ContainerCreating for good (Multi-Attach error). Going back to {before} replica is what ran",
        s.replicas, w.name, s.claim
    );
    let mut change = undo.change(w, &why, "replicas raised over a ReadWriteOnce volume");
    change.notes.push_str(&format!(
        "\n### Scaling out is the app's owners' decision\n{}.\n\n`strategy: Recreate` would not help: it orders a rollout's old and new pods, and these pods all belong to {}; no rollout is in progress.\n",
        capitalised(SCALING_OUT),
        s.owner.replacen('/', " ", 1)
    ));
    change.findings.push(squad_protocols::Finding {
        severity: squad_protocols::Severity::Medium,
        title: "scaling out needs storage per replica".into(),
        detail: SCALING_OUT.into(),
    });
    Remedy::Change(change)
}

fn capitalised(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

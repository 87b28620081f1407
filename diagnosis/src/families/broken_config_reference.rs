//! Broken configuration reference: the container never starts because something its pod refers
//! to does not exist. The kubelet sets up the pod's volumes, pulls the image, then resolves the
//! container's environment; a ConfigMap or Secret (or a key in one) that is missing stops it at
//! the volume (`FailedMount`: `MountVolume.SetUp failed for volume "config" : configmap
//! "app-config" not found`, the container `ContainerCreating`) or at the environment
//! (`CreateContainerConfigError`: `secret "db-creds" not found`, `couldn't find key password in
//! Secret shop/db-creds`). Most often the last deploy renamed the reference. The fix restores the
//! previous revision's reference when the last deploy changed it and that one still resolves;
//! else it points the reference at the one existing key (or object) that is the same name
//! written another way ([`repoint`]); else a human decides, with the names that exist. Values are
//! never read nor written. The proof is the pod running with no more `Failed`/`FailedMount`
//! events.

use serde::{Deserialize, Serialize};
use squad_protocols::cluster::ClusterEvent;
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::{
    ClusterNeeds, Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy,
    RemedyInput, RepoNeeds, RepoView, Runbook,
};

mod repoint;

pub struct BrokenConfigReference;

pub const ROOT_CAUSE: &str = "broken_config_reference";

/// What does not resolve, as the kubelet's message names it (kept on the diagnosis's signals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenReference {
    /// `Secret` or `ConfigMap`.
    pub kind: String,
    /// The object's name, when the message names it (a volume's missing key names only the key).
    pub name: Option<String>,
    /// The missing key, when the object exists but lacks it.
    pub key: Option<String>,
    /// The volume that cannot be mounted, for a mount failure.
    pub volume: Option<String>,
    /// The kubelet's message.
    pub message: String,
    /// The container whose environment or volume refers to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl BrokenReference {
    /// Whether an `env` item (as JSON) reads from what does not exist.
    fn read_by(&self, item: &serde_json::Value) -> bool {
        let from = &item["valueFrom"][if self.kind == "Secret" {
            "secretKeyRef"
        } else {
            "configMapKeyRef"
        }];
        from.is_object()
            && self.name.as_ref().is_none_or(|n| from["name"] == **n)
            && self.key.as_ref().is_none_or(|k| from["key"] == **k)
    }
}

impl BrokenReference {
    /// What does not exist, in words: `key dsn of Secret ledger-db`, `ConfigMap app-config`.
    pub fn describe(&self) -> String {
        describe(&self.kind, self.name.as_deref(), self.key.as_deref())
    }
}

/// The object and key a kubelet error names: `secret "x" not found`, `couldn't find key k in
/// ConfigMap ns/x`, `configmap references non-existent config key: k`.
fn parse_error(error: &str) -> Option<(String, Option<String>, Option<String>)> {
    let kind_of = |word: &str| match word.to_ascii_lowercase().as_str() {
        "secret" => Some("Secret".to_owned()),
        "configmap" => Some("ConfigMap".to_owned()),
        _ => None,
    };
    if let Some(rest) = error.strip_prefix("couldn't find key ") {
        let (key, rest) = rest.split_once(" in ")?;
        let (kind, object) = rest.split_once(' ')?;
        let name = object.rsplit_once('/').map_or(object, |x| x.1);
        return Some((kind_of(kind)?, Some(name.to_owned()), Some(key.to_owned())));
    }
    if let Some(key) = error.strip_prefix("configmap references non-existent config key: ") {
        return Some(("ConfigMap".into(), None, Some(key.trim().to_owned())));
    }
    if let Some(key) = error.strip_prefix("references non-existent secret key: ") {
        return Some(("Secret".into(), None, Some(key.trim().to_owned())));
    }
    let (kind, rest) = error.split_once(' ')?;
    let name = rest.strip_suffix(" not found")?.trim_matches('"');
    Some((kind_of(kind)?, Some(name.to_owned()), None))
}

/// The newest of the kubelet's events matching `pick`.
fn newest(facts: &Facts, pick: impl Fn(&ClusterEvent) -> bool) -> Option<&ClusterEvent> {
    facts
        .events
        .iter()
        .filter(|e| pick(e))
        .max_by_key(|e| e.last_seen)
}

/// The broken reference the pod's events show, and the event that shows it.
fn broken(facts: &Facts) -> Option<(BrokenReference, &ClusterEvent)> {
    let state = facts.status()?.state.as_str();
    match state {
        "waiting: CreateContainerConfigError" => {
            let e = newest(facts, |e| {
                e.reason == "Failed"
                    && e.message.starts_with("Error: ")
                    && !e.message.contains("ImagePull")
                    && !e.message.contains("ErrImage")
            })?;
            let error = e.message.trim_start_matches("Error: ");
            let (kind, name, key) = parse_error(error)?;
            Some((
                BrokenReference {
                    kind,
                    name,
                    key,
                    volume: None,
                    message: error.to_owned(),
                    container: Some(facts.container.clone()),
                },
                e,
            ))
        }
        "waiting: ContainerCreating" => {
            let e = newest(facts, |e| {
                e.reason == "FailedMount" && e.message.starts_with("MountVolume.SetUp failed")
            })?;
            let rest = e
                .message
                .strip_prefix("MountVolume.SetUp failed for volume \"")?;
            let (volume, error) = rest.split_once("\" : ")?;
            let (kind, name, key) = parse_error(error)?;
            Some((
                BrokenReference {
                    kind,
                    name,
                    key,
                    volume: Some(volume.to_owned()),
                    message: error.to_owned(),
                    container: Some(facts.container.clone()),
                },
                e,
            ))
        }
        _ => None,
    }
}

/// `secret:<name>/<key>` or `configmap:<name>/<key>` (the manifest reader's form) for `b`.
fn refers_to(source: &str, b: &BrokenReference) -> bool {
    let Some((kind, object)) = source.split_once(':') else {
        return false;
    };
    let (name, key) = object.split_once('/').unwrap_or((object, ""));
    kind.eq_ignore_ascii_case(&b.kind)
        && b.name.as_deref().is_none_or(|n| n == name)
        && b.key.as_deref().is_none_or(|k| k == key)
}

/// The last rollout's change to the environment variable that now refers to the broken object:
/// (revision, how long ago, variable, the reference before, if any).
fn reference_change(
    facts: &Facts,
    b: &BrokenReference,
) -> Option<(u32, String, String, Option<String>)> {
    let [.., before, last] = facts.history.as_slice() else {
        return None;
    };
    let env = |r: &squad_protocols::cluster::Revision| {
        r.containers
            .iter()
            .find(|c| c.name == facts.container)
            .map(|c| c.env.clone())
            .unwrap_or_default()
    };
    let (old, new) = (env(before), env(last));
    let var = new.iter().find(|v| refers_to(&v.source, b))?;
    let previous = old.iter().find(|v| v.name == var.name);
    if previous.is_some_and(|p| p.source == var.source) {
        return None;
    }
    Some((
        last.revision,
        crate::readings::ago(facts.now - last.at),
        var.name.clone(),
        previous.map(|p| source_in_words(&p.source)),
    ))
}

/// An env item's source in words, as the rest of the diagnosis names references (`key url of
/// Secret ledger-db`): squad's `secret:ledger-db/url` shorthand would read to the redaction
/// gateway, which every diagnosis passes, as a value assigned to a key named `secret`.
fn source_in_words(source: &str) -> String {
    let (kind, rest) = match source.split_once(':') {
        Some(("secret", rest)) => ("Secret", rest),
        Some(("configmap", rest)) => ("ConfigMap", rest),
        _ if source == "value" => return "a literal value".to_owned(),
        _ => return source.to_owned(),
    };
    let (name, key) = match rest.split_once('/') {
        Some((n, k)) => (Some(n), Some(k)),
        None => (Some(rest), None),
    };
    describe(
        kind,
        name.filter(|n| !n.is_empty()),
        key.filter(|k| !k.is_empty()),
    )
}

/// What a reference names, in words: `key dsn of Secret ledger-db`, `ConfigMap app-config`.
fn describe(kind: &str, name: Option<&str>, key: Option<&str>) -> String {
    match (name, key) {
        (Some(n), Some(k)) => format!("key {k} of {kind} {n}"),
        (Some(n), None) => format!("{kind} {n}"),
        (None, Some(k)) => format!("key {k} of the {kind} it mounts"),
        (None, None) => format!("a {kind}"),
    }
}

/// The fix when no undo is: the reference pointed at the one existing key (or object) that is
/// the broken name written another way; else an escalation listing the names that exist.
fn repoint(
    b: &BrokenReference,
    input: &RemedyInput<'_>,
    existing: Option<&repoint::Existing>,
    no_undo: Option<String>,
) -> Remedy {
    let ns = &input.workload.namespace;
    let owner = format!(
        "whoever provisions {ns}'s {}s (the platform team, or the secrets pipeline) creates {} — squad never writes a configuration or secret value into the repository",
        b.kind,
        b.describe()
    );
    let before = no_undo
        .as_deref()
        .map(|u| format!("{u} "))
        .unwrap_or_default();
    let escalate = |found: String| Remedy::Escalate {
        reason: format!("{before}{found}: {owner}, or a human points the reference at what exists"),
    };
    let (Some(e), Some(name)) = (existing, b.name.as_deref()) else {
        return match &b.volume {
            Some(v) => escalate(format!(
                "the pod's volume {v} refers to {}, which does not exist",
                b.describe()
            )),
            None => escalate(format!(
                "the last deploy did not change a reference to {} that an earlier revision resolved",
                b.describe()
            )),
        };
    };
    // What exists of the kind, and the keys a near object must hold (those the container reads).
    let (field, names, wanted, read): (repoint::Field, Vec<String>, &str, Vec<String>) =
        match &b.key {
            Some(key) => {
                let Some(keys) = e.keys(name) else {
                    return escalate(format!(
                        "{} does not exist, and squad cannot list the keys of {} {name}",
                        b.describe(),
                        b.kind
                    ));
                };
                (repoint::Field::Key, keys.to_vec(), key.as_str(), Vec::new())
            }
            None => {
                let read = input
                    .repo
                    .workload(input.workload)
                    .document()
                    .map(|doc| repoint::keys_read(&doc, b, name))
                    .unwrap_or_default();
                let names = e.objects.iter().map(|(n, _)| n.clone()).collect();
                (repoint::Field::Name, names, name, read)
            }
        };
    let what = match field {
        repoint::Field::Key => format!("the keys {} {name} holds", b.kind),
        repoint::Field::Name => format!("the {}s {ns} holds", b.kind),
    };
    let lacking = |object: &str| -> Vec<&String> {
        let keys = e.keys(object).unwrap_or_default();
        read.iter().filter(|k| !keys.contains(k)).collect()
    };
    match repoint::same_under_normalisation(wanted, &names).as_slice() {
        [one] if !lacking(one).is_empty() => escalate(format!(
            "{} does not exist; of {what} ({}), {one} is the same name written another way, but it lacks {} that the container reads",
            b.describe(),
            repoint::listed(&names),
            repoint::listed(&lacking(one))
        )),
        [one] => match repoint::change(input, b, field, one, &names, e.source, no_undo.clone()) {
            Some(c) => Remedy::Change(c),
            None => escalate(format!(
                "{} does not exist; of {what} ({}), {one} is the one that is the same name written another way, but the manifest does not write the reference in lines squad edits",
                b.describe(),
                repoint::listed(&names)
            )),
        },
        [] => escalate(format!(
            "{} does not exist, and none of {what} ({}) is the same name once case and the `-`, `_`, `.` separators are set aside",
            b.describe(),
            repoint::listed(&names)
        )),
        several => escalate(format!(
            "{} does not exist, and several of {what} are the same name once case and the `-`, `_`, `.` separators are set aside ({}), so which one is meant is a human's call",
            b.describe(),
            repoint::listed(several)
        )),
    }
}

impl Family for BrokenConfigReference {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("CreateContainerConfigError")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let (b, event) = broken(facts)?;
        let what = format!("{} does not exist", b.describe());
        let stage = match &b.volume {
            Some(v) => format!("volume {v} cannot be mounted"),
            None => "its environment cannot be resolved".to_owned(),
        };
        let mut d = Detection::new(String::new(), 0.9, &[]);
        d.evidence.push(Evidence {
            source: "kubelet events".into(),
            observation: format!(
                "{}: {} ({} times since {})",
                event.reason,
                event.message,
                event.count,
                event.first_seen.to_rfc3339()
            ),
        });
        let rollout = match reference_change(facts, &b) {
            Some((revision, hours, var, before)) => {
                d.confidence = 0.95;
                let change = match &before {
                    Some(prev) => format!("changed {var} from {prev}"),
                    None => format!("added {var}"),
                };
                d.evidence.push(Evidence {
                    source: "rollout history".into(),
                    observation: format!(
                        "revision {revision} ({hours}) {change} in container {}",
                        facts.container
                    ),
                });
                if let Some(prev) = before {
                    d.recommendations.push(format!(
                        "restore {var}'s reference to {prev}, as the revision before the last deploy had it, if that still exists"
                    ));
                }
                format!("; the last rollout ({hours}) {change}")
            }
            None => String::new(),
        };
        d.recommendations.push(format!(
            "point the reference at a {} and key that exist in {} (kubectl get {} -n {}), or create the missing one there; never copy its values into Git",
            b.kind,
            facts.workload.namespace,
            b.kind.to_ascii_lowercase(),
            facts.workload.namespace
        ));
        d.summary = format!(
            "{} cannot start: {stage}, {what} ({}){rollout}",
            facts.container, b.message
        );
        d.signals = serde_json::to_value(&b).ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the reference the last deploy changed, against the ConfigMaps and Secrets that exist",
            ),
            (
                Member::Worf,
                "the Secret's owner and how it is provisioned (names and keys only, never values)",
            ),
            (
                Member::Data,
                "which configuration keys this version of the app reads",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn repo_objects(&self, d: &Diagnosis) -> Vec<(String, String)> {
        // A ConfigMap's keys are read where the repository declares it.
        crate::family_signals::<BrokenReference>(d)
            .filter(|b| b.kind == "ConfigMap")
            .and_then(|b| b.name)
            .map(|n| vec![("ConfigMap".to_owned(), n)])
            .unwrap_or_default()
    }

    fn cluster_needs(&self, d: &Diagnosis, _repo: &RepoView) -> ClusterNeeds {
        ClusterNeeds {
            secret_keys: crate::family_signals::<BrokenReference>(d)
                .is_some_and(|b| b.kind == "Secret"),
            ..ClusterNeeds::default()
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        let Some(b) = crate::family_signals::<BrokenReference>(d) else {
            return Remedy::not_yet(
                "a broken reference the diagnosis does not name",
                d,
                "a human points the reference at what exists",
            );
        };
        let existing = repoint::Existing::of(&b.kind, input);
        let undo = b.container.as_deref().and_then(|c| {
            crate::undo::find_env(input.repo, input.workload, c, |item| b.read_by(item))
        });
        // The previous reference is the fix only if it resolves (as far as squad can tell).
        let mut no_undo = None;
        if let Some(u) = undo {
            let dead: Vec<String> = repoint::restored(&u, input, &b.kind)
                .into_iter()
                .filter(|(name, key)| {
                    existing
                        .as_ref()
                        .and_then(|e| e.resolves(name, key.as_deref()))
                        == Some(false)
                })
                .map(|(name, key)| describe(&b.kind, Some(&name), key.as_deref()))
                .collect();
            if dead.is_empty() {
                return Remedy::Change(u.change(
                    input.workload,
                    &format!(
                        "The kubelet cannot resolve {} ({})",
                        b.describe(),
                        b.message
                    ),
                    "the deploy refers to configuration that does not exist",
                ));
            }
            no_undo = Some(format!(
                "Restoring the reference the revision before commit `{}` had is no fix: {} does not exist either.",
                &u.deploy.commit[..u.deploy.commit.len().min(8)],
                dead.join(" and ")
            ));
        }
        repoint(&b, input, existing.as_ref(), no_undo)
    }

    fn code_focus(&self) -> crate::CodeFocus {
        crate::CodeFocus::Configuration
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "createcontainerconfigerror".into(),
            meaning: "A pod refers to a ConfigMap or Secret (or a key in one) that does not exist in its namespace, so its container never starts: `CreateContainerConfigError` for an environment reference, `ContainerCreating` with `FailedMount` events for a volume. A rolling update to such a pod stalls; the previous ReplicaSet keeps serving.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Events: `Error: secret \"…\" not found`, `couldn't find key … in Secret …`, or `MountVolume.SetUp failed for volume \"…\"`.\n2. `kubectl get secret,configmap -n <ns>` and `kubectl get secret <name> -n <ns> -o jsonpath='{.data}' | jq keys` — which objects and keys exist (names only).\n3. The GitOps diff of the last deploy: which `secretKeyRef`, `configMapKeyRef`, `envFrom` or volume did it change?".into(),
            fixes: "- **Renamed reference**: point it back at the object and key that exist (or restore the previous revision's reference), through a PR.\n- **Object not provisioned yet**: create the Secret or ConfigMap in the namespace through its owner's pipeline (sealed secrets, external-secrets), then let the pod retry.\n- **Optional configuration**: mark the reference `optional: true` only when the app runs without it.".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Check that every ConfigMap and Secret {workload} refers to exists before a deploy merges."
            ),
            "Provision configuration objects before the deploy that needs them (a sync wave, a pre-sync hook).".into(),
        ]
    }

    fn followup(&self, d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        let object = crate::family_signals::<BrokenReference>(d)
            .map(|b| b.describe())
            .unwrap_or_else(|| "a ConfigMap or Secret".into());
        IssueDraft {
            title: format!(
                "Check {}'s configuration references before a deploy merges",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the pod referred to {object}, which the namespace did not hold, so the new pods never started.\n\n\
                 1. In CI, list every `secretKeyRef`, `configMapKeyRef`, `envFrom` and ConfigMap/Secret volume the rendered manifests name, and check each against the target namespace (names and keys only: `kubectl get secret <name> -o jsonpath='{{.data}}' | jq keys`).\n\
                 2. Provision new Secrets and ConfigMaps in a sync wave before the Deployment that reads them.\n\
                 3. Reproduce: `kubectl describe pod -n {} {}` (Events).",
                cx.incident, cx.issue, cx.workload.namespace, cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests;

//! What the kubelet does before a container runs, and how it fails.
//!
//! It sets up the pod's volumes, then pulls the image, then resolves the container's environment;
//! the first step that fails keeps the container from starting ([`Blocker`]), and the kubelet
//! retries it on its own schedule and reports it in its own words:
//!
//! - a ConfigMap or Secret volume whose object (or listed key) does not exist: `FailedMount`
//!   (`MountVolume.SetUp failed for volume "config" : configmap "app-config" not found`), the
//!   container `ContainerCreating`, retried with the volume manager's back-off (0.5 s doubling to
//!   2 min 2 s);
//! - an image the registry does not hold: `ErrImagePull`, then `ImagePullBackOff` (10 s doubling
//!   to 5 min);
//! - an `env`/`envFrom` reference to a ConfigMap or Secret (or key) that does not exist:
//!   `CreateContainerConfigError` (`secret "db-creds" not found`, `couldn't find key password in
//!   Secret shop/db-creds`), retried at every pod sync (10 s);
//! - then `runAsNonRoot: true` (the container's, else the pod's) against the user the container
//!   runs as: its `runAsUser` (the container's, else the pod's) when set, else the image's
//!   (`[image] user`): a root or non-numeric one is `CreateContainerConfigError` too
//!   (`container has runAsNonRoot and image will run as root (pod: "api-7d9f_shop(…)",
//!   container: api)`), as the kubelet's `verifyRunAsNonRoot` words it.
//!
//! References marked `optional: true` never fail. Which Secrets and ConfigMaps exist is the
//! world's fact: the scenario's `[secrets]` / `[configmaps]` (cluster-only objects) plus those the
//! GitOps repo declares in the namespace; a scenario that declares neither table for a kind does
//! not model that kind, and every reference to it resolves.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use squad_gitops::objects;
use squad_protocols::cluster::ClusterEvent;

use crate::Scenario;

/// Why a rollout's container never starts: the first step of the kubelet's start-up that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Blocker {
    /// A volume cannot be set up; the pod stays `ContainerCreating`.
    Mount { volume: String, error: String },
    /// A ReadWriteOnce volume (`pv`, the pod's volume `volume`) is attached to another node,
    /// for `holders` (`attach.rs`); the pod stays `ContainerCreating`.
    Attach {
        volume: String,
        pv: String,
        holders: Vec<String>,
    },
    /// The node's network plugin has no address left for the pod (`sandbox.rs`): the runtime
    /// cannot create its sandbox, and it stays `ContainerCreating`. `error` is the plugin's.
    Sandbox { sandbox: String, error: String },
    /// The registry does not hold the image, or refuses an anonymous pull of it.
    Pull { image: String, failure: PullFailure },
    /// An environment reference does not resolve, or `runAsNonRoot` does not hold:
    /// `CreateContainerConfigError`. `error` may name the pod as `{pod:<namespace>}`, which each
    /// pod's own words replace ([`with_pod`]).
    Config { image: String, error: String },
}

/// Why a pull fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PullFailure {
    /// The registry has no such reference.
    NotFound,
    /// The repository refuses anonymous pulls and the pod brings no credentials: `missing` are
    /// the `imagePullSecrets` it names that the namespace does not have.
    Unauthorized { missing: Vec<String> },
}

/// Volume set-up retries: 0.5 s doubling, at most 2 min 2 s (the operation executor's back-off).
const MOUNT_RETRY_MAX_MS: i64 = 122_000;
/// A pod whose volumes are not mounted after this long gets the kubelet's timeout event.
const MOUNT_TIMEOUT_SECONDS: i64 = 123;
/// A pod sync that fails is retried after this long.
const SYNC_RETRY_SECONDS: i64 = 10;

impl Blocker {
    /// How long the kubelet waits after the `n`th failed attempt (n ≥ 1).
    pub(super) fn retry_after(&self, n: u32) -> chrono::Duration {
        match self {
            Blocker::Mount { .. } | Blocker::Attach { .. } => chrono::Duration::milliseconds(
                (500i64 << n.saturating_sub(1).min(10)).min(MOUNT_RETRY_MAX_MS),
            ),
            Blocker::Pull { .. } => chrono::Duration::seconds(super::life::backoff(n)),
            Blocker::Config { .. } | Blocker::Sandbox { .. } => {
                chrono::Duration::seconds(SYNC_RETRY_SECONDS)
            }
        }
    }

    /// The failed attempts from `from` to `end`, oldest first.
    pub(super) fn attempts(&self, from: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= end {
            out.push(t);
            t += self.retry_after(out.len() as u32);
        }
        out
    }

    /// The container's waiting reason at `now`, the first attempt having failed at `first`.
    pub(super) fn waiting_reason(&self, first: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
        match self {
            Blocker::Mount { .. } | Blocker::Attach { .. } | Blocker::Sandbox { .. } => {
                "ContainerCreating"
            }
            // Right after the first failed pull the kubelet says why; then it backs off.
            Blocker::Pull { .. } if now < first + self.retry_after(1) => "ErrImagePull",
            Blocker::Pull { .. } => "ImagePullBackOff",
            Blocker::Config { .. } => "CreateContainerConfigError",
        }
    }

    /// The container status's waiting message for `reason` in `pod` (none while it is being
    /// created).
    pub(super) fn waiting_message(&self, reason: &str, pod: &str) -> Option<String> {
        match self {
            Blocker::Mount { .. } | Blocker::Attach { .. } | Blocker::Sandbox { .. } => None,
            Blocker::Pull { image, failure } if reason == "ErrImagePull" => {
                Some(pull_error(image, failure))
            }
            Blocker::Pull { image, .. } => Some(format!("Back-off pulling image \"{image}\"")),
            Blocker::Config { error, .. } => Some(with_pod(error, pod)),
        }
    }

    /// What the API server answers a request for the container's logs.
    pub(super) fn logs_refusal(&self, container: &str, pod: &str, reason: &str) -> String {
        match self {
            Blocker::Pull { .. } => format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: trying and failing to pull image"
            ),
            _ => {
                format!("container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}")
            }
        }
    }

    /// The kubelet's events about a pod it cannot start, whose attempts are `attempts`.
    pub(super) fn events(
        &self,
        pod: &str,
        attempts: &[DateTime<Utc>],
        now: DateTime<Utc>,
        pull_policy: &str,
    ) -> Vec<ClusterEvent> {
        let (Some(first), Some(last)) = (attempts.first().copied(), attempts.last().copied())
        else {
            return Vec::new();
        };
        let n = attempts.len() as u32;
        let event =
            |kind: &str, reason: &str, message: String, count: u32, last_seen| ClusterEvent {
                kind: kind.into(),
                reason: reason.into(),
                message,
                count,
                first_seen: first,
                last_seen,
                object: format!("Pod/{pod}"),
            };
        // The kubelet's, once it gives up waiting for the volume (every two minutes).
        let timed_out = |volume: &str, unattached: &str| {
            let waited = (now - first).num_seconds();
            (waited >= MOUNT_TIMEOUT_SECONDS).then(|| {
                event(
                    "Warning",
                    "FailedMount",
                    format!(
                        "Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[{unattached}], failed to process volumes=[]: context deadline exceeded"
                    ),
                    (waited / MOUNT_TIMEOUT_SECONDS) as u32,
                    now,
                )
            })
        };
        match self {
            Blocker::Mount { volume, error } => {
                let mut events = vec![event(
                    "Warning",
                    "FailedMount",
                    format!("MountVolume.SetUp failed for volume \"{volume}\" : {error}"),
                    n,
                    last,
                )];
                events.extend(timed_out(volume, ""));
                events
            }
            Blocker::Attach {
                volume,
                pv,
                holders,
            } => {
                // The attach/detach controller's, then the kubelet's.
                let mut events = vec![event(
                    "Warning",
                    "FailedAttachVolume",
                    format!(
                        "Multi-Attach error for volume \"{pv}\" Volume is already used by pod(s) {}",
                        holders.join(", ")
                    ),
                    n,
                    last,
                )];
                events.extend(timed_out(volume, volume));
                events
            }
            Blocker::Sandbox { sandbox, error } => vec![event(
                "Warning",
                "FailedCreatePodSandBox",
                format!(
                    "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{sandbox}\": {error}"
                ),
                n,
                last,
            )],
            Blocker::Pull { image, failure } => {
                let mut events = vec![
                    event(
                        "Normal",
                        "Pulling",
                        format!("Pulling image \"{image}\""),
                        n,
                        last,
                    ),
                    event(
                        "Warning",
                        "Failed",
                        format!(
                            "Failed to pull image \"{image}\": {}",
                            pull_error(image, failure)
                        ),
                        n,
                        last,
                    ),
                    event("Warning", "Failed", "Error: ErrImagePull".into(), n, last),
                ];
                // At every sync the kubelet looks the pod's pull secrets up, and says which
                // it could not find.
                if let PullFailure::Unauthorized { missing } = failure
                    && !missing.is_empty()
                {
                    let syncs = ((now - first).num_seconds() / SYNC_RETRY_SECONDS + 1) as u32;
                    events.push(event(
                        "Warning",
                        "FailedToRetrieveImagePullSecret",
                        format!(
                            "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                            missing.join(", ")
                        ),
                        syncs,
                        now,
                    ));
                }
                // Between attempts the kubelet backs off, and says so at every sync.
                if now > first + self.retry_after(1) {
                    let waits = ((now - first).num_seconds() / SYNC_RETRY_SECONDS).max(1) as u32;
                    events.push(event(
                        "Normal",
                        "BackOff",
                        format!("Back-off pulling image \"{image}\""),
                        waits,
                        now,
                    ));
                    events.push(event(
                        "Warning",
                        "Failed",
                        "Error: ImagePullBackOff".into(),
                        waits,
                        now,
                    ));
                }
                events
            }
            Blocker::Config { image, error } => {
                let pulled = if pull_policy == "Always" {
                    format!("Successfully pulled image \"{image}\"")
                } else {
                    format!("Container image \"{image}\" already present on machine")
                };
                vec![
                    event("Normal", "Pulled", pulled, n, last),
                    event(
                        "Warning",
                        "Failed",
                        format!("Error: {}", with_pod(error, pod)),
                        n,
                        last,
                    ),
                ]
            }
        }
    }
}

/// `error` with its `{pod:<namespace>}` replaced by `pod` as the kubelet names a pod
/// (`name_namespace(uid)`, `format.Pod`).
fn with_pod(error: &str, pod: &str) -> String {
    let Some((before, rest)) = error.split_once("{pod:") else {
        return error.to_owned();
    };
    let Some((ns, after)) = rest.split_once('}') else {
        return error.to_owned();
    };
    let uid = super::world::uid(&format!("Pod/{ns}/{pod}"));
    format!("{before}{pod}_{ns}({uid}){after}")
}

/// containerd's answer for a failed pull: a reference the registry does not hold, or a
/// repository that refuses an anonymous token (ghcr.io answers 403, most registries 401).
fn pull_error(image: &str, failure: &PullFailure) -> String {
    match failure {
        PullFailure::NotFound => format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
        ),
        PullFailure::Unauthorized { .. } => {
            let name = squad_protocols::image::repository(image);
            let denied = format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\""
            );
            match name.split_once('/') {
                Some((host, repo))
                    if host.contains('.') || host.contains(':') || host == "localhost" =>
                {
                    let status = if host == "ghcr.io" {
                        "403 Forbidden"
                    } else {
                        "401 Unauthorized"
                    };
                    format!(
                        "{denied}: failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://{host}/token?scope=repository%3A{}%3Apull&service={host}: {status}",
                        repo.replace('/', "%2F")
                    )
                }
                // Docker Hub says it its own way.
                _ => format!(
                    "{denied}: pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"
                ),
            }
        }
    }
}

/// What a lookup of a ConfigMap or Secret finds.
enum Found<'a> {
    /// The world does not model this kind: every reference resolves.
    Unmodelled,
    Missing,
    Keys(&'a BTreeSet<String>),
}

/// The ConfigMaps and Secrets of the workload's namespace (`None`: not modelled).
#[derive(Debug, Clone, Default)]
pub(super) struct Store {
    namespace: String,
    configmaps: Option<BTreeMap<String, BTreeSet<String>>>,
    secrets: Option<BTreeMap<String, BTreeSet<String>>>,
}

impl Store {
    /// The store of `scenario`'s namespace, with the objects the GitOps repo declares there.
    pub(super) fn new(scenario: &Scenario, repo_objects: &[Value]) -> Store {
        let ns = scenario.workload.namespace.as_str();
        let declared = |kind: &str,
                        fields: &[&str],
                        table: Option<&BTreeMap<String, Vec<String>>>| {
            let mut all: BTreeMap<String, BTreeSet<String>> = table?
                .iter()
                .map(|(name, keys)| (name.clone(), keys.iter().cloned().collect()))
                .collect();
            for o in repo_objects.iter().filter(|o| {
                objects::kind(o) == kind && o["metadata"]["namespace"].as_str().unwrap_or(ns) == ns
            }) {
                let keys = all.entry(objects::name(o).to_owned()).or_default();
                for field in fields {
                    if let Some(m) = o[*field].as_object() {
                        keys.extend(m.keys().cloned());
                    }
                }
            }
            Some(all)
        };
        Store {
            namespace: ns.to_owned(),
            configmaps: declared(
                "ConfigMap",
                &["data", "binaryData"],
                scenario.configmaps.as_ref(),
            ),
            secrets: declared("Secret", &["data", "stringData"], scenario.secrets.as_ref()),
        }
    }

    fn find(&self, secret: bool, name: &str) -> Found<'_> {
        let table = if secret {
            &self.secrets
        } else {
            &self.configmaps
        };
        match table {
            None => Found::Unmodelled,
            Some(t) => t.get(name).map_or(Found::Missing, Found::Keys),
        }
    }

    /// The error resolving `name` (and `key`, when given) of a ConfigMap or Secret, as the
    /// kubelet words it; `None` when it resolves or the reference is optional.
    fn resolve(
        &self,
        secret: bool,
        r: &Value,
        name_field: &str,
        key: Option<&str>,
    ) -> Option<String> {
        if r["optional"].as_bool() == Some(true) {
            return None;
        }
        let name = r[name_field].as_str().unwrap_or("");
        let kind = if secret { "secret" } else { "configmap" };
        match self.find(secret, name) {
            Found::Unmodelled => None,
            Found::Missing => Some(format!("{kind} \"{name}\" not found")),
            Found::Keys(keys) => key.filter(|k| !keys.contains(*k)).map(|k| {
                let kind = if secret { "Secret" } else { "ConfigMap" };
                format!("couldn't find key {k} in {kind} {}/{name}", self.namespace)
            }),
        }
    }

    /// The first of the pod's volumes that cannot be set up, and why.
    fn mount_failure(&self, pod_spec: &Value) -> Option<(String, String)> {
        for v in pod_spec["volumes"].as_array().into_iter().flatten() {
            let volume = v["name"].as_str().unwrap_or("").to_owned();
            let mut sources: Vec<(bool, &Value)> = Vec::new();
            if v["configMap"].is_object() {
                sources.push((false, &v["configMap"]));
            }
            if v["secret"].is_object() {
                sources.push((true, &v["secret"]));
            }
            for s in v["projected"]["sources"].as_array().into_iter().flatten() {
                if s["configMap"].is_object() {
                    sources.push((false, &s["configMap"]));
                }
                if s["secret"].is_object() {
                    sources.push((true, &s["secret"]));
                }
            }
            let in_volume = |secret: bool| v["secret"].is_object() && secret;
            for (secret, src) in sources {
                // A Secret volume names its object `secretName`; everything else `name`.
                let name_field = if in_volume(secret) {
                    "secretName"
                } else {
                    "name"
                };
                if let Some(e) = self.resolve(secret, src, name_field, None) {
                    return Some((volume, e));
                }
                if src["optional"].as_bool() == Some(true) {
                    continue;
                }
                let Found::Keys(keys) = self.find(secret, src[name_field].as_str().unwrap_or(""))
                else {
                    continue;
                };
                for item in src["items"].as_array().into_iter().flatten() {
                    let key = item["key"].as_str().unwrap_or("");
                    if !keys.contains(key) {
                        let e = if secret {
                            format!("references non-existent secret key: {key}")
                        } else {
                            format!("configmap references non-existent config key: {key}")
                        };
                        return Some((volume, e));
                    }
                }
            }
        }
        None
    }

    /// The first of the container's environment references that does not resolve (the kubelet
    /// reads `envFrom` first, then `env`).
    fn config_failure(&self, container: &Value) -> Option<String> {
        for from in container["envFrom"].as_array().into_iter().flatten() {
            let e = self
                .resolve(false, &from["configMapRef"], "name", None)
                .filter(|_| from["configMapRef"].is_object())
                .or_else(|| {
                    self.resolve(true, &from["secretRef"], "name", None)
                        .filter(|_| from["secretRef"].is_object())
                });
            if e.is_some() {
                return e;
            }
        }
        for var in container["env"].as_array().into_iter().flatten() {
            let from = &var["valueFrom"];
            for (secret, field) in [(false, "configMapKeyRef"), (true, "secretKeyRef")] {
                let r = &from[field];
                if r.is_object()
                    && let Some(e) = self.resolve(secret, r, "name", r["key"].as_str())
                {
                    return Some(e);
                }
            }
        }
        None
    }
}

/// An init container the pod's start-up stops at: its position and name.
pub(super) type InitStop = (usize, String);

/// What keeps the `container` of the workload `object` from starting, if anything: the first
/// step of the kubelet's start-up that fails in this world — the pod's volumes, then each init
/// container in order (its image, its environment: the pod stops at the first that cannot
/// start, named with the blocker), then the container's own image and environment.
pub(super) fn blocker(
    scenario: &Scenario,
    store: &Store,
    object: &Value,
    container: &str,
) -> Option<(Blocker, Option<InitStop>)> {
    let spec = objects::pod_spec(object);
    if let Some((volume, error)) = store.mount_failure(spec) {
        return Some((Blocker::Mount { volume, error }, None));
    }
    for (i, c) in spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(b) = start_failure(scenario, store, spec, c) {
            let name = c["name"].as_str().unwrap_or("").to_owned();
            return Some((b, Some((i, name))));
        }
    }
    let c = spec["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == container)?;
    start_failure(scenario, store, spec, c).map(|b| (b, None))
}

/// Why one container of the pod `spec` cannot start: an image the registry does not hold (or
/// refuses the pod: a private repository, and no pull secret of the pod's that the namespace
/// has), an environment reference that does not resolve, or `runAsNonRoot` against the user it
/// would run as (checked after the environment, as the kubelet does).
fn start_failure(scenario: &Scenario, store: &Store, spec: &Value, c: &Value) -> Option<Blocker> {
    let image = c["image"].as_str().unwrap_or("").to_owned();
    if let Some(registry) = &scenario.registry {
        if !registry.holds(&image) {
            return Some(Blocker::Pull {
                image,
                failure: PullFailure::NotFound,
            });
        }
        if registry.is_private(&image) {
            let named: Vec<String> = spec["imagePullSecrets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect();
            let (held, missing): (Vec<String>, Vec<String>) = named
                .into_iter()
                .partition(|n| !matches!(store.find(true, n), Found::Missing));
            if held.is_empty() {
                return Some(Blocker::Pull {
                    image,
                    failure: PullFailure::Unauthorized { missing },
                });
            }
        }
    }
    store
        .config_failure(c)
        .or_else(|| non_root::failure(scenario, &store.namespace, spec, c))
        .map(|error| Blocker::Config { image, error })
}

mod non_root;
#[cfg(test)]
mod tests;

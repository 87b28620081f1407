//! Image pull: the container never starts because the kubelet cannot pull its image. The
//! kubelet says so in its events (`Failed to pull image "…": … not found`, then `Back-off pulling
//! image "…"`), the container waits in `ErrImagePull` / `ImagePullBackOff`, and the rolling
//! update stalls while the previous ReplicaSet keeps serving. Most often the last deploy changed
//! the tag to one the registry does not hold. Before any pull, a reference that does not parse
//! (`InvalidImageName`, `InspectFailed`) or `imagePullPolicy: Never` with the image absent from
//! the node (`ErrImageNeverPull`) are named as such. The fix (back to the last tag that ran, or the
//! `imagePullSecrets` a private registry needs) comes with the remediations; until then the crew
//! escalates with the diagnosis. The proof is the rollout completing with every pod running.

use serde::{Deserialize, Serialize};
use squad_protocols::{Diagnosis, Evidence, Member, RootCause, WorkloadRef};

use crate::{
    Change, ClusterNeeds, Detection, Facts, Family, FollowupContext, IssueDraft, Readings, Remedy,
    RemedyInput, RepoNeeds, RepoView, Runbook, family_signals,
};

/// What the detection measured, kept on the diagnosis for the remedy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePullSignals {
    /// The container that cannot start.
    pub container: String,
    /// Whether it is an init container.
    pub init: bool,
    /// The image it cannot pull.
    pub image: String,
    /// The registry refuses the credentials (an older tag is refused alike).
    pub credentials: bool,
    /// The image the rollout before ran, when the last rollout changed it.
    pub ran: Option<String>,
}

pub struct ImagePull;

pub const ROOT_CAUSE: &str = "image_pull";

/// The waiting states of a container whose image the kubelet cannot get: a pull that fails
/// (`ErrImagePull`, then `ImagePullBackOff`), a reference that does not parse
/// (`InvalidImageName`), `imagePullPolicy: Never` with the image not on the node
/// (`ErrImageNeverPull`), an image the runtime cannot inspect (`ImageInspectError`).
const WAITING: [&str; 5] = [
    "waiting: ImagePullBackOff",
    "waiting: ErrImagePull",
    "waiting: InvalidImageName",
    "waiting: ErrImageNeverPull",
    "waiting: ImageInspectError",
];

/// The last rollout's image change for the container: (revision, how long ago, before, after).
fn image_change(facts: &Facts) -> Option<(u32, String, String, String)> {
    let c = crate::readings::last_rollout_change(facts, |r| {
        crate::readings::container_in(r, facts).map(|c| c.image.clone())
    })?;
    Some((c.revision, c.ago, c.before, c.after))
}

/// The init container the last rollout added, when the container is one: (how long ago).
fn added_init_container(facts: &Facts) -> Option<String> {
    let [.., before, last] = facts.history.as_slice() else {
        return None;
    };
    let init = |r: &squad_protocols::cluster::Revision| {
        r.init_containers.iter().any(|c| c.name == facts.container)
    };
    (init(last) && !init(before) && before.container(&facts.container).is_none())
        .then(|| crate::readings::ago(facts.now - last.at))
}

/// When the last deploy changed the pod's init containers and one cannot be pulled: the init
/// containers as they were before it. When the deploy added the init container, the app's
/// containers go back with them (the release's app may need what the step does, a migration
/// say): the release rolls back, and ships again once its image is pushed.
fn init_back(input: &RemedyInput<'_>, s: &ImagePullSignals) -> Option<Change> {
    let why = format!(
        "The kubelet cannot pull `{}` for the init container {} the deploy set",
        s.image, s.container
    );
    let finding = "the deploy set an init container image the registry does not serve";
    let (change, before) =
        crate::undo::template_change(input, &[&["spec", "initContainers"]], &why, finding)?;
    let existed = crate::undo::template_of(input.workload, &before)["spec"]["initContainers"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["name"].as_str() == Some(s.container.as_str()))
        });
    if existed {
        return Some(change);
    }
    let (mut change, _) = crate::undo::template_change(
        input,
        &[&["spec", "initContainers"], &["spec", "containers"]],
        &why,
        finding,
    )?;
    change.notes.push_str(&format!(
        "\nThe deploy added the init container {}: the release's app containers go back with it, since the new version may need what that step does (a migration, say). The release ships again once its image is in the registry.\n",
        s.container
    ));
    Some(change)
}

/// When the last deploy changed the pod's `imagePullSecrets` and every Secret it named before
/// exists in the namespace: those back (the credentials that pulled the images before).
fn pull_secrets_back(input: &RemedyInput<'_>, s: &ImagePullSignals) -> Option<Change> {
    let secrets = input.cluster.secret_keys.as_ref()?;
    let (change, before) = crate::undo::template_change(
        input,
        &[&["spec", "imagePullSecrets"]],
        &format!(
            "The registry refuses to pull `{}` with the credentials the deploy named",
            s.image
        ),
        "the deploy named a pull Secret the namespace does not have",
    )?;
    let names: Vec<&str> =
        crate::undo::template_of(input.workload, &before)["spec"]["imagePullSecrets"]
            .as_array()?
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
    let exist = !names.is_empty()
        && names
            .iter()
            .all(|n| secrets.iter().any(|(name, _)| name == n));
    exist.then(|| {
        let mut change = change;
        change.notes.push_str(&format!(
            "\nThe restored pull Secret{} ({}) exist{} in {}.\n",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            if names.len() == 1 { "s" } else { "" },
            input.workload.namespace
        ));
        change
    })
}

impl Family for ImagePull {
    fn root_cause(&self) -> RootCause {
        RootCause::from_static(ROOT_CAUSE)
    }

    fn reason(&self) -> Option<&'static str> {
        Some("ImagePullBackOff")
    }

    fn detect(&self, facts: &Facts, _readings: &Readings) -> Option<Detection> {
        let status = facts.status()?;
        if !WAITING.contains(&status.state.as_str()) {
            return None;
        }
        let image = facts
            .info
            .container(&facts.container)
            .map_or("its image", |c| c.image.as_str());
        let init = facts
            .info
            .init_containers
            .iter()
            .any(|c| c.name == facts.container);
        // What the kubelet said: a failed pull, or (before any pull) a reference it cannot
        // parse or an image it may not pull (`InspectFailed`, `ErrImageNeverPull`).
        let failed = facts
            .events
            .iter()
            .filter(|e| {
                (e.reason == "Failed" && e.message.starts_with("Failed to pull image"))
                    || e.reason == "InspectFailed"
                    || e.reason == "ErrImageNeverPull"
            })
            .max_by_key(|e| e.last_seen);
        let mut d = Detection::new(String::new(), 0.85, &[]);
        let waiting = status.state.trim_start_matches("waiting: ");
        let cause = match failed {
            Some(e) => {
                d.evidence.push(Evidence {
                    source: "kubelet events".into(),
                    observation: format!(
                        "{} ({} times since {})",
                        e.message,
                        e.count,
                        e.first_seen.to_rfc3339()
                    ),
                });
                if waiting == "InvalidImageName" || e.message.contains("invalid reference format") {
                    "the image reference does not parse, so nothing is pulled"
                } else if waiting == "ErrImageNeverPull" || e.reason == "ErrImageNeverPull" {
                    "its imagePullPolicy is Never and the image is not on the node"
                } else if e.message.contains("not found") {
                    "the registry has no such image"
                } else if ["denied", "unauthorized", "forbidden", "failed to authorize"]
                    .iter()
                    .any(|w| e.message.to_lowercase().contains(w))
                {
                    "the registry refuses the pull (credentials)"
                } else {
                    "the pull fails"
                }
            }
            None => match waiting {
                "InvalidImageName" => "the image reference does not parse, so nothing is pulled",
                "ErrImageNeverPull" => {
                    "its imagePullPolicy is Never and the image is not on the node"
                }
                _ => "the pull fails",
            },
        };
        // The pull secrets the kubelet could not find (`Unable to retrieve some image pull
        // secrets (regcred); …`).
        let missing_secrets = facts
            .events
            .iter()
            .filter(|e| e.reason == "FailedToRetrieveImagePullSecret")
            .max_by_key(|e| e.last_seen)
            .map(|e| {
                d.evidence.push(Evidence {
                    source: "kubelet events".into(),
                    observation: format!(
                        "FailedToRetrieveImagePullSecret ({}×): {}",
                        e.count, e.message
                    ),
                });
                e.message
                    .split_once('(')
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map_or_else(String::new, |(names, _)| names.to_owned())
            });
        let credentials = cause == "the registry refuses the pull (credentials)";
        let cause = match (&missing_secrets, cause) {
            (Some(names), "the registry refuses the pull (credentials)") if !names.is_empty() => {
                d.confidence = 0.95;
                d.recommendations.push(format!(
                    "point the pod's imagePullSecrets at the Secret of {} that holds the registry's credentials (`kubectl get secrets -n {} --field-selector type=kubernetes.io/dockerconfigjson`), or create {names} there",
                    facts.workload.namespace, facts.workload.namespace
                ));
                format!(
                    "the registry refuses an anonymous pull, and the pod's imagePullSecrets name {names}, which the namespace does not have"
                )
            }
            (_, cause) => cause.to_owned(),
        };
        let change = image_change(facts);
        let rollout = match &change {
            Some((revision, hours, before, after)) => {
                d.evidence.push(Evidence {
                    source: "rollout history".into(),
                    observation: format!(
                        "revision {revision} ({hours}) changed the image of {} from {before} to {after}",
                        facts.container
                    ),
                });
                d.confidence = 0.95;
                // Refused for credentials, an older tag is refused alike.
                if !credentials {
                    d.recommendations.push(format!(
                        "roll the image back to {before}, the last tag that ran, and fix the tag before deploying it again"
                    ));
                }
                format!("; the last rollout ({hours}) changed the image from {before}")
            }
            None => match added_init_container(facts) {
                Some(ago) => {
                    d.confidence = 0.95;
                    d.recommendations.push(format!(
                        "push {image} (the release's pipeline published the app's image only?) or take the init container {} out again until it exists",
                        facts.container
                    ));
                    format!("; the last rollout ({ago}) added that init container")
                }
                None => String::new(),
            },
        };
        d.recommendations.push(
            "check that the tag exists in the registry, and that the pod has the imagePullSecrets a private registry needs"
                .into(),
        );
        let what = if init {
            format!(
                "the init container {} (the pod's containers wait for it, PodInitializing)",
                facts.container
            )
        } else {
            facts.container.clone()
        };
        d.summary =
            format!("{what} cannot start: the kubelet cannot pull {image} ({cause}){rollout}");
        d.signals = serde_json::to_value(ImagePullSignals {
            container: facts.container.clone(),
            init,
            image: image.to_owned(),
            credentials,
            ran: change.map(|(_, _, before, _)| before),
        })
        .ok();
        Some(d)
    }

    fn routing(&self) -> &'static [(Member, &'static str)] {
        &[
            (
                Member::Belanna,
                "the image the last deploy set, against the last tag that ran",
            ),
            (
                Member::Worf,
                "the registry, the pull secret the image needs, and the image's provenance",
            ),
            (
                Member::Data,
                "which version of the app the deploy meant to ship",
            ),
        ]
    }

    fn repo_needs(&self) -> RepoNeeds {
        RepoNeeds {
            manifest: true,
            history: true,
        }
    }

    fn cluster_needs(&self, d: &Diagnosis, _repo: &RepoView) -> ClusterNeeds {
        // The namespace's Secrets (names only) when the registry refuses the credentials.
        let s: Option<ImagePullSignals> = family_signals(d);
        ClusterNeeds {
            secret_keys: s.is_some_and(|s| s.credentials),
            ..ClusterNeeds::default()
        }
    }

    fn remedy(&self, d: &Diagnosis, input: &RemedyInput<'_>) -> Remedy {
        // A diagnosis from elsewhere (HolmesGPT) has no signals: the deploy points at the
        // container whose image it changed.
        let s: Option<ImagePullSignals> = family_signals(d);
        if let Some(s) = s.as_ref().filter(|s| s.credentials) {
            if let Some(change) = pull_secrets_back(input, s) {
                return Remedy::Change(change);
            }
            return Remedy::Escalate {
                reason: format!(
                    "the registry refuses the pull of {} for its credentials: an older tag is refused alike, so no rollback helps. A human (the namespace's owner) creates the pull Secret the pod names, or points imagePullSecrets at one that holds the registry's credentials",
                    s.image
                ),
            };
        }
        if let Some(s) = s.as_ref().filter(|s| s.init) {
            if let Some(change) = init_back(input, s) {
                return Remedy::Change(change);
            }
            return Remedy::Escalate {
                reason: format!(
                    "the init container {} cannot pull {}: whether the release should ship without it or its image must be pushed is the release owner's call",
                    s.container, s.image
                ),
            };
        }
        let container = s.as_ref().map(|s| s.container.as_str());
        let Some(undo) = crate::undo::find(input.repo, input.workload, container, &["image"])
        else {
            return Remedy::Escalate {
                reason: format!(
                    "no deploy in the history of {} changed the image squad could go back to; a human checks the tag against the registry ({})",
                    input.repo.path, d.summary
                ),
            };
        };
        let why = match &s {
            Some(s) => format!("The kubelet cannot pull `{}`", s.image),
            None => "The kubelet cannot pull the image".to_owned(),
        };
        Remedy::Change(undo.change(
            input.workload,
            &why,
            "the deploy set an image the registry does not serve",
        ))
    }

    fn runbook(&self, _alert: &str) -> Runbook {
        Runbook {
            name: "imagepullbackoff".into(),
            meaning: "The kubelet cannot pull a container's image, so the container never starts (ErrImagePull, then ImagePullBackOff while it backs off). A rolling update to that image stalls; the previous ReplicaSet keeps serving.".into(),
            checks: "1. `kubectl describe pod <pod> -n <ns>` — Events: `Failed to pull image \"…\"` and why (not found, unauthorized, denied).\n2. `kubectl rollout history deploy/<name> -n <ns>` and the GitOps diff of the last deploy: which tag did it set?\n3. Does the tag exist? `crane manifest <image>` or `docker manifest inspect <image>`.\n4. A private registry: `kubectl get pod <pod> -o jsonpath='{.spec.imagePullSecrets}'` and the Secret it names.".into(),
            fixes: "- **Wrong tag**: set the image back to the last tag that ran, through a PR; fix the tag, then deploy again.\n- **Private registry**: add the `imagePullSecrets` the registry needs (the Secret must exist in the namespace).".into(),
        }
    }

    fn lessons(&self, workload: &WorkloadRef) -> Vec<String> {
        vec![
            format!(
                "Check that {workload}'s image tag exists in the registry before a deploy merges."
            ),
            "Deploy images by digest, so a deploy cannot name what was never built.".into(),
        ]
    }

    fn followup(&self, _d: &Diagnosis, cx: &FollowupContext) -> IssueDraft {
        IssueDraft {
            title: format!(
                "Check {}'s image exists before a deploy merges",
                cx.workload.name
            ),
            body: format!(
                "During incident {} (#{}) the kubelet could not pull the image the last deploy set, so the new pods never started.\n\n\
                 1. In CI, resolve every image the rendered manifests name (`crane manifest`, `docker manifest inspect`) and fail the build on a miss.\n\
                 2. Publish the image from the same pipeline that bumps the tag, and deploy by digest.\n\
                 3. Reproduce: `kubectl describe pod -n {} {}` (Events).",
                cx.incident, cx.issue, cx.workload.namespace, cx.pod
            ),
            label: "reliability".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::cluster::ClusterEvent;

    use super::*;
    use crate::testing;

    fn pulling(new_image: &str) -> Facts {
        let mut f = testing::facts("Completed", 0, |_| 80.0, |_| 10.0);
        let p = f.pod.as_mut().unwrap();
        p.phase = "Pending".into();
        p.containers[0].state = "waiting: ImagePullBackOff".into();
        p.containers[0].last_termination = None;
        p.containers[0].restart_count = 0;
        f.info.containers[0].image = new_image.into();
        f.history.last_mut().unwrap().containers[0].image = new_image.into();
        f.events = vec![ClusterEvent {
            kind: "Warning".into(),
            reason: "Failed".into(),
            message: format!(
                "Failed to pull image \"{new_image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{new_image}\": failed to resolve reference \"{new_image}\": {new_image}: not found"
            ),
            count: 7,
            first_seen: testing::now() - chrono::Duration::minutes(40),
            last_seen: testing::now(),
            object: "Pod/cart-5d8f7-abcde".into(),
        }];
        f
    }

    #[test]
    fn a_container_that_cannot_pull_its_image_after_a_tag_change_is_an_image_pull() {
        let f = pulling("r/cart:3.2");
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "api cannot start: the kubelet cannot pull r/cart:3.2 (the registry has no such image); the last rollout (30 h ago) changed the image from r/cart:3.1"
        );
        assert_eq!(d.confidence, 0.95);
        assert_eq!(d.reason.as_deref(), Some("ImagePullBackOff"));
        assert!(d.evidence.iter().any(|e| e.source == "kubelet events"
            && e.observation.contains("r/cart:3.2: not found (7 times")));
        assert!(d.recommendations[0].contains("roll the image back to r/cart:3.1"));
    }

    fn manifest(image: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: {image} # bumped by CI\n"
        )
    }

    fn repo(versions: &[(&str, &str)]) -> crate::RepoView {
        crate::RepoView {
            path: "apps/cart.yaml".into(),
            text: manifest(versions[0].1),
            history: versions
                .iter()
                .map(|(commit, image)| squad_runtime::ports::FileVersion {
                    commit: (*commit).into(),
                    at: testing::now(),
                    message: format!("cart: deploy {image}"),
                    content: manifest(image),
                })
                .collect(),
            layers: Vec::new(),
            objects: Vec::new(),
        }
    }

    /// The fix undoes the deploy that set the tag: its whole revert, the commit named; with no
    /// such deploy in the manifest's history, a human decides.
    #[test]
    fn the_remedy_reverts_the_deploy_that_set_the_tag() {
        let d = testing::diagnosis(&pulling("r/cart:3.2"));
        let settings = testing::settings();
        let cluster = crate::ClusterView::default();
        let w = testing::workload();
        let r = repo(&[("c0ffee1234", "r/cart:3.2"), ("beef5678", "r/cart:3.1")]);
        let Remedy::Change(c) = ImagePull.remedy(&d, &testing::input(&settings, &w, &r, &cluster))
        else {
            panic!("no change");
        };
        assert_eq!(
            c.title,
            "revert \"cart: deploy r/cart:3.2\" (c0ffee12) in cart.yaml: cart"
        );
        assert!(
            c.notes.contains("The kubelet cannot pull `r/cart:3.2`"),
            "{}",
            c.notes
        );
        let files = std::collections::BTreeMap::from([(r.path.clone(), r.text.clone())]);
        let out = squad_gitops::apply(&c.edits, &files).unwrap();
        assert_eq!(out[0].1, manifest("r/cart:3.1"));
        // Only one version: nothing to go back to.
        let r = repo(&[("c0ffee1234", "r/cart:3.2")]);
        let remedy = ImagePull.remedy(&d, &testing::input(&settings, &w, &r, &cluster));
        assert!(
            matches!(&remedy, Remedy::Escalate { reason } if reason.contains("no deploy in the history of apps/cart.yaml")),
            "{remedy:?}"
        );
    }

    /// A private registry that refuses the pull, and a pull secret the kubelet cannot find:
    /// the secret is named, and rolling the tag back is not offered (it would be refused too).
    #[test]
    fn a_refused_pull_names_the_pull_secret_the_namespace_lacks() {
        let mut f = pulling("ghcr.io/acme/cart:3.2");
        f.events[0].message = "Failed to pull image \"ghcr.io/acme/cart:3.2\": rpc error: code = Unknown desc = failed to pull and unpack image \"ghcr.io/acme/cart:3.2\": failed to resolve reference \"ghcr.io/acme/cart:3.2\": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://ghcr.io/token?scope=repository%3Aacme%2Fcart%3Apull&service=ghcr.io: 403 Forbidden".into();
        let mut secret = f.events[0].clone();
        secret.reason = "FailedToRetrieveImagePullSecret".into();
        secret.message = "Unable to retrieve some image pull secrets (registry-credentials); attempting to pull the image may not succeed.".into();
        f.events.push(secret);
        let d = testing::diagnosis(&f);
        assert!(
            d.summary.contains("(the registry refuses an anonymous pull, and the pod's imagePullSecrets name registry-credentials, which the namespace does not have)"),
            "{}",
            d.summary
        );
        assert!(d.recommendations[0].contains("or create registry-credentials there"));
        assert!(
            !d.recommendations
                .iter()
                .any(|r| r.contains("roll the image back")),
            "{:?}",
            d.recommendations
        );
        let settings = testing::settings();
        let cluster = crate::ClusterView::default();
        let w = testing::workload();
        let r = repo(&[
            ("c0ffee1234", "ghcr.io/acme/cart:3.2"),
            ("beef5678", "r/cart:3.1"),
        ]);
        let remedy = ImagePull.remedy(&d, &testing::input(&settings, &w, &r, &cluster));
        assert!(
            matches!(&remedy, Remedy::Escalate { reason } if reason.contains("an older tag is refused alike")),
            "{remedy:?}"
        );
    }

    /// An init container the last rollout added, whose image is not in the registry: the pod
    /// stops there and its containers wait for it.
    #[test]
    fn an_init_container_the_last_rollout_added_that_cannot_pull_holds_the_pod() {
        let mut f = pulling("r/cart:3.1");
        // The app's image is the same in both revisions; the new one adds `migrate`.
        f.history[0].containers[0].image = "r/cart:3.1".into();
        let mut migrate = f.info.containers[0].clone();
        migrate.name = "migrate".into();
        migrate.image = "r/cart-migrations:3.2".into();
        f.info.init_containers = vec![migrate.clone()];
        f.history.last_mut().unwrap().init_containers = vec![migrate];
        let p = f.pod.as_mut().unwrap();
        p.init_containers = vec![p.containers[0].clone()];
        p.init_containers[0].name = "migrate".into();
        p.containers[0].state = "waiting: PodInitializing".into();
        f.container = crate::facts::focus_container(p, "api");
        assert_eq!(f.container, "migrate");
        f.events[0].message = f.events[0]
            .message
            .replace("r/cart:3.1", "r/cart-migrations:3.2");
        let d = testing::diagnosis(&f);
        assert_eq!(d.root_cause.as_str(), ROOT_CAUSE);
        assert_eq!(
            d.summary,
            "the init container migrate (the pod's containers wait for it, PodInitializing) cannot start: the kubelet cannot pull r/cart-migrations:3.2 (the registry has no such image); the last rollout (30 h ago) added that init container"
        );
        assert!(d.recommendations[0].contains("push r/cart-migrations:3.2"));
    }

    /// The kubelet's words before any pull: a reference that does not parse, and an image a
    /// `Never` pull policy forbids pulling.
    #[test]
    fn a_reference_that_does_not_parse_or_may_not_be_pulled_is_named_as_such() {
        let mut f = pulling("r/Cart:3.2");
        let p = f.pod.as_mut().unwrap();
        p.containers[0].state = "waiting: InvalidImageName".into();
        f.events[0].reason = "InspectFailed".into();
        f.events[0].message = "Failed to apply default image tag \"r/Cart:3.2\": couldn't parse image reference \"r/Cart:3.2\": invalid reference format: repository name must be lowercase".into();
        let d = ImagePull.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary
                .contains("(the image reference does not parse, so nothing is pulled)"),
            "{}",
            d.summary
        );
        let p = f.pod.as_mut().unwrap();
        p.containers[0].state = "waiting: ErrImageNeverPull".into();
        f.events[0].reason = "ErrImageNeverPull".into();
        f.events[0].message =
            "Container image \"r/Cart:3.2\" is not present with pull policy of Never".into();
        let d = ImagePull.detect(&f, &Readings::of(&f)).unwrap();
        assert!(
            d.summary
                .contains("imagePullPolicy is Never and the image is not on the node"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn a_running_or_crashing_container_is_not_an_image_pull() {
        let f = testing::crashing(&["KeyError: 'X'"]);
        assert!(ImagePull.detect(&f, &Readings::of(&f)).is_none());
        let f = testing::oom_under_load();
        assert!(ImagePull.detect(&f, &Readings::of(&f)).is_none());
    }

    #[test]
    fn without_a_fix_yet_the_crew_escalates_with_the_diagnosis() {
        let d = testing::diagnosis(&pulling("r/cart:3.2"));
        let (s, w, repo) = (
            testing::settings(),
            testing::workload(),
            crate::RepoView::default(),
        );
        let view = crate::ClusterView::default();
        match ImagePull.remedy(&d, &testing::input(&s, &w, &repo, &view)) {
            Remedy::Escalate { reason } => assert!(reason.contains("r/cart:3.2"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}

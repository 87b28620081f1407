//! The kubelet's half of Pod Security: `runAsNonRoot` against the user the container would run as.
//!
//! Admission judges the pod spec only; whether `runAsNonRoot: true` holds is decided by the
//! kubelet when it creates the container, from the container's (else the pod's) `runAsUser`, or,
//! without one, from the image's user as the runtime reports it (the Dockerfile's `USER`: none or
//! `0` is root; a name cannot be verified). It refuses with `CreateContainerConfigError`:
//!
//! - `container has runAsNonRoot and image will run as root (pod: "…", container: app)`;
//! - `container has runAsNonRoot and image has non-numeric user (app), cannot verify user is
//!   non-root (pod: "…", container: app)`;
//! - `container's runAsUser breaks non-root policy (pod: "…", container: app)`.
//!
//! So the restricted level's `runAsNonRoot` is a promise about the image, which squad does not
//! read (the registry's image config is not fetched): it learns the image runs as root from the
//! replay in the world model (the fixed pods are admitted, then their container is refused), or,
//! on a cluster without one, from the kubelet's words above once such a fix merged (Ralph's
//! verdict fails, the incident reopens and this is what the pods show). Either way the answer is
//! the app owners': a non-root UID the image's files allow (a numeric `USER` in the image, or a
//! `runAsUser`) is a decision about the app, and squad does not pick one.

use squad_protocols::cluster::ClusterEvent;

use crate::Facts;

/// Who decides, and what, when the image runs as root and the namespace wants it not to.
pub const OWNER: &str = "the app's owners";
pub const DECIDES: &str = "choose the non-root user it runs as (a numeric `USER` rebuilt into the image, `USER 65532` with its files owned or readable by that UID, or a `runAsUser` the image's files allow): `runAsNonRoot` needs a non-root user the kubelet can verify, which only the app's files tell, and squad does not pick a UID";

/// The kubelet's `runAsNonRoot` refusals, by the words that begin them, and what each means.
const REFUSALS: &[(&str, &str)] = &[
    (
        "container has runAsNonRoot and image will run as root",
        "runAsNonRoot is set and the image runs as root, with no non-root USER",
    ),
    (
        "container has runAsNonRoot and image has non-numeric user",
        "runAsNonRoot is set and the image's USER is a name, which the kubelet cannot verify is not root",
    ),
    (
        "container's runAsUser breaks non-root policy",
        "runAsNonRoot is set together with runAsUser 0",
    ),
];

/// The kubelet refusing the container for `runAsNonRoot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<'a> {
    /// The event that says so.
    pub event: &'a ClusterEvent,
    /// The kubelet's words (without `Error: `).
    pub words: &'a str,
    /// The container it names.
    pub container: String,
    /// What that means, in a sentence.
    pub meaning: &'static str,
}

/// The kubelet's words when `message` is a `runAsNonRoot` refusal, with what they mean.
pub fn meaning(message: &str) -> Option<(&str, &'static str)> {
    let words = message.strip_prefix("Error: ").unwrap_or(message);
    REFUSALS
        .iter()
        .find(|(start, _)| words.starts_with(start))
        .map(|(_, meaning)| (words, *meaning))
}

/// The newest `runAsNonRoot` refusal of the alerted pod's container, when it waits in
/// `CreateContainerConfigError`.
pub fn refusal(facts: &Facts) -> Option<Refusal<'_>> {
    let status = facts.status()?;
    if status.state != "waiting: CreateContainerConfigError" {
        return None;
    }
    facts
        .events
        .iter()
        .filter(|e| e.reason == "Failed")
        .filter_map(|e| {
            let (words, meaning) = meaning(&e.message)?;
            // `…, container: app)`: the refused container.
            let container = words
                .rsplit_once("container: ")
                .map_or("", |x| x.1)
                .trim_end_matches(')')
                .to_owned();
            Some(Refusal {
                event: e,
                words,
                container,
                meaning,
            })
        })
        .filter(|r| r.container == facts.container || r.container.is_empty())
        .max_by_key(|r| r.event.last_seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_of_the_kubelets_non_root_refusals_is_read() {
        let (words, what) = meaning("Error: container has runAsNonRoot and image will run as root (pod: \"invoice-api-58d6c7f4b9-4kz8q_billing(0c1d)\", container: app)").unwrap_or_default();
        assert!(words.starts_with("container has runAsNonRoot"), "{words}");
        assert!(what.contains("the image runs as root"), "{what}");
        let (_, what) = meaning("container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: \"x_y(z)\", container: api)").unwrap_or_default();
        assert!(what.contains("a name"), "{what}");
        assert!(meaning("Error: secret \"db-creds\" not found").is_none());
    }
}

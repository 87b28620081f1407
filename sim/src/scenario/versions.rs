//! The application per image version: `[app.versions."<tag>"]` and `[load.versions."<tag>"]`
//! change any field of `[app]` and `[load]` for the containers that run that image tag (or that
//! exact image reference), so a rollback to an older tag brings back how that version behaved —
//! its start-up time, the flags and executables it has, the variables it needs, its leak.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{AppSpec, LoadModel, Scenario};

/// One version's application and load model, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub app: AppSpec,
    pub load: LoadModel,
}

/// The tag of an image reference (`registry:5000/x/y:1.2` → `1.2`), if it has one.
pub fn tag_of(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let (_, tag) = name.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

/// `base` with the fields `over` sets replaced.
fn overlay<T: Serialize + DeserializeOwned>(
    base: &T,
    over: &Map<String, Value>,
) -> Result<T, String> {
    let mut v = serde_json::to_value(base).map_err(|e| e.to_string())?;
    if let Some(o) = v.as_object_mut() {
        o.remove("versions");
        for (k, x) in over {
            o.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

impl Scenario {
    /// Resolves every declared version; an error names the field (`app.versions."5.0.0"`) and
    /// what was wrong.
    pub(super) fn resolve_versions(&mut self) -> Result<(), (String, String)> {
        let tags: std::collections::BTreeSet<&String> = self
            .app
            .versions
            .keys()
            .chain(self.load.versions.keys())
            .collect();
        let mut out = BTreeMap::new();
        for tag in tags {
            let none = Map::new();
            let app = overlay(&self.app, self.app.versions.get(tag).unwrap_or(&none))
                .map_err(|e| (format!("app.versions.\"{tag}\""), e))?;
            let load = overlay(&self.load, self.load.versions.get(tag).unwrap_or(&none))
                .map_err(|e| (format!("load.versions.\"{tag}\""), e))?;
            out.insert(tag.clone(), Arc::new(Version { app, load }));
        }
        self.versions = out;
        Ok(())
    }

    fn version_of(&self, image: &str) -> Option<&Version> {
        self.versions
            .get(image)
            .or_else(|| tag_of(image).and_then(|t| self.versions.get(t)))
            .map(|v| v.as_ref())
    }

    /// How the application behaves in a container of `image`: its version's `[app]`, else the
    /// scenario's.
    pub fn app_for(&self, image: &str) -> &AppSpec {
        self.version_of(image).map_or(&self.app, |v| &v.app)
    }

    /// The load model of a container of `image`.
    pub fn load_for(&self, image: &str) -> &LoadModel {
        self.version_of(image).map_or(&self.load, |v| &v.load)
    }

    /// Every application the scenario declares (the base and each version's).
    pub fn apps(&self) -> impl Iterator<Item = &AppSpec> {
        std::iter::once(&self.app).chain(self.versions.values().map(|v| &v.app))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_tag_is_what_follows_the_last_colon_of_the_name() {
        assert_eq!(tag_of("ghcr.io/acme/api:5.0.0"), Some("5.0.0"));
        assert_eq!(tag_of("registry:5000/acme/api"), None);
        assert_eq!(tag_of("registry:5000/acme/api:1.2@sha256:ab"), Some("1.2"));
        assert_eq!(tag_of("api"), None);
    }

    #[test]
    fn a_version_changes_only_the_fields_it_sets() {
        let mut s = Scenario::embedded("rollout-stuck").unwrap();
        let over: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"startup_seconds": 0.0})).unwrap();
        s.app.versions.insert("4.9.0".into(), over);
        s.resolve_versions().unwrap();
        let old = s.app_for("registry.example.com/x/search:4.9.0");
        assert_eq!(old.startup_seconds, 0.0);
        assert_eq!(old.route, s.app.route);
        assert_eq!(s.app_for("registry.example.com/x/search:5.0.0"), &s.app);
        // A field [app] does not have is named.
        let bad: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"startup_secs": 1.0})).unwrap();
        s.app.versions.insert("4.8.0".into(), bad);
        let (field, why) = s.resolve_versions().unwrap_err();
        assert_eq!(field, "app.versions.\"4.8.0\"");
        assert!(why.contains("startup_secs"), "{why}");
    }
}

#[cfg(test)]
mod rollback {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use crate::Scenario;
    use crate::cluster::testing::served;

    fn progressing(sim: &crate::SimCluster, s: &Scenario) -> (String, String) {
        let c = sim
            .workload(&s.workload_ref())
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.kind == "Progressing")
            .unwrap();
        (c.status, c.reason)
    }

    /// rollout-stuck's 5.0.0 needs 45 minutes to become ready; 4.9.3 needed 40 seconds. Back
    /// to 4.9.3, the rollout goes through within minutes; 5.0.0 again (a new rollout) stalls
    /// again.
    #[tokio::test(start_paused = true)]
    async fn a_rollback_brings_back_how_the_older_version_started() {
        let s = Scenario::embedded("rollout-stuck").unwrap();
        let (sim, git, clock, _dir) = served(s.clone());
        assert_eq!(
            progressing(&sim, &s),
            ("False".into(), "ProgressDeadlineExceeded".into())
        );
        let path = &s.workload.manifest;
        let text = git.read("main", path).unwrap().unwrap();
        let back = text.replace("search-api:5.0.0", "search-api:4.9.3");
        git.commit(
            "main",
            None,
            "back to 4.9.3",
            &[(path.clone(), back.clone())],
            clock.now(),
            false,
        )
        .unwrap();
        clock.sleep(Duration::from_secs(3 * 60)).await;
        assert_eq!(
            progressing(&sim, &s),
            ("True".into(), "NewReplicaSetAvailable".into())
        );
        let pods = sim.pods_of(&s.workload_ref()).unwrap();
        assert!(
            pods.iter().all(|p| p.containers.iter().all(|c| c.ready)),
            "{pods:?}"
        );
        git.commit(
            "main",
            None,
            "5.0.0 again",
            &[(path.clone(), text)],
            clock.now(),
            false,
        )
        .unwrap();
        clock.sleep(Duration::from_secs(15 * 60)).await;
        assert_eq!(
            progressing(&sim, &s),
            ("False".into(), "ProgressDeadlineExceeded".into())
        );
    }
}

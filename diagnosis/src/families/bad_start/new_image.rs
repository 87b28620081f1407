//! The undo when the deploy changed the image too. A command or args written for one image are
//! proven only on that image: when the last deploy changed the container's image as well as the
//! command/args that fail, the lines the undo puts back ran with the image *before* it, and the
//! image the deploy shipped may hold neither (its Dockerfile moved the binary, its new major
//! renamed the flags). Undoing only the command lands the old command on the new image, which
//! nothing has run. The undo then goes back to the revision that ran: every key of the container
//! that deploy changed — the image with the command and args — from the same earlier version.
//!
//! An undo that only removes what the deploy added (a `command` over the image's own entrypoint,
//! `args` over its defaults) restores nothing written for the old image: the new image's
//! entrypoint is its own, and the command-only undo stays, the release kept.

use serde_json::Value;
use squad_gitops::objects;
use squad_protocols::WorkloadRef;

use crate::undo::{self, Undo};
use crate::{Change, RepoView};

/// The container's mapping in the workload's document of one version of the manifest.
fn container_in(text: &str, path: &str, w: &WorkloadRef, name: &str) -> Option<Value> {
    let doc = objects::parse(path, text)
        .ok()?
        .into_iter()
        .find(|o| objects::kind(o) == w.kind && objects::name(o) == w.name)?;
    objects::pod_spec(&doc)["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .cloned()
}

/// The keys of the container (but its name and image) that the deploy of `start` changed.
fn changed_keys(start: &Undo<'_>, path: &str, w: &WorkloadRef) -> Option<Vec<String>> {
    let after = container_in(&start.deploy.content, path, w, &start.container)?;
    let before = container_in(&start.before.content, path, w, &start.container)?;
    let keys = |c: &Value| -> Vec<String> {
        c.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut all: Vec<String> = keys(&after).into_iter().chain(keys(&before)).collect();
    all.sort();
    all.dedup();
    all.retain(|k| k != "name" && k != "image" && after[k] != before[k]);
    Some(all)
}

/// The image a version's lines name (`image: r/x:1.4.2 # pinned` → `r/x:1.4.2`; a tag or a
/// values key's lines are the value itself), for the notes.
fn image_words(lines: &Option<Vec<String>>) -> String {
    let Some(first) = lines.as_ref().and_then(|l| l.first()) else {
        return "(not set)".to_owned();
    };
    let value = first.trim().trim_start_matches("image:");
    let value = value.split(" #").next().unwrap_or(value);
    value.trim().trim_matches(['"', '\'']).to_owned()
}

/// The whole revert of the container's lines the deploy of `start` changed, when that deploy
/// changed the container's image too and `start` puts back lines written for the image before
/// it. `None`: the command-only undo stands (the image did not change in that deploy, or the
/// undo only removes keys the deploy added).
pub fn revert_with_image(
    repo: &RepoView,
    w: &WorkloadRef,
    start: &Undo<'_>,
    why: &str,
    finding: &str,
) -> Option<Change> {
    if start.keys.iter().all(|(_, before)| before.is_none()) {
        return None;
    }
    // The image's last change, wherever the repository sets it (the manifest, a kustomization's
    // `images:`, a values file): it must be the same deploy.
    let image = undo::find(repo, w, Some(&start.container), &["image"])?;
    if image.deploy.commit != start.deploy.commit {
        return None;
    }
    let keys = changed_keys(start, &repo.path, w)?;
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rest = undo::find(repo, w, Some(&start.container), &key_refs)?;
    let (shipped, ran) = (
        image_words(image.now.first()?),
        image_words(&image.keys.first()?.1),
    );
    let restored: Vec<String> = start
        .keys
        .iter()
        .filter(|(_, before)| before.is_some())
        .map(|(part, _)| part.to_string())
        .collect();
    let mut change = if image.file == rest.file {
        let mut both = rest.clone();
        both.keys = image.keys.iter().cloned().chain(rest.keys).collect();
        both.now = image.now.iter().cloned().chain(rest.now).collect();
        both.change(w, why, finding)
    } else {
        // The tag is set elsewhere (an overlay's `images:`, a values file): both files go back.
        let mut c = rest.change(w, why, finding);
        c.edits.extend(image.edits(w));
        c.notes.push_str(&format!(
            "\nThe image's tag goes back in `{}`, where the environment sets it (`{shipped}` → `{ran}`, changed by the same commit).\n",
            image.file
        ));
        c
    };
    let scope = format!(
        "### Why the image goes back too\nThe same deploy changed the container's image (`{ran}` → `{shipped}`). The {what} an undo of {them} alone would put back ran with `{ran}`, never with `{shipped}`: nothing shows that the image the deploy shipped runs {them} (a new image often moves its binary or renames its flags), so that undo is not proven. This PR reverts the container's lines that deploy changed together, back to the revision that ran (`{}`): the image and the {what} from that same version.\n\nThe release (`{shipped}`) ships again once its {what} is corrected for that image (the executable where its Dockerfile puts it, the flags its binary defines; or no `command`, so the image's ENTRYPOINT runs).\n\n",
        &start.before.commit[..start.before.commit.len().min(8)],
        what = restored.join(" and "),
        them = if restored.len() == 1 { "it" } else { "them" },
    );
    change.notes = format!("{scope}{}", change.notes);
    Some(change)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use squad_protocols::{Diagnosis, DiagnosisSource, RootCause};
    use squad_runtime::ports::FileVersion;

    use super::super::{BadStart, BadStartSignals, ROOT_CAUSE};
    use super::*;
    use crate::{ClusterView, Edit, Family, Remedy, testing};

    const R1: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: proxy\n          image: envoy:1\n        - name: api\n          image: r/cart:1.4.2 # pinned\n          command: [\"/app/cart\"]\n          args: [\"--listen=:8080\"]\n";

    fn version(commit: &str, content: &str) -> FileVersion {
        FileVersion {
            commit: commit.into(),
            at: testing::now(),
            message: format!("deploy {commit}"),
            content: content.into(),
        }
    }

    /// The versions, newest first, the newest being the repository's text.
    fn repo(versions: &[(&str, &str)]) -> RepoView {
        RepoView {
            path: "cart.yaml".into(),
            text: versions[0].1.into(),
            history: versions.iter().map(|(c, t)| version(c, t)).collect(),
            layers: Vec::new(),
            objects: Vec::new(),
        }
    }

    fn remedy(r: &RepoView, signals: BadStartSignals) -> Change {
        let mut d = Diagnosis::new(
            DiagnosisSource::Native,
            RootCause::from_static(ROOT_CAUSE),
            "api never starts",
        );
        d.signals.family.insert(
            ROOT_CAUSE.to_owned(),
            serde_json::to_value(signals).unwrap(),
        );
        let (settings, cluster, w) = (
            testing::settings(),
            ClusterView::default(),
            testing::workload(),
        );
        match BadStart.remedy(&d, &testing::input(&settings, &w, r, &cluster)) {
            Remedy::Change(c) => c,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    fn missing(exe: &str) -> BadStartSignals {
        BadStartSignals {
            container: "api".into(),
            executable: Some(exe.into()),
            flag: None,
        }
    }

    /// Whether the change sets the container's image.
    fn sets_image(edits: &[Edit]) -> bool {
        edits
            .iter()
            .any(|e| matches!(e, Edit::SetContainerKey { key, .. } if key == "image"))
    }

    fn applied(r: &RepoView, c: &Change) -> String {
        let files = std::collections::BTreeMap::from([(r.path.clone(), r.text.clone())]);
        squad_gitops::apply(&c.edits, &files).unwrap()[0].1.clone()
    }

    #[test]
    fn a_command_changed_with_the_image_goes_back_with_the_image() {
        let v2 = R1
            .replace("r/cart:1.4.2 # pinned", "r/cart:2.0.0")
            .replace("/app/cart", "/usr/local/bin/crat");
        // A scaling commit since rolled nothing out, and stays.
        let v3 = v2.replace("spec:\n  template:", "spec:\n  replicas: 4\n  template:");
        let r = repo(&[("cccccccc", &v3), ("bbbbbbbb", &v2), ("aaaaaaaa", R1)]);
        let c = remedy(&r, missing("/usr/local/bin/crat"));
        assert!(sets_image(&c.edits));
        assert_eq!(
            applied(&r, &c),
            R1.replace("spec:\n  template:", "spec:\n  replicas: 4\n  template:")
        );
        assert!(
            c.notes.contains(
                "The same deploy changed the container's image (`r/cart:1.4.2` → `r/cart:2.0.0`)"
            ),
            "{}",
            c.notes
        );
        assert!(
            c.notes
                .contains("ships again once its `command` is corrected")
        );
        assert!(
            c.notes
                .contains("back to the revision that ran (`aaaaaaaa`)")
        );
    }

    #[test]
    fn every_line_of_the_container_that_deploy_changed_goes_back_whole() {
        // The deploy to 2.0 changed the image, the command and the args; the sidecar's image
        // did not change, and stays.
        let v2 = R1
            .replace("r/cart:1.4.2 # pinned", "r/cart:2.0.0")
            .replace("/app/cart", "/usr/local/bin/crat")
            .replace("--listen=:8080", "--http.addr=:8080");
        let r = repo(&[("bbbbbbbb", &v2), ("aaaaaaaa", R1)]);
        let c = remedy(&r, missing("/usr/local/bin/crat"));
        assert_eq!(applied(&r, &c), R1);
        assert!(
            c.title.starts_with("revert \"deploy bbbbbbbb\""),
            "{}",
            c.title
        );
        // Refused args on a new image: the same whole revert.
        let flag = BadStartSignals {
            container: "api".into(),
            executable: None,
            flag: Some("--http.addr".into()),
        };
        let c = remedy(&r, flag);
        assert_eq!(applied(&r, &c), R1);
    }

    /// An overlay's `images:` sets the tag: the same commit bumped it there and changed the
    /// command in the base; the tag goes back in the kustomization, the command in the base.
    #[test]
    fn a_tag_an_overlay_sets_goes_back_there_with_the_command() {
        let k = |tag: &str| {
            format!(
                "resources:\n  - ../../base\nimages:\n  - name: r/cart\n    newTag: \"{tag}\"\n"
            )
        };
        let v2 = R1.replace("/app/cart", "/usr/local/bin/crat");
        let mut r = repo(&[("bbbbbbbb", &v2), ("aaaaaaaa", R1)]);
        r.layers = vec![crate::Layer {
            path: "overlays/prod/kustomization.yaml".into(),
            history: vec![
                version("bbbbbbbb", &k("2.0.0")),
                version("aaaaaaaa", &k("1.4.2")),
            ],
            image_tag: None,
        }];
        let c = remedy(&r, missing("/usr/local/bin/crat"));
        assert!(
            c.edits.contains(&Edit::SetKustomizeImage {
                kustomization: "overlays/prod/kustomization.yaml".into(),
                name: "r/cart".into(),
                tag: "1.4.2".into(),
            }),
            "{:?}",
            c.edits
        );
        assert!(
            c.notes
                .contains("(`2.0.0` → `1.4.2`, changed by the same commit)"),
            "{}",
            c.notes
        );
        let files = std::collections::BTreeMap::from([(r.path.clone(), r.text.clone())]);
        let base: Vec<Edit> = c
            .edits
            .iter()
            .filter(|e| matches!(e, Edit::SetContainerKey { .. }))
            .cloned()
            .collect();
        assert_eq!(squad_gitops::apply(&base, &files).unwrap()[0].1, R1);
        // A tag bumped by an earlier commit that ran since: the command alone goes back.
        r.layers[0].history = vec![
            version("99999999", &k("2.0.0")),
            version("88888888", &k("1.4.2")),
        ];
        let c = remedy(&r, missing("/usr/local/bin/crat"));
        assert!(
            !c.edits
                .iter()
                .any(|e| matches!(e, Edit::SetKustomizeImage { .. }))
        );
    }

    #[test]
    fn the_command_alone_goes_back_when_the_image_did_not_change() {
        let v2 = R1.replace("/app/cart", "/app/crat");
        let r = repo(&[("bbbbbbbb", &v2), ("aaaaaaaa", R1)]);
        let c = remedy(&r, missing("/app/crat"));
        assert!(!sets_image(&c.edits));
        assert_eq!(applied(&r, &c), R1);
        assert!(!c.notes.contains("Why the image goes back"));
        // The image changed in an older deploy that ran since: not this deploy's.
        let v2 = R1.replace("r/cart:1.4.2 # pinned", "r/cart:2.0.0");
        let v3 = v2.replace("/app/cart", "/app/crat");
        let r = repo(&[("cccccccc", &v3), ("bbbbbbbb", &v2), ("aaaaaaaa", R1)]);
        let c = remedy(&r, missing("/app/crat"));
        assert!(!sets_image(&c.edits));
        assert_eq!(applied(&r, &c), v2);
    }

    #[test]
    fn a_command_the_deploy_added_over_the_new_images_entrypoint_is_removed_alone() {
        // 1.4.2 ran on its entrypoint; the deploy to 2.0.0 added a command: removing it runs
        // 2.0.0's own entrypoint, nothing of the old image comes back, and the release stays.
        let r1 = R1.replace("          command: [\"/app/cart\"]\n", "");
        let v2 = R1
            .replace("r/cart:1.4.2 # pinned", "r/cart:2.0.0")
            .replace("/app/cart", "/usr/local/bin/crat");
        let r = repo(&[("bbbbbbbb", &v2), ("aaaaaaaa", &r1)]);
        let c = remedy(&r, missing("/usr/local/bin/crat"));
        assert!(!sets_image(&c.edits));
        assert_eq!(
            applied(&r, &c),
            r1.replace("r/cart:1.4.2 # pinned", "r/cart:2.0.0")
        );
    }
}

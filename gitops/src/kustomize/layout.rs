//! The kustomizations of a repository, read, and the chains of layers they form.

use std::collections::BTreeMap;

use serde_json::Value;

pub use crate::editor::{file_of, inline_path, split_inline};

use crate::objects::strings;

/// Whether a path is a kustomization file.
pub fn is_kustomization(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    matches!(
        file,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// One `images:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

/// One kustomization file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kustomization {
    /// Its path in the repository.
    pub path: String,
    /// Its directory (`""` at the root).
    pub dir: String,
    pub namespace: Option<String>,
    /// `resources:` (and the older `bases:`) as written.
    pub resources_written: Vec<String>,
    /// The same, as repository paths: files, or directories holding a kustomization.
    pub resources: Vec<String>,
    /// Patch files (`patches:` entries with a `path`, `patchesStrategicMerge:`,
    /// `patchesJson6902:`), as repository paths.
    pub patches: Vec<String>,
    /// The patch files aimed by a `target` (a JSON 6902 patch, or a strategic-merge one aimed
    /// by selector): repository path → (target kind, if given; target name).
    pub targets: BTreeMap<String, (Option<String>, String)>,
    pub images: Vec<ImageEntry>,
    /// `replicas:` entries: workload name → count.
    pub replicas: BTreeMap<String, u64>,
    /// Inline patches (`patches: - patch: |`): [`inline_path`] → the patch's text. Their paths
    /// are among `patches`, in order.
    pub inline: BTreeMap<String, String>,
}

/// `rel` from directory `dir`, as a repository path (`.` and `..` resolved).
fn join(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl Kustomization {
    /// Reads a kustomization file; `None` when it is not one.
    pub fn read(path: &str, text: &str) -> Option<Kustomization> {
        let v: Value = crate::yaml::from_str(text).ok()?;
        if !v.is_object() {
            return None;
        }
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        let mut resources_written = strings(&v["resources"]);
        resources_written.extend(strings(&v["bases"]));
        let resources = resources_written.iter().map(|r| join(&dir, r)).collect();
        let mut patches: Vec<String> = strings(&v["patchesStrategicMerge"])
            .iter()
            .map(|p| join(&dir, p))
            .collect();
        let mut targets = BTreeMap::new();
        let mut inline = BTreeMap::new();
        for (name, list) in ["patches", "patchesJson6902"]
            .into_iter()
            .filter_map(|name| Some((name, v[name].as_array()?)))
        {
            for (index, entry) in list.iter().enumerate() {
                let file = match (entry["path"].as_str(), entry["patch"].as_str()) {
                    (Some(p), _) => join(&dir, p),
                    (None, Some(text)) => {
                        let at = inline_path(path, name, index);
                        inline.insert(at.clone(), text.to_owned());
                        at
                    }
                    (None, None) => continue,
                };
                if let Some(name) = entry["target"]["name"].as_str() {
                    let kind = entry["target"]["kind"].as_str().map(str::to_owned);
                    targets.insert(file.clone(), (kind, name.to_owned()));
                }
                patches.push(file);
            }
        }
        let images = v["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| {
                        let s = |k: &str| i[k].as_str().map(str::to_owned);
                        Some(ImageEntry {
                            name: s("name")?,
                            new_name: s("newName"),
                            new_tag: s("newTag"),
                            digest: s("digest"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let replicas = v["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r["name"].as_str()?.to_owned(), r["count"].as_u64()?)))
            .collect();
        Some(Kustomization {
            path: path.to_owned(),
            namespace: v["namespace"].as_str().map(str::to_owned),
            dir,
            resources_written,
            resources,
            patches,
            targets,
            images,
            replicas,
            inline,
        })
    }
}

/// A repository's kustomizations, and the text of the patch files they name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub kustomizations: Vec<Kustomization>,
    /// Patch files, by path.
    pub patches: BTreeMap<String, String>,
    /// The manifests a remedy edits, by path (a JSON 6902 operation points at a container by
    /// its index there).
    pub manifests: BTreeMap<String, String>,
}

impl Layout {
    /// Reads the kustomization files among `files` (path, text); patch texts are added with
    /// [`Layout::patch_paths`] read.
    pub fn of<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Layout {
        let kustomizations: Vec<Kustomization> = files
            .into_iter()
            .filter(|(p, _)| is_kustomization(p))
            .filter_map(|(p, t)| Kustomization::read(p, t))
            .collect();
        // Inline patches are read with their kustomization.
        let patches = kustomizations
            .iter()
            .flat_map(|k| k.inline.clone())
            .collect();
        Layout {
            kustomizations,
            patches,
            manifests: BTreeMap::new(),
        }
    }

    /// Every patch file the kustomizations name (inline patches are not files).
    pub fn patch_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .kustomizations
            .iter()
            .flat_map(|k| {
                k.patches
                    .iter()
                    .filter(|p| !k.inline.contains_key(*p))
                    .cloned()
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The kustomization of a directory.
    fn in_dir(&self, dir: &str) -> Option<&Kustomization> {
        self.kustomizations.iter().find(|k| k.dir == dir)
    }

    /// Whether `k` includes `file`, directly or through the kustomizations it builds on.
    fn includes(&self, k: &Kustomization, file: &str, depth: usize) -> bool {
        depth < 16
            && k.resources.iter().any(|r| {
                r == file
                    || self
                        .in_dir(r)
                        .is_some_and(|inner| self.includes(inner, file, depth + 1))
            })
    }

    /// The layers that render `file` from `top` down to the one that lists it, topmost first.
    fn chain<'a>(&'a self, top: &'a Kustomization, file: &str) -> Vec<&'a Kustomization> {
        let mut out = vec![top];
        let mut at = top;
        for _ in 0..16 {
            if at.resources.iter().any(|r| r == file) {
                return out;
            }
            let Some(next) = at
                .resources
                .iter()
                .filter_map(|r| self.in_dir(r))
                .find(|k| self.includes(k, file, 0))
            else {
                break;
            };
            out.push(next);
            at = next;
        }
        out
    }

    /// The chains (topmost layer first) of every environment that renders `file`: one per
    /// kustomization no other includes.
    pub fn chains(&self, file: &str) -> Vec<Vec<&Kustomization>> {
        self.kustomizations
            .iter()
            .filter(|k| {
                !self
                    .kustomizations
                    .iter()
                    .any(|o| o.resources.contains(&k.dir))
            })
            .filter(|top| self.includes(top, file, 0))
            .map(|top| self.chain(top, file))
            .collect()
    }

    /// The chain that renders `file` into `namespace` (the topmost layer that sets a namespace
    /// sets it for all), and how many environments render the file at all. With no layer
    /// setting the namespace, the only chain there is.
    pub fn chain_for(&self, file: &str, namespace: &str) -> (Option<Vec<&Kustomization>>, usize) {
        let chains = self.chains(file);
        let count = chains.len();
        let ns_of = |c: &Vec<&Kustomization>| c.iter().find_map(|k| k.namespace.clone());
        let mut matching: Vec<Vec<&Kustomization>> = chains
            .iter()
            .filter(|c| ns_of(c).as_deref() == Some(namespace))
            .cloned()
            .collect();
        if matching.is_empty() && count == 1 && chains.iter().all(|c| ns_of(c).is_none()) {
            matching = chains;
        }
        if matching.len() == 1 {
            (matching.pop(), count)
        } else {
            (None, count)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn layout() -> Layout {
        Layout::of([
            (
                "base/api/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            (
                "overlays/prod/kustomization.yaml",
                "namespace: shop-prod\nresources:\n  - ../../base/api\npatches:\n  - path: api.yaml\nimages:\n  - name: ghcr.io/acme/api\n    newTag: 3.5.0\n",
            ),
            (
                "overlays/staging/kustomization.yaml",
                "namespace: shop-staging\nbases:\n  - ../../base/api\npatchesStrategicMerge:\n  - ./patches/api.yaml\n",
            ),
            ("base/api/deployment.yaml", "kind: Deployment\n"),
        ])
    }

    #[test]
    fn the_chain_into_a_namespace_runs_from_its_overlay_to_the_base() {
        let l = layout();
        let (chain, envs) = l.chain_for("base/api/deployment.yaml", "shop-prod");
        let paths: Vec<&str> = chain.unwrap().iter().map(|k| k.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "overlays/prod/kustomization.yaml",
                "base/api/kustomization.yaml"
            ]
        );
        assert_eq!(envs, 2);
        assert_eq!(
            l.patch_paths(),
            [
                "overlays/prod/api.yaml",
                "overlays/staging/patches/api.yaml"
            ]
        );
        let prod = &l.kustomizations[1];
        assert_eq!(prod.images[0].new_tag.as_deref(), Some("3.5.0"));
        assert!(l.chain_for("base/api/deployment.yaml", "other").0.is_none());
    }

    #[test]
    fn one_root_kustomization_without_a_namespace_is_the_chain() {
        let l = Layout::of([(
            "kustomization.yaml",
            "resources:\n- k8s/app/deployment.yaml\n",
        )]);
        let (chain, envs) = l.chain_for("k8s/app/deployment.yaml", "production");
        assert_eq!(chain.unwrap()[0].path, "kustomization.yaml");
        assert_eq!(envs, 1);
    }
}

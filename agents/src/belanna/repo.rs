//! The GitOps repository as B'Elanna reads it for a remedy: the workload's manifest — where its
//! document is declared: a plain manifest, a Kustomize base, or a Helm chart's template — its
//! versions, and what says where each environment sets what: the kustomizations with the patches
//! they name, or the Argo CD Application that renders the chart with its values files.

use std::collections::BTreeMap;

use squad_diagnosis::{Edit, Family, Layer, RepoObject, RepoView};
use squad_gitops::helm::{self, HelmApp};
use squad_gitops::kustomize::{self, Layout};
use squad_protocols::{Assignment, Declared};
use squad_runtime::CrewError;

use crate::CrewContext;
use crate::walk::{Walk, likely_first};

/// How the repository renders the workload for its environment.
pub(super) enum Shape {
    /// Plain manifests, or Kustomize (an empty layout for plain ones).
    Manifests(Layout),
    /// A Helm chart an Argo CD Application deploys, with the texts of its values files (and the
    /// chart's HPA template, when it has one).
    Helm(HelmApp, BTreeMap<String, String>),
}

impl Shape {
    /// Moves a remedy's edits of the manifest to where the environment sets each value.
    pub(super) fn retarget(
        &self,
        edits: &[Edit],
        repo: &RepoView,
        namespace: &str,
    ) -> (Vec<Edit>, Vec<String>) {
        match self {
            Shape::Manifests(layout) => kustomize::retarget(edits, layout, &repo.path, namespace),
            Shape::Helm(app, files) => helm::retarget(edits, app, (&repo.path, &repo.text), files),
        }
    }

    /// Where the workload is declared, for the world model that replays the fix: the file, and
    /// the overlay or the Application that renders it for `namespace`.
    pub(super) fn declared(&self, manifest: &str, namespace: &str) -> Declared {
        let mut d = Declared {
            manifest: manifest.to_owned(),
            ..Declared::default()
        };
        match self {
            Shape::Manifests(layout) => {
                d.kustomize = layout
                    .chain_for(manifest, namespace)
                    .0
                    .and_then(|chain| chain.first().map(|k| k.dir.clone()));
            }
            Shape::Helm(app, _) => d.helm = Some(app.manifest.clone()),
        }
        d
    }
}

fn yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// Finds the workload's manifest and what renders it.
async fn locate(ctx: &CrewContext, a: &Assignment) -> Result<((String, String), Shape), CrewError> {
    let base = ctx.forge.default_branch().await?;
    let paths = ctx.forge.list_files("", &base).await?;
    let kind_line = format!("kind: {}", a.workload.kind);
    // Every read below is one forge call: the walk's budget bounds them all.
    let mut walk = Walk::new("YAML files", paths.iter().filter(|p| yaml(p)).count());
    let read = async |walk: &mut Walk, path: &str| -> Result<Option<String>, CrewError> {
        if !walk.more() {
            return Ok(None);
        }
        let text = ctx.forge.read_file(path, &base).await?;
        walk.read(text.as_ref().map_or(0, String::len));
        Ok(text)
    };
    // A Helm chart deployed to the workload's namespace by an Argo CD Application.
    if paths.iter().any(|p| p.ends_with("Chart.yaml")) {
        let mut apps = Vec::new();
        for path in paths
            .iter()
            .filter(|p| yaml(p) && !p.contains("/templates/"))
        {
            if let Some(text) = read(&mut walk, path).await? {
                apps.extend(
                    helm::applications(path, &text)
                        .into_iter()
                        .filter(|app| app.namespace == a.workload.namespace),
                );
            }
        }
        let app = match apps.iter().position(|app| app.release == a.workload.name) {
            Some(i) => Some(apps.swap_remove(i)),
            None if apps.len() == 1 => apps.pop(),
            None => None,
        };
        if let Some(app) = app {
            let templates = format!("{}/templates/", app.chart);
            for path in paths
                .iter()
                .filter(|p| p.starts_with(&templates) && yaml(p))
            {
                if let Some(text) = read(&mut walk, path).await?
                    && text.lines().any(|l| l.trim_end() == kind_line)
                {
                    let mut files = BTreeMap::new();
                    let hpa = format!("{templates}hpa.yaml");
                    for f in app.values.iter().chain(std::iter::once(&hpa)) {
                        if let Some(t) = ctx.forge.read_file(f, &base).await? {
                            files.insert(f.clone(), t);
                        }
                    }
                    return Ok(((path.clone(), text), Shape::Helm(app, files)));
                }
            }
        }
    }
    let mut kustomizations = Vec::new();
    for path in paths.iter().filter(|p| kustomize::is_kustomization(p)) {
        if let Some(text) = read(&mut walk, path).await? {
            kustomizations.push((path.clone(), text));
        }
    }
    let mut layout = Layout::of(kustomizations.iter().map(|(p, t)| (p.as_str(), t.as_str())));
    for path in layout.patch_paths() {
        if let Some(text) = read(&mut walk, &path).await? {
            layout.patches.insert(path, text);
        }
    }
    // The document that declares the workload: not a kustomization, not a patch of it.
    let needle = format!("name: {}", a.workload.name);
    let mut candidates: Vec<String> = paths
        .into_iter()
        .filter(|p| yaml(p) && !kustomize::is_kustomization(p) && !layout.patches.contains_key(p))
        .collect();
    if walk.exceeds() {
        candidates = likely_first(candidates, &a.workload.name);
    }
    for path in candidates {
        if let Some(text) = read(&mut walk, &path).await?
            && text.contains(&kind_line)
            && text.contains(&needle)
        {
            return Ok(((path, text), Shape::Manifests(layout)));
        }
    }
    let unread = walk.note().map(|n| format!(" ({n})")).unwrap_or_default();
    Err(CrewError::invalid(
        format!("find the manifest of {}", a.workload),
        format!(
            "no manifest for {} in {}{unread}",
            a.workload,
            ctx.forge.repo()
        ),
    ))
}

/// The files that declare the objects the family asks for (in the workload's namespace, or with
/// none set), with their versions when the history is asked for. Kustomizations and Helm
/// templates are not declarations; an object the repository does not declare is left out.
async fn objects(
    ctx: &CrewContext,
    a: &Assignment,
    wanted: &[(String, String)],
    history: bool,
) -> Result<Vec<RepoObject>, CrewError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let base = ctx.forge.default_branch().await?;
    let mut found = Vec::new();
    let mut candidates: Vec<String> = ctx
        .forge
        .list_files("", &base)
        .await?
        .into_iter()
        .filter(|p| yaml(p) && !kustomize::is_kustomization(p) && !p.contains("/templates/"))
        .collect();
    let mut walk = Walk::new("YAML files", candidates.len());
    if walk.exceeds() {
        for (_, name) in wanted.iter().rev() {
            candidates = likely_first(candidates, name);
        }
    }
    for path in candidates {
        if !walk.more() {
            tracing::warn!(
                workload = %a.workload,
                "the objects of the remedy were looked for in part of the repository: {}",
                walk.note().unwrap_or_default()
            );
            break;
        }
        let text = ctx.forge.read_file(&path, &base).await?;
        walk.read(text.as_ref().map_or(0, String::len));
        let Some(text) = text else {
            continue;
        };
        let Ok(docs) = squad_gitops::objects::parse(&path, &text) else {
            continue;
        };
        for doc in &docs {
            let (kind, name) = (
                squad_gitops::objects::kind(doc),
                squad_gitops::objects::name(doc),
            );
            let ns = doc["metadata"]["namespace"].as_str();
            let here = ns.is_none_or(|ns| ns == a.workload.namespace);
            if here
                && wanted.iter().any(|(k, n)| k == kind && n == name)
                && !found
                    .iter()
                    .any(|o: &RepoObject| o.kind == kind && o.name == name)
            {
                found.push(RepoObject {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    path: path.clone(),
                    text: text.clone(),
                    history: if history {
                        ctx.forge.file_history(&path).await?
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }
    Ok(found)
}

/// What the family asks to read from the repository, and how it renders.
pub(super) async fn read(
    ctx: &CrewContext,
    a: &Assignment,
    family: &dyn Family,
) -> Result<(RepoView, Shape), CrewError> {
    let needs = family.repo_needs();
    let wanted = family.repo_objects(&a.diagnosis);
    if !needs.manifest {
        return Ok((RepoView::default(), Shape::Manifests(Layout::default())));
    }
    let ((path, text), mut shape) = locate(ctx, a).await?;
    if let Shape::Manifests(layout) = &mut shape {
        layout.manifests.insert(path.clone(), text.clone());
    }
    let versions = |path: String| async move {
        if needs.history {
            ctx.forge.file_history(&path).await
        } else {
            Ok(Vec::new())
        }
    };
    let history = versions(path.clone()).await?;
    // The files that render it into the workload's namespace, the one that wins first.
    let mut layers = Vec::new();
    match &shape {
        Shape::Manifests(layout) => {
            if let (Some(chain), _) = layout.chain_for(&path, &a.workload.namespace) {
                for k in chain {
                    layers.push(Layer {
                        path: k.path.clone(),
                        history: versions(k.path.clone()).await?,
                        image_tag: None,
                    });
                }
            }
        }
        Shape::Helm(app, _) => {
            // The app's container: the first the template names by expression.
            let tag = helm::feeds(&text, "", "image");
            for values in app.values.iter().rev() {
                layers.push(Layer {
                    path: values.clone(),
                    history: versions(values.clone()).await?,
                    image_tag: tag.clone(),
                });
            }
        }
    }
    let objects = objects(ctx, a, &wanted, needs.history).await?;
    Ok((
        RepoView {
            path,
            text,
            history,
            layers,
            objects,
        },
        shape,
    ))
}

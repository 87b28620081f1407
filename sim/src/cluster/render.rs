//! The GitOps repository as the cluster applies it. A repository of plain manifests is applied
//! file by file: the workload is the document its manifest declares, and every YAML file's
//! objects are synced. A Kustomize repository (`[workload] kustomize`, the overlay the
//! environment syncs) is applied as `kubectl kustomize <overlay>` renders it at each commit —
//! the real kustomize, so an edit in the base that an overlay overrides visibly changes nothing,
//! and an edit in the overlay does. A Helm repository (`[workload] helm`, the Argo CD Application
//! that deploys the chart) is applied as `helm template` renders the chart with the
//! Application's value files, in order, at each commit. Renders are cached per tree for the whole
//! process (the replays and a resumed run render the same trees again).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;
use squad_adapters::git::{Commit, GitRepo};
use squad_gitops::objects;
use squad_runtime::ports::{PortError, PortResult};

use super::SimCluster;

/// A render: the output, or the tool's error.
type Render = Arc<Result<String, String>>;

/// Renders kept per tree id and how it is rendered (the tool, its program, the overlay or the
/// Application and namespace): the same key always renders the same.
static RENDERS: LazyLock<Mutex<HashMap<(String, String), Render>>> =
    LazyLock::new(Default::default);

/// `SQUAD_KUBECTL`, else `kubectl` from `PATH`.
fn kubectl() -> PathBuf {
    std::env::var_os("SQUAD_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// `SQUAD_HELM`, else `helm` from `PATH`.
fn helm() -> PathBuf {
    std::env::var_os("SQUAD_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("helm"))
}

/// The repository's tree at `rev`, written out.
fn checkout(git: &GitRepo, rev: &str) -> Result<tempfile::TempDir, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    for path in git.list(rev, "").map_err(|e| e.to_string())? {
        let Some(text) = git.read(rev, &path).map_err(|e| e.to_string())? else {
            continue;
        };
        let to = tmp.path().join(&path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&to, text).map_err(|e| e.to_string())?;
    }
    Ok(tmp)
}

/// `helm template` of the chart the Application at `app` deploys, at `rev`.
fn helm_template(git: &GitRepo, rev: &str, app: &str, namespace: &str) -> Result<String, String> {
    let text = git
        .read(rev, app)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{app} does not exist at {rev}"))?;
    let app = squad_gitops::helm::applications(app, &text)
        .into_iter()
        .find(|a| a.namespace == namespace)
        .ok_or_else(|| format!("{app} deploys no Helm chart to {namespace}"))?;
    let tmp = checkout(git, rev)?;
    let mut cmd = std::process::Command::new(helm());
    cmd.arg("template")
        .arg(&app.release)
        .arg(tmp.path().join(&app.chart))
        .arg("--namespace")
        .arg(namespace);
    for v in &app.values {
        cmd.arg("-f").arg(tmp.path().join(v));
    }
    let out = bounded_output(cmd).map_err(|e| {
        format!(
            "the repository is a Helm chart ({}) and the simulation renders it with `helm template`: {} could not run ({e}); put helm on PATH or set SQUAD_HELM (scripts/tools installs it)",
            app.chart,
            helm().display()
        )
    })?;
    // A render stopped at the cap was killed: say that, not that it failed.
    if out.stdout.is_some() && !out.status.success() {
        return Err(format!(
            "helm template {} failed: {}",
            app.chart,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    rendered_text(out.stdout, &format!("helm template {}", app.chart))
}

/// A render's output: at most what squad reads as YAML, and UTF-8.
fn rendered_text(stdout: Option<Vec<u8>>, what: &str) -> Result<String, String> {
    let Some(stdout) = stdout else {
        return Err(format!(
            "{what} rendered more than {} bytes, the most squad reads as YAML (its run was stopped)",
            squad_gitops::yaml::MAX_YAML_BYTES
        ));
    };
    String::from_utf8(stdout).map_err(|e| format!("{what} rendered text that is not UTF-8: {e}"))
}

/// How a render ran: its status, its stdout unless it passed the cap, its stderr's tail.
struct Output {
    status: std::process::ExitStatus,
    stdout: Option<Vec<u8>>,
    stderr: Vec<u8>,
}

/// Runs a renderer, reading at most [`squad_gitops::yaml::MAX_YAML_BYTES`] of its stdout (past
/// that the child is killed: the YAML would be refused anyway) and the last 64 KiB of its
/// stderr, so a render that never ends costs neither memory nor a hang on a full pipe.
fn bounded_output(mut cmd: std::process::Command) -> std::io::Result<Output> {
    use std::io::Read;
    use std::process::Stdio;
    const STDERR_KEEP: usize = 64 << 10;
    let cap = squad_gitops::yaml::MAX_YAML_BYTES;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let (mut kept, mut buf) = (Vec::new(), vec![0u8; 16 << 10]);
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                kept.extend_from_slice(buf.get(..n).unwrap_or_default());
                if kept.len() > 2 * STDERR_KEEP {
                    kept.drain(..kept.len() - STDERR_KEEP);
                }
            }
            kept
        })
    });
    let mut stdout = Vec::new();
    if let Some(pipe) = child.stdout.take() {
        pipe.take(cap as u64 + 1).read_to_end(&mut stdout)?;
    }
    let over = stdout.len() > cap;
    if over {
        let _ = child.kill();
    }
    let status = child.wait()?;
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    Ok(Output {
        status,
        stdout: (!over).then_some(stdout),
        stderr,
    })
}

/// `kubectl kustomize <dir>` over the repository's tree at `rev`.
fn kustomize(git: &GitRepo, rev: &str, dir: &str) -> Result<String, String> {
    let tmp = checkout(git, rev)?;
    let mut cmd = std::process::Command::new(kubectl());
    cmd.arg("kustomize").arg(tmp.path().join(dir));
    let out = bounded_output(cmd)
        .map_err(|e| {
            format!(
                "the repository is Kustomize (overlay {dir}) and the simulation renders it with `kubectl kustomize`: {} could not run ({e}); put kubectl on PATH or set SQUAD_KUBECTL (scripts/tools installs it)",
                kubectl().display()
            )
        })?;
    // A render stopped at the cap was killed: say that, not that it failed.
    if out.stdout.is_some() && !out.status.success() {
        return Err(format!(
            "kubectl kustomize {dir} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    rendered_text(out.stdout, &format!("kubectl kustomize {dir}"))
}

impl SimCluster {
    /// What the environment syncs when it is rendered (a Kustomize overlay, a Helm
    /// Application), for messages.
    fn overlay(&self) -> Option<&str> {
        let w = &self.scenario.workload;
        w.kustomize.as_deref().or(w.helm.as_deref())
    }

    /// The rendered repository at `rev`, cached per tree.
    fn rendered(&self, dir: &str, rev: &str) -> PortResult<Render> {
        let what = "render the GitOps repo";
        let tree = self
            .git
            .tree_id(rev)
            .map_err(|e| PortError::failed(what, e))?;
        let w = &self.scenario.workload;
        let how = match &w.helm {
            Some(app) => format!("{} template {app} -n {}", helm().display(), w.namespace),
            None => format!("{} kustomize {dir}", kubectl().display()),
        };
        let key = (tree, how);
        let cached = RENDERS
            .lock()
            .map_err(|_| PortError::failed(what, "lock poisoned"))?
            .get(&key)
            .cloned();
        if let Some(r) = cached {
            return Ok(r);
        }
        // Rendered outside the lock: two simulations at once render side by side.
        let r = Arc::new(match &w.helm {
            Some(app) => helm_template(&self.git, rev, app, &w.namespace),
            None => kustomize(&self.git, rev, dir),
        });
        RENDERS
            .lock()
            .map_err(|_| PortError::failed(what, "lock poisoned"))?
            .insert(key, r.clone());
        Ok(r)
    }

    /// Whether the repository renders at `main` (always, for plain manifests).
    pub fn check_renders(&self) -> PortResult<()> {
        self.objects_at("main").map(|_| ())
    }

    /// The commits on `main` that may change the workload, newest first: its manifest's log, or
    /// (Kustomize) every commit, since a patch or a kustomization anywhere may.
    pub(super) fn workload_log(&self) -> PortResult<Vec<Commit>> {
        let path = match self.overlay() {
            Some(_) => "",
            None => self.scenario.workload.manifest.as_str(),
        };
        self.git
            .log("main", path)
            .map_err(|e| PortError::failed("read the GitOps repo", e))
    }

    /// The objects the cluster applies from the repository at `rev` that the workload's may be
    /// among: its manifest's documents, or the rendered overlay. `None` when the manifest does
    /// not exist at `rev`.
    pub(super) fn workload_objects(&self, rev: &str) -> PortResult<Option<Vec<Value>>> {
        let what = "read the GitOps repo";
        match self.overlay() {
            Some(dir) => {
                let rendered = self.rendered(dir, rev)?;
                match rendered.as_ref() {
                    Ok(text) => objects::parse(dir, text)
                        .map(Some)
                        .map_err(|e| PortError::failed(what, e)),
                    // A commit kustomize cannot render is one Argo CD refuses to sync: the
                    // cluster keeps what it ran.
                    Err(e) if rev != "main" => {
                        tracing::warn!("commit {rev} not applied: {e}");
                        Ok(None)
                    }
                    Err(e) => Err(PortError::failed(what, e)),
                }
            }
            None => {
                let manifest = &self.scenario.workload.manifest;
                let Some(text) = self
                    .git
                    .read(rev, manifest)
                    .map_err(|e| PortError::failed(what, e))?
                else {
                    return Ok(None);
                };
                objects::parse(manifest, &text)
                    .map(Some)
                    .map_err(|e| PortError::failed(what, e))
            }
        }
    }

    /// Every object the repository declares at `rev`: each YAML file's documents, or
    /// (Kustomize) the rendered overlay (the files under it are inputs, not objects).
    pub(super) fn objects_at(&self, rev: &str) -> PortResult<Vec<Value>> {
        let what = "read the GitOps repo";
        if let Some(dir) = self.overlay() {
            return match self.rendered(dir, rev)?.as_ref() {
                Ok(text) => objects::parse(dir, text).map_err(|e| PortError::failed(what, e)),
                Err(e) => Err(PortError::failed(what, e)),
            };
        }
        let mut out = Vec::new();
        for path in self
            .git
            .list(rev, "")
            .map_err(|e| PortError::failed(what, e))?
        {
            if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
                continue;
            }
            let Some(text) = self
                .git
                .read(rev, &path)
                .map_err(|e| PortError::failed(what, e))?
            else {
                continue;
            };
            out.extend(objects::parse(&path, &text).map_err(|e| PortError::failed(what, e))?);
        }
        Ok(out)
    }
}

//! Every output of a run, as text with the place it came from: the `--json` summary, every
//! request the crew sent to GitHub (issues, comments, labels, PR titles and bodies, commit
//! messages), the lines squad added in every commit it wrote to the GitOps and application
//! repositories (a secret already in the repository on an unchanged line is not squad's doing),
//! the forge's stored state, the incident's log, every request to the model and to HolmesGPT,
//! and the tracing output.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde_json::Value;
use squad_runtime::IncidentStore;

/// One piece of output and where it was found.
#[derive(Debug, Clone)]
pub struct Output {
    pub place: String,
    pub text: String,
}

/// Collects outputs.
#[derive(Debug, Default)]
pub struct Outputs(pub Vec<Output>);

impl Outputs {
    pub fn push(&mut self, place: impl Into<String>, text: impl Into<String>) {
        let text = text.into();
        if !text.is_empty() {
            self.0.push(Output {
                place: place.into(),
                text,
            });
        }
    }

    /// Every string of `value` (and every object key), each with its JSON pointer.
    pub fn json(&mut self, place: &str, value: &Value) {
        fn walk(out: &mut Outputs, place: &str, pointer: String, v: &Value) {
            match v {
                Value::String(s) => out.push(format!("{place} {pointer}"), s.clone()),
                Value::Array(items) => {
                    for (i, x) in items.iter().enumerate() {
                        walk(out, place, format!("{pointer}/{i}"), x);
                    }
                }
                Value::Object(fields) => {
                    for (k, x) in fields {
                        out.push(format!("{place} {pointer} (a key)"), k.clone());
                        walk(out, place, format!("{pointer}/{k}"), x);
                    }
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
        walk(self, place, String::new(), value);
    }

    /// The request bodies the crew's GitHub adapter sent. File contents (git blobs, the
    /// contents API) are left to [`Outputs::commits`], which sees what they changed.
    pub fn github(&mut self, requests: &[squad_sim::github_api::Recorded]) {
        for r in requests {
            let mut body = r.body.clone();
            let is_file = r.path.contains("/git/blobs") || r.path.contains("/contents/");
            if let (true, Some(fields)) = (is_file, body.as_object_mut()) {
                fields.remove("content");
            }
            self.json(&format!("GitHub request {} {}", r.method, r.path), &body);
        }
    }

    /// Each commit squad wrote (at or after `since`, the simulation's start) to the repository
    /// at `repo`: its message and the lines it added, per file.
    pub fn commits(&mut self, name: &str, repo: &Path, since: DateTime<Utc>) {
        let git = git2::Repository::open(repo).unwrap();
        let mut walk = git.revwalk().unwrap();
        for r in git.references().unwrap() {
            let r = r.unwrap();
            if let Some(id) = r.target() {
                walk.push(id).unwrap();
            }
        }
        for id in walk {
            let commit = git.find_commit(id.unwrap()).unwrap();
            if commit.time().seconds() < since.timestamp() {
                continue;
            }
            let short = &commit.id().to_string()[..10];
            self.push(
                format!("{name} commit {short}: its message"),
                commit.message().unwrap_or_default(),
            );
            let tree = commit.tree().unwrap();
            let parent = commit.parent(0).ok().map(|p| p.tree().unwrap());
            let diff = git
                .diff_tree_to_tree(parent.as_ref(), Some(&tree), None)
                .unwrap();
            let mut added: std::collections::BTreeMap<String, String> = Default::default();
            diff.print(git2::DiffFormat::Patch, |delta, _, line| {
                if line.origin() == '+' {
                    let file = delta
                        .new_file()
                        .path()
                        .map_or(String::new(), |p| p.display().to_string());
                    let text = added.entry(file).or_default();
                    text.push_str(&String::from_utf8_lossy(line.content()));
                }
                true
            })
            .unwrap();
            for (file, text) in added {
                self.push(
                    format!("{name} commit {short}: lines added to {file}"),
                    text,
                );
            }
        }
    }

    /// The incident log a run left in `store` (`incidents.redb`), every event in full.
    pub fn incident_log(&mut self, store: &Path) {
        let store = squad_runtime::RedbStore::open(store).unwrap();
        for id in store.incident_ids().unwrap() {
            for e in store.events(&id).unwrap() {
                let place = format!("the incident log, event {} of {}", e.seq, id.0);
                self.json(&place, &serde_json::to_value(&e).unwrap());
            }
        }
    }

    /// A file of the run's directory, as JSON when it parses, else as text.
    pub fn file(&mut self, place: &str, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => self.json(place, &v),
            Err(_) => self.push(place, text),
        }
    }

    /// Requests a recording server received.
    pub fn requests(&mut self, what: &str, bodies: &[Value]) {
        for (i, b) in bodies.iter().enumerate() {
            self.json(&format!("{what} #{}", i + 1), b);
        }
    }
}

/// Everything the process logs through `tracing`, at debug level, from every test of this
/// binary: planted values are unique to their case, so a case reads the whole of it.
#[derive(Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<u8>>>);

impl Trace {
    /// The process's one capture, installed on first use.
    pub fn global() -> Trace {
        static TRACE: OnceLock<Trace> = OnceLock::new();
        TRACE
            .get_or_init(|| {
                let trace = Trace::default();
                let writer = trace.clone();
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .try_init()
                    .unwrap();
                trace
            })
            .clone()
    }

    /// How much has been logged so far.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// What was logged from `offset` on.
    pub fn since(&self, offset: usize) -> String {
        let all = self.0.lock().unwrap();
        String::from_utf8_lossy(all.get(offset..).unwrap_or_default()).into_owned()
    }
}

impl Write for Trace {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

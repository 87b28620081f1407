//! Pointing a broken reference at what exists. A reference whose key (or object) the namespace
//! does not hold is most often the same name written another way: the deploy reads
//! `DATABASE_URL` where the secrets pipeline now writes `database-url`. When exactly one existing
//! key of the object (or one object of the kind) is the broken name once case and the `-`, `_`,
//! `.` separators are set aside, the pull request points the reference at it, changing only its
//! `key:` (or `name:`) lines; when none or several are, a human decides, with the names listed.
//!
//! What exists is read as names only, never values: a Secret's key names from the cluster (the
//! whole namespace), a ConfigMap's from the repository that declares it (the cluster may hold
//! more, so a ConfigMap the repository lacks is not known to be missing).

use serde_json::Value;
use squad_gitops::editor::{ContainerTarget, container_key_lines, object_key_lines};
use squad_gitops::objects;
use squad_protocols::{Finding, Severity};

use super::BrokenReference;
use crate::undo::{Part, Undo, template_keys};
use crate::{Change, Edit, RemedyInput};

pub(super) use crate::names::normalised;

/// The objects of one kind the workload's namespace holds, each with its key names (never
/// values), as far as squad reads them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Existing {
    pub objects: Vec<(String, Vec<String>)>,
    /// Whether the list is the namespace's whole (the cluster's): an object it lacks does not
    /// exist. The repository's ConfigMaps are not: the cluster may hold others.
    pub complete: bool,
    /// Where the names were read, for the pull request.
    pub source: &'static str,
}

impl Existing {
    /// What the namespace holds of `kind`: the cluster's Secrets, or the ConfigMaps the
    /// repository declares there (in the manifest's file, or the one the family asked for).
    /// `None` when squad read nothing of that kind.
    pub(super) fn of(kind: &str, input: &RemedyInput<'_>) -> Option<Existing> {
        if kind == "Secret" {
            return input.cluster.secret_keys.as_ref().map(|s| Existing {
                objects: s.clone(),
                complete: true,
                source: "the cluster",
            });
        }
        let ns = input.workload.namespace.as_str();
        let mut docs = objects::parse(&input.repo.path, &input.repo.text).unwrap_or_default();
        docs.extend(
            input
                .repo
                .objects
                .iter()
                .filter(|o| o.kind == kind)
                .filter_map(|o| o.document()),
        );
        let mut found: Vec<(String, Vec<String>)> = Vec::new();
        for d in docs.iter().filter(|d| {
            objects::kind(d) == kind && d["metadata"]["namespace"].as_str().is_none_or(|n| n == ns)
        }) {
            let name = objects::name(d).to_owned();
            if found.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let keys = ["data", "binaryData"]
                .iter()
                .filter_map(|f| d[*f].as_object())
                .flat_map(|m| m.keys().cloned())
                .collect();
            found.push((name, keys));
        }
        (!found.is_empty()).then_some(Existing {
            objects: found,
            complete: false,
            source: "the repository",
        })
    }

    /// The key names of the object `name`, when it is known.
    pub(super) fn keys(&self, name: &str) -> Option<&[String]> {
        self.objects
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.as_slice())
    }

    /// Whether `name` (and its `key`) exists: `None` when squad cannot tell.
    pub(super) fn resolves(&self, name: &str, key: Option<&str>) -> Option<bool> {
        match (self.keys(name), key) {
            (Some(_), None) => Some(true),
            (Some(keys), Some(k)) => Some(keys.iter().any(|x| x == k)),
            (None, _) if self.complete => Some(false),
            (None, _) => None,
        }
    }
}

/// The existing names that are `wanted` written another way (the same under [`normalised`]).
pub(super) fn same_under_normalisation<'a>(wanted: &str, existing: &'a [String]) -> Vec<&'a str> {
    let w = normalised(wanted);
    existing
        .iter()
        .filter(|e| *e != wanted && normalised(e) == w)
        .map(String::as_str)
        .collect()
}

/// What of a reference a repoint changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// The object's name (`name:` of a key reference, `envFrom` or a volume's source).
    Name,
    /// The key (`key:` of a key reference).
    Key,
}

/// The reference fields of the broken kind (`secretKeyRef`, `secretRef`, a volume's `secret`),
/// and the field a volume's source names its object with.
fn ref_fields(kind: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    if kind == "Secret" {
        ("secretKeyRef", "secretRef", "secret", "secretName")
    } else {
        ("configMapKeyRef", "configMapRef", "configMap", "name")
    }
}

/// The JSON pointer of a workload's pod spec.
fn pod_spec_pointer(kind: &str) -> String {
    let mut keys: Vec<&str> = template_keys(kind).to_vec();
    keys.push("spec");
    keys.iter().map(|k| format!("/{k}")).collect()
}

/// The keys the container reads from the object `name` (its `env` key references).
pub(super) fn keys_read(doc: &Value, b: &BrokenReference, name: &str) -> Vec<String> {
    let (key_ref, ..) = ref_fields(&b.kind);
    let container = b.container.as_deref().unwrap_or_default();
    objects::pod_spec(doc)["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str() == Some(container))
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .filter_map(|e| {
            let r = &e["valueFrom"][key_ref];
            (r["name"].as_str() == Some(name))
                .then(|| r["key"].as_str().map(str::to_owned))
                .flatten()
        })
        .collect()
}

/// The workload's document with every reference of the container (or the volume) to the broken
/// object and key pointed at `to`, and how many it changed: what the edited manifest must read.
fn repointed(
    doc: &Value,
    w_kind: &str,
    b: &BrokenReference,
    field: Field,
    to: &str,
) -> (Value, usize) {
    let mut out = doc.clone();
    let mut n = 0;
    let (key_ref, from_ref, volume_source, volume_name) = ref_fields(&b.kind);
    let name = b.name.as_deref().unwrap_or_default();
    let Some(spec) = out.pointer_mut(&pod_spec_pointer(w_kind)) else {
        return (out, 0);
    };
    // `get_mut` throughout: indexing a JSON value mutably would add the keys it looks for.
    let mut set = |slot: Option<&mut Value>| {
        if let Some(v) = slot {
            *v = Value::String(to.to_owned());
            n += 1;
        }
    };
    match &b.volume {
        Some(volume) => {
            for v in list(spec, "volumes") {
                if v["name"].as_str() != Some(volume) || field != Field::Name {
                    continue;
                }
                let Some(source) = v.get_mut(volume_source) else {
                    continue;
                };
                if source[volume_name].as_str() == Some(name) {
                    set(source.get_mut(volume_name));
                }
            }
        }
        None => {
            let container = b.container.as_deref().unwrap_or_default();
            for c in list(spec, "containers") {
                if c["name"].as_str() != Some(container) {
                    continue;
                }
                for e in list(c, "env") {
                    let Some(r) = e.get_mut("valueFrom").and_then(|v| v.get_mut(key_ref)) else {
                        continue;
                    };
                    let key_matches = b.key.as_deref().is_none_or(|k| r["key"] == *k);
                    if r["name"].as_str() == Some(name) && key_matches {
                        set(r.get_mut(match field {
                            Field::Name => "name",
                            Field::Key => "key",
                        }));
                    }
                }
                if field == Field::Name {
                    for e in list(c, "envFrom") {
                        let Some(r) = e.get_mut(from_ref) else {
                            continue;
                        };
                        if r["name"].as_str() == Some(name) {
                            set(r.get_mut("name"));
                        }
                    }
                }
            }
        }
    }
    (out, n)
}

/// The items of the list at `key` of `v` (none when it is not a list), without adding the key.
fn list<'v>(v: &'v mut Value, key: &str) -> impl Iterator<Item = &'v mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// `lines` with every `field: from` line (not an item's first, `- name:` being the item's own
/// name) set to `to`, its quotes and comment kept; and the changed lines, before and after.
fn substitute(
    lines: &[String],
    field: &str,
    from: &str,
    to: &str,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut changed = Vec::new();
    let out = lines
        .iter()
        .map(|l| {
            let body = l.trim_start();
            let indent = &l[..l.len() - body.len()];
            let Some(rest) = body.strip_prefix(field).and_then(|r| r.strip_prefix(':')) else {
                return l.clone();
            };
            let comment = rest.find(" #").map_or("", |i| &rest[i..]);
            let value = rest[..rest.len() - comment.len()].trim();
            let quote = value
                .chars()
                .next()
                .filter(|c| matches!(c, '"' | '\''))
                .map(String::from)
                .unwrap_or_default();
            let bare = value.trim_matches(['"', '\'']);
            if bare != from {
                return l.clone();
            }
            let new = format!("{indent}{field}: {quote}{to}{quote}{comment}");
            changed.push((body.to_owned(), new.trim_start().to_owned()));
            new
        })
        .collect();
    (out, changed)
}

/// The edits of a repoint, and the lines they change (before, after; each without its indent).
pub(super) struct Edits {
    pub edits: Vec<Edit>,
    pub lines: Vec<(String, String)>,
}

/// The pull request's edits that point the broken reference's `field` at `to`. `None` when the
/// manifest's text does not say it in lines squad edits (the edited manifest must read exactly
/// the references repointed, nothing else).
pub(super) fn edits(
    input: &RemedyInput<'_>,
    b: &BrokenReference,
    field: Field,
    to: &str,
) -> Option<Edits> {
    let (repo, w) = (input.repo, input.workload);
    let doc = objects::parse(&repo.path, &repo.text)
        .ok()?
        .into_iter()
        .find(|o| objects::kind(o) == w.kind && objects::name(o) == w.name)?;
    let (expected, n) = repointed(&doc, &w.kind, b, field, to);
    if n == 0 {
        return None;
    }
    let from = match field {
        Field::Name => b.name.as_deref()?,
        Field::Key => b.key.as_deref()?,
    };
    let mut edits = Vec::new();
    let mut changed = Vec::new();
    match &b.volume {
        Some(_) => {
            let (_, _, _, volume_name) = ref_fields(&b.kind);
            let mut keys: Vec<&str> = template_keys(&w.kind).to_vec();
            keys.extend(["spec", "volumes"]);
            let lines = object_key_lines(&repo.text, &w.kind, &w.name, &keys).ok()??;
            let (new, c) = substitute(&lines, volume_name, from, to);
            changed.extend(c);
            edits.push(Edit::SetObjectKey {
                path: repo.path.clone(),
                kind: w.kind.clone(),
                name: w.name.clone(),
                keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                lines: Some(new),
            });
        }
        None => {
            let container = b.container.as_deref()?;
            let target = ContainerTarget {
                kind: &w.kind,
                name: &w.name,
                container,
            };
            let word = match field {
                Field::Name => "name",
                Field::Key => "key",
            };
            let blocks: &[&str] = match field {
                Field::Name => &["env", "envFrom"],
                Field::Key => &["env"],
            };
            for block in blocks {
                let Some(lines) = container_key_lines(&repo.text, &target, block).ok()? else {
                    continue;
                };
                let (new, c) = substitute(&lines, word, from, to);
                if c.is_empty() {
                    continue;
                }
                changed.extend(c);
                edits.push(Edit::SetContainerKey {
                    path: repo.path.clone(),
                    kind: w.kind.clone(),
                    workload: w.name.clone(),
                    container: container.to_owned(),
                    key: (*block).to_owned(),
                    lines: Some(new),
                });
            }
        }
    }
    // The edited manifest must read exactly the references repointed.
    let files = std::collections::BTreeMap::from([(repo.path.clone(), repo.text.clone())]);
    let out = squad_gitops::apply(&edits, &files).ok()?;
    let (_, text) = out.first()?;
    let after = objects::parse(&repo.path, text)
        .ok()?
        .into_iter()
        .find(|o| objects::kind(o) == w.kind && objects::name(o) == w.name)?;
    (after == expected).then_some(Edits {
        edits,
        lines: changed,
    })
}

/// The references an undo would restore, of the broken reference's kind, as (object, key):
/// what the workload's document read before the deploy.
pub(super) fn restored(
    u: &Undo<'_>,
    input: &RemedyInput<'_>,
    kind: &str,
) -> Vec<(String, Option<String>)> {
    let (key_ref, ..) = ref_fields(kind);
    let w = input.workload;
    let Some(doc) = objects::parse(u.file, &u.before.content)
        .ok()
        .and_then(|docs| {
            docs.into_iter()
                .find(|o| objects::kind(o) == w.kind && objects::name(o) == w.name)
        })
    else {
        return Vec::new();
    };
    let vars: Vec<&str> = u
        .keys
        .iter()
        .filter_map(|(p, _)| match p {
            Part::Env(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    objects::pod_spec(&doc)["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str() == Some(u.container.as_str()))
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .filter(|e| e["name"].as_str().is_some_and(|n| vars.contains(&n)))
        .filter_map(|e| {
            let r = &e["valueFrom"][key_ref];
            Some((
                r["name"].as_str()?.to_owned(),
                r["key"].as_str().map(str::to_owned),
            ))
        })
        .collect()
}

/// `names` as the pull request and escalations list them: `` `a`, `b` ``.
pub(super) fn listed(names: &[impl AsRef<str>]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pull request that points the reference at `to`: which names exist, why this one, and
/// that no value is written.
pub(super) fn change(
    input: &RemedyInput<'_>,
    b: &BrokenReference,
    field: Field,
    to: &str,
    existing: &[String],
    existing_from: &str,
    no_undo: Option<String>,
) -> Option<Change> {
    let Edits {
        edits,
        lines: changed,
    } = edits(input, b, field, to)?;
    let w = input.workload;
    let (what, now) = match field {
        Field::Key => (
            format!(
                "key `{to}` of {} `{}`",
                b.kind,
                b.name.as_deref().unwrap_or_default()
            ),
            format!(
                "{} `{}` holds these keys (names only, read from {existing_from}; squad never reads a value): {}.",
                b.kind,
                b.name.as_deref().unwrap_or_default(),
                listed(existing)
            ),
        ),
        Field::Name => (
            format!("{} `{to}`", b.kind),
            format!(
                "The namespace `{}` holds these {}s (names, read from {existing_from}): {}.",
                w.namespace,
                b.kind,
                listed(existing)
            ),
        ),
    };
    let broken = match field {
        Field::Key => b.key.as_deref().unwrap_or_default(),
        Field::Name => b.name.as_deref().unwrap_or_default(),
    };
    let why = format!(
        "`{to}` is the one {} that names the same thing as `{broken}` once case and the `-`, `_`, `.` separators are set aside; no other does.",
        match field {
            Field::Key => "key",
            Field::Name => "object of that kind",
        }
    );
    let undo = no_undo.map(|u| format!(" {u}")).unwrap_or_default();
    let diff: String = changed
        .iter()
        .map(|(before, after)| format!("-{before}\n+{after}\n"))
        .collect();
    let scope = match &b.volume {
        Some(v) => format!("volume `{v}`"),
        None => format!("container `{}`", b.container.as_deref().unwrap_or_default()),
    };
    let notes = format!(
        "### Point the reference at what exists\nThe kubelet cannot resolve {} ({}), so {scope} of {} never starts.{undo}\n\n{now}\n\n{why}\n\nThis PR changes only the reference's `{}:` line, in `{}`:\n```diff\n{diff}```\nNo value is written to the repository: the pod reads it from the {} in the cluster.\n",
        b.describe(),
        b.message,
        w.name,
        match (field, &b.volume) {
            (Field::Key, _) => "key",
            (Field::Name, Some(_)) if b.kind == "Secret" => "secretName",
            (Field::Name, _) => "name",
        },
        input.repo.path,
        b.kind,
    );
    Some(Change {
        branch_word: "config-ref".into(),
        title: format!(
            "fix(infra): {} reads {}, not {broken}",
            w.name,
            what.replace('`', "")
        ),
        edits,
        notes,
        findings: vec![Finding {
            severity: Severity::High,
            title: "the deploy refers to configuration that does not exist".into(),
            detail: format!("{} is missing; {what} exists", b.describe()),
        }],
    })
}

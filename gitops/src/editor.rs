//! Line-based, indentation-aware editing of Kubernetes manifests.
//!
//! B'Elanna edits manifests that live in a GitOps repository, where people review the diff. Parsing
//! the YAML and serialising it again would drop comments, reorder keys and change quoting, so this
//! module never does that: it finds the lines that matter by their indentation and rewrites only
//! those lines (or inserts new ones). Every other byte of the file stays as it was.
//!
//! Supported:
//! - multi-document files (`---` / `...`), comments and blank lines anywhere, `key: value # comment`,
//! - plain, single-quoted and double-quoted scalars (the quoting of a replaced value is kept),
//! - both sequence styles, `key:\n- item` and `key:\n  - item`,
//! - block scalars (`|`, `>`), whose content is never taken for structure,
//! - LF and CRLF line endings, and files with no newline at the end.
//!
//! Flow style (`{...}`, `[...]`) on the edited path is reported as [`ManifestError::Unsupported`].
//! The empty forms `{}` and `[]` (as written by `kubectl create --dry-run -o yaml`) are turned into
//! block style.
//!
//! Every edit is checked with `serde_yaml`: the edited file must parse, and each of its documents
//! must equal the original one except for the intended change. If the original file is not valid
//! YAML, this check is skipped and only the line-based edit is done.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

/// Locates a container inside a multi-document YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerTarget<'a> {
    /// Top-level `kind:` of the document (`Deployment`, `StatefulSet`, `DaemonSet`, `Pod`, `CronJob`, ...).
    pub kind: &'a str,
    /// `metadata.name` of the document.
    pub name: &'a str,
    /// `name:` of the container in the pod spec's `containers:` list.
    pub container: &'a str,
}

impl ContainerTarget<'_> {
    fn document_label(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// Why a manifest could not be read or edited. Each variant names the document (`Kind/name`), the
/// path inside it and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// An argument given by the caller is not acceptable.
    #[error("invalid {argument}: expected {expected}, got `{got}`")]
    InvalidArgument {
        argument: &'static str,
        expected: String,
        got: String,
    },
    /// No document has the wanted `kind` and `metadata.name`.
    #[error(
        "no document with kind `{kind}` and metadata.name `{name}`; documents present: {}",
        list_or_none(.available)
    )]
    DocumentNotFound {
        kind: String,
        name: String,
        /// `Kind/name` of the documents that were found.
        available: Vec<String>,
    },
    /// Several documents have the wanted `kind` and `metadata.name` (e.g. in different namespaces).
    #[error(
        "{count} documents have kind `{kind}` and metadata.name `{name}` (different namespaces?); expected exactly one"
    )]
    AmbiguousDocument {
        kind: String,
        name: String,
        count: usize,
    },
    /// A key on the way to the container is missing.
    #[error("{document}: `{path}` not found; expected {expected}")]
    PathNotFound {
        document: String,
        path: String,
        expected: String,
    },
    /// The containers list has no container with the wanted name.
    #[error(
        "{document}: no container named `{container}` in `{path}`; containers present: {}",
        list_or_none(.available)
    )]
    ContainerNotFound {
        document: String,
        path: String,
        container: String,
        available: Vec<String>,
    },
    /// The YAML at `path` has another shape than expected (e.g. a scalar where a mapping belongs).
    #[error("{document}: `{path}` (line {line}): expected {expected}, found {found}")]
    UnexpectedShape {
        document: String,
        path: String,
        /// 1-based line number in the file.
        line: usize,
        expected: String,
        found: String,
    },
    /// The YAML at `path` uses a construct this line-based editor does not edit (flow style, aliases,
    /// multi-line scalars).
    #[error(
        "{document}: `{path}` (line {line}) uses {construct} (`{text}`); only block-style YAML can be edited"
    )]
    Unsupported {
        document: String,
        path: String,
        /// 1-based line number in the file.
        line: usize,
        construct: String,
        text: String,
    },
    /// `add_container_env` was asked to add a variable that the container already declares.
    #[error("{document}: env var `{env_name}` already exists in `{path}`")]
    EnvAlreadyExists {
        document: String,
        path: String,
        env_name: String,
    },
    /// The edited file failed the `serde_yaml` check (it does not parse, or more than the intended
    /// field changed, e.g. because the edited node is an anchor used elsewhere).
    #[error("{document}: edit of `{path}` failed verification: {detail}")]
    Verification {
        document: String,
        path: String,
        detail: String,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items
            .iter()
            .map(|item| format!("`{item}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sets `resources.<section>.<key>` (section = "limits" | "requests", key = "memory" | "cpu" or another
/// resource name) of the container, creating `resources:`, the section, or the key if missing (with the
/// file's own indentation style). Returns the new file text. Existing value is replaced in place, keeping
/// any trailing comment on that line and the quoting style if it was quoted.
///
/// `value` must be a Kubernetes quantity (`512Mi`, `1Gi`, `250m`, `1.5`, `2`).
pub fn set_container_resource(
    yaml: &str,
    target: &ContainerTarget,
    section: &str,
    key: &str,
    value: &str,
) -> Result<String, ManifestError> {
    check_section(section)?;
    check_resource_name(key)?;
    check_quantity(value)?;

    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let step = loc.mapping_step(&src);
    let item_col = block_col(&loc.item);
    let doc = loc.document.as_str();
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;

    let res_path = format!("{}.resources", loc.path);
    let sec_path = format!("{res_path}.{section}");
    let key_path = format!("{sec_path}.{key}");
    let token = render_scalar(value, Style::Plain);
    let section_line = format!("{section}:");
    let key_line = format!("{key}: {token}");

    let mut edit = Edit::default();
    // The YAML text whose value ends up at `resources.<section>.<key>`, for verification.
    let mut written = token.clone();
    match find(&entries, "resources") {
        None => edit.insert_after(
            src.end_of(&loc.item),
            vec![
                indent(item_col, "resources:"),
                indent(item_col + step, &section_line),
                indent(item_col + 2 * step, &key_line),
            ],
        ),
        Some(res) => match src.open_block(res, Shape::Mapping, doc, &res_path, &mut edit)? {
            None => edit.insert_after(
                res.cl.line,
                vec![
                    indent(res.cl.col + step, &section_line),
                    indent(res.cl.col + 2 * step, &key_line),
                ],
            ),
            Some(res_children) => {
                let sec_col = block_col(res_children);
                let inner_step = sec_col.saturating_sub(res.cl.col).max(1);
                let sections = src.map_entries(res_children, doc, &res_path)?;
                match find(&sections, section) {
                    None => edit.insert_after(
                        src.end_of(res_children),
                        vec![
                            indent(sec_col, &section_line),
                            indent(sec_col + inner_step, &key_line),
                        ],
                    ),
                    Some(sec) => {
                        match src.open_block(sec, Shape::Mapping, doc, &sec_path, &mut edit)? {
                            None => edit.insert_after(
                                sec.cl.line,
                                vec![indent(sec.cl.col + inner_step, &key_line)],
                            ),
                            Some(sec_children) => {
                                let keys = src.map_entries(sec_children, doc, &sec_path)?;
                                match find(&keys, key) {
                                    None => edit.insert_after(
                                        src.end_of(sec_children),
                                        vec![indent(block_col(sec_children), &key_line)],
                                    ),
                                    Some(existing) => {
                                        let (line, expected) =
                                            src.replace_scalar(existing, value, doc, &key_path)?;
                                        edit.replace.push((existing.cl.line, line));
                                        written = expected;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    }

    let edited = src.apply(&edit);
    let expected: Value =
        serde_yaml::from_str(&written).map_err(|err| ManifestError::Verification {
            document: loc.document.clone(),
            path: key_path.clone(),
            detail: format!(
                "the written value `{}` is not valid YAML: {err}",
                written.trim()
            ),
        })?;
    verify(yaml, &edited, target, &loc, &key_path, |container| {
        let resources = ensure_mapping(container, "resources")?;
        let sec = ensure_mapping(resources, section)?;
        sec.insert(Value::from(key), expected);
        Ok(())
    })?;
    Ok(edited)
}

/// Reads `resources.<section>.<key>` of the container, if present (quotes removed).
pub fn container_resource(
    yaml: &str,
    target: &ContainerTarget,
    section: &str,
    key: &str,
) -> Result<Option<String>, ManifestError> {
    check_section(section)?;
    check_resource_name(key)?;
    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let doc = loc.document.as_str();
    // Read-only: edits recorded by `open_block` (for `{}`) are discarded.
    let mut scratch = Edit::default();
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;
    let res_path = format!("{}.resources", loc.path);
    let Some(res) = find(&entries, "resources") else {
        return Ok(None);
    };
    let Some(res_children) = src.open_block(res, Shape::Mapping, doc, &res_path, &mut scratch)?
    else {
        return Ok(None);
    };
    let sec_path = format!("{res_path}.{section}");
    let sections = src.map_entries(res_children, doc, &res_path)?;
    let Some(sec) = find(&sections, section) else {
        return Ok(None);
    };
    let Some(sec_children) = src.open_block(sec, Shape::Mapping, doc, &sec_path, &mut scratch)?
    else {
        return Ok(None);
    };
    let key_path = format!("{sec_path}.{key}");
    let keys = src.map_entries(sec_children, doc, &sec_path)?;
    let Some(entry) = find(&keys, key) else {
        return Ok(None);
    };
    src.read_scalar(entry, doc, &key_path)
}

/// Adds an env entry to the container's `env:` list (creating `env:` if absent), given as the YAML lines
/// of the list item (e.g. `["- name: DATABASE_URL", "  valueFrom:", "    secretKeyRef:", "      name: orders-db",
/// "      key: url"]`), re-indented to match the list. Error if an env var with that name already exists,
/// or if the item does not declare `name: <env_name>`.
pub fn add_container_env(
    yaml: &str,
    target: &ContainerTarget,
    item_lines: &[&str],
    env_name: &str,
) -> Result<String, ManifestError> {
    if env_name.is_empty() || env_name.chars().any(char::is_whitespace) {
        return Err(ManifestError::InvalidArgument {
            argument: "env_name",
            expected: "a non-empty environment variable name without whitespace".to_string(),
            got: env_name.to_string(),
        });
    }
    let item = EnvItem::parse(item_lines, env_name)?;

    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let doc = loc.document.as_str();
    let item_col = block_col(&loc.item);
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;
    let env_path = format!("{}.env", loc.path);
    let seq_offset = loc.seq_offset(&src);

    let mut edit = Edit::default();
    let mut new_lines = Vec::new();
    let (dash_col, after) = match find(&entries, "env") {
        None => {
            new_lines.push(indent(item_col, "env:"));
            (item_col + seq_offset, src.end_of(&loc.item))
        }
        Some(env) => match src.open_block(env, Shape::Sequence, doc, &env_path, &mut edit)? {
            None => (env.cl.col + seq_offset, env.cl.line),
            Some(children) => {
                let names = src.env_names(children, doc, &env_path)?;
                if names.iter().any(|name| name == env_name) {
                    return Err(ManifestError::EnvAlreadyExists {
                        document: loc.document.clone(),
                        path: env_path,
                        env_name: env_name.to_string(),
                    });
                }
                (block_col(children), src.end_of(children))
            }
        },
    };
    new_lines.extend(item.lines.iter().map(|line| {
        if line.is_empty() {
            String::new()
        } else {
            indent(dash_col, line)
        }
    }));
    edit.insert_after(after, new_lines);

    let edited = src.apply(&edit);
    let value = item.value;
    verify(yaml, &edited, target, &loc, &env_path, |container| {
        let env = container.entry(Value::from("env")).or_insert(Value::Null);
        if env.is_null() {
            *env = Value::Sequence(Vec::new());
        }
        env.as_sequence_mut()
            .ok_or_else(|| "`env` is not a sequence".to_string())?
            .push(value);
        Ok(())
    })?;
    Ok(edited)
}

/// Names of env vars declared in the container's `env:` list (`- name: X`), in file order.
pub fn container_env_names(
    yaml: &str,
    target: &ContainerTarget,
) -> Result<Vec<String>, ManifestError> {
    let src = Source::parse(yaml);
    let loc = src.locate(target)?;
    let doc = loc.document.as_str();
    let entries = src.map_entries(&loc.item, doc, &loc.path)?;
    let env_path = format!("{}.env", loc.path);
    let Some(env) = find(&entries, "env") else {
        return Ok(Vec::new());
    };
    let mut scratch = Edit::default();
    match src.open_block(env, Shape::Sequence, doc, &env_path, &mut scratch)? {
        None => Ok(Vec::new()),
        Some(children) => src.env_names(children, doc, &env_path),
    }
}

// ---------------------------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------------------------

fn check_section(section: &str) -> Result<(), ManifestError> {
    if section == "limits" || section == "requests" {
        Ok(())
    } else {
        Err(ManifestError::InvalidArgument {
            argument: "resource section",
            expected: "`limits` or `requests`".to_string(),
            got: section.to_string(),
        })
    }
}

/// `memory`, `cpu`, `ephemeral-storage`, `nvidia.com/gpu`, `hugepages-2Mi`, ...
fn check_resource_name(key: &str) -> Result<(), ManifestError> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/'))
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(ManifestError::InvalidArgument {
            argument: "resource name",
            expected: "a Kubernetes resource name such as `memory` or `cpu`".to_string(),
            got: key.to_string(),
        })
    }
}

/// Kubernetes quantity: `[+-]number[suffix]`, suffix one of the binary (`Ki`..`Ei`), decimal
/// (`n u m k M G T P E`) suffixes or a decimal exponent (`e3`, `E-2`).
fn check_quantity(value: &str) -> Result<(), ManifestError> {
    if is_quantity(value) {
        Ok(())
    } else {
        Err(ManifestError::InvalidArgument {
            argument: "resource quantity",
            expected: "a Kubernetes quantity such as `512Mi`, `1Gi`, `250m` or `2`".to_string(),
            got: value.to_string(),
        })
    }
}

fn is_quantity(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let number_len = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_len);
    let number_ok = number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        _ => suffix
            .strip_prefix(['e', 'E'])
            .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
            .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())),
    };
    number_ok && suffix_ok
}

/// The validated env item given to [`add_container_env`], de-indented so that the `-` is at column 0.
struct EnvItem {
    lines: Vec<String>,
    value: Value,
}

impl EnvItem {
    fn parse(item_lines: &[&str], env_name: &str) -> Result<Self, ManifestError> {
        let invalid = |expected: &str, got: &str| ManifestError::InvalidArgument {
            argument: "env item lines",
            expected: expected.to_string(),
            got: got.to_string(),
        };
        let first = item_lines
            .iter()
            .position(|line| !line.trim().is_empty())
            .ok_or_else(|| invalid("at least one line, the first starting with `- `", ""))?;
        let last = item_lines
            .iter()
            .rposition(|line| !line.trim().is_empty())
            .unwrap_or(first);
        let head = item_lines.get(first).copied().unwrap_or_default();
        let base = leading_spaces(head);
        if !is_dash(&head[base..]) {
            return Err(invalid(
                "the first line to start a list item with `- `",
                head,
            ));
        }
        let mut lines = Vec::new();
        for (index, line) in item_lines.iter().enumerate().take(last + 1).skip(first) {
            if line.contains(['\n', '\r']) {
                return Err(invalid(
                    "one line per slice element, without line breaks",
                    line,
                ));
            }
            if line.trim().is_empty() {
                lines.push(String::new());
                continue;
            }
            let own = leading_spaces(line);
            let rest = &line[own..];
            if rest.starts_with('\t') {
                return Err(invalid("indentation with spaces (YAML forbids tabs)", line));
            }
            let continuation_ok = own > base || (own == base && rest.starts_with('#'));
            if index != first && !continuation_ok {
                return Err(invalid(
                    "lines after the first indented deeper than its `- ` (a single list item)",
                    line,
                ));
            }
            lines.push(line[base..].to_string());
        }
        let text = lines.join("\n");
        let parsed: Value = serde_yaml::from_str(&text)
            .map_err(|err| invalid(&format!("a valid YAML list item ({err})"), &text))?;
        let value = match parsed {
            Value::Sequence(mut items) if items.len() == 1 => items.pop().unwrap_or(Value::Null),
            _ => return Err(invalid("exactly one YAML list item", &text)),
        };
        let declared = value.get("name").and_then(scalar_string);
        if declared.as_deref() != Some(env_name) {
            return Err(invalid(
                &format!("an item declaring `name: {env_name}`"),
                &text,
            ));
        }
        Ok(Self { lines, value })
    }
}

// ---------------------------------------------------------------------------------------------
// Line model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// Empty or whitespace only.
    Blank,
    /// `# ...` (possibly indented).
    Comment,
    /// YAML structure or scalar text.
    Content,
    /// Content of a block scalar (`key: |`): text, not structure.
    Opaque,
    /// `---` or `...` document marker.
    Marker,
}

#[derive(Debug)]
struct Line<'a> {
    /// The line without its line ending.
    text: &'a str,
    /// `"\n"`, `"\r\n"` or `""` (last line without newline).
    eol: &'a str,
    indent: usize,
    kind: LineKind,
}

/// A node position: line index and the column where its text starts. For the first line of a
/// sequence item (`- name: x`) the column is after the dash, so the item's mapping looks like any
/// other block mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cl {
    line: usize,
    col: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    /// Nothing (or only a comment / anchor / tag) after the colon.
    Empty,
    Plain,
    Single,
    Double,
    /// `|` or `>`.
    BlockScalar,
    /// `{...}` or `[...]` with content.
    Flow,
    /// `{}` or `[]`.
    EmptyFlow,
    /// `*anchor`.
    Alias,
    /// A quoted scalar that continues on the next line.
    Unterminated,
}

/// The value part of a line: `start..end` is the scalar token (quotes included) in the line text.
#[derive(Debug, Clone, Copy)]
struct ValueInfo {
    kind: ValueKind,
    start: usize,
    end: usize,
}

/// One `key: value` entry of a block mapping.
#[derive(Debug)]
struct Entry<'b> {
    key: String,
    /// Line and column of the key.
    cl: Cl,
    /// Offset in the line text just after the `:`.
    after_colon: usize,
    value: ValueInfo,
    /// The lines of the nested block (empty if the value is inline).
    children: &'b [Cl],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Mapping,
    Sequence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

/// Line replacements plus at most one block of inserted lines.
#[derive(Debug, Default)]
struct Edit {
    replace: Vec<(usize, String)>,
    insert: Option<(usize, Vec<String>)>,
}

impl Edit {
    fn insert_after(&mut self, line: usize, lines: Vec<String>) {
        self.insert = Some((line, lines));
    }
}

/// The container found by [`Source::locate`].
struct Located {
    /// `Kind/name`, for messages.
    document: String,
    /// e.g. `spec.template.spec.containers[name=app]`.
    path: String,
    /// Keys from the document root to the containers list.
    containers_keys: &'static [&'static str],
    container: String,
    /// Lines of the container's mapping (first one starts after the `- `).
    item: Vec<Cl>,
    /// All content lines of the document.
    doc: Vec<Cl>,
}

impl Located {
    /// Indentation step of nested mappings: the container's own style, else the document's, else 2.
    fn mapping_step(&self, src: &Source) -> usize {
        src.indent_stats(&self.item)
            .0
            .or_else(|| src.indent_stats(&self.doc).0)
            .unwrap_or(2)
    }

    /// Column of `- ` relative to the parent key of a block sequence (0 for `key:\n- item`).
    fn seq_offset(&self, src: &Source) -> usize {
        src.indent_stats(&self.item)
            .1
            .or_else(|| src.indent_stats(&self.doc).1)
            .unwrap_or(2)
    }
}

struct Source<'a> {
    lines: Vec<Line<'a>>,
    newline: &'static str,
}

impl<'a> Source<'a> {
    fn parse(yaml: &'a str) -> Self {
        let mut lines = Vec::new();
        for raw in yaml.split_inclusive('\n') {
            let body = raw
                .strip_suffix('\n')
                .map_or(raw, |b| b.strip_suffix('\r').unwrap_or(b));
            let eol = &raw[body.len()..];
            let indent = leading_spaces(body);
            let rest = &body[indent..];
            let kind = if rest.trim().is_empty() {
                LineKind::Blank
            } else if rest.starts_with('#') {
                LineKind::Comment
            } else if indent == 0 && is_marker(body) {
                LineKind::Marker
            } else {
                LineKind::Content
            };
            lines.push(Line {
                text: body,
                eol,
                indent,
                kind,
            });
        }
        let newline = match lines.iter().map(|l| l.eol).find(|eol| !eol.is_empty()) {
            Some("\r\n") => "\r\n",
            _ => "\n",
        };
        mark_block_scalars(&mut lines);
        Self { lines, newline }
    }

    fn text(&self, cl: Cl) -> &'a str {
        self.lines
            .get(cl.line)
            .map_or("", |line| line.text.get(cl.col..).unwrap_or(""))
    }

    fn line_text(&self, line: usize) -> &'a str {
        self.lines.get(line).map_or("", |l| l.text)
    }

    /// Content lines of each document.
    fn documents(&self) -> Vec<Vec<Cl>> {
        let mut docs = Vec::new();
        let mut current = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            match line.kind {
                LineKind::Marker => {
                    if !current.is_empty() {
                        docs.push(std::mem::take(&mut current));
                    }
                }
                LineKind::Content => current.push(Cl {
                    line: index,
                    col: line.indent,
                }),
                LineKind::Blank | LineKind::Comment | LineKind::Opaque => {}
            }
        }
        if !current.is_empty() {
            docs.push(current);
        }
        docs
    }

    /// The line after which text following `block` may be inserted: its last line, extended over
    /// block-scalar content that belongs to it.
    fn end_of(&self, block: &[Cl]) -> usize {
        let Some(last) = block.last() else {
            return 0;
        };
        let mut end = last.line;
        for (index, line) in self.lines.iter().enumerate().skip(last.line + 1) {
            match line.kind {
                LineKind::Opaque => end = index,
                LineKind::Blank => {}
                _ => break,
            }
        }
        end
    }

    /// Splits a block mapping (all keys at the column of its first line) into entries.
    fn map_entries<'b>(
        &self,
        block: &'b [Cl],
        document: &str,
        path: &str,
    ) -> Result<Vec<Entry<'b>>, ManifestError> {
        let col = block_col(block);
        let mut entries = Vec::new();
        let mut index = 0;
        while let Some(&cl) = block.get(index) {
            let text = self.text(cl);
            let line_text = self.line_text(cl.line);
            if cl.col != col {
                return Err(self.shape_error(
                    document,
                    path,
                    cl,
                    format!("a key indented to column {}", col + 1),
                    format!("`{}` at column {}", text.trim_end(), cl.col + 1),
                ));
            }
            if is_dash(text) {
                return Err(self.shape_error(
                    document,
                    path,
                    cl,
                    "a mapping".to_string(),
                    format!("the list item `{}`", text.trim_end()),
                ));
            }
            if text.starts_with(['{', '[']) {
                return Err(self.unsupported(document, path, cl, "flow style"));
            }
            let Some((key, offset)) = split_key(text) else {
                return Err(self.shape_error(
                    document,
                    path,
                    cl,
                    "a `key: value` line".to_string(),
                    format!("`{}`", text.trim_end()),
                ));
            };
            let after_colon = cl.col + offset;
            let value = analyze_value(line_text, after_colon);
            let mut next = index + 1;
            let compact = block
                .get(next)
                .is_some_and(|c| c.col == col && is_dash(self.text(*c)));
            while let Some(child) = block.get(next) {
                let belongs =
                    child.col > col || (compact && child.col == col && is_dash(self.text(*child)));
                if !belongs {
                    break;
                }
                next += 1;
            }
            entries.push(Entry {
                key,
                cl,
                after_colon,
                value,
                children: block.get(index + 1..next).unwrap_or(&[]),
            });
            index = next;
        }
        Ok(entries)
    }

    /// Splits a block sequence (all dashes at the column of its first line) into items. The first
    /// line of each item starts after its `- `.
    fn seq_items(
        &self,
        block: &[Cl],
        document: &str,
        path: &str,
    ) -> Result<Vec<Vec<Cl>>, ManifestError> {
        let col = block_col(block);
        let mut items: Vec<Vec<Cl>> = Vec::new();
        for &cl in block {
            let text = self.text(cl);
            if cl.col == col && is_dash(text) {
                let after = skip_inline_space(text, 1);
                let rest = &text[after..];
                let mut item = Vec::new();
                if !rest.is_empty() && !rest.starts_with('#') {
                    item.push(Cl {
                        line: cl.line,
                        col: cl.col + after,
                    });
                }
                items.push(item);
            } else if cl.col > col {
                match items.last_mut() {
                    Some(item) => item.push(cl),
                    None => {
                        return Err(self.shape_error(
                            document,
                            path,
                            cl,
                            "a list item starting with `- `".to_string(),
                            format!("`{}`", text.trim_end()),
                        ));
                    }
                }
            } else {
                return Err(self.shape_error(
                    document,
                    path,
                    cl,
                    "a list item starting with `- `".to_string(),
                    format!("`{}`", text.trim_end()),
                ));
            }
        }
        Ok(items)
    }

    /// Opens the nested block of `entry`. `Ok(None)` means the value is empty (`key:` alone, or an
    /// empty flow collection, which is recorded in `edit` as turned into `key:`).
    fn open_block<'b>(
        &self,
        entry: &Entry<'b>,
        shape: Shape,
        document: &str,
        path: &str,
        edit: &mut Edit,
    ) -> Result<Option<&'b [Cl]>, ManifestError> {
        let line = self.line_text(entry.cl.line);
        let expected = match shape {
            Shape::Mapping => "a block mapping",
            Shape::Sequence => "a block list",
        };
        match entry.value.kind {
            ValueKind::Empty if entry.children.is_empty() => Ok(None),
            ValueKind::Empty => {
                let first_is_dash = entry
                    .children
                    .first()
                    .is_some_and(|c| is_dash(self.text(*c)));
                match (shape, first_is_dash) {
                    (Shape::Mapping, false) | (Shape::Sequence, true) => Ok(Some(entry.children)),
                    (_, _) => {
                        let first = entry.children.first().copied().unwrap_or(entry.cl);
                        Err(self.shape_error(
                            document,
                            path,
                            first,
                            expected.to_string(),
                            format!("`{}`", self.text(first).trim_end()),
                        ))
                    }
                }
            }
            ValueKind::EmptyFlow => {
                let token = line.get(entry.value.start..entry.value.end).unwrap_or("");
                let wanted = match shape {
                    Shape::Mapping => "{}",
                    Shape::Sequence => "[]",
                };
                if token != wanted {
                    return Err(self.shape_error(
                        document,
                        path,
                        entry.cl,
                        expected.to_string(),
                        format!("`{}`", line.trim()),
                    ));
                }
                if !entry.children.is_empty() {
                    return Err(self.unsupported(document, path, entry.cl, "flow style"));
                }
                let rest = line.get(entry.value.end..).unwrap_or("");
                let mut new_line = line
                    .get(..entry.value.start)
                    .unwrap_or("")
                    .trim_end()
                    .to_string();
                if !rest.trim().is_empty() {
                    new_line.push_str(rest);
                }
                edit.replace.push((entry.cl.line, new_line));
                Ok(None)
            }
            ValueKind::Flow => Err(self.unsupported(document, path, entry.cl, "flow style")),
            ValueKind::Alias => Err(self.unsupported(document, path, entry.cl, "an alias")),
            ValueKind::Plain
            | ValueKind::Single
            | ValueKind::Double
            | ValueKind::BlockScalar
            | ValueKind::Unterminated => Err(self.shape_error(
                document,
                path,
                entry.cl,
                expected.to_string(),
                format!("the scalar `{}`", line.trim()),
            )),
        }
    }

    /// The unquoted text of a single-line scalar value, `None` for an empty value.
    fn read_scalar(
        &self,
        entry: &Entry,
        document: &str,
        path: &str,
    ) -> Result<Option<String>, ManifestError> {
        let line = self.line_text(entry.cl.line);
        match entry.value.kind {
            ValueKind::Plain | ValueKind::Single | ValueKind::Double => {
                if entry.value.kind == ValueKind::Plain && !entry.children.is_empty() {
                    return Err(self.unsupported(document, path, entry.cl, "a multi-line scalar"));
                }
                Ok(Some(unquote(
                    line.get(entry.value.start..entry.value.end).unwrap_or(""),
                )))
            }
            ValueKind::Empty if entry.children.is_empty() => Ok(None),
            ValueKind::Empty | ValueKind::EmptyFlow => Err(self.shape_error(
                document,
                path,
                entry.cl,
                "a scalar".to_string(),
                "a nested block".to_string(),
            )),
            ValueKind::BlockScalar | ValueKind::Unterminated => {
                Err(self.unsupported(document, path, entry.cl, "a multi-line scalar"))
            }
            ValueKind::Flow => Err(self.unsupported(document, path, entry.cl, "flow style")),
            ValueKind::Alias => Err(self.unsupported(document, path, entry.cl, "an alias")),
        }
    }

    /// The entry's line with its value replaced by `value` (same quoting, comment kept), and the
    /// YAML text after the colon of the new line.
    fn replace_scalar(
        &self,
        entry: &Entry,
        value: &str,
        document: &str,
        path: &str,
    ) -> Result<(String, String), ManifestError> {
        let line = self.line_text(entry.cl.line);
        let before = line.get(..entry.value.start).unwrap_or("");
        let after = line.get(entry.value.end..).unwrap_or("");
        let new_line = match entry.value.kind {
            ValueKind::Plain | ValueKind::Single | ValueKind::Double => {
                if entry.value.kind == ValueKind::Plain && !entry.children.is_empty() {
                    return Err(self.unsupported(document, path, entry.cl, "a multi-line scalar"));
                }
                let style = match entry.value.kind {
                    ValueKind::Single => Style::Single,
                    ValueKind::Double => Style::Double,
                    _ => Style::Plain,
                };
                format!("{before}{}{after}", render_scalar(value, style))
            }
            ValueKind::Empty if entry.children.is_empty() => {
                let head = line.get(..entry.after_colon).unwrap_or("");
                let rest = line.get(entry.after_colon..).unwrap_or("");
                let token = render_scalar(value, Style::Plain);
                if rest.trim().is_empty() {
                    format!("{head} {token}")
                } else {
                    format!("{head} {token}{rest}")
                }
            }
            ValueKind::Empty | ValueKind::EmptyFlow => {
                return Err(self.shape_error(
                    document,
                    path,
                    entry.cl,
                    "a scalar quantity".to_string(),
                    "a nested block".to_string(),
                ));
            }
            ValueKind::BlockScalar | ValueKind::Unterminated => {
                return Err(self.unsupported(document, path, entry.cl, "a multi-line scalar"));
            }
            ValueKind::Flow => {
                return Err(self.unsupported(document, path, entry.cl, "flow style"));
            }
            ValueKind::Alias => {
                return Err(self.unsupported(document, path, entry.cl, "an alias"));
            }
        };
        let written = new_line.get(entry.after_colon..).unwrap_or("").to_string();
        Ok((new_line, written))
    }

    /// `name` of each item of an env list.
    fn env_names(
        &self,
        env_block: &[Cl],
        document: &str,
        path: &str,
    ) -> Result<Vec<String>, ManifestError> {
        let mut names = Vec::new();
        for (index, item) in self
            .seq_items(env_block, document, path)?
            .iter()
            .enumerate()
        {
            let item_path = format!("{path}[{index}]");
            let entries = self.map_entries(item, document, &item_path)?;
            if let Some(name) = find(&entries, "name")
                && let Some(name) =
                    self.read_scalar(name, document, &format!("{item_path}.name"))?
            {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn scalar_of(&self, entry: &Entry) -> Option<String> {
        self.read_scalar(entry, "", "").ok().flatten()
    }

    /// `(kind, metadata.name)` of a document, if it is a mapping that has both.
    fn doc_identity(&self, doc: &[Cl]) -> Option<(String, String)> {
        let entries = self.map_entries(doc, "", "").ok()?;
        let kind = self.scalar_of(find(&entries, "kind")?)?;
        let metadata = find(&entries, "metadata")?;
        if metadata.value.kind != ValueKind::Empty || metadata.children.is_empty() {
            return None;
        }
        let meta_entries = self.map_entries(metadata.children, "", "").ok()?;
        let name = self.scalar_of(find(&meta_entries, "name")?)?;
        Some((kind, name))
    }

    /// Finds the document and the container item.
    fn locate(&self, target: &ContainerTarget) -> Result<Located, ManifestError> {
        let containers_keys = containers_keys(target.kind)?;
        let document = target.document_label();
        let mut matches = Vec::new();
        let mut available = Vec::new();
        for doc in self.documents() {
            match self.doc_identity(&doc) {
                Some((kind, name)) if kind == target.kind && name == target.name => {
                    matches.push(doc);
                }
                Some((kind, name)) => available.push(format!("{kind}/{name}")),
                None => {}
            }
        }
        if matches.len() > 1 {
            return Err(ManifestError::AmbiguousDocument {
                kind: target.kind.to_string(),
                name: target.name.to_string(),
                count: matches.len(),
            });
        }
        let Some(doc) = matches.pop() else {
            return Err(ManifestError::DocumentNotFound {
                kind: target.kind.to_string(),
                name: target.name.to_string(),
                available,
            });
        };

        let containers_path = containers_keys.join(".");
        let container_missing = |available: Vec<String>| ManifestError::ContainerNotFound {
            document: document.clone(),
            path: containers_path.clone(),
            container: target.container.to_string(),
            available,
        };
        let mut block: &[Cl] = &doc;
        let mut path = String::new();
        let mut scratch = Edit::default();
        for (depth, key) in containers_keys.iter().enumerate() {
            let is_last = depth + 1 == containers_keys.len();
            let entries =
                self.map_entries(block, &document, if path.is_empty() { "." } else { &path })?;
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let Some(entry) = find(&entries, key) else {
                return Err(ManifestError::PathNotFound {
                    document: document.clone(),
                    path,
                    expected: if is_last {
                        "a list of containers".to_string()
                    } else {
                        "a mapping".to_string()
                    },
                });
            };
            let shape = if is_last {
                Shape::Sequence
            } else {
                Shape::Mapping
            };
            match self.open_block(entry, shape, &document, &path, &mut scratch)? {
                Some(children) => block = children,
                None if is_last => return Err(container_missing(Vec::new())),
                None => {
                    return Err(ManifestError::PathNotFound {
                        document: document.clone(),
                        path,
                        expected: "a non-empty mapping".to_string(),
                    });
                }
            }
        }

        let mut names = Vec::new();
        for (index, item) in self
            .seq_items(block, &document, &path)?
            .into_iter()
            .enumerate()
        {
            let item_path = format!("{path}[{index}]");
            let entries = self.map_entries(&item, &document, &item_path)?;
            let name = match find(&entries, "name") {
                Some(entry) => self.read_scalar(entry, &document, &format!("{item_path}.name"))?,
                None => None,
            };
            match name {
                Some(name) if name == target.container => {
                    return Ok(Located {
                        path: format!("{path}[name={name}]"),
                        document,
                        containers_keys,
                        container: name,
                        item,
                        doc,
                    });
                }
                Some(name) => names.push(name),
                None => {}
            }
        }
        Err(container_missing(names))
    }

    /// `(mapping step, sequence offset)` most used in `cls`: how far a nested mapping is indented
    /// from its key, and how far the `-` of a nested list is indented from its key.
    fn indent_stats(&self, cls: &[Cl]) -> (Option<usize>, Option<usize>) {
        let mut steps: BTreeMap<usize, usize> = BTreeMap::new();
        let mut offsets: BTreeMap<usize, usize> = BTreeMap::new();
        for pair in cls.windows(2) {
            let [parent, child] = pair else { continue };
            if parent.line == child.line {
                continue;
            }
            let parent_text = self.line_text(parent.line);
            let (key_col, _) = skip_dashes(parent_text, parent.col);
            let Some((_, offset)) = split_key(&parent_text[key_col..]) else {
                continue;
            };
            if analyze_value(parent_text, key_col + offset).kind != ValueKind::Empty {
                continue;
            }
            let child_text = self.text(*child);
            if is_dash(child_text) {
                if child.col >= key_col {
                    *offsets.entry(child.col - key_col).or_default() += 1;
                }
            } else if child.col > key_col && split_key(child_text).is_some() {
                *steps.entry(child.col - key_col).or_default() += 1;
            }
        }
        (mode(&steps), mode(&offsets))
    }

    fn apply(&self, edit: &Edit) -> String {
        let mut out = String::new();
        for (index, line) in self.lines.iter().enumerate() {
            let text = edit
                .replace
                .iter()
                .rev()
                .find(|(l, _)| *l == index)
                .map_or(line.text, |(_, t)| t.as_str());
            out.push_str(text);
            match &edit.insert {
                Some((after, new_lines)) if *after == index => {
                    out.push_str(if line.eol.is_empty() {
                        self.newline
                    } else {
                        line.eol
                    });
                    for (k, new_line) in new_lines.iter().enumerate() {
                        out.push_str(new_line);
                        // Keep "no newline at end of file" if that was the case.
                        if k + 1 < new_lines.len() || !line.eol.is_empty() {
                            out.push_str(self.newline);
                        }
                    }
                }
                _ => out.push_str(line.eol),
            }
        }
        out
    }

    fn shape_error(
        &self,
        document: &str,
        path: &str,
        cl: Cl,
        expected: String,
        found: String,
    ) -> ManifestError {
        ManifestError::UnexpectedShape {
            document: document.to_string(),
            path: path.to_string(),
            line: cl.line + 1,
            expected,
            found,
        }
    }

    fn unsupported(&self, document: &str, path: &str, cl: Cl, construct: &str) -> ManifestError {
        ManifestError::Unsupported {
            document: document.to_string(),
            path: path.to_string(),
            line: cl.line + 1,
            construct: construct.to_string(),
            text: self.line_text(cl.line).trim().to_string(),
        }
    }
}

/// Marks the content lines of block scalars (`key: |`, `- >-`) as [`LineKind::Opaque`].
fn mark_block_scalars(lines: &mut [Line]) {
    let mut index = 0;
    while index < lines.len() {
        let parent = lines
            .get(index)
            .filter(|line| line.kind == LineKind::Content)
            .and_then(|line| block_scalar_parent(line.text, line.indent));
        let Some(parent) = parent else {
            index += 1;
            continue;
        };
        let mut pending = Vec::new();
        let mut next = index + 1;
        while let Some(line) = lines.get(next) {
            if line.kind == LineKind::Blank {
                pending.push(next);
            } else if line.indent > parent {
                for blank in pending.drain(..) {
                    if let Some(l) = lines.get_mut(blank) {
                        l.kind = LineKind::Opaque;
                    }
                }
                if let Some(l) = lines.get_mut(next) {
                    l.kind = LineKind::Opaque;
                }
            } else {
                break;
            }
            next += 1;
        }
        index = next;
    }
}

/// If the line starts a block scalar, the column its content must be indented beyond.
fn block_scalar_parent(text: &str, indent: usize) -> Option<usize> {
    let (col, last_dash) = skip_dashes(text, indent);
    match split_key(&text[col..]) {
        Some((_, offset)) => {
            (analyze_value(text, col + offset).kind == ValueKind::BlockScalar).then_some(col)
        }
        None => (analyze_value(text, col).kind == ValueKind::BlockScalar)
            .then(|| last_dash.unwrap_or(indent.saturating_sub(1))),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexical helpers
// ---------------------------------------------------------------------------------------------

fn leading_spaces(text: &str) -> usize {
    text.len() - text.trim_start_matches(' ').len()
}

fn skip_inline_space(text: &str, from: usize) -> usize {
    let rest = text.get(from..).unwrap_or("");
    from + (rest.len() - rest.trim_start_matches([' ', '\t']).len())
}

fn is_marker(line: &str) -> bool {
    let trimmed = line.trim_end();
    ["---", "..."].iter().any(|marker| {
        trimmed == *marker
            || trimmed
                .strip_prefix(marker)
                .is_some_and(|rest| rest.starts_with([' ', '\t']))
    })
}

/// `- item`, `-` alone.
fn is_dash(text: &str) -> bool {
    text == "-" || text.starts_with("- ") || text.starts_with("-\t")
}

/// Skips leading `- ` indicators: `(column of the node after them, column of the last dash)`.
fn skip_dashes(text: &str, indent: usize) -> (usize, Option<usize>) {
    let mut col = indent;
    let mut last_dash = None;
    while is_dash(text.get(col..).unwrap_or("")) {
        last_dash = Some(col);
        col = skip_inline_space(text, col + 1);
    }
    (col, last_dash)
}

/// Index just after the closing quote of the quoted scalar starting at `start`.
fn scan_quoted(text: &str, start: usize) -> Option<usize> {
    let quote = text.get(start..)?.chars().next()?;
    let body = text.get(start + 1..)?;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') {
                chars.next();
                continue;
            }
            return Some(start + 1 + i + 1);
        }
    }
    None
}

/// `key: ...` → `(key, offset just after the colon)`. `None` if the text is not a mapping key.
fn split_key(text: &str) -> Option<(String, usize)> {
    let first = text.chars().next()?;
    if first == '"' || first == '\'' {
        let end = scan_quoted(text, 0)?;
        let colon = skip_inline_space(text, end);
        let rest = text.get(colon..)?;
        let after = rest.strip_prefix(':')?;
        if after.is_empty() || after.starts_with([' ', '\t']) {
            return Some((unquote(text.get(..end)?), colon + 1));
        }
        return None;
    }
    if is_dash(text)
        || matches!(
            first,
            '{' | '[' | '#' | '|' | '>' | '*' | '&' | '!' | '%' | '@' | '`'
        )
    {
        return None;
    }
    let mut prev_space = false;
    for (i, c) in text.char_indices() {
        if c == '#' && prev_space {
            return None;
        }
        if c == ':' {
            let next = text.get(i + 1..).and_then(|rest| rest.chars().next());
            if next.is_none_or(|n| n == ' ' || n == '\t') {
                return Some((text.get(..i)?.trim_end().to_string(), i + 1));
            }
        }
        prev_space = c == ' ' || c == '\t';
    }
    None
}

/// Start of a `# comment` at or after `from` (a `#` preceded by whitespace or at `from`).
fn comment_start(text: &str, from: usize) -> Option<usize> {
    let rest = text.get(from..)?;
    let mut prev_space = true;
    for (i, c) in rest.char_indices() {
        if c == '#' && prev_space {
            return Some(from + i);
        }
        prev_space = c == ' ' || c == '\t';
    }
    None
}

/// Classifies the value that starts at or after `from` in `text` (skipping anchors and tags).
fn analyze_value(text: &str, from: usize) -> ValueInfo {
    let mut pos = skip_inline_space(text, from);
    let info = |kind, start, end| ValueInfo { kind, start, end };
    loop {
        let rest = text.get(pos..).unwrap_or("");
        match rest.chars().next() {
            None | Some('#') => return info(ValueKind::Empty, pos, pos),
            Some('&' | '!') => {
                let token_len = rest.find([' ', '\t']).unwrap_or(rest.len());
                pos = skip_inline_space(text, pos + token_len);
            }
            Some(_) => break,
        }
    }
    let rest = text.get(pos..).unwrap_or("");
    let token_end = |from: usize| {
        let end = comment_start(text, from).unwrap_or(text.len());
        from + text.get(from..end).unwrap_or("").trim_end().len()
    };
    match rest.chars().next() {
        Some('*') => info(ValueKind::Alias, pos, token_end(pos)),
        Some('|' | '>') => info(ValueKind::BlockScalar, pos, token_end(pos)),
        Some('{' | '[') => {
            let end = token_end(pos);
            let token = text.get(pos..end).unwrap_or("");
            if token == "{}" || token == "[]" {
                info(ValueKind::EmptyFlow, pos, end)
            } else {
                info(ValueKind::Flow, pos, end)
            }
        }
        Some(quote @ ('"' | '\'')) => match scan_quoted(text, pos) {
            Some(end) => {
                let kind = if quote == '"' {
                    ValueKind::Double
                } else {
                    ValueKind::Single
                };
                info(kind, pos, end)
            }
            None => info(ValueKind::Unterminated, pos, text.len()),
        },
        _ => info(ValueKind::Plain, pos, token_end(pos)),
    }
}

/// The text of a scalar token without its quotes.
fn unquote(token: &str) -> String {
    if let Some(inner) = token.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    if let Some(inner) = token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => {}
            }
        }
        return out;
    }
    token.to_string()
}

/// `value` as a YAML scalar token in the given style (plain falls back to double quotes when the
/// value would not read back as the same string).
fn render_scalar(value: &str, style: Style) -> String {
    match style {
        Style::Single => format!("'{}'", value.replace('\'', "''")),
        Style::Double => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
        Style::Plain if plain_safe(value) => value.to_string(),
        Style::Plain => render_scalar(value, Style::Double),
    }
}

fn plain_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    let keyword = matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    !keyword
        && !"?:,[]{}#&*!|>'\"%@`".contains(first)
        && !is_dash(value)
        && value.trim() == value
        && !value.contains(": ")
        && !value.contains(" #")
        && !value.ends_with(':')
        && !value.chars().any(char::is_control)
}

fn indent(col: usize, text: &str) -> String {
    format!("{}{text}", " ".repeat(col))
}

fn block_col(block: &[Cl]) -> usize {
    block.first().map_or(0, |cl| cl.col)
}

fn find<'e, 'b>(entries: &'e [Entry<'b>], key: &str) -> Option<&'e Entry<'b>> {
    entries.iter().find(|entry| entry.key == key)
}

fn mode(counts: &BTreeMap<usize, usize>) -> Option<usize> {
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(value, _)| *value)
}

/// Keys from the document root to the pod spec's `containers` list, per workload kind.
fn containers_keys(kind: &str) -> Result<&'static [&'static str], ManifestError> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Ok(&["spec", "template", "spec", "containers"])
        }
        "Pod" => Ok(&["spec", "containers"]),
        "CronJob" => Ok(&[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
            "containers",
        ]),
        _ => Err(ManifestError::InvalidArgument {
            argument: "workload kind",
            expected: "Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod or CronJob"
                .to_string(),
            got: kind.to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Verification with serde_yaml
// ---------------------------------------------------------------------------------------------

fn parse_documents(yaml: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(Value::deserialize)
        .collect()
}

fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn value_identity(doc: &Value) -> Option<(String, String)> {
    let kind = scalar_string(doc.get("kind")?)?;
    let name = scalar_string(doc.get("metadata")?.get("name")?)?;
    Some((kind, name))
}

fn ensure_mapping<'v>(map: &'v mut Mapping, key: &str) -> Result<&'v mut Mapping, String> {
    let slot = map.entry(Value::from(key)).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Mapping(Mapping::new());
    }
    slot.as_mapping_mut()
        .ok_or_else(|| format!("`{key}` is not a mapping"))
}

fn container_mapping<'v>(
    doc: &'v mut Value,
    keys: &[&str],
    container: &str,
) -> Result<&'v mut Mapping, String> {
    let mut current = doc;
    for key in keys {
        current = current
            .get_mut(*key)
            .ok_or_else(|| format!("`{key}` is missing"))?;
    }
    current
        .as_sequence_mut()
        .ok_or_else(|| "the containers field is not a list".to_string())?
        .iter_mut()
        .find(|item| item.get("name").and_then(scalar_string).as_deref() == Some(container))
        .and_then(Value::as_mapping_mut)
        .ok_or_else(|| format!("container `{container}` is missing"))
}

/// Checks that `edited` parses and equals `original` except for `change` applied to the target
/// container. Skipped if `original` itself is not valid YAML.
fn verify(
    original: &str,
    edited: &str,
    target: &ContainerTarget,
    loc: &Located,
    path: &str,
    change: impl FnOnce(&mut Mapping) -> Result<(), String>,
) -> Result<(), ManifestError> {
    let failure = |detail: String| ManifestError::Verification {
        document: loc.document.clone(),
        path: path.to_string(),
        detail,
    };
    let Ok(before) = parse_documents(original) else {
        return Ok(());
    };
    let after = parse_documents(edited)
        .map_err(|err| failure(format!("the edited file is not valid YAML: {err}")))?;
    if before.len() != after.len() {
        return Err(failure(format!(
            "the file had {} documents, the edited file has {}",
            before.len(),
            after.len()
        )));
    }
    let targets: Vec<usize> = before
        .iter()
        .enumerate()
        .filter(|(_, doc)| {
            value_identity(doc)
                .is_some_and(|(kind, name)| kind == target.kind && name == target.name)
        })
        .map(|(index, _)| index)
        .collect();
    let &[index] = targets.as_slice() else {
        return Err(failure(format!(
            "a YAML parser finds {} documents with this kind and name, expected 1",
            targets.len()
        )));
    };
    let mut expected = before.get(index).cloned().unwrap_or(Value::Null);
    let container =
        container_mapping(&mut expected, loc.containers_keys, &loc.container).map_err(&failure)?;
    change(container).map_err(&failure)?;
    for (position, (old, new)) in before.iter().zip(&after).enumerate() {
        let wanted = if position == index { &expected } else { old };
        if wanted != new {
            return Err(failure(format!(
                "document {} of the file differs from the original by more than the intended change \
                 (is the edited node an anchor used elsewhere, or is a key duplicated?)",
                position + 1
            )));
        }
    }
    Ok(())
}

/// The lines of one `env:` item (`- name: VAR` and what belongs to it) in a manifest version.
pub fn env_item_lines(yaml: &str, var: &str) -> Option<Vec<String>> {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines.iter().position(|l| {
        l.trim_start()
            .strip_prefix("- name:")
            .map(|v| v.trim().trim_matches(['"', '\'']))
            == Some(var)
    })?;
    let dash = lines[start].len() - lines[start].trim_start().len();
    let mut out = vec![lines[start].trim_start().to_owned()];
    for l in &lines[start + 1..] {
        let indent = l.len() - l.trim_start().len();
        if l.trim().is_empty() || indent <= dash {
            break;
        }
        out.push(format!("{}{}", " ".repeat(indent - dash), l.trim_start()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const DEPLOYMENT: &str = r#"# orders service, managed by Argo CD
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
  labels:
    app: orders   # keep in sync with the Service selector
spec:
  replicas: 3

  selector:
    matchLabels:
      app: orders
  template:
    metadata:
      labels:
        app: orders
      annotations:
        config/checksum: "abc123"
    spec:
      serviceAccountName: orders
      containers:
        # main application container
        - name: orders
          image: registry.example.com/orders:1.4.2
          command:
            - /bin/sh
            - -c
            - |
              # not structure: name: envoy
              resources:
                limits:
                  memory: 1Ti
              exec /app/orders
          ports:
            - containerPort: 8080
              name: http

          resources:
            limits:
              cpu: "1"
              memory: 512Mi # raised after INC-1234
            # requests are tuned for the p50 load
            requests:
              cpu: 250m
              memory: '256Mi'
          env:
            - name: LOG_LEVEL
              value: info
            - name: PORT
              value: "8080"

        - image: envoyproxy/envoy:v1.30
          name: envoy
          resources:
            limits:
              memory: 128Mi
            requests:
              memory: 64Mi
"#;

    fn orders() -> ContainerTarget<'static> {
        ContainerTarget {
            kind: "Deployment",
            name: "orders",
            container: "orders",
        }
    }

    fn envoy() -> ContainerTarget<'static> {
        ContainerTarget {
            kind: "Deployment",
            name: "orders",
            container: "envoy",
        }
    }

    /// Line indices (0-based) whose text differs; both texts must have the same number of lines.
    fn changed_lines(before: &str, after: &str) -> Vec<(usize, String, String)> {
        let b: Vec<&str> = before.split('\n').collect();
        let a: Vec<&str> = after.split('\n').collect();
        assert_eq!(b.len(), a.len(), "line count changed:\n{after}");
        b.iter()
            .zip(&a)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| (i, x.to_string(), y.to_string()))
            .collect()
    }

    /// The lines inserted into `before` to obtain `after` (all other lines identical, in order).
    fn inserted_lines(before: &str, after: &str) -> Vec<String> {
        let b: Vec<&str> = before.split('\n').collect();
        let a: Vec<&str> = after.split('\n').collect();
        let prefix = b.iter().zip(&a).take_while(|(x, y)| x == y).count();
        let suffix = b
            .iter()
            .rev()
            .zip(a.iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
            .min(b.len() - prefix);
        assert_eq!(
            prefix + suffix,
            b.len(),
            "lines other than insertions changed:\n{after}"
        );
        a[prefix..a.len() - suffix]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn docs(yaml: &str) -> Vec<Value> {
        parse_documents(yaml).unwrap()
    }

    fn container_value<'v>(doc: &'v Value, keys: &[&str], name: &str) -> &'v Value {
        let mut current = doc;
        for key in keys {
            current = &current[*key];
        }
        current
            .as_sequence()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str() == Some(name))
            .unwrap()
    }

    /// Independent check with serde_yaml: only `resources.<section>.<key>` of the container differs.
    fn assert_only_resource_changed(
        before: &str,
        after: &str,
        target: &ContainerTarget,
        section: &str,
        key: &str,
        expected: Value,
    ) {
        let mut want = docs(before);
        let got = docs(after);
        let doc = want
            .iter_mut()
            .find(|d| value_identity(d) == Some((target.kind.into(), target.name.into())))
            .unwrap();
        let keys = containers_keys(target.kind).unwrap();
        let container = container_mapping(doc, keys, target.container).unwrap();
        let resources = ensure_mapping(container, "resources").unwrap();
        ensure_mapping(resources, section)
            .unwrap()
            .insert(Value::from(key), expected);
        assert_eq!(want, got);
    }

    #[test]
    fn replacing_limit_and_request_changes_exactly_those_lines_and_keeps_comments_and_quotes() {
        let step1 =
            set_container_resource(DEPLOYMENT, &orders(), "limits", "memory", "1Gi").unwrap();
        let step2 =
            set_container_resource(&step1, &orders(), "requests", "memory", "768Mi").unwrap();
        assert_eq!(
            changed_lines(DEPLOYMENT, &step2),
            vec![
                (
                    42,
                    "              memory: 512Mi # raised after INC-1234".to_string(),
                    "              memory: 1Gi # raised after INC-1234".to_string()
                ),
                (
                    46,
                    "              memory: '256Mi'".to_string(),
                    "              memory: '768Mi'".to_string()
                ),
            ]
        );
        // The sidecar keeps its values; the block scalar text that looks like resources is untouched.
        assert_eq!(
            container_resource(&step2, &envoy(), "limits", "memory")
                .unwrap()
                .as_deref(),
            Some("128Mi")
        );
        assert_eq!(
            container_resource(&step2, &envoy(), "requests", "memory")
                .unwrap()
                .as_deref(),
            Some("64Mi")
        );
        assert_eq!(
            container_resource(&step2, &orders(), "limits", "memory")
                .unwrap()
                .as_deref(),
            Some("1Gi")
        );
        assert_eq!(
            container_resource(&step2, &orders(), "requests", "memory")
                .unwrap()
                .as_deref(),
            Some("768Mi")
        );
        assert_only_resource_changed(
            DEPLOYMENT,
            &step1,
            &orders(),
            "limits",
            "memory",
            Value::from("1Gi"),
        );
        assert_only_resource_changed(
            &step1,
            &step2,
            &orders(),
            "requests",
            "memory",
            Value::from("768Mi"),
        );
    }

    #[test]
    fn sidecar_edit_leaves_main_container_untouched() {
        let out =
            set_container_resource(DEPLOYMENT, &envoy(), "limits", "memory", "256Mi").unwrap();
        assert_eq!(
            changed_lines(DEPLOYMENT, &out),
            vec![(
                57,
                "              memory: 128Mi".to_string(),
                "              memory: 256Mi".to_string()
            )]
        );
        assert_only_resource_changed(
            DEPLOYMENT,
            &out,
            &envoy(),
            "limits",
            "memory",
            Value::from("256Mi"),
        );
    }

    #[test]
    fn double_quoted_value_keeps_its_quotes() {
        let out = set_container_resource(DEPLOYMENT, &orders(), "limits", "cpu", "2").unwrap();
        assert_eq!(
            changed_lines(DEPLOYMENT, &out),
            vec![(
                41,
                "              cpu: \"1\"".to_string(),
                "              cpu: \"2\"".to_string()
            )]
        );
        assert_only_resource_changed(
            DEPLOYMENT,
            &out,
            &orders(),
            "limits",
            "cpu",
            Value::from("2"),
        );
    }

    #[test]
    fn single_quoted_value_keeps_its_quotes_and_reads_unquoted() {
        assert_eq!(
            container_resource(DEPLOYMENT, &orders(), "requests", "memory")
                .unwrap()
                .as_deref(),
            Some("256Mi")
        );
        let out =
            set_container_resource(DEPLOYMENT, &orders(), "requests", "memory", "300Mi").unwrap();
        assert!(out.contains("              memory: '300Mi'\n"));
    }

    #[test]
    fn trailing_comment_is_kept_with_its_spacing() {
        let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    resources:\n      limits:\n        memory: 1Gi     # see runbook #12\n";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        let out = set_container_resource(yaml, &target, "limits", "memory", "2Gi").unwrap();
        assert_eq!(
            changed_lines(yaml, &out),
            vec![(
                8,
                "        memory: 1Gi     # see runbook #12".to_string(),
                "        memory: 2Gi     # see runbook #12".to_string()
            )]
        );
    }

    #[test]
    fn missing_key_is_added_to_existing_section() {
        let out = set_container_resource(DEPLOYMENT, &envoy(), "limits", "cpu", "500m").unwrap();
        assert_eq!(
            inserted_lines(DEPLOYMENT, &out),
            vec!["              cpu: 500m".to_string()]
        );
        let pos = out.find("              cpu: 500m").unwrap();
        assert!(out[..pos].ends_with("              memory: 128Mi\n"));
        assert_only_resource_changed(
            DEPLOYMENT,
            &out,
            &envoy(),
            "limits",
            "cpu",
            Value::from("500m"),
        );
    }

    #[test]
    fn missing_resources_block_is_created_with_the_files_indentation() {
        // 4-space mappings, lists indented by 2 under their key.
        let yaml = "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
    name: db
spec:
    template:
        spec:
            containers:
              - name: postgres
                image: postgres:16
                ports:
                  - containerPort: 5432
              # metrics exporter
              - name: exporter
                image: exporter:1
";
        let target = ContainerTarget {
            kind: "StatefulSet",
            name: "db",
            container: "postgres",
        };
        let out = set_container_resource(yaml, &target, "limits", "memory", "2Gi").unwrap();
        assert_eq!(
            inserted_lines(yaml, &out),
            vec![
                "                resources:".to_string(),
                "                    limits:".to_string(),
                "                        memory: 2Gi".to_string(),
            ]
        );
        assert!(
            out.contains("                  - containerPort: 5432\n                resources:\n")
        );
        assert_only_resource_changed(yaml, &out, &target, "limits", "memory", Value::from("2Gi"));

        let out2 = set_container_resource(&out, &target, "requests", "memory", "1Gi").unwrap();
        assert_eq!(
            inserted_lines(&out, &out2),
            vec![
                "                    requests:".to_string(),
                "                        memory: 1Gi".to_string(),
            ]
        );
        assert_only_resource_changed(
            &out,
            &out2,
            &target,
            "requests",
            "memory",
            Value::from("1Gi"),
        );
    }

    #[test]
    fn missing_requests_section_is_created_after_limits() {
        let out = set_container_resource(DEPLOYMENT, &envoy(), "requests", "cpu", "100m").unwrap();
        assert_eq!(
            inserted_lines(DEPLOYMENT, &out),
            vec!["              cpu: 100m".to_string()]
        );

        let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    resources:\n      limits:\n        memory: 1Gi\n    image: app:1\n";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        let out = set_container_resource(yaml, &target, "requests", "memory", "512Mi").unwrap();
        assert_eq!(
            inserted_lines(yaml, &out),
            vec![
                "      requests:".to_string(),
                "        memory: 512Mi".to_string()
            ]
        );
        assert_only_resource_changed(
            yaml,
            &out,
            &target,
            "requests",
            "memory",
            Value::from("512Mi"),
        );
    }

    #[test]
    fn dash_at_same_indent_as_parent_key_is_supported() {
        let yaml = "\
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx
        env:
        - name: A
          value: \"1\"
        resources:
          limits:
            memory: 64Mi
      - name: sidecar
        image: busybox
";
        let web = ContainerTarget {
            kind: "Deployment",
            name: "web",
            container: "web",
        };
        let sidecar = ContainerTarget {
            kind: "Deployment",
            name: "web",
            container: "sidecar",
        };
        let out = set_container_resource(yaml, &web, "limits", "memory", "128Mi").unwrap();
        assert_eq!(
            changed_lines(yaml, &out),
            vec![(
                14,
                "            memory: 64Mi".to_string(),
                "            memory: 128Mi".to_string()
            )]
        );
        assert_eq!(
            container_env_names(yaml, &web).unwrap(),
            vec!["A".to_string()]
        );

        let out = set_container_resource(yaml, &sidecar, "limits", "cpu", "100m").unwrap();
        assert_eq!(
            inserted_lines(yaml, &out),
            vec![
                "        resources:".to_string(),
                "          limits:".to_string(),
                "            cpu: 100m".to_string(),
            ]
        );
        assert!(out.ends_with(
            "        image: busybox\n        resources:\n          limits:\n            cpu: 100m\n"
        ));
        assert_only_resource_changed(yaml, &out, &sidecar, "limits", "cpu", Value::from("100m"));

        // New env lists follow the compact style of the file.
        let out = add_container_env(yaml, &sidecar, &["- name: B", "  value: two"], "B").unwrap();
        assert_eq!(
            inserted_lines(yaml, &out),
            vec![
                "        env:".to_string(),
                "        - name: B".to_string(),
                "          value: two".to_string()
            ]
        );
    }

    #[test]
    fn multi_document_file_edits_only_the_selected_document() {
        let yaml = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: orders
data:
  spec.yaml: |
    kind: Deployment
    metadata:
      name: orders
---
# the real one
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
spec:
  template:
    spec:
      containers:
        - name: orders
          resources:
            limits:
              memory: 1Gi
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
spec:
  template:
    spec:
      containers:
        - name: orders
          resources:
            limits:
              memory: 1Gi
...
";
        let out = set_container_resource(yaml, &orders(), "limits", "memory", "3Gi").unwrap();
        assert_eq!(
            changed_lines(yaml, &out),
            vec![(
                35,
                "              memory: 1Gi".to_string(),
                "              memory: 3Gi".to_string()
            )]
        );
        assert_only_resource_changed(
            yaml,
            &out,
            &orders(),
            "limits",
            "memory",
            Value::from("3Gi"),
        );
    }

    #[test]
    fn pod_and_cronjob_paths_are_supported() {
        let cron = "\
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: \"0 3 * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: report:2
";
        let target = ContainerTarget {
            kind: "CronJob",
            name: "nightly",
            container: "report",
        };
        let out = set_container_resource(cron, &target, "requests", "cpu", "1").unwrap();
        assert_eq!(
            inserted_lines(cron, &out),
            vec![
                "              resources:".to_string(),
                "                requests:".to_string(),
                "                  cpu: 1".to_string(),
            ]
        );
        assert_only_resource_changed(cron, &out, &target, "requests", "cpu", Value::from(1));
    }

    #[test]
    fn empty_flow_resources_become_block_style() {
        let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: app:1\n    name: app\n    resources: {}  # defaults\n";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        let out = set_container_resource(yaml, &target, "limits", "memory", "1Gi").unwrap();
        assert_eq!(
            out,
            "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: app:1\n    name: app\n    resources:  # defaults\n      limits:\n        memory: 1Gi\n"
        );
        assert_eq!(
            container_resource(yaml, &target, "limits", "memory").unwrap(),
            None
        );
    }

    #[test]
    fn flow_style_resources_are_unsupported_and_name_the_path() {
        let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    resources: {limits: {memory: 1Gi}}\n";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        let err = set_container_resource(yaml, &target, "limits", "memory", "2Gi").unwrap_err();
        assert!(
            matches!(err, ManifestError::Unsupported { line: 7, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("Pod/p"), "{message}");
        assert!(
            message.contains("spec.containers[name=app].resources"),
            "{message}"
        );
        assert!(message.contains("flow style"), "{message}");
        assert!(container_resource(yaml, &target, "limits", "memory").is_err());
    }

    #[test]
    fn crlf_line_endings_and_missing_final_newline_are_preserved() {
        let yaml = "kind: Pod\r\nmetadata:\r\n  name: p\r\nspec:\r\n  containers:\r\n  - name: app\r\n    image: app:1";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        let out = set_container_resource(yaml, &target, "limits", "memory", "1Gi").unwrap();
        assert_eq!(
            out,
            "kind: Pod\r\nmetadata:\r\n  name: p\r\nspec:\r\n  containers:\r\n  - name: app\r\n    image: app:1\r\n    resources:\r\n      limits:\r\n        memory: 1Gi"
        );
    }

    #[test]
    fn add_env_appends_to_existing_list_reindented() {
        let item = [
            "- name: DATABASE_URL",
            "  valueFrom:",
            "    secretKeyRef:",
            "      name: orders-db",
            "      key: url",
        ];
        let out = add_container_env(DEPLOYMENT, &orders(), &item, "DATABASE_URL").unwrap();
        assert_eq!(
            inserted_lines(DEPLOYMENT, &out),
            vec![
                "            - name: DATABASE_URL",
                "              valueFrom:",
                "                secretKeyRef:",
                "                  name: orders-db",
                "                  key: url",
            ]
        );
        // Inserted after the last item, before the blank line that separates the sidecar.
        assert!(out.contains("              value: \"8080\"\n            - name: DATABASE_URL\n"));
        assert_eq!(
            container_env_names(&out, &orders()).unwrap(),
            vec!["LOG_LEVEL", "PORT", "DATABASE_URL"]
        );

        let mut want = docs(DEPLOYMENT);
        let keys = containers_keys("Deployment").unwrap();
        let env = container_mapping(&mut want[0], keys, "orders")
            .unwrap()
            .get_mut("env")
            .unwrap()
            .as_sequence_mut()
            .unwrap();
        env.push(serde_yaml::from_str(
            "name: DATABASE_URL\nvalueFrom:\n  secretKeyRef:\n    name: orders-db\n    key: url\n",
        ).unwrap());
        assert_eq!(want, docs(&out));
    }

    #[test]
    fn add_env_creates_env_list_when_absent() {
        let indented_item = ["    - name: FEATURE_X", "      value: \"on\""];
        let out = add_container_env(DEPLOYMENT, &envoy(), &indented_item, "FEATURE_X").unwrap();
        assert_eq!(
            inserted_lines(DEPLOYMENT, &out),
            vec![
                "          env:",
                "            - name: FEATURE_X",
                "              value: \"on\"",
            ]
        );
        assert!(out.ends_with("              memory: 64Mi\n          env:\n            - name: FEATURE_X\n              value: \"on\"\n"));
        assert_eq!(
            container_env_names(&out, &envoy()).unwrap(),
            vec!["FEATURE_X"]
        );
        let parsed = docs(&out);
        let envoy_env =
            &container_value(&parsed[0], containers_keys("Deployment").unwrap(), "envoy")["env"];
        assert_eq!(envoy_env[0]["value"], Value::from("on"));
    }

    #[test]
    fn add_env_fills_an_empty_flow_list() {
        let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    env: []\n    image: app:1\n";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        let out = add_container_env(yaml, &target, &["- name: A", "  value: b"], "A").unwrap();
        assert_eq!(
            out,
            "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    env:\n    - name: A\n      value: b\n    image: app:1\n"
        );
    }

    #[test]
    fn add_env_rejects_an_existing_name() {
        let err = add_container_env(
            DEPLOYMENT,
            &orders(),
            &["- name: PORT", "  value: \"9090\""],
            "PORT",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Deployment/orders: env var `PORT` already exists in `spec.template.spec.containers[name=orders].env`"
        );
    }

    #[test]
    fn add_env_rejects_items_that_do_not_match_the_name_or_are_not_one_item() {
        let err = add_container_env(
            DEPLOYMENT,
            &orders(),
            &["- name: OTHER", "  value: x"],
            "WANTED",
        )
        .unwrap_err();
        assert!(
            matches!(err, ManifestError::InvalidArgument { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("name: WANTED"), "{err}");

        let err =
            add_container_env(DEPLOYMENT, &orders(), &["- name: A", "- name: B"], "A").unwrap_err();
        assert!(err.to_string().contains("single list item"), "{err}");

        let err = add_container_env(DEPLOYMENT, &orders(), &["name: A"], "A").unwrap_err();
        assert!(err.to_string().contains("`- `"), "{err}");
    }

    #[test]
    fn unknown_container_error_lists_the_available_ones() {
        let target = ContainerTarget {
            kind: "Deployment",
            name: "orders",
            container: "worker",
        };
        let err =
            set_container_resource(DEPLOYMENT, &target, "limits", "memory", "1Gi").unwrap_err();
        assert_eq!(
            err,
            ManifestError::ContainerNotFound {
                document: "Deployment/orders".to_string(),
                path: "spec.template.spec.containers".to_string(),
                container: "worker".to_string(),
                available: vec!["orders".to_string(), "envoy".to_string()],
            }
        );
        assert_eq!(
            err.to_string(),
            "Deployment/orders: no container named `worker` in `spec.template.spec.containers`; containers present: `orders`, `envoy`"
        );
    }

    #[test]
    fn unknown_document_error_lists_the_documents_present() {
        let target = ContainerTarget {
            kind: "StatefulSet",
            name: "orders",
            container: "orders",
        };
        let err = container_resource(DEPLOYMENT, &target, "limits", "memory").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no document with kind `StatefulSet` and metadata.name `orders`; documents present: `Deployment/orders`"
        );
    }

    #[test]
    fn missing_containers_and_bad_arguments_are_reported() {
        let yaml = "kind: Deployment\nmetadata:\n  name: orders\nspec:\n  replicas: 1\n";
        let err = container_env_names(yaml, &orders()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Deployment/orders: `spec.template` not found; expected a mapping"
        );

        let err =
            set_container_resource(DEPLOYMENT, &orders(), "limit", "memory", "1Gi").unwrap_err();
        assert!(err.to_string().contains("`limits` or `requests`"), "{err}");
        let err =
            set_container_resource(DEPLOYMENT, &orders(), "limits", "memory", "1 GB").unwrap_err();
        assert!(err.to_string().contains("Kubernetes quantity"), "{err}");
        let target = ContainerTarget {
            kind: "Service",
            name: "orders",
            container: "orders",
        };
        assert!(container_env_names(DEPLOYMENT, &target).is_err());
    }

    #[test]
    fn duplicate_documents_are_ambiguous() {
        let yaml = "kind: Pod\nmetadata:\n  name: p\n  namespace: a\nspec:\n  containers:\n  - name: app\n---\nkind: Pod\nmetadata:\n  name: p\n  namespace: b\nspec:\n  containers:\n  - name: app\n";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        let err = container_env_names(yaml, &target).unwrap_err();
        assert!(
            matches!(err, ManifestError::AmbiguousDocument { count: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn editing_an_anchored_node_fails_verification() {
        let yaml = "\
kind: Deployment
metadata:
  name: orders
spec:
  template:
    spec:
      containers:
        - name: orders
          resources: &res
            limits:
              memory: 1Gi
        - name: envoy
          resources: *res
";
        let err = set_container_resource(yaml, &orders(), "limits", "memory", "2Gi").unwrap_err();
        assert!(matches!(err, ManifestError::Verification { .. }), "{err:?}");
        let err = set_container_resource(yaml, &envoy(), "limits", "memory", "2Gi").unwrap_err();
        assert!(matches!(err, ManifestError::Unsupported { .. }), "{err:?}");
    }

    #[test]
    fn env_names_are_read_whatever_the_key_order() {
        let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    env:\n    - value: x\n      name: \"QUOTED\"\n    # comment\n    - name: PLAIN # trailing\n      value: y\n";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        assert_eq!(
            container_env_names(yaml, &target).unwrap(),
            vec!["QUOTED", "PLAIN"]
        );
    }

    #[test]
    fn new_lines_go_after_a_trailing_block_scalar_of_the_container() {
        let yaml = "\
---
# leading comment
kind: Pod
metadata:
  name: p
spec:
  containers:
  -
    name: app
    args:
    - |
      name: fake
      resources: {}

      tail
  # comment about the next container
  - name: other
";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        assert!(container_env_names(yaml, &target).unwrap().is_empty());
        let out = set_container_resource(yaml, &target, "limits", "memory", "1Gi").unwrap();
        assert_eq!(
            inserted_lines(yaml, &out),
            vec!["    resources:", "      limits:", "        memory: 1Gi"]
        );
        assert!(out.contains("      tail\n    resources:\n"), "{out}");
        assert_only_resource_changed(yaml, &out, &target, "limits", "memory", Value::from("1Gi"));
    }

    #[test]
    fn empty_value_gets_the_new_value() {
        let yaml = "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    resources:\n      limits:\n        memory:   # TODO\n";
        let target = ContainerTarget {
            kind: "Pod",
            name: "p",
            container: "app",
        };
        assert_eq!(
            container_resource(yaml, &target, "limits", "memory").unwrap(),
            None
        );
        let out = set_container_resource(yaml, &target, "limits", "memory", "1Gi").unwrap();
        assert!(out.ends_with("        memory: 1Gi   # TODO\n"), "{out}");
    }

    #[test]
    fn env_item_is_cut_out_with_its_children() {
        let y = "      env:\n        - name: A\n          value: x\n        - name: DATABASE_URL\n          valueFrom:\n            secretKeyRef:\n              name: db\n              key: url\n        - name: B\n";
        assert_eq!(
            env_item_lines(y, "DATABASE_URL").unwrap(),
            vec![
                "- name: DATABASE_URL",
                "  valueFrom:",
                "    secretKeyRef:",
                "      name: db",
                "      key: url"
            ]
        );
    }
}

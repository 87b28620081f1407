//! The manifest as lines, and the block structure the editor walks: a [`Source`] classifies each
//! line (content, comment, blank, document marker, block-scalar text), splits blocks into mapping
//! entries and sequence items, reads and replaces single-line scalars, and applies an [`Edit`]
//! while keeping every other byte (line endings, missing final newline) as it was.

use super::ManifestError;
use super::syntax::{
    Style, ValueInfo, ValueKind, analyze_value, is_dash, is_marker, leading_spaces, render_scalar,
    skip_dashes, skip_inline_space, split_key, unquote,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
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
pub(super) struct Line<'a> {
    /// The line without its line ending.
    text: &'a str,
    /// `"\n"`, `"\r\n"` or `""` (last line without newline).
    eol: &'a str,
    pub(super) indent: usize,
    pub(super) kind: LineKind,
}

/// A node position: line index and the column where its text starts. For the first line of a
/// sequence item (`- name: x`) the column is after the dash, so the item's mapping looks like any
/// other block mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cl {
    pub(super) line: usize,
    pub(super) col: usize,
}

/// One `key: value` entry of a block mapping.
#[derive(Debug)]
pub(super) struct Entry<'b> {
    pub(super) key: String,
    /// Line and column of the key.
    pub(super) cl: Cl,
    /// Offset in the line text just after the `:`.
    pub(super) after_colon: usize,
    pub(super) value: ValueInfo,
    /// The lines of the nested block (empty if the value is inline).
    pub(super) children: &'b [Cl],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Mapping,
    Sequence,
}

/// Line replacements (a replacement may hold several lines, joined with the file's newline),
/// removed lines, plus at most one block of inserted lines.
#[derive(Debug, Default)]
pub(super) struct Edit {
    pub(super) replace: Vec<(usize, String)>,
    pub(super) remove: Vec<usize>,
    insert: Option<(usize, Vec<String>)>,
}

impl Edit {
    pub(super) fn insert_after(&mut self, line: usize, lines: Vec<String>) {
        self.insert = Some((line, lines));
    }
}

pub(super) struct Source<'a> {
    pub(super) lines: Vec<Line<'a>>,
    newline: &'static str,
}

impl<'a> Source<'a> {
    pub(super) fn parse(yaml: &'a str) -> Self {
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

    pub(super) fn text(&self, cl: Cl) -> &'a str {
        self.lines
            .get(cl.line)
            .map_or("", |line| line.text.get(cl.col..).unwrap_or(""))
    }

    /// The file's line ending (the first one it uses; LF for a file of one line).
    pub(super) fn newline(&self) -> &'static str {
        self.newline
    }

    pub(super) fn line_text(&self, line: usize) -> &'a str {
        self.lines.get(line).map_or("", |l| l.text)
    }

    /// The line after which text following `block` may be inserted: its last line, extended over
    /// block-scalar content that belongs to it.
    pub(super) fn end_of(&self, block: &[Cl]) -> usize {
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
    pub(super) fn map_entries<'b>(
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
    pub(super) fn seq_items(
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
    pub(super) fn open_block<'b>(
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
    pub(super) fn read_scalar(
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
    pub(super) fn replace_scalar(
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
    pub(super) fn env_names(
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

    pub(super) fn apply(&self, edit: &Edit) -> String {
        let mut out = String::new();
        for (index, line) in self.lines.iter().enumerate() {
            if edit.remove.contains(&index) {
                continue;
            }
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

pub(super) fn indent(col: usize, text: &str) -> String {
    format!("{}{text}", " ".repeat(col))
}

pub(super) fn block_col(block: &[Cl]) -> usize {
    block.first().map_or(0, |cl| cl.col)
}

pub(super) fn find<'e, 'b>(entries: &'e [Entry<'b>], key: &str) -> Option<&'e Entry<'b>> {
    entries.iter().find(|entry| entry.key == key)
}

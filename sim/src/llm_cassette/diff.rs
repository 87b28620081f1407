//! What explains a cassette miss: the comparison of a request against the recorded ones.
//!
//! Requests are rendered as lines (one `path: value` per leaf, multi-line strings spread over
//! lines), diffed line by line against each recorded request, and the nearest one (fewest changed
//! lines) is shown as a compact diff: `- recorded`, `+ received`, a little context around each
//! change, long diffs and lines cut short.

use serde_json::Value;

use super::key::strip_ignored;

/// Lines of unchanged context around each change in a miss's diff.
const DIFF_CONTEXT: usize = 2;
/// Lines a miss's diff shows at most; the rest is counted.
const DIFF_MAX_LINES: usize = 60;
/// Characters of one diff line shown at most.
const DIFF_MAX_LINE_CHARS: usize = 240;
/// Beyond this many cells the line diff stops looking for common lines in the changed middle.
const DIFF_MAX_CELLS: usize = 4_000_000;

/// The recorded request nearest to a missed one.
pub(super) struct Nearest {
    /// Its cassette file.
    pub(super) file: String,
    /// How many lines differ.
    pub(super) changed: usize,
    /// The compact diff from it (`-`) to the missed request (`+`).
    pub(super) diff: String,
}

/// The recorded request (a cassette file and its request body) nearest to `request`: the fewest
/// changed lines, then the first file by name. `None` when nothing is recorded.
pub(super) fn nearest<'a>(
    request: &Value,
    recorded: impl Iterator<Item = (&'a str, &'a Value)>,
) -> Option<Nearest> {
    let received = render_lines(&strip_ignored(request));
    recorded
        .map(|(file, recorded)| {
            let lines = render_lines(&strip_ignored(recorded));
            let ops = line_diff(&lines, &received);
            let changed = ops.iter().filter(|(edit, _)| *edit != Edit::Keep).count();
            Nearest {
                file: file.to_owned(),
                changed,
                diff: render_diff(&ops),
            }
        })
        .min_by(|a, b| a.changed.cmp(&b.changed).then_with(|| a.file.cmp(&b.file)))
}

/// The request as lines for a diff: one `path: value` line per leaf, strings with line breaks
/// spread over indented lines, so a changed prompt line is a changed diff line.
fn render_lines(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    render(value, "", &mut out);
    out
}

fn render(value: &Value, path: &str, out: &mut Vec<String>) {
    let label = if path.is_empty() { "." } else { path };
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            for (name, value) in fields {
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                render(value, &child, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                render(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::String(text) if text.contains('\n') => {
            out.push(format!("{label}: |"));
            out.extend(text.split('\n').map(|line| format!("    {line}")));
        }
        other => out.push(format!("{label}: {other}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Keep,
    Remove,
    Add,
}

/// A line diff from `old` to `new`: common prefix and suffix, then a longest common subsequence
/// of the middle (or, past [`DIFF_MAX_CELLS`], the whole middle removed and added).
fn line_diff<'a>(old: &'a [String], new: &'a [String]) -> Vec<(Edit, &'a str)> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );
    let mut ops: Vec<(Edit, &str)> = old[..prefix]
        .iter()
        .map(|l| (Edit::Keep, l.as_str()))
        .collect();
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > DIFF_MAX_CELLS {
        ops.extend(a.iter().map(|l| (Edit::Remove, l.as_str())));
        ops.extend(b.iter().map(|l| (Edit::Add, l.as_str())));
    } else {
        // lcs[i * (m + 1) + j]: the longest common subsequence of a[i..] and b[j..].
        let width = m + 1;
        let mut lcs = vec![0u32; (n + 1) * width];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * width + j] = if a[i] == b[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n && j < m {
            if a[i] == b[j] {
                ops.push((Edit::Keep, &a[i]));
                i += 1;
                j += 1;
            } else if lcs[(i + 1) * width + j] >= lcs[i * width + j + 1] {
                ops.push((Edit::Remove, &a[i]));
                i += 1;
            } else {
                ops.push((Edit::Add, &b[j]));
                j += 1;
            }
        }
        ops.extend(a[i..].iter().map(|l| (Edit::Remove, l.as_str())));
        ops.extend(b[j..].iter().map(|l| (Edit::Add, l.as_str())));
    }
    ops.extend(
        old[old.len() - suffix..]
            .iter()
            .map(|l| (Edit::Keep, l.as_str())),
    );
    ops
}

/// The changes with [`DIFF_CONTEXT`] lines around each, `...` where lines are skipped, at most
/// [`DIFF_MAX_LINES`] lines.
fn render_diff(ops: &[(Edit, &str)]) -> String {
    let mut shown = vec![false; ops.len()];
    for (i, (edit, _)) in ops.iter().enumerate() {
        if *edit != Edit::Keep {
            let end = (i + DIFF_CONTEXT).min(ops.len() - 1);
            shown[i.saturating_sub(DIFF_CONTEXT)..=end].fill(true);
        }
    }
    let mut out = String::new();
    let mut lines = 0;
    let mut skipped = false;
    let mut cut = false;
    for (i, (edit, line)) in ops.iter().enumerate() {
        if !shown[i] {
            skipped = true;
            continue;
        }
        if lines == DIFF_MAX_LINES {
            let rest = ops[i..].iter().filter(|(e, _)| *e != Edit::Keep).count();
            if rest > 0 {
                out.push_str(&format!("  ... and {rest} more changed lines\n"));
            } else {
                out.push_str("  ...\n");
            }
            cut = true;
            break;
        }
        if skipped {
            out.push_str("  ...\n");
            skipped = false;
        }
        let mark = match edit {
            Edit::Keep => ' ',
            Edit::Remove => '-',
            Edit::Add => '+',
        };
        let mut text: String = line.chars().take(DIFF_MAX_LINE_CHARS).collect();
        if text.len() < line.len() {
            text.push_str(" ...");
        }
        out.push_str(&format!("{mark} {text}\n"));
        lines += 1;
    }
    if skipped && !cut {
        out.push_str("  ...\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cassette_line_diff_finds_the_changed_lines() {
        let lines = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let (old, new) = (lines("a b c d e f g h"), lines("a b x d e f g h y"));
        let ops = line_diff(&old, &new);
        let changed: Vec<_> = ops.iter().filter(|(e, _)| *e != Edit::Keep).collect();
        assert_eq!(
            changed,
            [&(Edit::Remove, "c"), &(Edit::Add, "x"), &(Edit::Add, "y")]
        );
        assert_eq!(
            render_diff(&ops),
            "  a\n  b\n- c\n+ x\n  d\n  e\n  ...\n  g\n  h\n+ y\n"
        );
    }
}

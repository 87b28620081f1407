//! Line-level YAML syntax: document markers, sequence dashes, `key:` splitting, quoted scalars,
//! comments, what kind of value follows a colon, and how a scalar is written back. These work on
//! one line of text at a time; [`super::source`] builds the block structure from them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueKind {
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
pub(super) struct ValueInfo {
    pub(super) kind: ValueKind,
    pub(super) start: usize,
    pub(super) end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Plain,
    Single,
    Double,
}

pub(super) fn leading_spaces(text: &str) -> usize {
    text.len() - text.trim_start_matches(' ').len()
}

pub(super) fn skip_inline_space(text: &str, from: usize) -> usize {
    let rest = text.get(from..).unwrap_or("");
    from + (rest.len() - rest.trim_start_matches([' ', '\t']).len())
}

pub(super) fn is_marker(line: &str) -> bool {
    let trimmed = line.trim_end();
    ["---", "..."].iter().any(|marker| {
        trimmed == *marker
            || trimmed
                .strip_prefix(marker)
                .is_some_and(|rest| rest.starts_with([' ', '\t']))
    })
}

/// `- item`, `-` alone.
pub(super) fn is_dash(text: &str) -> bool {
    text == "-" || text.starts_with("- ") || text.starts_with("-\t")
}

/// Skips leading `- ` indicators: `(column of the node after them, column of the last dash)`.
pub(super) fn skip_dashes(text: &str, indent: usize) -> (usize, Option<usize>) {
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
pub(super) fn split_key(text: &str) -> Option<(String, usize)> {
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
pub(super) fn analyze_value(text: &str, from: usize) -> ValueInfo {
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
pub(super) fn unquote(token: &str) -> String {
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
pub(super) fn render_scalar(value: &str, style: Style) -> String {
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

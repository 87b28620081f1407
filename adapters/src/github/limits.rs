//! GitHub's limits on what squad writes, applied before a request rather than learnt from a 422:
//! an issue or pull request title of at most 256 characters, a body or comment of at most
//! 65,536, a label name of at most 50. Text is cut on a character boundary; a cut body says so,
//! and keeps its last line when that is squad's hidden marker (a retry after a crash finds the
//! artifact by it).

use std::borrow::Cow;

/// The longest issue or pull request title GitHub takes, in characters.
pub const MAX_TITLE_CHARS: usize = 256;
/// The longest issue, pull request or comment body GitHub takes, in characters.
pub const MAX_BODY_CHARS: usize = 65_536;
/// The longest label name GitHub takes, in characters.
pub const MAX_LABEL_CHARS: usize = 50;

/// The first `n` characters of `text` (all of it when shorter).
fn head(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((cut, _)) => text.get(..cut).unwrap_or(text),
        None => text,
    }
}

/// At most `max` characters: cut, with `…` as the last one.
fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.chars().count() <= max {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{}…", head(text, max.saturating_sub(1))))
}

/// An issue or pull request title GitHub takes.
pub fn title(text: &str) -> Cow<'_, str> {
    let fitted = cut(text, MAX_TITLE_CHARS);
    if let Cow::Owned(_) = fitted {
        tracing::warn!(
            chars = text.chars().count(),
            "a title longer than GitHub's {MAX_TITLE_CHARS} characters was cut"
        );
    }
    fitted
}

/// A label name GitHub takes.
pub fn label(text: &str) -> Cow<'_, str> {
    cut(text, MAX_LABEL_CHARS)
}

/// Label names GitHub takes.
pub fn labels(names: &[String]) -> Vec<String> {
    names.iter().map(|l| label(l).into_owned()).collect()
}

/// A body or comment GitHub takes: past [`MAX_BODY_CHARS`], its head, a line saying how much was
/// left out, and its last line when that is an HTML comment (squad's marker).
pub fn body(text: &str) -> Cow<'_, str> {
    let total = text.chars().count();
    if total <= MAX_BODY_CHARS {
        return Cow::Borrowed(text);
    }
    let trimmed = text.trim_end();
    let tail = trimmed
        .rsplit_once('\n')
        .map_or(trimmed, |(_, last)| last)
        .trim();
    let marker = tail.starts_with("<!--") && tail.ends_with("-->") && tail.len() <= 1024;
    let (tail, tail_chars) = if marker {
        (format!("\n\n{tail}\n"), tail.chars().count())
    } else {
        (String::new(), 0)
    };
    // The note's length depends on the number it states: reserve room for the largest.
    let note = |omitted: usize| {
        format!(
            "\n\n… [{omitted} characters cut here: GitHub takes at most {MAX_BODY_CHARS} in a body]"
        )
    };
    let room = MAX_BODY_CHARS - note(total).chars().count() - tail.chars().count();
    let kept = head(text, room);
    // End on a line when one ends near the cut.
    let kept = match kept.rfind('\n') {
        Some(end) if kept.len() - end < 2_000 => kept.get(..end).unwrap_or(kept),
        _ => kept,
    };
    let omitted = total - kept.chars().count() - tail_chars;
    tracing::warn!(
        chars = total,
        "a body longer than GitHub's {MAX_BODY_CHARS} characters was cut"
    );
    Cow::Owned(format!("{kept}{}{tail}", note(omitted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert!(matches!(title("OOMKilled"), Cow::Borrowed("OOMKilled")));
        assert!(matches!(body("a\n\n<!-- m -->\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_long_title_is_cut_on_a_character_boundary() {
        let t = "é".repeat(300);
        let fitted = title(&t);
        assert_eq!(fitted.chars().count(), MAX_TITLE_CHARS);
        assert!(fitted.ends_with('…'));
        assert_eq!(label(&"n".repeat(63)).chars().count(), MAX_LABEL_CHARS);
    }

    #[test]
    fn a_long_body_keeps_its_head_its_marker_and_says_what_was_cut() {
        let marker = "<!-- squad:inc-1:picard:incident-issue -->";
        let text = format!(
            "## Incident\n{}\n\n{marker}\n",
            "日本語のログ行\n".repeat(20_000)
        );
        let fitted = body(&text);
        let n = fitted.chars().count();
        assert!(n <= MAX_BODY_CHARS, "{n}");
        assert!(n > MAX_BODY_CHARS - 2_100, "{n}");
        assert!(fitted.starts_with("## Incident\n"));
        assert!(fitted.trim_end().ends_with(marker));
        assert!(fitted.contains("characters cut here: GitHub takes at most 65536"));
        // One line of 1 MiB, no marker.
        let line = "x".repeat(1 << 20);
        assert!(body(&line).chars().count() <= MAX_BODY_CHARS);
    }
}

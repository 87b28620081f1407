//! The sender's text as squad passes it on: cut for messages, cleaned of characters that would
//! break or disguise what it says.

use std::borrow::Cow;

/// At most 80 characters of sender-controlled text, for error messages and logs.
///
/// ```
/// use squad_protocols::text::shorten;
/// assert_eq!(shorten("pod=api-0"), "pod=api-0");
/// assert_eq!(shorten(&"é".repeat(100)), format!("{}…", "é".repeat(80)));
/// ```
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text.to_owned(),
    }
}

/// Whether `c` is a control character or a Unicode bidirectional control (an override, embedding,
/// isolate or mark), which reorders how the text around it is shown.
fn hostile_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

pub(crate) fn unclean(text: &str) -> bool {
    text.chars().any(hostile_char)
}

/// `text` with [`hostile_char`]s replaced by U+FFFD; with `lines`, `\n` and `\t` are kept and `\r`
/// is dropped (CRLF becomes LF).
pub(crate) fn sanitize(text: &str, lines: bool) -> Cow<'_, str> {
    if !unclean(text) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter(|&c| !(lines && c == '\r'))
            .map(|c| match c {
                '\n' | '\t' if lines => c,
                c if hostile_char(c) => '\u{fffd}',
                c => c,
            })
            .collect(),
    )
}

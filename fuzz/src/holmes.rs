//! HolmesGPT's output, as squad reads it from the CLI's `--json-output-file` (`holmes ask`,
//! `holmes investigate alertmanager`) and from the server's `POST /api/chat` answer.

use squad_adapters::holmes::{
    HolmesRun, parse_ask_output, parse_chat_output, parse_investigate_output, structured_from_text,
};
use squad_protocols::Alert;

/// Characters of a tool's output kept as evidence, and the mark of a cut.
const EXCERPT_CHARS: usize = 600;

/// The alert the investigate output is matched against (the one of the captured fixture).
fn alert() -> Alert {
    Alert::firing("KubePodCrashLooping")
        .with_label("namespace", "shop")
        .with_label("pod", "api-7d9")
}

/// `squad_adapters::holmes::{parse_ask_output, parse_investigate_output, parse_chat_output}`
/// and the JSON block of the answer (`structured_from_text`). The first byte picks the output:
/// `a` ask, `i` investigate, `c` chat (any other byte: its value modulo 3, in that order); the
/// rest is the output's text. Evidence excerpts stay bounded; an accepted block's confidence is
/// from 0 to 1 and its summary is not empty.
pub fn holmes_output(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Some(text) = super::text(rest) else {
        return;
    };
    let run = match which {
        b'a' => parse_ask_output(text),
        b'i' => parse_investigate_output(text, &alert()),
        b'c' => parse_chat_output(text),
        other => match other % 3 {
            0 => parse_ask_output(text),
            1 => parse_investigate_output(text, &alert()),
            _ => parse_chat_output(text),
        },
    };
    let Ok(run) = run else {
        return;
    };
    check_run(&run);
    if let Ok(answer) = run.answer() {
        let s = &answer.structured;
        assert!(
            (0.0..=1.0).contains(&s.confidence),
            "confidence {}",
            s.confidence
        );
        assert!(
            !s.summary.trim().is_empty(),
            "an accepted block has an empty summary"
        );
        let again = structured_from_text(&answer.run.text);
        assert_eq!(again.as_ref().ok(), Some(s), "the block read twice differs");
    }
}

fn check_run(run: &HolmesRun) {
    for tool in &run.tools {
        let chars = tool.excerpt.chars().count();
        assert!(
            chars <= EXCERPT_CHARS + 2,
            "an evidence excerpt of {chars} characters (at most {EXCERPT_CHARS} and a cut mark)"
        );
    }
}

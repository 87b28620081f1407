//! The leak check: every form of every planted value (in clear, base64 standard and URL-safe,
//! with and without padding, URL-encoded), looked for in every output at once, and each hit
//! reported with the secret's kind, where it was planted, the output it reached and the text
//! around it.

use std::fmt;

use regex::RegexBuilder;

use crate::outputs::Output;
use crate::plant::Planted;
use crate::secrets::forms;

/// A planted value found in an output.
#[derive(Debug, Clone)]
pub struct Leak {
    pub kind: String,
    pub planted_at: String,
    pub form: &'static str,
    pub place: String,
    /// The output around the hit.
    pub window: String,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {} secret planted in {} reached {} ({}): …{}…",
            self.kind, self.planted_at, self.place, self.form, self.window
        )
    }
}

/// The characters shown either side of a hit.
const WINDOW: usize = 120;

fn window(text: &str, start: usize, end: usize) -> String {
    let mut from = start.saturating_sub(WINDOW);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (end + WINDOW).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    text[from..to].replace('\n', "⏎")
}

/// Every planted value's forms, and which planting each stands for.
pub struct Needles {
    regex: regex::Regex,
    owners: std::collections::HashMap<String, (usize, &'static str)>,
    planted: Vec<Planted>,
}

impl Needles {
    pub fn new(planted: &[Planted]) -> Needles {
        let mut owners = std::collections::HashMap::new();
        for (i, p) in planted.iter().enumerate() {
            for needle in p.secret.needles() {
                for (form, text) in forms(&needle) {
                    owners.entry(text).or_insert((i, form));
                }
            }
        }
        // Longest first: a value's whole beats a line of it.
        let mut all: Vec<&String> = owners.keys().collect();
        all.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let pattern = all
            .iter()
            .map(|n| regex::escape(n))
            .collect::<Vec<_>>()
            .join("|");
        let regex = RegexBuilder::new(&pattern)
            .size_limit(256 << 20)
            .dfa_size_limit(256 << 20)
            .build()
            .unwrap();
        Needles {
            regex,
            owners,
            planted: planted.to_vec(),
        }
    }

    /// The leaks in `outputs` (at most one per output and planting).
    pub fn scan(&self, outputs: &[Output]) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for o in outputs {
            let mut seen = Vec::new();
            for m in self.regex.find_iter(&o.text) {
                let Some(&(i, form)) = self.owners.get(m.as_str()) else {
                    continue;
                };
                if seen.contains(&i) {
                    continue;
                }
                seen.push(i);
                let p = &self.planted[i];
                leaks.push(Leak {
                    kind: format!("{:?}", p.secret.kind),
                    planted_at: p.site.clone(),
                    form,
                    place: o.place.clone(),
                    window: window(&o.text, m.start(), m.end()),
                });
            }
        }
        leaks
    }
}

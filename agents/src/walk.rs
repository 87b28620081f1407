//! A repository read file by file, within a budget: a walk reads at most [`WALK_FILES`] files
//! and [`WALK_BYTES`] of text, and says what it left unread. Each file is one forge call (one
//! GitHub API request), so a 10,000-file repository costs a bounded number of calls and bytes,
//! never the whole of it. Worf's credential scan keeps its own, tighter bound.

/// The most files one walk reads.
pub const WALK_FILES: usize = 5_000;
/// The most text one walk reads (64 MiB).
pub const WALK_BYTES: usize = 64 << 20;

/// How far a walk over `total` candidate files has gone.
#[derive(Debug, Clone)]
pub struct Walk {
    what: &'static str,
    total: usize,
    files: usize,
    bytes: usize,
}

impl Walk {
    /// A walk over `total` candidate files, `what` naming them for the note ("YAML files").
    pub fn new(what: &'static str, total: usize) -> Self {
        Walk {
            what,
            total,
            files: 0,
            bytes: 0,
        }
    }

    /// Whether another file may be read.
    pub fn more(&self) -> bool {
        self.files < WALK_FILES && self.bytes < WALK_BYTES
    }

    /// Counts a file read (`bytes` of it; 0 when it was absent).
    pub fn read(&mut self, bytes: usize) {
        self.files += 1;
        self.bytes += bytes;
    }

    /// Whether the walk must stop short of the candidates: the order of the walk then matters.
    pub fn exceeds(&self) -> bool {
        self.total > WALK_FILES
    }

    /// What was left unread, when the budget stopped the walk.
    pub fn note(&self) -> Option<String> {
        (self.files < self.total && !self.more()).then(|| {
            format!(
                "read {} of {} {} ({} MiB; at most {WALK_FILES} files and {} MiB per walk), {} left unread",
                self.files,
                self.total,
                self.what,
                self.bytes >> 20,
                WALK_BYTES >> 20,
                self.total - self.files
            )
        })
    }
}

/// `paths` with those naming `hint` first, in their order otherwise: when a walk cannot read
/// every candidate, the likely ones are read first.
pub fn likely_first(paths: Vec<String>, hint: &str) -> Vec<String> {
    let (likely, rest): (Vec<String>, Vec<String>) =
        paths.into_iter().partition(|p| p.contains(hint));
    likely.into_iter().chain(rest).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_walk_stops_at_its_budget_and_says_what_it_left() {
        let mut w = Walk::new("YAML files", 10_000);
        assert!(w.exceeds());
        let mut read = 0;
        while w.more() {
            w.read(1_000);
            read += 1;
        }
        assert_eq!(read, WALK_FILES);
        let note = w.note().unwrap();
        assert!(note.contains("read 5000 of 10000 YAML files"), "{note}");
        assert!(note.contains("5000 left unread"), "{note}");
        let mut small = Walk::new("files", 3);
        (0..3).for_each(|_| small.read(10));
        assert!(small.note().is_none());
    }

    #[test]
    fn likely_paths_come_first_in_their_order() {
        let paths = ["a/x.yaml", "b/api.yaml", "c/y.yaml", "d/api-db.yaml"].map(String::from);
        assert_eq!(
            likely_first(paths.to_vec(), "api"),
            ["b/api.yaml", "d/api-db.yaml", "a/x.yaml", "c/y.yaml"]
        );
    }
}

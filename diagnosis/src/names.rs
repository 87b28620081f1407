//! Names as a person reads them: `DATABASE_URL`, `database-url` and `Database.Url` are the same
//! name written three ways. Families that match a name the manifest uses against the names the
//! cluster holds (a Secret's keys, an object of a kind) compare them under [`normalised`].

/// A name as a person reads it: lower case, without the `-`, `_` and `.` between its words.
pub fn normalised(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_separators_do_not_make_another_name() {
        for n in [
            "DATABASE_URL",
            "database-url",
            "Database.Url",
            "databaseurl",
        ] {
            assert_eq!(normalised(n), "databaseurl", "{n}");
        }
        assert_ne!(normalised("DATABASE_URL"), normalised("database-user"));
    }
}

//! The one door YAML from a repository comes in through, with limits that hold against hostile
//! files: a size cap, a cap on its nodes (aliases counted as what they repeat), a cap on flow
//! nesting checked before parsing, and serde_yaml's own nesting (128 levels) and
//! alias-repetition limits, reworded to say what they mean.
//!
//! What serde_yaml 0.9 does alone (measured, debug build): it stops a classic "billion laughs"
//! (its repetition limit) and 10,000-deep nesting (its recursion limit), but only after libyaml
//! has read the whole document into events — 7 s for 20 KB of `[[[…` — and not a flat alias
//! bomb at all: a 30 KB document with one anchored list of 4,000 items and 4,000 aliases to it
//! builds 16 million values (2 GB, 40 s). Its values cost 100 to 250 bytes a node, so even a
//! file without aliases costs up to 250 times its size. [`check`] bounds all of it in one pass
//! over the bytes (size, flow depth, structure marks) plus, when the file holds an anchor, one
//! count of the nodes its aliases expand to that builds nothing and stops at the limit.
//! Every serde_yaml read in this crate goes through [`from_str`], [`documents`] or [`check`].

use std::cell::Cell;
use std::fmt;

use serde::Deserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

/// The largest YAML file squad reads (8 MiB). etcd caps one object at 1.5 MiB; a file of many
/// objects, such as a CRD bundle, stays under this.
pub const MAX_YAML_BYTES: usize = 8 << 20;

/// The most nodes (scalars, sequences, mappings) one file may expand to, aliases counted as what
/// they repeat. A real manifest has a few thousand; a CRD bundle a few hundred thousand.
pub const MAX_YAML_NODES: usize = 1_000_000;

/// The deepest flow nesting (`[`, `{`) read; serde_yaml stops at 128 levels too, but only after
/// libyaml has read every level.
pub const MAX_YAML_DEPTH: usize = 128;

fn error(message: String) -> serde_yaml::Error {
    <serde_yaml::Error as de::Error>::custom(message)
}

/// serde_yaml's limit errors, said as what they mean; any other error as it is.
pub(crate) fn explain(e: serde_yaml::Error) -> serde_yaml::Error {
    let text = e.to_string();
    if text.starts_with("recursion limit exceeded") {
        error(format!(
            "the YAML nests deeper than 128 levels, the most squad reads ({text})"
        ))
    } else if text.starts_with("repetition limit exceeded") {
        error(format!(
            "the YAML's aliases repeat their anchors more than squad reads (an alias bomb?): {text}"
        ))
    } else {
        e
    }
}

/// Whether `text` is within the limits: at most [`MAX_YAML_BYTES`]; flow collections nested at
/// most [`MAX_YAML_DEPTH`] deep and at most [`MAX_YAML_NODES`] structure marks (each node needs
/// one: a `[`, `{`, `,`, `- `, `: ` or a line), both counted over the bytes without parsing, so
/// brackets and marks inside quoted text count too; and, when it holds an anchor, at most
/// [`MAX_YAML_NODES`] nodes once its aliases are expanded (counted by a parse that builds
/// nothing and stops at the limit).
///
/// ```
/// use squad_gitops::yaml;
/// assert!(yaml::check("a: &x [1, 2]\nb: *x\n").is_ok());
/// let items = (0..2_000).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
/// let bomb = format!("x: &x [{items}]\ny: [{}]\n", vec!["*x"; 2_000].join(","));
/// let err = yaml::check(&bomb).unwrap_err().to_string();
/// assert!(err.contains("expands to more than 1000000 nodes"), "{err}");
/// ```
pub fn check(text: &str) -> Result<(), serde_yaml::Error> {
    if text.len() > MAX_YAML_BYTES {
        return Err(error(format!(
            "the YAML is {} bytes; squad reads files of at most {MAX_YAML_BYTES} bytes (8 MiB)",
            text.len()
        )));
    }
    let (mut depth, mut deepest, mut marks) = (0usize, 0usize, 0usize);
    let mut previous = b'\n';
    for &b in text.as_bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                marks += 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' | b'\n' => marks += 1,
            b' ' | b'\t' if matches!(previous, b'-' | b':') => marks += 1,
            _ => {}
        }
        previous = b;
    }
    if deepest > MAX_YAML_DEPTH {
        return Err(error(format!(
            "the YAML nests flow collections {deepest} levels deep, deeper than {MAX_YAML_DEPTH} levels, the most squad reads"
        )));
    }
    if marks > MAX_YAML_NODES {
        return Err(error(format!(
            "the YAML has {marks} structure marks (`[`, `{{`, `,`, `- `, `: `, lines), one per node at least; squad reads at most {MAX_YAML_NODES} nodes"
        )));
    }
    // Without an anchor there is nothing to repeat: the nodes are bounded by the marks.
    if !text.contains('&') {
        return Ok(());
    }
    let nodes = Cell::new(0);
    for document in serde_yaml::Deserializer::from_str(text) {
        Count { nodes: &nodes }
            .deserialize(document)
            .map_err(explain)?;
    }
    Ok(())
}

/// One YAML document read as `T`, within the limits of [`check`].
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_yaml::Error> {
    check(text)?;
    serde_yaml::from_str(text).map_err(explain)
}

/// Every document of a (multi-document) YAML file read as `T`, within the limits of [`check`];
/// the error of a document that does not parse says which one (counting from 0).
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_yaml::Error> {
    check(text)?;
    serde_yaml::Deserializer::from_str(text)
        .enumerate()
        .map(|(i, document)| {
            T::deserialize(document)
                .map_err(explain)
                .map_err(|e| error(format!("document {i}: {e}")))
        })
        .collect()
}

/// Counts nodes as serde_yaml replays them (an alias replays its anchor's events), building
/// nothing; fails once the count passes [`MAX_YAML_NODES`].
#[derive(Clone, Copy)]
struct Count<'a> {
    nodes: &'a Cell<usize>,
}

impl Count<'_> {
    fn node<E: de::Error>(self) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        self.nodes.set(n);
        if n > MAX_YAML_NODES {
            return Err(E::custom(format!(
                "the YAML expands to more than {MAX_YAML_NODES} nodes through its aliases (an alias bomb?); squad reads at most {MAX_YAML_NODES}"
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.node()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.node()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.node()
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.node()
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.node()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.node()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.node()
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.node()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.node()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.node()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.node()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.node()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A tagged node (`!Ref x`): the tag, then what it tags.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn anchors_within_the_limit_read_as_serde_yaml_reads_them() {
        let text = "base: &base {cpu: 100m}\nprod:\n  <<: *base\n  memory: 1Gi\nurl: a?b=1&c=2\n";
        let v: serde_yaml::Value = from_str(text).unwrap();
        assert_eq!(v, serde_yaml::from_str::<serde_yaml::Value>(text).unwrap());
    }

    #[test]
    fn a_billion_laughs_is_refused_with_what_it_is() {
        let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        let mut previous = 'a';
        for name in 'b'..='i' {
            let nine = vec![format!("*{previous}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{nine}]\n"));
            previous = name;
        }
        let err = from_str::<serde_json::Value>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("alias bomb"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_naming_the_limit() {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = from_str::<serde_yaml::Value>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("deeper than 128 levels"), "{err}");
        // Block nesting (two bytes a level) is serde_yaml's to stop, in the document it is in.
        let block = format!("a: 1\n---\n{}x\n", "- ".repeat(10_000));
        let err = documents::<serde_json::Value>(&block)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("document 1") && err.contains("deeper than 128 levels"),
            "{err}"
        );
    }

    #[test]
    fn a_file_of_more_nodes_than_the_limit_is_refused_before_parsing() {
        // 2.4 MB that serde_yaml would hold as 600,000 one-item sequences (about 250 MB).
        let text = format!("[{}]", "[1],".repeat(600_000));
        let err = check(&text).unwrap_err().to_string();
        assert!(err.contains("1200001 structure marks"), "{err}");
        assert!(check(&format!("[{}]", "[1],".repeat(400_000))).is_ok());
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_before_parsing() {
        let text = format!("a: \"{}\"\n", "x".repeat(MAX_YAML_BYTES));
        let err = check(&text).unwrap_err().to_string();
        assert!(err.contains("at most 8388608 bytes"), "{err}");
    }

    #[test]
    fn tagged_nodes_are_counted() {
        let text = "a: &a !Ref x\nb: *a\nc: !Sub [1, *a]\n";
        assert!(check(text).is_ok());
        let v: serde_yaml::Value = from_str(text).unwrap();
        assert!(v.get("c").is_some());
    }
}

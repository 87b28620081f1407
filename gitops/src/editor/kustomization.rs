//! Line edits of a kustomization: `resources:` kept in step with the files a fix adds, the
//! `newTag` of an `images:` entry, and the `count` of a `replicas:` entry.

/// Adds `entry` to a kustomization's `resources:` list right after `after`, keeping every other line.
pub fn add_resource(text: &str, after: &str, entry: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = lines
        .iter()
        .position(|l| l.trim_start().strip_prefix("- ").map(str::trim) == Some(after))?;
    let indent = &lines[idx][..lines[idx].len() - lines[idx].trim_start().len()];
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    out.insert(idx + 1, format!("{indent}- {entry}"));
    Some(out.join("\n") + if text.ends_with('\n') { "\n" } else { "" })
}

/// Sets the `newTag` of the `images:` entry named `name` (adding the key to the entry when it
/// has none), keeping every other line; `None` when no entry has that name.
pub fn set_image_tag(text: &str, name: &str, tag: &str) -> Option<String> {
    set_entry_key(text, "images", name, "newTag", &format!("\"{tag}\""))
}

/// Sets the `count` of the `replicas:` entry named `name`, keeping every other line; `None` when
/// no entry has that name.
pub fn set_replica_count(text: &str, name: &str, count: u64) -> Option<String> {
    set_entry_key(text, "replicas", name, "count", &count.to_string())
}

/// Sets `key` to `value` (as written) in the item of the top-level list `list` whose `name` is
/// `name`, adding the key when the item has none; the line's comment is kept.
fn set_entry_key(text: &str, list: &str, name: &str, key: &str, value: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let header = format!("{list}:");
    let images = lines.iter().position(|l| l.trim_end() == header)?;
    // The list runs to the first line back at `images:`'s indentation that is not an item.
    let block_end = (images + 1..lines.len())
        .find(|&k| {
            let l = lines[k];
            !l.trim().is_empty()
                && indent_of(l) <= indent_of(lines[images])
                && !l.trim_start().starts_with('-')
        })
        .unwrap_or(lines.len());
    // The entry: the item under `images:` whose `name` is `name`.
    let start = (images + 1..block_end).find(|&k| {
        let item = lines[k].trim_start();
        item.strip_prefix("- ")
            .unwrap_or(item)
            .strip_prefix("name:")
            .map(|v| v.trim().trim_matches(['"', '\'']))
            == Some(name)
    })?;
    // The entry's lines: up to the next item or the end of the list.
    let key_col = {
        let l = lines[start];
        let dash = l.trim_start().starts_with("- ");
        indent_of(l) + if dash { 2 } else { 0 }
    };
    let mut end = start + 1;
    while end < lines.len() {
        let l = lines[end];
        if l.trim().is_empty() || indent_of(l) < key_col || l.trim_start().starts_with("- ") {
            break;
        }
        end += 1;
    }
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    match (start..end).find(|&k| {
        lines[k]
            .trim_start()
            .trim_start_matches("- ")
            .starts_with(&format!("{key}:"))
    }) {
        Some(k) => {
            let l = lines[k];
            let at = l.find(&format!("{key}:"))? + key.len() + 1;
            let comment = l[at..].find(" #").map_or("", |c| &l[at + c..]);
            out[k] = format!("{} {value}{comment}", &l[..at]);
        }
        None => out.insert(end, format!("{}{key}: {value}", " ".repeat(key_col))),
    }
    Some(out.join("\n") + if text.ends_with('\n') { "\n" } else { "" })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kustomization_gets_the_hpa_after_the_deployment() {
        let k = "resources:\n  - a/deployment.yaml\n  - a/rbac.yaml\n";
        assert_eq!(
            add_resource(k, "a/deployment.yaml", "a/hpa.yaml").unwrap(),
            "resources:\n  - a/deployment.yaml\n  - a/hpa.yaml\n  - a/rbac.yaml\n"
        );
    }

    #[test]
    fn an_images_entry_gets_its_new_tag_and_nothing_else_moves() {
        let k = "resources:\n  - ../../base\nimages:\n  - name: ghcr.io/acme/api\n    newTag: v3.5.0 # release 42\n  - name: redis\n    newName: mirror/redis\n";
        assert_eq!(
            set_image_tag(k, "ghcr.io/acme/api", "3.4.2").unwrap(),
            "resources:\n  - ../../base\nimages:\n  - name: ghcr.io/acme/api\n    newTag: \"3.4.2\" # release 42\n  - name: redis\n    newName: mirror/redis\n"
        );
        assert_eq!(
            set_image_tag(k, "redis", "7.2").unwrap(),
            "resources:\n  - ../../base\nimages:\n  - name: ghcr.io/acme/api\n    newTag: v3.5.0 # release 42\n  - name: redis\n    newName: mirror/redis\n    newTag: \"7.2\"\n"
        );
        assert!(set_image_tag(k, "nginx", "1").is_none());
    }

    #[test]
    fn a_replicas_entry_gets_its_count_and_nothing_else_moves() {
        let k = "resources:\n  - ../../base\nreplicas:\n- name: api\n  count: 6 # peak season\n- name: worker\n  count: 2\nimages:\n  - name: api\n    newTag: v1\n";
        assert_eq!(
            set_replica_count(k, "api", 1).unwrap(),
            "resources:\n  - ../../base\nreplicas:\n- name: api\n  count: 1 # peak season\n- name: worker\n  count: 2\nimages:\n  - name: api\n    newTag: v1\n"
        );
        assert!(set_replica_count(k, "web", 1).is_none());
    }
}

//! Line edits of a kustomization: `resources:` kept in step with the files a fix adds, the
//! `newTag` of an `images:` entry, the `count` of a `replicas:` entry, and the text of an inline
//! patch (`patches: - patch: |`).

/// The path an inline patch goes by: the `index`-th item of the kustomization's `list`
/// (`overlays/prod/kustomization.yaml#patches[1]`).
pub fn inline_path(kustomization: &str, list: &str, index: usize) -> String {
    format!("{kustomization}#{list}[{index}]")
}

/// An inline patch's path split: (the kustomization file, its list, the item's index).
pub fn split_inline(path: &str) -> Option<(&str, &str, usize)> {
    let (file, item) = path.split_once('#')?;
    let (list, index) = item.strip_suffix(']')?.split_once('[')?;
    Some((file, list, index.parse().ok()?))
}

/// The file a path names: the kustomization itself for an inline patch.
pub fn file_of(path: &str) -> &str {
    split_inline(path).map_or(path, |(file, _, _)| file)
}

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
/// has none), keeping every other line; `None` when no entry has that name, or when its `newTag`
/// runs past its own line (a multi-line quoted scalar, which a line edit cannot replace).
pub fn set_image_tag(text: &str, name: &str, tag: &str) -> Option<String> {
    set_entry_key(text, "images", name, "newTag", &format!("\"{tag}\""))
}

/// Sets the `count` of the `replicas:` entry named `name`, keeping every other line; `None` when
/// no entry has that name, or when its `count` runs past its own line.
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
    let edited = out.join("\n") + if text.ends_with('\n') { "\n" } else { "" };
    // A value continued on the lines below its key (a multi-line quoted scalar) keeps its tail
    // after a one-line edit: the edit must leave YAML that parses when the text did.
    // Read as `Kustomization::read` reads it (JSON values: a key given twice keeps its last
    // value, where `serde_yaml::Value` refuses the file).
    let parses = |t: &str| crate::yaml::from_str::<serde_json::Value>(t).is_ok();
    (parses(&edited) || !parses(text)).then_some(edited)
}

/// Where the block scalar of the `index`-th item of the top-level list `list` (its `patch: |`)
/// is: (its first line, its end (exclusive), its indentation). `None` when that item has no
/// block-scalar `patch`.
fn inline_block(lines: &[&str], list: &str, index: usize) -> Option<(usize, usize, usize)> {
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let header = format!("{list}:");
    let at = lines.iter().position(|l| l.trim_end() == header)?;
    let col = indent_of(lines[at]);
    let end = (at + 1..lines.len())
        .find(|&k| {
            let l = lines[k];
            !l.trim().is_empty() && indent_of(l) <= col && !l.trim_start().starts_with("- ")
        })
        .unwrap_or(lines.len());
    let items: Vec<usize> = (at + 1..end)
        .filter(|&k| lines[k].trim_start().starts_with("- "))
        .filter(|&k| {
            // Items of this list, not of a list nested in one.
            let first = (at + 1..end).find(|&j| lines[j].trim_start().starts_with("- "));
            first.is_some_and(|f| indent_of(lines[k]) == indent_of(lines[f]))
        })
        .collect();
    let start = *items.get(index)?;
    let item_end = items.get(index + 1).copied().unwrap_or(end);
    let key = (start..item_end).find(|&k| {
        let t = lines[k].trim_start().trim_start_matches("- ");
        t.strip_prefix("patch:")
            .map(str::trim)
            .is_some_and(|v| v.starts_with('|'))
    })?;
    let key_col = {
        let l = lines[key];
        indent_of(l)
            + if l.trim_start().starts_with("- ") {
                2
            } else {
                0
            }
    };
    let body = key + 1;
    let body_end = (body..item_end)
        .find(|&k| !lines[k].trim().is_empty() && indent_of(lines[k]) <= key_col)
        .unwrap_or(item_end);
    // Trailing blank lines belong to what follows.
    let body_end = (body..body_end)
        .rev()
        .find(|&k| !lines[k].trim().is_empty())
        .map_or(body, |k| k + 1);
    let indent = (body..body_end)
        .find(|&k| !lines[k].trim().is_empty())
        .map(|k| indent_of(lines[k]))?;
    Some((body, body_end, indent))
}

/// The text of an inline patch (its block scalar, dedented).
pub fn inline_patch(text: &str, list: &str, index: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (from, to, indent) = inline_block(&lines, list, index)?;
    let body: Vec<&str> = lines[from..to]
        .iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    Some(body.join("\n") + "\n")
}

/// The kustomization with the inline patch's text replaced by `patch` (indented as it was),
/// every other line kept.
pub fn set_inline_patch(text: &str, list: &str, index: usize, patch: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (from, to, indent) = inline_block(&lines, list, index)?;
    let pad = " ".repeat(indent);
    let mut out: Vec<String> = lines[..from].iter().map(|l| (*l).to_owned()).collect();
    out.extend(patch.lines().map(|l| {
        if l.trim().is_empty() {
            String::new()
        } else {
            format!("{pad}{l}")
        }
    }));
    out.extend(lines[to..].iter().map(|l| (*l).to_owned()));
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

    #[test]
    fn an_inline_patch_is_read_and_written_back_in_place() {
        let k = "resources:\n  - ../../base\npatches:\n  - path: extra.yaml\n  - target:\n      kind: Deployment\n      name: api\n    patch: |-\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata:\n        name: api\n      spec:\n        replicas: 3 # prod\n\nimages:\n  - name: api\n    newTag: v1\n";
        let p = inline_patch(k, "patches", 1).unwrap();
        assert_eq!(
            p,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 3 # prod\n"
        );
        assert!(inline_patch(k, "patches", 0).is_none());
        assert!(inline_patch(k, "patches", 2).is_none());
        let written =
            set_inline_patch(k, "patches", 1, &p.replace("3 # prod", "1 # prod")).unwrap();
        assert_eq!(
            written,
            k.replace("replicas: 3 # prod", "replicas: 1 # prod")
        );
    }

    #[test]
    fn a_tag_continued_on_the_next_lines_is_not_half_replaced() {
        // Found by the `gitops_repo` fuzz target: replacing the key's line alone left the
        // scalar's tail behind, and the kustomization no longer parsed.
        let text = "images:\n  - name: ghcr.io/acme/storefront\n    newTag: \"2.4\n      .1\"\n";
        assert_eq!(
            set_image_tag(text, "ghcr.io/acme/storefront", "2.4.2"),
            None
        );
        let one_line =
            "images:\n  - name: ghcr.io/acme/storefront\n    newTag: \"2.4.1\" # pinned\n";
        assert_eq!(
            set_image_tag(one_line, "ghcr.io/acme/storefront", "2.4.2").as_deref(),
            Some("images:\n  - name: ghcr.io/acme/storefront\n    newTag: \"2.4.2\" # pinned\n")
        );
    }

    #[test]
    fn a_key_given_twice_does_not_let_a_broken_edit_through() {
        // Found by the `gitops_repo` fuzz target: `apiVersion` twice made `serde_yaml::Value`
        // refuse the file, so the guard above took it for one that never parsed, while
        // `Kustomization::read` (JSON values, the last key wins) read it before the edit and
        // not after.
        let text = "apiVersion: v1\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: ghcr.io/acme/storefront\n    newTag: \"2.5.0-rc.1\n\"\n";
        assert!(crate::kustomize::Kustomization::read("k/kustomization.yaml", text).is_some());
        assert_eq!(
            set_image_tag(text, "ghcr.io/acme/storefront", "2.5.0"),
            None
        );
    }
}

//! The one missing permission, granted in the app's own Role: the refused verb appended to the
//! `verbs` of the rule that already covers exactly that API group and resource (and the same
//! objects), or else one rule for exactly the request appended to `rules` — in the list's own
//! style (flow `[...]` or block lists, the dash offsets, the quoting, the rules' key order),
//! every other line, comment and rule as it was.
//!
//! The grant is as narrow as the request: one API group, one resource, one verb, and when the
//! refused request named one object (`get leases "x"`, `update configmaps "y"`) the rule names
//! it in `resourceNames`, so the Role does not widen to every object of the resource. A rule
//! "covers exactly" the request when its `apiGroups` and `resources` are that group and that
//! resource alone and its `resourceNames` are the request's object alone (or absent for a request
//! that names none): only then does appending the verb grant nothing else. Never a `*`.

use serde_json::{Value, json};
use squad_gitops::editor::object_key_lines;
use squad_protocols::cluster::ApiRequest;

use crate::{Edit, RepoObject};

/// The edit that grants `request` in `role`, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub edit: Edit,
    /// The rule (1-based) whose `verbs` got the verb; `None` when a rule was appended.
    pub extended: Option<usize>,
    /// The rule as it reads after the edit (`verbs [get, list, watch] on configmaps (core)`).
    pub rule: String,
}

/// What a rule is made of, in the order a new rule writes them when the Role shows none.
const KEYS: [&str; 4] = ["apiGroups", "resources", "resourceNames", "verbs"];

/// Whether the request is one a Role can grant without a wildcard.
fn grantable(r: &ApiRequest) -> bool {
    let plain = |s: &str| !s.is_empty() && !s.contains(['*', ' ', '"', '\'']);
    !r.cluster_scope
        && plain(&r.verb)
        && plain(&r.resource)
        && (r.group.is_empty() || plain(&r.group))
        && r.name.as_deref().is_none_or(plain)
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether `rule` covers exactly the request's group, resource and objects.
fn covers_exactly(rule: &Value, r: &ApiRequest) -> bool {
    let names: Vec<&str> = r.name.iter().map(String::as_str).collect();
    strings(&rule["apiGroups"]) == [r.group.as_str()]
        && strings(&rule["resources"]) == [r.resource.as_str()]
        && strings(&rule["resourceNames"]) == names
        && !strings(&rule["verbs"]).contains(&"*")
}

/// Whether the Role has a rule that covers exactly the request (its natural home).
pub fn has_rule_for(role: &RepoObject, r: &ApiRequest) -> bool {
    role.document().is_some_and(|d| {
        d["rules"]
            .as_array()
            .is_some_and(|rules| rules.iter().any(|x| covers_exactly(x, r)))
    })
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// A line's text before its comment (a `#` after a space, outside quotes).
fn code(l: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in l.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &l[..i],
            None => {}
        }
        prev = c;
    }
    l
}

fn item_start(l: &str, o: usize) -> bool {
    indent(l) == o && (l.trim_start().starts_with("- ") || l.trim() == "-")
}

/// How the Role's lists are written, read from its rules.
#[derive(Debug, Clone, PartialEq)]
struct Style {
    /// The column of a rule's `-` under `rules:`.
    dash: usize,
    /// Inner lists as `[a, b]` (else block lists, their `-` this far right of their key).
    flow: bool,
    nested: usize,
    /// The quote around a value (`"`, `'`, or none).
    quote: Option<char>,
    /// The rules' keys, in the order the Role writes them.
    order: Vec<&'static str>,
}

impl Style {
    fn value(&self, v: &str) -> String {
        let plain = !v.is_empty()
            && v.starts_with(|c: char| c.is_ascii_alphabetic())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
            && !matches!(
                v.to_ascii_lowercase().as_str(),
                "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
            );
        match self.quote {
            None if plain => v.to_owned(),
            Some('\'') => format!("'{v}'"),
            _ => format!("\"{v}\""),
        }
    }

    /// One rule as a list item whose dash sits at `self.dash`.
    fn rule(&self, fields: &[(&str, Vec<String>)]) -> Vec<String> {
        let k = self.dash + 2;
        let mut out = Vec::new();
        for key in &self.order {
            let Some((_, values)) = fields.iter().find(|(f, _)| f == key) else {
                continue;
            };
            let lead = if out.is_empty() {
                format!("{}- ", " ".repeat(self.dash))
            } else {
                " ".repeat(k)
            };
            let values: Vec<String> = values.iter().map(|v| self.value(v)).collect();
            if self.flow {
                out.push(format!("{lead}{key}: [{}]", values.join(", ")));
            } else {
                out.push(format!("{lead}{key}:"));
                for v in values {
                    out.push(format!("{}- {v}", " ".repeat(k + self.nested)));
                }
            }
        }
        out
    }
}

/// The key a line of a rule (its item starting at column `o`) sets, and what follows the colon.
fn key_of(l: &str, first: bool, o: usize) -> Option<(&str, &str)> {
    let body = if first {
        l.get(o..)?.strip_prefix("- ")?.trim_start()
    } else if indent(l) == o + 2 {
        l.trim_start()
    } else {
        return None;
    };
    let (key, rest) = body.split_once(':')?;
    Some((key.trim(), rest))
}

/// The quote of a written value, if it has one.
fn quote_of(v: &str) -> Option<char> {
    v.trim().chars().next().filter(|c| *c == '"' || *c == '\'')
}

/// The style the Role's rules are written in (items are the rules' lines, first line first).
fn style_of(items: &[&[String]], o: usize) -> Style {
    let mut style = Style {
        dash: o,
        flow: true,
        nested: o,
        quote: Some('"'),
        order: KEYS.to_vec(),
    };
    let mut quote_seen = false;
    let mut list_seen = false;
    // The last rule written the way lists are written decides.
    for item in items.iter().rev() {
        let mut order = Vec::new();
        for (i, l) in item.iter().enumerate() {
            let Some((key, rest)) = key_of(l, i == 0, o) else {
                continue;
            };
            let Some(known) = KEYS.iter().find(|k| **k == key) else {
                continue;
            };
            order.push(*known);
            let rest = code(rest).trim();
            let (flow, values): (bool, Vec<&str>) =
                if let Some(inner) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                    (true, inner.split(',').map(str::trim).collect())
                } else if rest.is_empty() {
                    let block: Vec<&String> = item[i + 1..]
                        .iter()
                        .filter(|n| !n.trim().is_empty() && !n.trim_start().starts_with('#'))
                        .take_while(|n| indent(n) >= o + 2 && n.trim_start().starts_with('-'))
                        .collect();
                    if let Some(first) = block.first()
                        && !list_seen
                    {
                        style.nested = indent(first) - (o + 2);
                    }
                    (
                        false,
                        block
                            .iter()
                            .map(|n| code(n.trim_start().trim_start_matches('-')).trim())
                            .collect(),
                    )
                } else {
                    continue;
                };
            if !list_seen {
                style.flow = flow;
                list_seen = true;
            }
            // An empty group is quoted whatever the style: the other values say it.
            if !quote_seen
                && let Some(v) = values
                    .iter()
                    .find(|v| !v.is_empty() && **v != "\"\"" && **v != "''")
            {
                style.quote = quote_of(v);
                quote_seen = true;
            }
        }
        if style.order == KEYS && order.len() > 1 {
            style.order = order;
        }
    }
    if !style.order.contains(&"resourceNames") {
        let at = style
            .order
            .iter()
            .position(|k| *k == "resources")
            .map_or(style.order.len(), |p| p + 1);
        style.order.insert(at, "resourceNames");
    }
    for k in KEYS {
        if !style.order.contains(&k) {
            style.order.push(k);
        }
    }
    style
}

/// `item` (a rule's lines) with `verb` appended to its `verbs`, in the list's style; `None` when
/// the list is not written on its key's line (`[...]`) or as a block list under it.
fn append_verb(item: &[String], o: usize, verb: &str, style: &Style) -> Option<Vec<String>> {
    let (at, rest) = item.iter().enumerate().find_map(|(i, l)| {
        key_of(l, i == 0, o)
            .filter(|(k, _)| *k == "verbs")
            .map(|(_, r)| (i, r))
    })?;
    let line = &item[at];
    let value = code(rest).trim();
    let mut out = item.to_vec();
    if value.starts_with('[') {
        // `verbs: ["get", "list"]  # why`: the verb goes before the `]`.
        let inner = value.strip_prefix('[')?.strip_suffix(']')?;
        if inner.contains('[') {
            return None;
        }
        let values: Vec<&str> = inner
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        let quote = values.first().map_or(style.quote, |v| quote_of(v));
        let written = Style {
            quote,
            ..style.clone()
        }
        .value(verb);
        let close = line.len() - rest.len() + code(rest).rfind(']')?;
        let before = line[..close].trim_end();
        let sep = if values.is_empty() { "" } else { ", " };
        out[at] = format!("{before}{sep}{written}{}", &line[close..]);
        return Some(out);
    }
    if !value.is_empty() {
        return None;
    }
    // A block list: the verb goes after its last item, at its items' column.
    let key_col = if at == 0 { o + 2 } else { indent(line) };
    let mut last = None;
    for (i, l) in item.iter().enumerate().skip(at + 1) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if indent(l) >= key_col && (t.starts_with("- ") || t == "-") {
            last = Some(i);
        } else {
            break;
        }
    }
    let last = last?;
    let item_line = &item[last];
    let written = Style {
        quote: quote_of(code(item_line.trim_start().trim_start_matches('-'))),
        ..style.clone()
    }
    .value(verb);
    out.insert(
        last + 1,
        format!("{}- {written}", " ".repeat(indent(item_line))),
    );
    Some(out)
}

fn rule_words(rule: &Value) -> String {
    let list = |k: &str| strings(&rule[k]).join(", ");
    let groups: Vec<&str> = strings(&rule["apiGroups"])
        .into_iter()
        .map(|g| if g.is_empty() { "core" } else { g })
        .collect();
    let names = list("resourceNames");
    format!(
        "verbs [{}] on {}{} ({})",
        list("verbs"),
        list("resources"),
        if names.is_empty() {
            String::new()
        } else {
            format!(" named {names}")
        },
        groups.join(", ")
    )
}

/// The edit that grants `request` in the namespaced Role `role`: the verb appended to the rule
/// that covers exactly the request, or one new rule. `None` when the request needs more than a
/// Role can narrowly grant (cluster scope, a wildcard) or the Role's `rules` are written in a
/// shape this edit does not read (a flow list of rules, a multi-line `[...]`); the result is
/// checked to grant the request and to change nothing else.
pub fn grant(role: &RepoObject, request: &ApiRequest) -> Option<Grant> {
    if role.kind != "Role" || !grantable(request) {
        return None;
    }
    let doc = role.document()?;
    let before: Vec<Value> = match &doc["rules"] {
        Value::Null => Vec::new(),
        v => v.as_array()?.clone(),
    };
    let keys = ["rules"];
    let now = object_key_lines(&role.text, &role.kind, &role.name, &keys).ok()?;
    let lines = now.unwrap_or_else(|| vec!["rules:".to_owned()]);
    let head = lines.first()?;
    let inline = code(head.strip_prefix("rules:")?).trim();
    if lines.len() == 1 && !(inline.is_empty() || inline == "[]")
        || lines.len() > 1 && !inline.is_empty()
    {
        return None;
    }
    let o = lines
        .iter()
        .skip(1)
        .find(|l| l.trim_start().starts_with('-'))
        .map_or(0, |l| indent(l));
    // The rules' lines, item by item (comments before the first stay with the head).
    let starts: Vec<usize> = (1..lines.len())
        .filter(|i| item_start(&lines[*i], o))
        .collect();
    if starts.len() != before.len() {
        return None;
    }
    let items: Vec<&[String]> = starts
        .iter()
        .enumerate()
        .map(|(n, s)| &lines[*s..starts.get(n + 1).copied().unwrap_or(lines.len())])
        .collect();
    let style = style_of(&items, o);
    let mut expected = before.clone();
    let names: Vec<String> = request.name.iter().cloned().collect();
    let hit = before.iter().position(|r| covers_exactly(r, request));
    let mut edited: Vec<String> = if inline == "[]" {
        vec!["rules:".to_owned()]
    } else {
        lines[..starts.first().copied().unwrap_or(lines.len())].to_vec()
    };
    for (n, item) in items.iter().enumerate() {
        if Some(n) == hit {
            edited.extend(append_verb(item, o, &request.verb, &style)?);
            expected[n]["verbs"]
                .as_array_mut()?
                .push(json!(request.verb));
        } else {
            edited.extend(item.iter().cloned());
        }
    }
    if hit.is_none() {
        let mut fields = vec![
            ("apiGroups", vec![request.group.clone()]),
            ("resources", vec![request.resource.clone()]),
            ("verbs", vec![request.verb.clone()]),
        ];
        if !names.is_empty() {
            fields.push(("resourceNames", names.clone()));
        }
        edited.extend(style.rule(&fields));
        let mut rule = json!({
            "apiGroups": [request.group],
            "resources": [request.resource],
            "verbs": [request.verb],
        });
        if !names.is_empty() {
            rule["resourceNames"] = json!(names);
        }
        expected.push(rule);
    }
    // The rules as a YAML parser reads the edited lines: exactly the old ones and the grant.
    let parsed = squad_gitops::objects::parse(&role.path, &edited.join("\n")).ok()?;
    let after = parsed.first()?["rules"].as_array()?.clone();
    if after != expected
        || !after.iter().any(|r| {
            covers_exactly(r, request) && strings(&r["verbs"]).contains(&request.verb.as_str())
        })
    {
        return None;
    }
    let rule = rule_words(after.get(hit.unwrap_or(after.len() - 1))?);
    Some(Grant {
        edit: Edit::SetObjectKey {
            path: role.path.clone(),
            kind: role.kind.clone(),
            name: role.name.clone(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            lines: Some(edited),
        },
        extended: hit.map(|n| n + 1),
        rule,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn role(text: &str) -> RepoObject {
        RepoObject {
            kind: "Role".into(),
            name: "reports-runtime".into(),
            path: "rbac.yaml".into(),
            text: text.into(),
            history: Vec::new(),
        }
    }

    fn request(verb: &str, group: &str, resource: &str, name: Option<&str>) -> ApiRequest {
        ApiRequest {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            name: name.map(str::to_owned),
            cluster_scope: false,
        }
    }

    /// The file after the grant, and the grant.
    fn applied(text: &str, r: &ApiRequest) -> (String, Grant) {
        let g = grant(&role(text), r).unwrap();
        let files = std::collections::BTreeMap::from([("rbac.yaml".to_owned(), text.to_owned())]);
        let out = squad_gitops::apply(std::slice::from_ref(&g.edit), &files).unwrap()[0]
            .1
            .clone();
        (out, g)
    }

    fn rules_of(text: &str) -> Vec<Value> {
        squad_gitops::objects::parse("rbac.yaml", text).unwrap()[0]["rules"]
            .as_array()
            .unwrap()
            .clone()
    }

    const HEAD: &str = "# what reports may do\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: reports-runtime # ours\n  namespace: analytics\n";
    const BINDING: &str = "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: reports\nroleRef:\n  kind: Role\n  name: reports-runtime\nsubjects:\n- kind: ServiceAccount\n  name: reports\n";

    const FLOW: &str = "rules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\", \"list\"] # settings\n- apiGroups: [\"coordination.k8s.io\"]\n  resources: [\"leases\"]\n  resourceNames: [\"reports\"]\n  verbs: [\"get\", \"update\"]\n";

    const BLOCK: &str = "rules:\n  - verbs:\n      - get\n      - list # settings\n    apiGroups:\n      - \"\"\n    resources:\n      - configmaps\n";

    #[test]
    fn the_verb_joins_the_rule_that_covers_exactly_that_resource() {
        let text = format!("{HEAD}{FLOW}{BINDING}");
        let (out, g) = applied(&text, &request("watch", "", "configmaps", None));
        assert_eq!(g.extended, Some(1));
        assert!(
            out.contains("  verbs: [\"get\", \"list\", \"watch\"] # settings\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), text.lines().count());
        assert_eq!(g.rule, "verbs [get, list, watch] on configmaps (core)");
        // A block list, the verb first among the rule's keys: the verb after the last item.
        let text = format!("{HEAD}{BLOCK}");
        let (out, g) = applied(&text, &request("watch", "", "configmaps", None));
        assert_eq!(g.extended, Some(1));
        assert!(
            out.contains("      - list # settings\n      - watch\n    apiGroups:"),
            "{out}"
        );
        // A named object: the rule that names exactly it.
        let text = format!("{HEAD}{FLOW}");
        let (out, g) = applied(
            &text,
            &request("patch", "coordination.k8s.io", "leases", Some("reports")),
        );
        assert_eq!(g.extended, Some(2));
        assert!(
            out.contains("  verbs: [\"get\", \"update\", \"patch\"]\n"),
            "{out}"
        );
    }

    #[test]
    fn a_new_rule_joins_a_flow_list_in_its_own_style() {
        let text = format!("{HEAD}{FLOW}{BINDING}");
        let (out, g) = applied(&text, &request("list", "batch", "jobs", None));
        assert_eq!(g.extended, None);
        assert!(
            out.contains("  verbs: [\"get\", \"update\"]\n- apiGroups: [\"batch\"]\n  resources: [\"jobs\"]\n  verbs: [\"list\"]\n---\n"),
            "{out}"
        );
        assert!(out.starts_with(&format!("{HEAD}{FLOW}")), "{out}");
        let rules = rules_of(&out);
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[2],
            json!({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list"]})
        );
        // Single quotes, unquoted values: the new rule writes them the same way.
        let text =
            format!("{HEAD}rules:\n- apiGroups: ['']\n  resources: ['pods']\n  verbs: ['get']\n");
        let (out, _) = applied(&text, &request("list", "", "services", None));
        assert!(
            out.ends_with("- apiGroups: ['']\n  resources: ['services']\n  verbs: ['list']\n"),
            "{out}"
        );
        let text =
            format!("{HEAD}rules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get]\n");
        let (out, _) = applied(&text, &request("list", "", "services", None));
        assert!(
            out.ends_with("- apiGroups: [\"\"]\n  resources: [services]\n  verbs: [list]\n"),
            "{out}"
        );
    }

    #[test]
    fn a_new_rule_joins_a_block_list_in_its_own_style() {
        let text = format!("{HEAD}{BLOCK}");
        // A request about one object: the rule names it, in the Role's key order.
        let (out, g) = applied(
            &text,
            &request("update", "", "configmaps", Some("reports-state")),
        );
        assert_eq!(g.extended, None);
        assert!(
            out.ends_with("      - configmaps\n  - verbs:\n      - update\n    apiGroups:\n      - \"\"\n    resources:\n      - configmaps\n    resourceNames:\n      - reports-state\n"),
            "{out}"
        );
        assert_eq!(
            rules_of(&out)[1],
            json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["reports-state"], "verbs": ["update"]})
        );
        assert_eq!(
            g.rule,
            "verbs [update] on configmaps named reports-state (core)"
        );
        // Dashes at the key's column.
        let text = format!(
            "{HEAD}rules:\n- apiGroups:\n  - apps\n  resources:\n  - deployments\n  verbs:\n  - get\n"
        );
        let (out, _) = applied(&text, &request("list", "", "pods", None));
        assert!(
            out.ends_with(
                "  - get\n- apiGroups:\n  - \"\"\n  resources:\n  - pods\n  verbs:\n  - list\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_role_without_rules_gets_the_one_rule() {
        for rules in ["", "rules: []\n"] {
            let text = format!("{HEAD}{rules}");
            let (out, _) = applied(&text, &request("list", "", "pods", None));
            assert_eq!(
                rules_of(&out),
                vec![json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]})]
            );
            assert!(out.contains("name: reports-runtime # ours"));
        }
    }

    #[test]
    fn a_rule_over_more_than_the_request_is_not_widened() {
        // `pods, services`: appending the verb would grant it on services too.
        let text = format!(
            "{HEAD}rules:\n- apiGroups: [\"\"]\n  resources: [\"pods\", \"services\"]\n  verbs: [\"get\"]\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\"]\n"
        );
        let (out, g) = applied(&text, &request("list", "", "pods", None));
        assert_eq!(g.extended, None);
        assert_eq!(rules_of(&out)[0]["verbs"], json!(["get"]));
        // A rule over every lease, the request about one: a rule for that lease alone.
        let text = format!(
            "{HEAD}rules:\n- apiGroups: [\"coordination.k8s.io\"]\n  resources: [\"leases\"]\n  verbs: [\"create\"]\n"
        );
        let (out, g) = applied(
            &text,
            &request("get", "coordination.k8s.io", "leases", Some("reports")),
        );
        assert_eq!(g.extended, None);
        assert_eq!(rules_of(&out)[1]["resourceNames"], json!(["reports"]));
    }

    #[test]
    fn no_wildcard_no_cluster_role_no_cluster_scope() {
        let text = format!("{HEAD}{FLOW}");
        let mut nodes = request("list", "", "nodes", None);
        nodes.cluster_scope = true;
        assert!(grant(&role(&text), &nodes).is_none());
        assert!(grant(&role(&text), &request("*", "", "pods", None)).is_none());
        assert!(grant(&role(&text), &request("list", "", "*", None)).is_none());
        let mut cluster_role = role(&text.replace("kind: Role", "kind: ClusterRole"));
        cluster_role.kind = "ClusterRole".into();
        assert!(grant(&cluster_role, &request("list", "", "pods", None)).is_none());
        // Whatever it appends, no `*` is written.
        for r in [
            request("watch", "", "configmaps", None),
            request("list", "batch", "jobs", None),
            request("get", "", "secrets", Some("reports-token")),
        ] {
            let (out, _) = applied(&text, &r);
            assert!(!out.contains('*'), "{out}");
        }
        // A shape the edit does not read: nothing rather than a guess.
        let flow_rules =
            format!("{HEAD}rules: [{{apiGroups: [\"\"], resources: [pods], verbs: [get]}}]\n");
        assert!(grant(&role(&flow_rules), &request("list", "", "pods", None)).is_none());
    }
}

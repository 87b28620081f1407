//! GitHub's REST API contract: every request squad's GitHub adapter sends, checked against
//! GitHub's official OpenAPI description (npm `@octokit/openapi`, unpacked by `scripts/tools`).

use anyhow::{Context, Result, bail};

/// GitHub's official OpenAPI description (npm `@octokit/openapi`, dereferenced), as
/// `scripts/tools` unpacks it; `None` is a skip, an error under CI=true.
pub fn openapi() -> Result<Option<serde_json::Value>> {
    let path = match std::env::var_os("SQUAD_GITHUB_OPENAPI") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::Path::new(
            &std::env::var_os("HOME").context("neither SQUAD_GITHUB_OPENAPI nor HOME is set")?,
        )
        .join(".cache/squad/github-openapi/api.github.com.deref.json"),
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))
            .map(Some),
        Err(e) => {
            let why = format!(
                "no GitHub OpenAPI description at {} ({e}); run scripts/tools",
                path.display()
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                bail!("{why}; CI=true, so this is a failure");
            }
            eprintln!("SKIPPED {why}");
            Ok(None)
        }
    }
}

/// Every recorded request against GitHub's OpenAPI description: the method and path exist, every
/// query parameter is declared, and the JSON body validates against the request-body schema.
pub fn contract_violations(
    spec: &serde_json::Value,
    requests: &[squad_sim::github_api::Recorded],
) -> Result<Vec<String>> {
    let paths = spec["paths"]
        .as_object()
        .context("the OpenAPI description has no `paths` object")?;
    // Templates as regexes; `{path}` and `{ref}` may hold slashes (contents paths, heads/main).
    let templates: Vec<(String, regex::Regex, usize)> = paths
        .keys()
        .map(|t| {
            let params = t.matches('{').count();
            let mut re = String::from("^");
            for part in t.split('/').skip(1) {
                re.push('/');
                re.push_str(&match part {
                    "{path}" | "{ref}" => ".+".to_string(),
                    p if p.starts_with('{') => "[^/]+".to_string(),
                    p => regex::escape(p),
                });
            }
            re.push('$');
            let re = regex::Regex::new(&re).with_context(|| format!("path template {t}"))?;
            Ok((t.clone(), re, params))
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for r in requests {
        let (path, query) = r.path.split_once('?').unwrap_or((r.path.as_str(), ""));
        let decoded = squad_sim::github_api::decode(path);
        let Some((template, _, _)) = templates
            .iter()
            .filter(|(_, re, _)| re.is_match(&decoded))
            .min_by_key(|(_, _, n)| *n)
        else {
            out.push(format!("{} {path}: no such path in GitHub's API", r.method));
            continue;
        };
        let Some(op) = paths[template].get(r.method.to_lowercase()) else {
            out.push(format!(
                "{} {path}: {template} has no {}",
                r.method, r.method
            ));
            continue;
        };
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if !declared.contains(&name.as_ref()) {
                out.push(format!(
                    "{} {template}: query parameter {name:?} is not one of {declared:?}",
                    r.method
                ));
            }
        }
        if !r.body.is_null() {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                out.push(format!(
                    "{} {template}: sends a body GitHub does not take",
                    r.method
                ));
                continue;
            }
            let validator = jsonschema::validator_for(schema).map_err(|e| {
                anyhow::anyhow!("{} {template}: request-body schema: {e}", r.method)
            })?;
            for e in validator.iter_errors(&r.body) {
                out.push(format!(
                    "{} {template}: body {}: {e}",
                    r.method,
                    e.instance_path()
                ));
            }
        }
    }
    Ok(out)
}

//! What the loader refuses: a scenario whose fields do not describe a world (a field out of its
//! range, a name given twice, a reference to nothing), each named with what was expected.

use squad_config::ConfigError;

use super::Scenario;

impl Scenario {
    /// Checks the loaded scenario; `file` names it in the error.
    pub(super) fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let f = |field: &str, expected: &str| ConfigError::field(file, field, expected);
        let mut names = std::collections::BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.name.is_empty() || !names.insert(n.name.as_str()) {
                return Err(f(&format!("nodes[{i}].name"), "a name no other node has"));
            }
            for (j, p) in n.other_pods.iter().enumerate() {
                let field = |k: &str| format!("nodes[{i}].other_pods[{j}].{k}");
                if p.name.is_empty() || p.namespace.is_empty() || p.container.is_empty() {
                    return Err(f(&field("name"), "a pod name, namespace and container"));
                }
                if p.owner.as_deref().is_some_and(|o| {
                    o.split_once('/')
                        .is_none_or(|(k, n)| k.is_empty() || n.is_empty())
                }) {
                    return Err(f(&field("owner"), "Kind/name, like Deployment/etl-loader"));
                }
                if p.started > self.now {
                    return Err(f(
                        &field("started"),
                        "a time at or before the scenario's now",
                    ));
                }
            }
            if n.unreachable_minutes_ago.is_some_and(|m| m > 24 * 60) {
                return Err(f(
                    &format!("nodes[{i}].unreachable_minutes_ago"),
                    "minutes from 0 to 1440 (the simulation replays the last day)",
                ));
            }
            if n.pod_network
                .as_ref()
                .is_some_and(|p| p.plugin.trim().is_empty())
            {
                return Err(f(
                    &format!("nodes[{i}].pod_network.plugin"),
                    "the network plugin's type, like aws-cni or calico",
                ));
            }
            for (j, t) in n.taints.iter().enumerate() {
                if !matches!(
                    t.effect.as_str(),
                    "NoSchedule" | "PreferNoSchedule" | "NoExecute"
                ) {
                    return Err(f(
                        &format!("nodes[{i}].taints[{j}].effect"),
                        &format!(
                            "NoSchedule, PreferNoSchedule or NoExecute; {:?} is none",
                            t.effect
                        ),
                    ));
                }
            }
        }
        if self.history.is_empty() {
            return Err(f("history", "at least one deploy (the one running now)"));
        }
        for (i, d) in self.history.iter().enumerate() {
            let prefix = format!("{}/", d.dir.trim_end_matches('/'));
            if !self.files.keys().any(|p| p.starts_with(&prefix)) {
                return Err(f(
                    &format!("history[{i}].dir"),
                    &format!(
                        "a directory of the scenario holding manifests; {:?} has no files",
                        d.dir
                    ),
                ));
            }
            if i > 0 && d.hours_ago > self.history[i - 1].hours_ago {
                return Err(f(
                    &format!("history[{i}].hours_ago"),
                    "deploys oldest first (hours_ago decreasing)",
                ));
            }
        }
        let live = self.live_manifests();
        let manifest = live.get(&self.workload.manifest).ok_or_else(|| {
            f(
                "workload.manifest",
                &format!(
                    "a file of the last deploy ({}); {:?} is not one",
                    self.history.last().map(|d| d.dir.as_str()).unwrap_or(""),
                    self.workload.manifest
                ),
            )
        })?;
        if let Some(dir) = &self.workload.kustomize {
            let dir = dir.trim_end_matches('/');
            // `""`: the repository's root is the overlay.
            let has = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
                .iter()
                .any(|k| {
                    live.contains_key(&if dir.is_empty() {
                        (*k).to_owned()
                    } else {
                        format!("{dir}/{k}")
                    })
                });
            if !has {
                return Err(f(
                    "workload.kustomize",
                    &format!(
                        "a directory of the last deploy holding a kustomization.yaml; {dir:?} has none"
                    ),
                ));
            }
        }
        if let Some(app) = &self.workload.helm
            && !live.contains_key(app)
        {
            return Err(f(
                "workload.helm",
                &format!("an Argo CD Application file of the last deploy; {app:?} is not one"),
            ));
        }
        // A chart's template names its container with an expression (`{{ .Chart.Name }}`).
        if self.workload.helm.is_none()
            && !manifest.contains(&format!("name: {}", self.workload.container))
        {
            return Err(f(
                "workload.container",
                &format!(
                    "a container of {}; {:?} is not named there",
                    self.workload.manifest, self.workload.container
                ),
            ));
        }
        if !self
            .files
            .contains_key(&format!("app/{}", self.app.handler))
        {
            return Err(f(
                "app.handler",
                &format!("a file under app/; app/{} does not exist", self.app.handler),
            ));
        }
        if self.workload.pods.is_empty() {
            return Err(f("workload.pods", "at least one pod name"));
        }
        if self.load.baseline_rps < 0.0 || self.load.base_mib <= 0.0 || self.load.per_rps_mib < 0.0
        {
            return Err(f("load", "non-negative rates and a positive base_mib"));
        }
        if !(0.0..100.0).contains(&self.load.daily_swing_percent) {
            return Err(f(
                "load.daily_swing_percent",
                "a percentage from 0 to below 100",
            ));
        }
        if !(0.0..24.0).contains(&self.load.daily_peak_hours_ago) {
            return Err(f("load.daily_peak_hours_ago", "hours from 0 to below 24"));
        }
        // The apiserver refuses a Namespace whose Pod Security labels it cannot read.
        for (name, n) in &self.namespaces {
            if n.labelled_hours_ago
                .is_some_and(|h| !h.is_finite() || h < 0.0)
            {
                return Err(f(
                    &format!("namespaces.{name}.labelled_hours_ago"),
                    "hours before now, 0 or more",
                ));
            }
            for (key, value) in &n.labels {
                let Some(mode) = key.strip_prefix("pod-security.kubernetes.io/") else {
                    continue;
                };
                let ok = match mode {
                    "enforce" | "audit" | "warn" => {
                        matches!(value.as_str(), "privileged" | "baseline" | "restricted")
                    }
                    "enforce-version" | "audit-version" | "warn-version" => {
                        value == "latest"
                            || value.strip_prefix("v1.").is_some_and(|m| {
                                !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())
                            })
                    }
                    _ => false,
                };
                if !ok {
                    return Err(f(
                        &format!("namespaces.{name}.labels.\"{key}\""),
                        "a Pod Security label: enforce, audit or warn set to privileged, baseline or restricted, or their -version set to latest or v1.<minor>",
                    ));
                }
            }
        }
        if let Some(r) = &self.registry
            && let Some(bad) = r
                .images
                .iter()
                .find(|i| !i.contains(':') && !i.contains('@'))
        {
            return Err(f(
                "registry.images",
                &format!("full image references with a tag or digest; {bad:?} has neither"),
            ));
        }
        if !self.alert.labels.contains_key("namespace") {
            return Err(f(
                "alert.labels.namespace",
                "the namespace label the alert carries",
            ));
        }
        Ok(())
    }
}

//! What the cluster's image scanner found: Trivy Operator's VulnerabilityReports
//! (aquasecurity.github.io/v1alpha1), matched to an image reference as Docker normalises it.

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use squad_protocols::cluster::ImageVulnerability;
use squad_runtime::ports::{PortError, PortResult};

use super::KubeCluster;

fn vulnerability_reports() -> ApiResource {
    ApiResource {
        group: "aquasecurity.github.io".into(),
        version: "v1alpha1".into(),
        api_version: "aquasecurity.github.io/v1alpha1".into(),
        kind: "VulnerabilityReport".into(),
        plural: "vulnerabilityreports".into(),
    }
}

impl KubeCluster {
    /// The vulnerabilities the scanner's reports list for `image`, each (id, package) once.
    pub(super) async fn scanned_vulnerabilities(
        &self,
        image: &str,
    ) -> PortResult<Vec<ImageVulnerability>> {
        let what = format!("image scan of {image}");
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &vulnerability_reports());
        let reports = match self.list(api, &what, &ListParams::default()).await {
            Ok(r) => r,
            Err(PortError::NotFound { .. }) => {
                return Err(PortError::Unavailable {
                    what,
                    detail: "the cluster has no image scanner reports (Trivy Operator's VulnerabilityReports, aquasecurity.github.io/v1alpha1, are not served)".into(),
                });
            }
            Err(e) => return Err(e),
        };
        let wanted = ImageName::parse(image);
        let mut out: Vec<ImageVulnerability> = Vec::new();
        for r in reports {
            let report = &r["report"];
            let artifact = ImageName {
                registry: report["registry"]["server"]
                    .as_str()
                    .unwrap_or("index.docker.io")
                    .to_owned(),
                repository: report["artifact"]["repository"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                tag: report["artifact"]["tag"].as_str().unwrap_or("").to_owned(),
            };
            if !wanted.same_image(&artifact) {
                continue;
            }
            for v in report["vulnerabilities"].as_array().into_iter().flatten() {
                let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
                let vuln = ImageVulnerability {
                    id: s("vulnerabilityID"),
                    package: s("resource"),
                    installed: s("installedVersion"),
                    fixed: s("fixedVersion"),
                    severity: s("severity").to_ascii_lowercase(),
                    title: s("title"),
                };
                if !out
                    .iter()
                    .any(|o| o.id == vuln.id && o.package == vuln.package)
                {
                    out.push(vuln);
                }
            }
        }
        Ok(out)
    }
}

/// An image reference split into registry, repository and tag (`docker.io/library/` defaults).
#[derive(Debug, PartialEq, Eq)]
struct ImageName {
    registry: String,
    repository: String,
    tag: String,
}

impl ImageName {
    fn parse(image: &str) -> ImageName {
        let image = image.split('@').next().unwrap_or(image);
        let (name, tag) = match image.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, t),
            _ => (image, "latest"),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((h, r)) if h.contains('.') || h.contains(':') || h == "localhost" => {
                (h.to_owned(), r.to_owned())
            }
            _ => ("index.docker.io".to_owned(), name.to_owned()),
        };
        let repository = if registry == "index.docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        ImageName {
            registry,
            repository,
            tag: tag.to_owned(),
        }
    }

    fn same_image(&self, other: &ImageName) -> bool {
        let docker = |r: &str| {
            if matches!(r, "docker.io" | "registry-1.docker.io") {
                "index.docker.io".to_owned()
            } else {
                r.to_owned()
            }
        };
        let repo = |r: &str| {
            if r.contains('/') {
                r.to_owned()
            } else {
                format!("library/{r}")
            }
        };
        docker(&self.registry) == docker(&other.registry)
            && (repo(&self.repository) == repo(&other.repository))
            && (other.tag.is_empty() || self.tag == other.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_normalise_like_docker() {
        let a = ImageName::parse("python:3.12");
        assert_eq!(a.registry, "index.docker.io");
        assert_eq!(a.repository, "library/python");
        assert_eq!(a.tag, "3.12");
        let b = ImageName::parse("ghcr.io/acme/payment-api:2.14.1");
        assert_eq!(
            (b.registry.as_str(), b.repository.as_str(), b.tag.as_str()),
            ("ghcr.io", "acme/payment-api", "2.14.1")
        );
        assert!(b.same_image(&ImageName::parse("ghcr.io/acme/payment-api:2.14.1")));
        assert!(!b.same_image(&ImageName::parse("ghcr.io/acme/payment-api:2.14.2")));
        let c = ImageName::parse("localhost:5000/app");
        assert_eq!(
            (c.registry.as_str(), c.tag.as_str()),
            ("localhost:5000", "latest")
        );
    }
}

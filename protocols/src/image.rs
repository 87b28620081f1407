//! Container image references.

/// The repository of an image reference: the reference without its digest and its tag (a port
/// in the registry's host is not a tag).
///
/// ```
/// use squad_protocols::image::repository;
/// assert_eq!(repository("ghcr.io/acme/api:3.5.0"), "ghcr.io/acme/api");
/// assert_eq!(repository("registry:5000/acme/api@sha256:ab12"), "registry:5000/acme/api");
/// assert_eq!(repository("registry:5000/acme/api"), "registry:5000/acme/api");
/// assert_eq!(repository("nginx"), "nginx");
/// ```
pub fn repository(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

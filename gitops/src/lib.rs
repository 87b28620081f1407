//! squad-gitops: what squad knows about a GitOps repository's files, with no IO.
//!
//! B'Elanna's fixes are pull requests that people review line by line, so edits here never
//! re-serialise a file: [`editor`] changes exactly the lines a fix needs (comments, key order and
//! quoting stay). [`objects`] reads Kubernetes objects — YAML manifests from the repository, or the
//! JSON an API server serves — into squad's own cluster types. [`kustomize`] keeps a
//! kustomization's `resources:` in step with the files a fix adds, and moves an edit to the overlay
//! that sets the value for an environment; [`helm`] moves it to the values key and file that feed
//! it. Quantities are [`squad_protocols::Quantity`], the one grammar squad has.

pub mod edit;
pub mod editor;
pub mod helm;
pub mod kustomize;
pub mod objects;
pub mod yaml;

pub use edit::{Edit, apply};
pub use editor::{ContainerTarget, ManifestError};

//! Kustomize: where a value is set for one environment, and the edits that change it there.
//!
//! A Kustomize repository declares a workload once, in a base, and each environment's overlay
//! patches it: production's memory limit, its image tag, its replicas. An edit of the base that
//! an overlay overrides renders to nothing in that environment; an edit of a base every
//! environment shares changes them all. [`Layout`] reads the kustomizations (resources, patches,
//! `images:`, namespace) and finds the chain of layers that renders the workload's manifest into
//! the affected namespace; [`retarget`] moves each of a remedy's edits of the manifest to the
//! topmost layer that sets the value, or, when none does and the base is shared, to the
//! environment's own patch of the container; an image tag set by `images:` is changed there.
//! A JSON 6902 patch that sets the field (an operation on its pointer) gets the new value in
//! that operation. The line edits of a kustomization ([`add_resource`], [`set_image_tag`]) are
//! the editor's.

mod json6902;
mod layout;
mod retarget;

pub use crate::editor::{add_resource, set_image_tag};
pub use layout::{
    ImageEntry, Kustomization, Layout, file_of, inline_path, is_kustomization, split_inline,
};
pub use retarget::retarget;

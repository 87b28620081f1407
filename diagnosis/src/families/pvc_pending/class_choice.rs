//! Which of the cluster's StorageClasses a claim gets: one whose provisioner can provision the
//! claim's access modes (`squad_protocols::storage`), the default when it can, else the only one
//! that can. A ReadWriteMany claim on a cluster whose default is block storage (EBS, PD, Azure
//! Disk) goes to the file-system class; with none or several that can, the platform chooses.

use squad_protocols::storage;

use super::{ClaimProblem, PvcSignals, WaitingClaim};

impl PvcSignals {
    /// `gp3 (default; ebs.csi.aws.com: ReadWriteOnce only)`.
    pub(super) fn class_in_words(&self, class: &str) -> String {
        let provisioner = self.provisioners.get(class).map_or("", String::as_str);
        let default = if self.default_class.as_deref() == Some(class) {
            "default; "
        } else {
            ""
        };
        if provisioner.is_empty() {
            format!("{class} ({default}provisioner unread)")
        } else {
            format!(
                "{class} ({default}{provisioner}: {})",
                storage::provisions(provisioner).in_words()
            )
        }
    }

    /// The class a claim with `modes` should use: the default when its provisioner can provision
    /// them, else the only class whose provisioner can. `Err` holds the classes that can (none,
    /// or several to choose from).
    pub(super) fn class_for(&self, modes: &[String]) -> Result<String, Vec<String>> {
        let can: Vec<String> = self
            .classes
            .iter()
            .filter(|c| {
                storage::can_provision(self.provisioners.get(*c).map_or("", String::as_str), modes)
            })
            .cloned()
            .collect();
        if let Some(default) = &self.default_class
            && can.contains(default)
        {
            return Ok(default.clone());
        }
        match can.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(can),
        }
    }
}

/// `ReadWriteMany`, `ReadWriteOnce and ReadOnlyMany`.
pub(super) fn modes_in_words(modes: &[String]) -> String {
    modes.join(" and ")
}

/// `; the default class gp3 (ebs.csi.aws.com) provisions ReadWriteOnce only, and the claim asks
/// for ReadWriteMany` when the default class could not provision a claim that names another
/// class or none; else nothing.
pub(super) fn default_refuses(s: &PvcSignals, c: &WaitingClaim) -> String {
    let (ClaimProblem::NoSuchClass { .. } | ClaimProblem::NoClass) = c.problem else {
        return String::new();
    };
    let Some(default) = &s.default_class else {
        return String::new();
    };
    let provisioner = s.provisioners.get(default).map_or("", String::as_str);
    match storage::refused(provisioner, &c.access_modes) {
        Some(mode) => format!(
            ", and the default class {default} ({provisioner}) provisions {}, not the {mode} it asks for",
            storage::provisions(provisioner).in_words()
        ),
        None => String::new(),
    }
}

/// ` (not the default gp3: its provisioner ebs.csi.aws.com provisions ReadWriteOnce only and
/// would refuse the claim)` when `class` is not the default; else nothing.
pub(super) fn why_not_default(s: &PvcSignals, class: &str) -> String {
    match &s.default_class {
        Some(default) if default != class => {
            let provisioner = s.provisioners.get(default).map_or("", String::as_str);
            format!(
                " (not the default {default}: its provisioner {provisioner} provisions {} and would refuse the claim)",
                storage::provisions(provisioner).in_words()
            )
        }
        _ => String::new(),
    }
}

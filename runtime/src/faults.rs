//! Fault injection, so tests can prove the crew survives what production throws at it.
//! Empty by default: an unarmed `Faults` costs one map lookup per assignment.

use std::sync::Arc;

use dashmap::DashMap;
use squad_protocols::Member;

#[derive(Clone, Default)]
pub struct Faults {
    panics: Arc<DashMap<Member, u32>>,
}

impl Faults {
    pub fn none() -> Self {
        Self::default()
    }

    /// Makes `member` panic inside its actor on its next `times` assignments.
    pub fn panic_member(&self, member: Member, times: u32) -> &Self {
        self.panics.insert(member, times);
        self
    }

    /// Called by a member's handler; panics if a panic is armed for it.
    #[allow(clippy::panic)] // the whole point: a real panic inside the actor
    pub fn check(&self, member: Member) {
        let fire = match self.panics.get_mut(&member) {
            Some(mut left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        if fire {
            panic!("injected fault: {member} panics mid-incident");
        }
    }

    /// Panics still armed, for tests to check every fault fired.
    pub fn armed(&self) -> u32 {
        self.panics.iter().map(|e| *e.value()).sum()
    }
}

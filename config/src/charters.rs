//! The crew's charters: each member's identity, what it owns, its boundaries and voice.
//! They are the system prompts of the LLM path and the header of what each member writes.

use squad_protocols::Member;

/// The shipped charter of a member (`config/agents/<name>.md`).
pub fn charter(member: Member) -> &'static str {
    match member {
        Member::Picard => include_str!("../agents/picard.md"),
        Member::Belanna => include_str!("../agents/belanna.md"),
        Member::Worf => include_str!("../agents/worf.md"),
        Member::Data => include_str!("../agents/data.md"),
        Member::Scribe => include_str!("../agents/scribe.md"),
        Member::Ralph => include_str!("../agents/ralph.md"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_has_a_charter_that_names_it() {
        for m in Member::ALL {
            assert!(charter(m).contains(m.display_name()), "{m}");
        }
    }
}

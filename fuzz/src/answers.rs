//! Model answers: `squad_protocols::llm::parse_answer::<T>` for each answer type the crew asks a
//! model for (the members' own, and the failure families' typed proposals B'Elanna's model
//! decides on).

use serde::Serialize;
use serde::de::DeserializeOwned;
use squad_agents::{data, ralph, scribe, worf};
use squad_diagnosis::families::{cpu_throttling, hpa_limited, liveness_probe, memory};
use squad_protocols::llm::parse_answer;

/// An accepted answer, written back as the model would (pretty JSON in a fence), reads the same;
/// a family's proposal reads the same through the family's own `parse`.
fn round_trip<T>(text: &str, proposal: bool) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let answer = parse_answer::<T>(text).ok()?;
    let pretty = serde_json::to_string_pretty(&answer).map_err(|e| e.to_string());
    let again = pretty
        .clone()
        .and_then(|p| parse_answer::<T>(&format!("```json\n{p}\n```")).map_err(|e| e.0));
    assert_eq!(
        again.as_ref(),
        Ok(&answer),
        "answer written back as {pretty:?}"
    );
    if proposal {
        let as_value = squad_diagnosis::family::parse_as::<T>(text).map_err(|e| e.0);
        let value = serde_json::to_value(&answer).map_err(|e| e.to_string());
        assert_eq!(
            as_value, value,
            "a family's parse differs from parse_answer"
        );
    }
    Some(answer)
}

/// `parse_answer::<T>`: the first byte picks the answer type (modulo 9: Worf's assessment,
/// Picard's triage, Scribe's lessons, Data's code review, Ralph's handover, then the CPU, HPA,
/// memory and liveness plans); the rest is the model's text. Accepted answers round-trip and go
/// through the member's check where it needs nothing else.
pub fn model_answer(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Some(text) = super::text(rest) else {
        return;
    };
    match which % 9 {
        0 => {
            if let Some(a) = round_trip::<worf::SecurityAssessment>(text, false) {
                let _ = worf::check_assessment(&a, &[]);
            }
        }
        1 => {
            round_trip::<squad_agents::picard::Triage>(text, false);
        }
        2 => {
            if let Some(l) = round_trip::<scribe::Lessons>(text, false) {
                let _ = scribe::check_lessons(&l);
            }
        }
        3 => {
            if let Some(r) = round_trip::<data::CodeReview>(text, false) {
                let _ = data::check_review(&r, &[]);
            }
        }
        4 => {
            if let Some(h) = round_trip::<ralph::Handover>(text, false) {
                let _ = ralph::check_handover(&h, true);
                let _ = ralph::check_handover(&h, false);
            }
        }
        5 => {
            round_trip::<cpu_throttling::CpuPlan>(text, true);
        }
        6 => {
            round_trip::<hpa_limited::MaxPlan>(text, true);
        }
        7 => {
            round_trip::<memory::MemoryPlan>(text, true);
        }
        _ => {
            round_trip::<liveness_probe::TimeoutPlan>(text, true);
        }
    }
}

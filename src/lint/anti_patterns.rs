//! Static lints for the seeds' anti-patterns about how segments are served: no segment
//! deprioritised on purpose ("ignoring negative segments"), and segments served the same way
//! ("one-size-fits-all").

use std::collections::BTreeSet;

use crate::diagnostic::{Problem, codes};
use crate::pipeline::Pipeline;

/// `no-negative-segment`: no segment says which customers are a bad fit.
pub fn no_negative_segment(pipeline: &Pipeline) -> Option<Problem> {
    let segments = &pipeline.spec.segments;
    if segments.is_empty() || segments.iter().any(|s| s.negative) {
        return None;
    }
    Some(
        pipeline
            .file
            .at_key(
                codes::NO_NEGATIVE_SEGMENT,
                "segments",
                "no segment is marked `negative: true`",
            )
            .help("say which customers are a bad fit: mark their segment `negative: true` with a `negative_reason`"),
    )
}

/// `one-size-fits-all`: each segment whose actions are the same set as an earlier segment's.
pub fn same_actions(pipeline: &Pipeline) -> Vec<Problem> {
    let segments = &pipeline.spec.segments;
    let action_sets: Vec<BTreeSet<String>> = segments
        .iter()
        .map(|s| normalised_actions(&s.actions))
        .collect();
    let mut lints = Vec::new();
    for (j, later) in action_sets.iter().enumerate() {
        if later.is_empty() {
            continue;
        }
        if let Some(i) = (0..j).find(|&i| action_sets[i] == *later) {
            lints.push(
                pipeline
                    .file
                    .at_key(
                        codes::ONE_SIZE_FITS_ALL,
                        &format!("segments[{j}].actions"),
                        format!(
                            "segments `{}` and `{}` declare the same actions, so they are served the same way",
                            segments[i].id, segments[j].id
                        ),
                    )
                    .help("give each segment actions of its own, or merge the two segments"),
            );
        }
    }
    lints
}

/// The actions as a set, each trimmed and lower-cased, without blank ones: "Call them" and
/// " call them " are the same action, and their order does not matter.
fn normalised_actions(actions: &[String]) -> BTreeSet<String> {
    actions
        .iter()
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_compare_as_trimmed_case_insensitive_sets() {
        let set = |items: &[&str]| {
            normalised_actions(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(set(&["Call them", "Email"]), set(&[" email ", "CALL THEM"]));
        assert_ne!(set(&["Call them"]), set(&["Call them", "Email"]));
        assert!(set(&["  ", ""]).is_empty());
    }
}

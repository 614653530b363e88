//! Did-you-mean suggestions and the "available names" help line.

/// The closest of `candidates` to `name`, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, c)| *distance <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A help line naming the likely intended name and the available ones.
pub fn available_help<'a>(
    name: &str,
    what: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    let list: Vec<&str> = candidates.clone().into_iter().collect();
    let listed = if list.is_empty() {
        format!("there are no {what}s")
    } else {
        format!("available {what}s: {}", list.join(", "))
    };
    match did_you_mean(name, candidates) {
        Some(best) => format!("did you mean `{best}`? {listed}"),
        None => listed,
    }
}

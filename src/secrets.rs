//! The values of interpolated `${ENV_VAR}`s, kept out of every text segflow writes.
//!
//! Set once when a pipeline is loaded; every writer of text (standard output, standard error,
//! the run folder's text files) passes what it writes through [`redact`], so a value that reaches
//! a message by any route (DataFusion's plan text, its errors, a profile) is masked there.
//! DataFusion and the JSON writer do not print a value as given: paths lose their leading `/`
//! or `./`, file URLs percent-encode, JSON escapes quotes and backslashes. Each of those
//! spellings is masked too.

use std::borrow::Cow;
use std::sync::OnceLock;

static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// What a secret is replaced with.
pub const MASK: &str = "[redacted]";

/// Shorter spellings are not masked: they would match ordinary words and numbers.
const SHORTEST: usize = 4;

/// Remember the values to mask. Only the first call counts: a process loads one pipeline's
/// secrets.
pub fn remember(values: Vec<String>) {
    let mut spellings: Vec<String> = values
        .iter()
        .flat_map(|value| spellings(value))
        .filter(|s| s.chars().count() >= SHORTEST)
        .collect();
    // Longest first, so a secret that contains another is masked whole.
    spellings.sort_by_key(|v| std::cmp::Reverse(v.len()));
    spellings.dedup();
    let _ = SECRETS.set(spellings);
}

/// Whether any value is being masked (messages are then not wrapped before masking, since a
/// line break inside a value would hide it from [`redact`]).
pub fn any() -> bool {
    SECRETS.get().is_some_and(|s| !s.is_empty())
}

/// The ways `value` can appear in what segflow writes.
fn spellings(value: &str) -> Vec<String> {
    let mut normalised = value.replace("/./", "/");
    while normalised.contains("//") {
        normalised = normalised.replace("//", "/");
    }
    let bare = normalised
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string();
    // A relative value climbing out (`../exports/tok`) is printed resolved, as an absolute path
    // ending in what follows the climb.
    let mut climbed = bare.as_str();
    while let Some(rest) = climbed
        .strip_prefix("../")
        .or_else(|| climbed.strip_prefix("./"))
    {
        climbed = rest;
    }
    let climbed = climbed.to_string();
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    let encoded = percent_encoded(&bare);
    // A value with line breaks is printed line by line (an error's gutter between them).
    let lines = value.lines().map(str::to_string);
    let mut all = vec![value.to_string(), normalised, bare, climbed, json, encoded];
    if value.contains('\n') {
        all.extend(lines);
    }
    // Markdown reports write angle brackets as entities (the `md` filter).
    all.extend(
        all.iter()
            .filter(|spelling| spelling.contains(['<', '>']))
            .map(|spelling| spelling.replace('<', "&lt;").replace('>', "&gt;"))
            .collect::<Vec<_>>(),
    );
    // HTML reports escape `/`, `&`, quotes and angle brackets (minijinja's HTML escaping).
    let escaped: Vec<String> = all
        .iter()
        .map(|spelling| html_escaped(spelling))
        .filter(|escaped| !all.contains(escaped))
        .collect();
    all.extend(escaped);
    all
}

/// `value` as minijinja's HTML auto-escaping writes it.
fn html_escaped(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            '/' => escaped.push_str("&#x2f;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// `value` as a file URL's path spells it.
fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `text` with every remembered secret replaced by [`MASK`], wherever it occurs: a value glued
/// to other letters (`client${ID}`, `${A}${B}`) is still the value.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.get().map(Vec::as_slice).unwrap_or_default();
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), MASK)
    }))
}

/// `bytes` redacted when they are text; other bytes (Parquet) are returned as they are.
pub fn redact_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(bytes) {
        Ok(text) => match redact(text) {
            Cow::Borrowed(_) => Cow::Borrowed(bytes),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        },
        Err(_) => Cow::Borrowed(bytes),
    }
}

/// The password a connection URL holds, if any (to mask it wherever it might be shown).
pub fn password_of(url: &str) -> Option<String> {
    let config: tokio_postgres::Config = url.parse().ok()?;
    config
        .get_password()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_escaped_spelling_is_known() {
        let found = spellings("data/saas&co");
        assert!(
            found.contains(&"data&#x2f;saas&amp;co".to_string()),
            "{found:?}"
        );
    }

    #[test]
    fn every_spelling_of_a_path_is_known() {
        let found = spellings("/srv//exports/./tok en\"x/");
        assert!(
            found.contains(&"srv/exports/tok en\"x".to_string()),
            "{found:?}"
        );
        assert!(
            found.contains(&"srv/exports/tok%20en%22x".to_string()),
            "{found:?}"
        );
        assert!(
            found.contains(&"/srv//exports/./tok en\\\"x/".to_string()),
            "{found:?}"
        );
    }

    #[test]
    fn climbs_and_line_breaks_are_spelled_too() {
        let found = spellings("../../up/acmeClient7731");
        assert!(
            found.contains(&"up/acmeClient7731".to_string()),
            "{found:?}"
        );
        let found = spellings("tok\nen-secret-x");
        assert!(found.contains(&"en-secret-x".to_string()), "{found:?}");
    }
}

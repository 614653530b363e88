//! The values of interpolated `${ENV_VAR}`s, kept out of every text segflow writes.
//!
//! Set once when a pipeline is loaded; every writer of text (standard output, standard error,
//! the run folder's text files) passes what it writes through [`redact`], so a value that reaches
//! a message by any route (DataFusion's plan text, its errors, a profile) is masked there.

use std::borrow::Cow;
use std::sync::OnceLock;

static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// What a secret is replaced with.
pub const MASK: &str = "[redacted]";

/// Remember the values to mask. Only the first call counts: a process loads one pipeline's
/// secrets.
pub fn remember(values: Vec<String>) {
    let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
    // Longest first, so a secret that contains another is masked whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let _ = SECRETS.set(values);
}

/// `text` with every remembered secret replaced by [`MASK`].
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

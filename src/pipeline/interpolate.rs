//! `${ENV_VAR}` interpolation in source paths, so secrets and machine-specific locations stay out
//! of the pipeline file. Values are substituted only where files are opened: reports, the
//! manifest and messages show the text as written, and error output redacts the values.

/// The variable names `${NAME}` in `text`, in order, or the first malformed placeholder.
pub fn variables(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
        let name = &after[..end];
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!(
                "`${{{name}}}` is not a valid environment variable name"
            ));
        }
        names.push(name);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// `text` with every `${NAME}` replaced by the environment's value; the first unset name is the
/// error.
pub fn interpolate(text: &str) -> Result<String, String> {
    interpolate_with(text, |value| value.to_string())
}

/// `text` with each `${NAME}` replaced by `quote(value)`: a glob pattern escapes the values, so
/// that only what the pipeline wrote is a pattern (`${EXPORT_DIR}` may be `Projects [2026]`).
pub fn interpolate_with(text: &str, quote: impl Fn(&str) -> String) -> Result<String, String> {
    let mut out = text.to_string();
    for name in variables(text)? {
        let value = std::env::var(name).map_err(|_| name.to_string())?;
        out = out.replacen(&format!("${{{name}}}"), &quote(&value), 1);
    }
    Ok(out)
}

/// `text` without its `${NAME}`s: what the pipeline itself wrote.
pub fn written_part(text: &str) -> String {
    let mut out = text.to_string();
    for name in variables(text).unwrap_or_default() {
        out = out.replacen(&format!("${{{name}}}"), "", 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_rejects_placeholders() {
        assert_eq!(variables("${A}/x/${B_2}.csv").unwrap(), ["A", "B_2"]);
        assert!(variables("plain.csv").unwrap().is_empty());
        assert!(variables("${A").is_err());
        assert!(variables("${1A}").is_err());
        assert!(variables("${A-B}").is_err());
    }

    #[test]
    fn substitutes_set_variables_and_names_unset_ones() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(interpolate("${PATH}/x").unwrap(), format!("{path}/x"));
        assert_eq!(
            interpolate("${SEGFLOW_SURELY_UNSET_VARIABLE}").unwrap_err(),
            "SEGFLOW_SURELY_UNSET_VARIABLE"
        );
    }
}

//! The minijinja environment: built-in templates embedded in the binary, overridable file by file
//! from a pipeline's `templates:` folder, with filters that format numbers for people.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::escape;
use crate::error::{Error, Result};

/// The built-in templates, by file name.
pub const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    (
        "report.html.j2",
        include_str!("../../templates/report.html.j2"),
    ),
    ("report.md.j2", include_str!("../../templates/report.md.j2")),
    (
        "comparison.md.j2",
        include_str!("../../templates/comparison.md.j2"),
    ),
    (
        "persona.md.j2",
        include_str!("../../templates/persona.md.j2"),
    ),
    (
        "history.md.j2",
        include_str!("../../templates/history.md.j2"),
    ),
    (
        "history.html.j2",
        include_str!("../../templates/history.html.j2"),
    ),
];

/// The most steps (about one per template instruction) one render may take. The example
/// pipeline's report.md with a comparison takes about 15,000 and report.html about 15,000, so
/// this leaves over 3,000 times that for larger pipelines, and stops a runaway template (two
/// nested `range(100000)` loops) within seconds.
const FUEL: u64 = 50_000_000;

/// Report templates ready to render.
pub struct Templates {
    env: Environment<'static>,
    overrides: Option<PathBuf>,
}

/// A pipeline's templates folder: the only place on disk templates are read from.
struct Folder {
    /// As given, for messages.
    shown: PathBuf,
    /// Symlinks resolved, to check where a template really is.
    root: PathBuf,
}

impl Templates {
    /// Built-in templates, each replaced by a file of the same name in `overrides` if present.
    pub fn new(overrides: Option<PathBuf>) -> Result<Self> {
        if let Some(dir) = &overrides
            && !dir.is_dir()
        {
            return Err(Error::Template {
                template: dir.display().to_string(),
                message: "the pipeline's `templates` folder does not exist".into(),
            });
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_fuel(Some(FUEL));
        // Markdown templates are escaped by their filters; everything else, a partial included
        // from an HTML report (`_features.j2`) among it, is HTML-escaped by default.
        env.set_auto_escape_callback(|name| {
            if name.contains(".md") {
                AutoEscape::None
            } else {
                AutoEscape::Html
            }
        });
        let folder = match &overrides {
            Some(dir) => Some(Folder::new(dir)?),
            None => None,
        };
        env.set_loader(move |name| load(folder.as_ref(), name));
        env.add_filter("thousands", thousands);
        env.add_filter("pct", pct);
        env.add_filter("num", num);
        env.add_filter("by_pair", by_pair);
        escape::add_filters(&mut env);
        Ok(Templates { env, overrides })
    }

    /// Render template `name` with `context`. NUL bytes never reach a report.
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<String> {
        let _watchdog = Watchdog::start(self.describe(name));
        let fail = |e: minijinja::Error| self.error(name, &e);
        let template = self.env.get_template(name).map_err(fail)?;
        let text = template
            .render(Value::from_serialize(context))
            .map_err(fail)?;
        Ok(escape::strip_controls(&text))
    }
}

impl Templates {
    /// The error of rendering `name`, saying what went wrong in words when the engine stopped a
    /// template that did too much work or recursed without end.
    fn error(&self, name: &str, e: &minijinja::Error) -> Error {
        let template = self.describe(e.name().unwrap_or(name));
        let chain = error_chain(e);
        let message = if chain
            .iter()
            .any(|e| e.kind() == minijinja::ErrorKind::OutOfFuel)
        {
            format!(
                "did too much work: rendering stopped after {FUEL} steps (a loop too long or \
                 nested too deep?); a real report needs far fewer"
            )
        } else if chain
            .iter()
            .any(|e| e.detail() == Some("recursion limit exceeded"))
        {
            recursion_message(&chain)
        } else {
            return self.innermost_error(name, &chain);
        };
        Error::Template { template, message }
    }

    /// An error inside an included template is reported at that template and line, with where
    /// it was included from, rather than as "error in b.j2" at the include.
    fn innermost_error(&self, name: &str, chain: &[&minijinja::Error]) -> Error {
        let at = |e: &minijinja::Error| match e.line() {
            Some(line) => format!("line {line}"),
            None => "the start".to_string(),
        };
        let inner = chain.last().copied().unwrap_or(chain[0]);
        let mut message = match inner.line() {
            Some(line) => format!(
                "line {line}: {}",
                inner.detail().unwrap_or(&inner.kind().to_string())
            ),
            None => inner.to_string(),
        };
        for outer in chain[..chain.len() - 1].iter().rev() {
            let outer_name = outer.name().unwrap_or(name);
            message.push_str(&format!(" (included from {outer_name} at {})", at(outer)));
        }
        Error::Template {
            template: self.describe(inner.name().unwrap_or(name)),
            message,
        }
    }
}

/// The error and the errors it wraps (an include wraps the included template's error).
fn error_chain(e: &minijinja::Error) -> Vec<&minijinja::Error> {
    let mut chain = vec![e];
    let mut current: &dyn std::error::Error = e;
    while let Some(source) = current.source() {
        if let Some(inner) = source.downcast_ref::<minijinja::Error>() {
            chain.push(inner);
        }
        current = source;
    }
    chain
}

/// Which template includes itself, with the path of includes back to it, when the chain of
/// errors shows one; else a macro that calls itself.
fn recursion_message(chain: &[&minijinja::Error]) -> String {
    let mut path: Vec<&str> = Vec::new();
    for name in chain.iter().filter_map(|e| e.name()) {
        if path.contains(&name) {
            path.push(name);
            return format!(
                "`{name}` includes itself ({}): recursion too deep",
                path.join(" → ")
            );
        }
        path.push(name);
    }
    "recursion too deep: a template includes itself or a macro calls itself without end".into()
}

impl Templates {
    /// A template's name, with the user's file when an override provides it.
    fn describe(&self, name: &str) -> String {
        match &self.overrides {
            Some(dir) if dir.join(name).is_file() => {
                format!("{name} ({})", dir.join(name).display())
            }
            _ => name.to_string(),
        }
    }
}

/// A template by name: from the folder when it holds one, else built in. Names that could reach
/// outside the folder are refused, so a template cannot read other files (`/etc/passwd`,
/// `/proc/self/environ`).
fn load(
    folder: Option<&Folder>,
    name: &str,
) -> std::result::Result<Option<String>, minijinja::Error> {
    if let Err(reason) = check_name(name) {
        return Err(refused(name, &reason));
    }
    if let Some(folder) = folder
        && let Some(text) = folder.read(name)?
    {
        return Ok(Some(text));
    }
    Ok(DEFAULT_TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| (*text).to_string()))
}

/// Why a template name is not a plain name relative to the templates folder, if it is not.
fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.contains('\0') {
        return Err("it contains a NUL byte".into());
    }
    if name.contains('\\') {
        return Err("it contains a backslash".into());
    }
    if name.starts_with('/') {
        return Err("it is an absolute path".into());
    }
    if name.split('/').any(|part| part == "..") {
        return Err("it goes up a folder (`..`)".into());
    }
    if name.split('/').any(|part| part.is_empty() || part == ".") {
        return Err("it has an empty or `.` part".into());
    }
    Ok(())
}

fn refused(name: &str, reason: &str) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "refused to load template `{}`: {reason}; templates come only from the templates \
             folder or the built-in set",
            name.escape_default()
        ),
    )
}

impl Folder {
    fn new(dir: &Path) -> Result<Self> {
        let root = dir.canonicalize().map_err(|e| Error::Template {
            template: dir.display().to_string(),
            message: format!("cannot read the templates folder: {e}"),
        })?;
        Ok(Folder {
            shown: dir.to_path_buf(),
            root,
        })
    }

    /// The text of template `name` (already checked by `check_name`), or None when the folder has
    /// no such file. A file that resolves outside the folder (through a symlink) is refused.
    fn read(&self, name: &str) -> std::result::Result<Option<String>, minijinja::Error> {
        let Ok(real) = self.root.join(name).canonicalize() else {
            return Ok(None);
        };
        if !real.starts_with(&self.root) {
            let reason = format!(
                "it resolves to {}, outside the templates folder {}",
                real.display(),
                self.shown.display()
            );
            return Err(refused(name, &reason));
        }
        let Ok(metadata) = real.metadata() else {
            return Ok(None);
        };
        if !metadata.is_file() {
            return Ok(None);
        }
        // A hard link is another name of a file that may live anywhere; a checkout never has one.
        if std::os::unix::fs::MetadataExt::nlink(&metadata) > 1 {
            return Err(refused(
                name,
                "it has other hard links, so it may be a file from outside the templates folder",
            ));
        }
        std::fs::read_to_string(&real).map(Some).map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("cannot read {}: {e}", self.shown.join(name).display()),
            )
        })
    }
}

/// How long one render may take. Fuel bounds the template's steps, but one step can take long
/// (`[1, 2] * 10000000000`, `indent(3000000000)`); real reports render in milliseconds.
fn render_time_limit() -> std::time::Duration {
    #[cfg(debug_assertions)]
    if let Some(seconds) = std::env::var("SEGFLOW_TEST_RENDER_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return std::time::Duration::from_secs(seconds);
    }
    std::time::Duration::from_secs(120)
}

/// Ends the process when a render outlives [`render_time_limit`]: a render cannot be stopped
/// from outside, so the unfinished run folder is removed and segflow exits with the template
/// error's code. Dropping the watchdog (the render ended) stops it.
struct Watchdog {
    _done: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    fn start(template: String) -> Self {
        let (done, ended) = std::sync::mpsc::channel::<()>();
        let limit = render_time_limit();
        std::thread::spawn(move || {
            if ended.recv_timeout(limit) != Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            let removed = matches!(
                super::output::interrupt(),
                super::output::Interrupt::Stop { removed: Some(_) }
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "error: segflow::template\n\n  × template `{template}` rendered for more than {} s and was stopped (an operation on a huge value, e.g. a list repeated billions of times){}",
                limit.as_secs(),
                if removed {
                    "; the unfinished run folder was removed"
                } else {
                    ""
                }
            );
            std::process::exit(i32::from(crate::error::exit::PIPELINE));
        });
        Watchdog { _done: done }
    }
}

/// Pairs of segments (items with `a` and `b`) by `"a b"` and `"b a"`, so that a table over all
/// pairs looks each one up instead of scanning the list in every cell (which grows with the
/// fourth power of the number of segments and would exhaust the render budget).
fn by_pair(pairs: Value) -> std::result::Result<Value, minijinja::Error> {
    let mut map = std::collections::BTreeMap::new();
    for pair in pairs.try_iter()? {
        let (a, b) = (pair.get_attr("a")?, pair.get_attr("b")?);
        map.insert(format!("{a} {b}"), pair.clone());
        map.insert(format!("{b} {a}"), pair);
    }
    Ok(Value::from(map))
}

/// `1234567` → `1,234,567`.
fn thousands(value: Value) -> String {
    let Some(number) = value
        .as_i64()
        .or_else(|| f64::try_from(value.clone()).ok().map(|f| f.round() as i64))
    else {
        return value.to_string();
    };
    group_digits(number)
}

fn group_digits(number: i64) -> String {
    let digits = number.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if number < 0 { format!("-{out}") } else { out }
}

/// A share `0.1234` → `12.3%`.
fn pct(value: Value) -> String {
    match f64::try_from(value.clone()) {
        Ok(share) => format!("{:.1}%", share * 100.0),
        Err(_) => value.to_string(),
    }
}

/// A number with thousands separators and at most `digits` decimals (default 2); text as is;
/// none as `–`.
fn num(value: Value, digits: Option<usize>) -> String {
    if value.is_none() || value.is_undefined() {
        return "–".to_string();
    }
    if let Some(int) = value.as_i64() {
        return group_digits(int);
    }
    match f64::try_from(value.clone()) {
        Ok(float) => {
            let digits = digits.unwrap_or(2);
            let text = format!("{:.*}", digits, float.abs());
            let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
            let whole: i64 = whole.parse().unwrap_or(0);
            let sign = if float < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
                "-"
            } else {
                ""
            };
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{sign}{}", group_digits(whole))
            } else {
                format!("{sign}{}.{fraction}", group_digits(whole))
            }
        }
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(Value::from(1234567)), "1,234,567");
        assert_eq!(thousands(Value::from(-1000)), "-1,000");
        assert_eq!(pct(Value::from(0.1234)), "12.3%");
        assert_eq!(num(Value::from(1234.5678), None), "1,234.57");
        assert_eq!(num(Value::from(2.0), None), "2");
        assert_eq!(num(Value::from(-0.001), None), "0");
        assert_eq!(num(Value::from(()), None), "–");
        assert_eq!(num(Value::from("2026-01-01"), None), "2026-01-01");
    }
}

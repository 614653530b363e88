//! The minijinja environment: built-in templates embedded in the binary, overridable file by file
//! from a pipeline's `templates:` folder, with filters that format numbers for people.

use std::path::{Path, PathBuf};

use minijinja::value::ValueKind;
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
    ("impact.md.j2", include_str!("../../templates/impact.md.j2")),
    (
        "history.md.j2",
        include_str!("../../templates/history.md.j2"),
    ),
    (
        "history.html.j2",
        include_str!("../../templates/history.html.j2"),
    ),
    (
        "chart-cohorts.svg.j2",
        include_str!("../../templates/chart-cohorts.svg.j2"),
    ),
    (
        "chart-sizes.svg.j2",
        include_str!("../../templates/chart-sizes.svg.j2"),
    ),
    (
        "chart-heatmap.svg.j2",
        include_str!("../../templates/chart-heatmap.svg.j2"),
    ),
    (
        "chart-matrix.svg.j2",
        include_str!("../../templates/chart-matrix.svg.j2"),
    ),
    (
        "chart-migration.svg.j2",
        include_str!("../../templates/chart-migration.svg.j2"),
    ),
    (
        "chart-concentration.svg.j2",
        include_str!("../../templates/chart-concentration.svg.j2"),
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
        env.add_filter("money", money);
        env.add_filter("yes_share", yes_share);
        env.add_filter("date", date);
        env.add_filter("points", points);
        env.add_filter("signed_pct", signed_pct);
        env.add_filter("effect", effect);
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

    /// Refuse template `name` when `real`, the path it resolves to, is outside the folder.
    fn confine(&self, name: &str, real: &Path) -> std::result::Result<(), minijinja::Error> {
        if real.starts_with(&self.root) {
            return Ok(());
        }
        let reason = format!(
            "it resolves to {}, outside the templates folder {}",
            real.display(),
            self.shown.display()
        );
        Err(refused(name, &reason))
    }

    /// The text of template `name` (already checked by `check_name`), or None when the folder has
    /// no such file. A file that resolves outside the folder (through a symlink) is refused.
    fn read(&self, name: &str) -> std::result::Result<Option<String>, minijinja::Error> {
        let Ok(real) = self.root.join(name).canonicalize() else {
            return Ok(None);
        };
        self.confine(name, &real)?;
        let Ok(mut file) = crate::run_folder::open_regular(&real) else {
            return Ok(None);
        };
        // Judge the file opened, not the name checked a moment before: a folder swapped for a
        // symlink in between must not lead out of the templates folder.
        let opened = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ))
        .map_err(|e| refused(name, &format!("cannot tell which file was opened: {e}")))?;
        self.confine(name, &opened)?;
        let Ok(metadata) = file.metadata() else {
            return Ok(None);
        };
        // A hard link is another name of a file that may live anywhere; a checkout never has one.
        if std::os::unix::fs::MetadataExt::nlink(&metadata) > 1 {
            return Err(refused(
                name,
                "it has other hard links, so it may be a file from outside the templates folder",
            ));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text)
            .map(|_| Some(text))
            .map_err(|e| {
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

/// A value as the number filters read it.
enum Reading {
    /// None, undefined or NaN: no value, shown as `–`.
    Missing,
    /// A number (possibly infinite: `"inf"` and `"-inf"` are how `segments.json` writes
    /// infinities). True and false read as 1 and 0.
    Number(f64),
    /// Text that is not a number, shown as it is.
    Text(String),
}

/// What every number filter shows for no value.
const MISSING: &str = "–";

/// The minus sign of the people-facing filters (`pct`, `money`, `points`, `effect`).
const MINUS: &str = "−";

fn read(value: &Value) -> Reading {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Reading::Missing,
        ValueKind::Bool => Reading::Number(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(number) if number.is_nan() => Reading::Missing,
            Ok(number) => Reading::Number(number),
            Err(_) => Reading::Text(value.to_string()),
        },
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            match text.to_ascii_lowercase().as_str() {
                "inf" | "+inf" | "infinity" => Reading::Number(f64::INFINITY),
                "-inf" | "-infinity" => Reading::Number(f64::NEG_INFINITY),
                "nan" => Reading::Missing,
                _ => Reading::Text(text.to_string()),
            }
        }
        _ => Reading::Text(value.to_string()),
    }
}

/// Formats a finite number with `finite`, everything else as the number filters agree: `–` for no
/// value, `∞` / `−∞`, text as it is.
fn people(value: &Value, finite: impl FnOnce(f64) -> String) -> String {
    match read(value) {
        Reading::Missing => MISSING.to_string(),
        Reading::Number(n) if n == f64::INFINITY => "∞".to_string(),
        Reading::Number(n) if n == f64::NEG_INFINITY => format!("{MINUS}∞"),
        Reading::Number(n) => finite(n),
        Reading::Text(text) => text,
    }
}

/// `1234567` → `1,234,567` (rounded to a whole number).
fn thousands(value: Value) -> String {
    if let Some(int) = value.as_i64() {
        return group_digits(int);
    }
    people(&value, |n| group_digits(n.round() as i64))
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

/// `number` with exactly `digits` decimals and thousands separators, its sign left to the caller
/// (`1234.5`, 1 → `1,234.5`).
fn fixed(number: f64, digits: usize) -> String {
    if number.abs() >= 1e18 {
        // Beyond whole numbers that group; no one reads 300 digits.
        return format!("{:e}", number.abs());
    }
    let text = format!("{:.*}", digits, number.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let grouped = match whole.parse::<i64>() {
        Ok(whole) => group_digits(whole),
        Err(_) => whole.to_string(),
    };
    if fraction.is_empty() {
        grouped
    } else {
        format!("{grouped}.{fraction}")
    }
}

/// The sign for `text`, a rounded `number`: none for zero once rounded, [`MINUS`] below it.
fn signed(number: f64, text: String, plus: bool) -> String {
    let zero = !text.chars().any(|c| c.is_ascii_digit() && c != '0');
    if zero {
        text
    } else if number < 0.0 {
        format!("{MINUS}{text}")
    } else if plus {
        format!("+{text}")
    } else {
        text
    }
}

/// A percentage (already times 100) as people read it: `0` for zero, two decimals below 1
/// (`0.35`), `<0.01` below that, else `default` decimals; `digits` overrides.
fn percent_digits(percent: f64, default: usize, digits: Option<usize>) -> String {
    if let Some(digits) = digits {
        return fixed(percent, digits);
    }
    let size = percent.abs();
    if size == 0.0 {
        "0".to_string()
    } else if size < 0.005 {
        "<0.01".to_string()
    } else if size < 1.0 {
        fixed(percent, 2)
    } else {
        fixed(percent, default)
    }
}

/// A share `0.1234` → `12.3%`; `0.0035` → `0.35%`; `0` → `0%`; `pct(2)`: `12.34%`.
fn pct(value: Value, digits: Option<usize>) -> String {
    people(&value, |share| {
        let percent = share * 100.0;
        signed(percent, percent_digits(percent, 1, digits), false) + "%"
    })
}

/// The mean of a true/false feature (the share of true) `0.53` → `53%`; under 1 % as `pct`.
fn yes_share(value: Value) -> String {
    people(&value, |share| {
        let percent = share * 100.0;
        signed(percent, percent_digits(percent, 0, None), false) + "%"
    })
}

/// A change in a share as percentage points: `0.012` → `+1.2 pts`, `-0.004` → `−0.4 pts`;
/// `points(2)` for two decimals.
fn points(value: Value, digits: Option<usize>) -> String {
    people(&value, |change| {
        let points = change * 100.0;
        signed(points, fixed(points, digits.unwrap_or(1)), true) + " pts"
    })
}

/// A relative change as a signed percentage: `0.125` → `+12.5%`, `-0.04` → `−4.0%`.
fn signed_pct(value: Value, digits: Option<usize>) -> String {
    people(&value, |change| {
        let percent = change * 100.0;
        signed(percent, fixed(percent, digits.unwrap_or(1)), true) + "%"
    })
}

/// Cohen's d with two decimals: `0.5312` → `0.53`, `-1.2` → `−1.20`.
fn effect(value: Value) -> String {
    people(&value, |d| signed(d, fixed(d, 2), false))
}

/// An amount rounded for people: `1225214.71` → `1.23M`, `45210` → `45.21k`, `4055.2` →
/// `4,055`, `42.5` → `42.50`. With a currency code (three capitals, e.g. `USD`) it leads:
/// `USD 1.23M`; any other unit follows: `12 days`.
fn money(value: Value, unit: Option<String>) -> String {
    let unit = unit.filter(|u| !u.trim().is_empty());
    let amount = |text: String| match &unit {
        Some(unit) if crate::pipeline::model::is_currency(unit) => format!("{unit} {text}"),
        Some(unit) => format!("{text} {unit}"),
        None => text,
    };
    match read(&value) {
        Reading::Number(n) if n.is_finite() => amount(signed(n, rounded_amount(n), false)),
        Reading::Number(_) => amount(people(&value, |_| String::new())),
        _ => people(&value, |_| String::new()),
    }
}

/// The size of an amount in the fewest characters a person needs: two decimals of k, M, B or T
/// from 10,000 on, whole numbers with separators from 100, cents below.
fn rounded_amount(amount: f64) -> String {
    const SUFFIXES: [&str; 4] = ["k", "M", "B", "T"];
    let size = amount.abs();
    if size >= 10_000.0 {
        let mut scaled = size / 1e3;
        let mut scale = 0;
        // 999,999 is 1.00M, not 1000.00k.
        while scale + 1 < SUFFIXES.len() && (scaled * 100.0).round() >= 100_000.0 {
            scaled /= 1e3;
            scale += 1;
        }
        format!("{}{}", fixed(scaled, 2), SUFFIXES[scale])
    } else if size == 0.0 {
        "0".to_string()
    } else if size >= 99.995 {
        fixed(size, 0)
    } else {
        fixed(size, 2)
    }
}

/// A date as `YYYY-MM-DD`: from an ISO date or timestamp (`2026-10-01T08:00:00` → `2026-10-01`)
/// or a number of days since 1970-01-01 (as Arrow stores dates). Other text is shown as it is.
fn date(value: Value) -> String {
    if let Some(text) = value.as_str() {
        if let (Some(day), Some(rest)) = (text.get(..10), text.get(10..))
            && (rest.is_empty() || rest.starts_with(['T', ' ']))
            && let Ok(date) = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        {
            return date.format("%Y-%m-%d").to_string();
        }
        return people(&value, |_| String::new());
    }
    people(&value, |days| {
        let epoch = chrono::DateTime::UNIX_EPOCH.date_naive();
        let whole = days.floor();
        let date = if whole.abs() > 1e8 {
            None
        } else if whole >= 0.0 {
            epoch.checked_add_days(chrono::Days::new(whole as u64))
        } else {
            epoch.checked_sub_days(chrono::Days::new((-whole) as u64))
        };
        match date {
            Some(date) => date.format("%Y-%m-%d").to_string(),
            None => num(value.clone(), None),
        }
    })
}

/// A number with thousands separators and at most `digits` decimals (default 2); text as is;
/// none as `–`.
fn num(value: Value, digits: Option<usize>) -> String {
    if let Some(int) = value.as_i64() {
        return group_digits(int);
    }
    people(&value, |float| {
        let text = fixed(float, digits.unwrap_or(2));
        let sign = if float < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
            "-"
        } else {
            ""
        };
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            &text
        };
        format!("{sign}{text}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Value {
        Value::from(())
    }

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(Value::from(1234567)), "1,234,567");
        assert_eq!(thousands(Value::from(-1000)), "-1,000");
        assert_eq!(thousands(Value::from(1234.6)), "1,235");
        assert_eq!(pct(Value::from(0.1234), None), "12.3%");
        assert_eq!(num(Value::from(1234.5678), None), "1,234.57");
        assert_eq!(num(Value::from(12345678.9), Some(1)), "12,345,678.9");
        assert_eq!(num(Value::from(-12345.0), None), "-12,345");
        assert_eq!(num(Value::from(2.0), None), "2");
        assert_eq!(num(Value::from(-0.001), None), "0");
        assert_eq!(num(Value::from(()), None), "–");
        assert_eq!(num(Value::from("2026-01-01"), None), "2026-01-01");
    }

    #[test]
    fn pct_gives_small_shares_more_digits() {
        assert_eq!(pct(Value::from(0.094), None), "9.4%");
        assert_eq!(pct(Value::from(1.0), None), "100.0%");
        assert_eq!(pct(Value::from(0.0035), None), "0.35%");
        assert_eq!(pct(Value::from(0.00001), None), "<0.01%");
        assert_eq!(pct(Value::from(0), None), "0%");
        assert_eq!(pct(Value::from(0.0), None), "0%");
        assert_eq!(pct(Value::from(0.12345), Some(2)), "12.35%");
        assert_eq!(pct(Value::from(0.5), Some(0)), "50%");
        assert_eq!(pct(Value::from(-0.25), None), "−25.0%");
    }

    #[test]
    fn yes_share_is_a_whole_percent() {
        assert_eq!(yes_share(Value::from(0.53)), "53%");
        assert_eq!(yes_share(Value::from(1)), "100%");
        assert_eq!(yes_share(Value::from(0.0)), "0%");
        assert_eq!(yes_share(Value::from(0.004)), "0.40%");
        assert_eq!(yes_share(Value::from(true)), "100%");
    }

    #[test]
    fn money_is_rounded_for_people() {
        assert_eq!(money(Value::from(1225214.71), None), "1.23M");
        assert_eq!(money(Value::from(10951521.27), None), "10.95M");
        assert_eq!(money(Value::from(45210.0), None), "45.21k");
        assert_eq!(money(Value::from(999_999.0), None), "1.00M");
        assert_eq!(money(Value::from(2.5e9), None), "2.50B");
        assert_eq!(money(Value::from(4055.2), None), "4,055");
        assert_eq!(money(Value::from(100), None), "100");
        assert_eq!(money(Value::from(42.5), None), "42.50");
        assert_eq!(money(Value::from(0.0), None), "0");
        assert_eq!(money(Value::from(-1225214.71), None), "−1.23M");
        assert_eq!(
            money(Value::from(1225214.71), Some("EUR".into())),
            "EUR 1.23M"
        );
        assert_eq!(money(Value::from(4055), Some("USD".into())), "USD 4,055");
        assert_eq!(money(Value::from(12), Some("days".into())), "12.00 days");
        assert_eq!(money(Value::from(120), Some("days".into())), "120 days");
        assert_eq!(money(Value::from(1.5), Some(String::new())), "1.50");
        assert_eq!(money(Value::from("inf"), Some("USD".into())), "USD ∞");
        assert_eq!(money(none(), Some("USD".into())), "–");
    }

    #[test]
    fn dates_are_dates() {
        assert_eq!(date(Value::from("2026-10-01")), "2026-10-01");
        assert_eq!(date(Value::from("2026-10-01T08:30:00")), "2026-10-01");
        assert_eq!(date(Value::from("2026-10-01 08:30:00.123")), "2026-10-01");
        assert_eq!(date(Value::from(20727)), "2026-10-01");
        assert_eq!(date(Value::from(20727.0)), "2026-10-01");
        assert_eq!(date(Value::from(-1)), "1969-12-31");
        assert_eq!(date(Value::from(1e300)), "1e300");
        assert_eq!(date(Value::from("next week")), "next week");
        assert_eq!(date(Value::from("2026-1-1")), "2026-1-1");
        assert_eq!(date(Value::from("2026-10-01é")), "2026-10-01é");
        assert_eq!(date(none()), "–");
    }

    #[test]
    fn changes_in_shares_are_signed() {
        assert_eq!(points(Value::from(0.012), None), "+1.2 pts");
        assert_eq!(points(Value::from(-0.004), None), "−0.4 pts");
        assert_eq!(points(Value::from(0.0), None), "0.0 pts");
        assert_eq!(points(Value::from(-0.0001), None), "0.0 pts");
        assert_eq!(points(Value::from(0.01234), Some(2)), "+1.23 pts");
        assert_eq!(signed_pct(Value::from(0.125), None), "+12.5%");
        assert_eq!(signed_pct(Value::from(-0.04), None), "−4.0%");
        assert_eq!(signed_pct(none(), None), "–");
    }

    #[test]
    fn effect_sizes_have_two_decimals() {
        assert_eq!(effect(Value::from(0.5312)), "0.53");
        assert_eq!(effect(Value::from(2)), "2.00");
        assert_eq!(effect(Value::from(-1.2)), "−1.20");
        assert_eq!(effect(Value::from(-0.001)), "0.00");
    }

    #[test]
    fn no_value_infinities_and_text_never_break_a_filter() {
        let awkward = [
            none(),
            Value::UNDEFINED,
            Value::from(f64::NAN),
            Value::from("nan"),
            Value::from(f64::INFINITY),
            Value::from("inf"),
            Value::from(f64::NEG_INFINITY),
            Value::from("-inf"),
            Value::from("n/a"),
            Value::from(vec![1, 2]),
            Value::from(i64::MAX),
            Value::from(f64::MAX),
        ];
        for value in awkward {
            for text in [
                thousands(value.clone()),
                pct(value.clone(), None),
                pct(value.clone(), Some(3)),
                num(value.clone(), None),
                money(value.clone(), Some("EUR".into())),
                yes_share(value.clone()),
                date(value.clone()),
                points(value.clone(), None),
                signed_pct(value.clone(), None),
                effect(value.clone()),
            ] {
                assert!(!text.is_empty(), "{value:?}");
            }
        }
        for missing in [
            none(),
            Value::UNDEFINED,
            Value::from(f64::NAN),
            Value::from("nan"),
        ] {
            assert_eq!(pct(missing.clone(), None), "–");
            assert_eq!(money(missing.clone(), None), "–");
            assert_eq!(effect(missing.clone()), "–");
            assert_eq!(thousands(missing), "–");
        }
        assert_eq!(num(Value::from("inf"), None), "∞");
        assert_eq!(num(Value::from(f64::NEG_INFINITY), None), "−∞");
        assert_eq!(effect(Value::from("-inf")), "−∞");
        assert_eq!(pct(Value::from("n/a"), None), "n/a");
    }

    #[test]
    fn templates_reach_the_filters() {
        let templates = Templates::new(None).unwrap();
        let mut env = templates.env.clone();
        env.add_template(
            "t.md.j2",
            "{{ r | money('EUR') }} {{ d | date }} {{ s | pct }} {{ s | pct(2) }} {{ c | points }} \
             {{ missing | money }} {{ none | yes_share }} {{ 0.8 | effect }} \
             {{ 5000 | money(no_unit) }}",
        )
        .unwrap();
        let text = env
            .get_template("t.md.j2")
            .unwrap()
            .render(
                minijinja::context! { r => 1225214.71, d => "2026-10-01", s => 0.094, c => -0.004 },
            )
            .unwrap();
        assert_eq!(
            text,
            "EUR 1.23M 2026-10-01 9.4% 9.40% −0.4 pts – – 0.80 5,000"
        );
    }
}

//! Escaping for the Markdown reports, as filters for templates (built-in and users' own): text
//! from the pipeline or the data renders as itself on GitHub, never as HTML, a link, a heading or
//! a broken table. Escapes only what GitHub would interpret at that position, so ordinary names
//! stay readable in the raw file.

use minijinja::{Environment, Value};

/// Register the escaping filters: `md` (inline text), `md_block` (paragraphs, line breaks kept),
/// `cell` (a table cell), `code` (an inline code span) and `code_cell` (a code span in a cell).
pub fn add_filters(env: &mut Environment<'_>) {
    env.add_filter("md", |value: Value| md(&text_of(&value)));
    env.add_filter("md_block", |value: Value| md_block(&text_of(&value)));
    env.add_filter("cell", |value: Value| cell(&text_of(&value)));
    env.add_filter("code", |value: Value| code(&text_of(&value)));
    env.add_filter("code_cell", |value: Value| code_cell(&text_of(&value)));
}

/// `text` without the control characters no report should carry: NUL and the other C0 codes
/// but tab, line feed and carriage return, DEL, the C1 codes (terminal escapes start with
/// them), and the bidirectional overrides and isolates that make text display in another
/// order than it reads.
pub fn strip_controls(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            let code = u32::from(c);
            !(matches!(code, 0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F..=0x9F)
                || matches!(code, 0x202A..=0x202E | 0x2066..=0x2069))
        })
        .collect()
}

/// A text cell of a CSV file, safe to open in a spreadsheet: NUL removed, and a `'` before a
/// leading `=`, `+`, `-`, `@`, tab or carriage return so that it is not read as a formula
/// (OWASP's rule). Only for text columns: a number column keeps its sign.
pub fn csv_text(text: &str) -> String {
    let text = strip_controls(text);
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Inline Markdown text (a heading, a list item, a sentence): line breaks become spaces and a
/// leading block marker (`#`, `-`, `1.`, `>`) is escaped.
pub fn md(text: &str) -> String {
    line_start(&inline(&fold(text), false))
}

/// A paragraph of Markdown text: line breaks are kept, and block markers escaped on every line.
pub fn md_block(text: &str) -> String {
    strip_controls(&text.replace("\r\n", "\n").replace('\r', "\n"))
        .split('\n')
        // Pipes escaped too: two lines of a description must not become a table.
        .map(|line| line_start(&inline(line, true)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Markdown table cell: also `|` escaped and line breaks folded. Cells hold inline content
/// only, so block markers need no escape.
pub fn cell(text: &str) -> String {
    inline(&fold(text), true)
}

/// An inline code span, its backtick fence longer than any run of backticks in the text.
pub fn code(text: &str) -> String {
    let text = fold(text);
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A space keeps a backtick at either end apart from the fence; GitHub strips one space.
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// An inline code span in a table cell: GitHub splits the row at `|` before reading code spans.
pub fn code_cell(text: &str) -> String {
    code(text).replace('|', "\\|")
}

/// NUL removed, line breaks folded into spaces.
fn fold(text: &str) -> String {
    strip_controls(text)
        .replace("\r\n", " ")
        .replace(['\n', '\r'], " ")
}

/// Escape what GitHub reads as inline markup: backslash escapes, emphasis, strikethrough, links
/// and images, raw HTML, entities; `|` too in a table cell. A complete code span (segflow's own
/// messages quote names that way) is kept: it renders its content as plain text.
fn inline(text: &str, in_cell: bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            let (span, next) = code_span(&chars, i);
            match span {
                Some(span) if in_cell => out.push_str(&span.replace('|', "\\|")),
                Some(span) => out.push_str(&span),
                None => out.push_str(&"\\`".repeat(next - i)),
            }
            i = next;
            continue;
        }
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' if starts_entity(&chars[i + 1..]) => out.push_str("&amp;"),
            '\\' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '|' if in_cell => out.push_str("\\|"),
            '*' | '~' if can_delimit(before, after) => {
                out.push('\\');
                out.push(c);
            }
            // `snake_case` is safe: GitHub ignores `_` inside a word.
            '_' if !(is_word(before) && is_word(after)) && can_delimit(before, after) => {
                out.push_str("\\_");
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// The code span opening at `start` (a run of backticks closed by a run of the same length) and
/// the index after it; without a closing run, None and the index after the opening run.
fn code_span(chars: &[char], start: usize) -> (Option<String>, usize) {
    let run = |at: usize| chars[at..].iter().take_while(|&&c| c == '`').count();
    let open = run(start);
    let mut at = start + open;
    while at < chars.len() {
        if chars[at] == '`' {
            let close = run(at);
            if close == open {
                let span = chars[start..at + close].iter().collect();
                return (Some(span), at + close);
            }
            at += close;
        } else {
            at += 1;
        }
    }
    (None, start + open)
}

/// Whether `*`, `_` or `~` could open or close emphasis: not with whitespace on both sides.
fn can_delimit(before: Option<char>, after: Option<char>) -> bool {
    let space = |c: Option<char>| c.is_none_or(char::is_whitespace);
    !(space(before) && space(after))
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

/// Whether the text after a `&` would make it an entity (`&lt;`, `&#60;`, `&#x3c;`).
fn starts_entity(rest: &[char]) -> bool {
    let Some(end) = rest.iter().position(|&c| c == ';') else {
        return false;
    };
    let name = &rest[..end];
    match name {
        ['#', 'x' | 'X', hex @ ..] => !hex.is_empty() && hex.iter().all(char::is_ascii_hexdigit),
        ['#', digits @ ..] => !digits.is_empty() && digits.iter().all(char::is_ascii_digit),
        [first, ..] => first.is_ascii_alphabetic() && name.iter().all(char::is_ascii_alphanumeric),
        [] => false,
    }
}

/// Escape a block marker at the start of a line: a heading (`#`), a list item (`-`, `+`, `*`,
/// `1.`, `1)`), a thematic break or setext underline (`---`, `===`), a quote (`>`, already an
/// entity) or a fenced code block (`~~~`, backticks already escaped).
fn line_start(line: &str) -> String {
    let body = line.trim_start_matches(' ');
    let indent = &line[..line.len() - body.len()];
    let first = body.chars().next();
    let escaped = match first {
        Some('#' | '-' | '+' | '*' | '=' | '~') => format!("\\{body}"),
        Some(c) if c.is_ascii_digit() => escape_ordinal(body),
        _ => return line.to_string(),
    };
    // Plain text like `-5%` or `#1` is left as it is when GitHub would not read a marker.
    if is_marker(body) {
        format!("{indent}{escaped}")
    } else {
        line.to_string()
    }
}

fn is_marker(body: &str) -> bool {
    let mut chars = body.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let rest = chars.as_str();
    match first {
        '#' => {
            let level = body.chars().take_while(|&c| c == '#').count();
            level <= 6
                && body[level..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == ' ' || c == '\t')
        }
        '-' | '+' | '*' | '=' | '~' => {
            rest.chars().next().is_none_or(|c| c == ' ' || c == '\t')
                || body.chars().all(|c| c == first || c == ' ')
        }
        _ => ordinal_end(body).is_some(),
    }
}

/// `12. ` or `12) `: the index of the `.` or `)`.
fn ordinal_end(body: &str) -> Option<usize> {
    let digits = body.chars().take_while(char::is_ascii_digit).count();
    let rest = &body[digits..];
    let mut chars = rest.chars();
    let mark = chars.next()?;
    let ends = chars.next().is_none_or(|c| c == ' ' || c == '\t');
    ((mark == '.' || mark == ')') && digits <= 9 && ends).then_some(digits)
}

fn escape_ordinal(body: &str) -> String {
    match ordinal_end(body) {
        Some(at) => format!("{}\\{}", &body[..at], &body[at..]),
        None => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_left_as_it_is() {
        for text in [
            "Power users",
            "product-platform",
            "power_users ~ struggling",
            "largest effect: 2 * 3 on revenue_12m",
            "R&D, 50% of accounts (signup_date)",
            "-5% since Q3",
            "#1 fans",
            "150 of 282 match `email_reachable`",
        ] {
            assert_eq!(md(text), text);
        }
    }

    #[test]
    fn markup_renders_as_text() {
        assert_eq!(
            md("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(
            md("[click](javascript:alert(1))"),
            "\\[click\\](javascript:alert(1))"
        );
        assert_eq!(
            md("**bold** _it_ ~~gone~~"),
            "\\*\\*bold\\*\\* \\_it\\_ \\~\\~gone\\~\\~"
        );
        assert_eq!(md("&lt; and &#60;"), "&amp;lt; and &amp;#60;");
        assert_eq!(md("# Title\nnext"), "\\# Title next");
        assert_eq!(md("1. first"), "1\\. first");
        assert_eq!(md("- item"), "\\- item");
        assert_eq!(
            md_block("a\n> quote\n## h\n---"),
            "a\n&gt; quote\n\\## h\n\\---"
        );
        assert_eq!(md("a\0b"), "ab");
        assert_eq!(md("* item"), "\\* item");
        assert_eq!(md("a ` b"), "a \\` b");
    }

    #[test]
    fn cells_keep_the_table_whole() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
        assert_eq!(cell("- not a list in a cell"), "- not a list in a cell");
        assert_eq!(code_cell("x || y"), "`x \\|\\| y`");
        assert_eq!(cell("match `a | b`"), "match `a \\| b`");
    }

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for lead in ["+", "-", "@", "\t", "\r"] {
            assert_eq!(
                csv_text(&format!("{lead}SUM(A1)")),
                format!("'{lead}SUM(A1)")
            );
        }
        assert_eq!(csv_text("Power users"), "Power users");
        assert_eq!(csv_text("a\0b"), "ab");
    }

    #[test]
    fn code_fences_outgrow_the_backticks_inside() {
        assert_eq!(code("a >= 3"), "`a >= 3`");
        assert_eq!(code("a `b` c"), "``a `b` c``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("x ``` y"), "````x ``` y````");
    }
}

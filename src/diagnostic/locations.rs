//! Source positions of the nodes of a pipeline file, so that problems found after parsing
//! (an unknown source name, a cycle, SQL that does not plan) point at the exact line and column.
//!
//! serde_yaml gives positions only for its own syntax and type errors, so the file is read a
//! second time with yaml-rust2's event parser, recording where every node starts.

use std::collections::HashMap;

use miette::SourceSpan;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A path to a node, written like `features[2].aggregate.expr` or `sources.events.path`.
pub type NodePath = str;

/// How deeply a pipeline file may nest mappings and sequences. Real pipelines use under ten
/// levels; the bound keeps a hostile file (30,000 levels in 60 KB) from exhausting the stack or
/// memory of the parsers that read it after this index.
pub const MAX_DEPTH: usize = 64;

/// Where each node of a YAML document starts and ends, by its path.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    values: HashMap<String, SourceSpan>,
    keys: HashMap<String, SourceSpan>,
    too_deep: Option<SourceSpan>,
}

impl Locations {
    /// Index `text`. Text that is not valid YAML yields an empty index (serde_yaml reports it).
    pub fn index(text: &str) -> Self {
        let mut builder = Builder {
            text,
            line_starts: line_starts(text),
            stack: Vec::new(),
            out: Locations::default(),
        };
        let mut parser = Parser::new_from_str(text);
        // Events one by one (`Parser::load` recurses per level); a syntax error stops indexing,
        // and what was indexed so far stays usable.
        loop {
            let (event, mark) = match parser.next_token() {
                Ok(next) => next,
                // The scanner's own bound on `[`/`{` nesting (255 levels) is too deep too.
                Err(error) if error.info() == "recursion limit exceeded" => {
                    let offset = builder.offset(error.marker());
                    builder.out.too_deep = Some(SourceSpan::new(offset.into(), 1));
                    break;
                }
                Err(_) => break,
            };
            if matches!(event, Event::StreamEnd) {
                break;
            }
            if builder.stack.len() >= MAX_DEPTH
                && matches!(event, Event::MappingStart(..) | Event::SequenceStart(..))
            {
                let offset = builder.offset(&mark);
                builder.out.too_deep = Some(SourceSpan::new(offset.into(), 1));
                break;
            }
            builder.on_event(event, mark);
        }
        builder.out
    }

    /// Where the file nests deeper than [`MAX_DEPTH`], if it does.
    pub fn too_deep(&self) -> Option<SourceSpan> {
        self.too_deep
    }

    /// The span of the value at `path`, if the file has it.
    pub fn value(&self, path: &NodePath) -> Option<SourceSpan> {
        self.values.get(path).copied()
    }

    /// The span of the mapping key that introduces `path`, falling back to its value.
    pub fn key(&self, path: &NodePath) -> Option<SourceSpan> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

/// Byte offset of a 1-based line and 0-based character column.
pub fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let starts = line_starts(text);
    let start = starts
        .get(line.saturating_sub(1))
        .copied()
        .unwrap_or(text.len());
    let rest = &text[start..];
    let within: usize = rest.chars().take(column).map(char::len_utf8).sum();
    start + within
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

enum Frame {
    Mapping {
        path: String,
        pending_key: Option<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

struct Builder<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    stack: Vec<Frame>,
    out: Locations,
}

impl Builder<'_> {
    fn offset(&self, mark: &Marker) -> usize {
        let start = self
            .line_starts
            .get(mark.line().saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len());
        let within: usize = self.text[start..]
            .chars()
            .take(mark.col())
            .map(char::len_utf8)
            .sum();
        start + within
    }

    /// Length in bytes of the scalar `value` written at `offset`.
    fn scalar_len(&self, offset: usize, value: &str) -> usize {
        let rest = &self.text[offset..];
        let line = rest.split('\n').next().unwrap_or("");
        if rest.starts_with(value) && !value.is_empty() {
            return value.len();
        }
        if let Some(quote) = line.chars().next().filter(|c| *c == '"' || *c == '\'')
            && let Some(end) = line[1..].rfind(quote)
        {
            return end + 2;
        }
        line.trim_end().len().max(1)
    }

    /// The path of the node about to start, consuming a pending mapping key or sequence slot.
    /// `None` means the node is a mapping key.
    fn next_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { path, pending_key }) => {
                pending_key.take().map(|key| join(path, &key))
            }
            Some(Frame::Sequence { path, next }) => {
                let child = format!("{path}[{next}]");
                *next += 1;
                Some(child)
            }
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let offset = self.offset(&mark);
        match event {
            Event::Scalar(value, ..) => {
                let span = SourceSpan::new(offset.into(), self.scalar_len(offset, &value));
                match self.next_path() {
                    Some(path) => {
                        self.out.values.insert(path, span);
                    }
                    None => {
                        if let Some(Frame::Mapping { path, pending_key }) = self.stack.last_mut() {
                            self.out.keys.insert(join(path, &value), span);
                            *pending_key = Some(value);
                        }
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.next_path().unwrap_or_default();
                let span = SourceSpan::new(offset.into(), self.scalar_len(offset, ""));
                self.out.values.entry(path.clone()).or_insert(span);
                self.stack
                    .push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Mapping {
                            path,
                            pending_key: None,
                        }
                    } else {
                        Frame::Sequence { path, next: 0 }
                    });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.next_path();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values_and_keys() {
        let text = "name: x\nfeatures:\n  - name: a\n    expr: \"b + 1\"\n  - name: c\n";
        let locations = Locations::index(text);
        let span = locations.value("features[0].expr").unwrap();
        assert_eq!(
            &text[span.offset()..span.offset() + span.len()],
            "\"b + 1\""
        );
        let span = locations.value("features[1].name").unwrap();
        assert_eq!(&text[span.offset()..span.offset() + span.len()], "c");
        let span = locations.key("features").unwrap();
        assert_eq!(&text[span.offset()..span.offset() + span.len()], "features");
    }

    #[test]
    fn byte_offset_counts_characters() {
        let text = "a: é\nb: 1\n";
        assert_eq!(byte_offset(text, 2, 3), text.find('1').unwrap());
        assert_eq!(byte_offset(text, 1, 4), text.find('\n').unwrap());
    }
}

//! Writing a history folder: `history.json`, the Markdown and HTML reports, and the manifest.
//! The HTML report's flow chart is laid out here (one stacked column per run, bands between
//! consecutive columns as wide as the flows); the numbers it shows arrive computed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::suppression::{MaskReason, Suppressor};
use super::{Templates, write_file, write_json};
use crate::analysis::history::{Flow, History, NOT_IN_EARLIER, NOT_IN_LATER, Size};
use crate::error::Result;
use crate::pipeline::model::UNASSIGNED;
use crate::run_folder::MANIFEST;
use crate::run_folder::history::{HISTORY, HISTORY_HTML, HISTORY_MD, HistoryManifest};

/// Write `history.json`, `history.md` and `history.html` into `dir`. Returns the files written.
pub fn write_history(dir: &Path, history: &History, templates: &Templates) -> Result<Vec<String>> {
    write_json(&dir.join(HISTORY), history)?;
    // history.json is the team's complete record; the documents for people are masked.
    let shown = for_people(history);
    let chart = FlowChart::of(&shown);
    let context = minijinja::context! { history => &shown, chart => &chart };
    for (template, file) in [
        ("history.md.j2", HISTORY_MD),
        ("history.html.j2", HISTORY_HTML),
    ] {
        let text = templates.render(template, &context)?;
        write_file(&dir.join(file), text.as_bytes())?;
    }
    Ok(vec![HISTORY.into(), HISTORY_MD.into(), HISTORY_HTML.into()])
}

/// `history` with the counts of groups smaller than its `min_cell` masked, and the counts that
/// would give them away by subtraction (see [`Suppressor`]): segment sizes and the unassigned
/// per run, the flows of each step (rows and columns of its migration matrix), and a step's
/// totals when one of them is small.
fn for_people(history: &History) -> History {
    let suppressor = Suppressor {
        min_cell: history.min_cell,
    };
    let mut shown = history.clone();
    for (j, run) in shown.runs.iter_mut().enumerate() {
        let present: Vec<usize> = (0..shown.segments.len())
            .filter(|&i| shown.segments[i].sizes.get(j).copied().flatten().is_some())
            .collect();
        let mut cells: Vec<u64> = present
            .iter()
            .filter_map(|&i| shown.segments[i].sizes[j].map(|size| size.customers))
            .collect();
        cells.push(run.unassigned);
        let masks = suppressor.mask_group(&cells);
        for (&i, mask) in present.iter().zip(&masks) {
            if mask.is_some()
                && let Some(size) = shown.segments[i].sizes[j].as_mut()
            {
                *size = Size {
                    customers: 0,
                    share: 0.0,
                    masked: true,
                };
            }
        }
        if masks.last().copied().flatten().is_some() {
            run.unassigned = 0;
            run.unassigned_share = 0.0;
            run.unassigned_masked = true;
        }
    }
    // A masked segment's feature means describe fewer customers than the threshold.
    for feature in &mut shown.means {
        for row in &mut feature.segments {
            let Some(segment) = shown.segments.iter().find(|s| s.id == row.segment) else {
                continue;
            };
            for (j, mean) in row.means.iter_mut().enumerate() {
                if segment
                    .sizes
                    .get(j)
                    .copied()
                    .flatten()
                    .is_some_and(|s| s.masked)
                {
                    *mean = None;
                }
            }
        }
    }
    // Which segments (and the unassigned) each run masks, by run index.
    let hidden: Vec<Vec<String>> = (0..shown.runs.len())
        .map(|j| {
            let mut ids: Vec<String> = shown
                .segments
                .iter()
                .filter(|s| {
                    s.sizes
                        .get(j)
                        .copied()
                        .flatten()
                        .is_some_and(|size| size.masked)
                })
                .map(|s| s.id.clone())
                .collect();
            if shown.runs[j].unassigned_masked {
                ids.push(UNASSIGNED.to_string());
            }
            ids
        })
        .collect();
    for (i, step) in shown.steps.iter_mut().enumerate() {
        let mut rows: Vec<String> = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        for flow in &step.flows {
            if !rows.contains(&flow.from) {
                rows.push(flow.from.clone());
            }
            if !columns.contains(&flow.to) {
                columns.push(flow.to.clone());
            }
        }
        let mut counts = vec![vec![0u64; columns.len()]; rows.len()];
        let place = |flow: &Flow| {
            let r = rows.iter().position(|r| *r == flow.from)?;
            let c = columns.iter().position(|c| *c == flow.to)?;
            Some((r, c))
        };
        for flow in &step.flows {
            if let Some((r, c)) = place(flow) {
                counts[r][c] = flow.customers;
            }
        }
        // Every flow of a segment masked in the run it leaves or enters would add up to its size.
        let empty = Vec::new();
        let (before, after) = (
            hidden.get(i).unwrap_or(&empty),
            hidden.get(i + 1).unwrap_or(&empty),
        );
        let given = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .map(|column| {
                        (before.contains(row) || after.contains(column))
                            .then_some(MaskReason::Complementary)
                    })
                    .collect()
            })
            .collect();
        let masks = suppressor.mask_table_with(&counts, given);
        for flow in step.flows.iter_mut() {
            if place(flow).is_some_and(|(r, c)| masks[r][c].is_some()) {
                flow.customers = 0;
                flow.masked = true;
            }
        }
        // Only non-empty flows are listed, so an empty partner is listed too, masked: otherwise
        // its absence would tell it is zero.
        for (r, row) in rows.iter().enumerate() {
            for (c, column) in columns.iter().enumerate() {
                if counts[r][c] == 0 && masks[r][c].is_some() {
                    step.flows.push(Flow {
                        from: row.clone(),
                        to: column.clone(),
                        customers: 0,
                        masked: true,
                    });
                }
            }
        }
        let totals = [step.stayed, step.moved, step.appeared, step.disappeared];
        // Stayed and moved are sums over the flows: with a masked flow, they would give it away.
        if step.flows.iter().any(|f| f.masked) || totals.iter().any(|&n| suppressor.is_small(n)) {
            step.stayed = 0;
            step.moved = 0;
            step.appeared = 0;
            step.disappeared = 0;
            step.totals_masked = true;
        }
    }
    shown
}

/// Write the history folder's `manifest.json` into `dir`.
pub fn write_history_manifest(dir: &Path, manifest: &HistoryManifest) -> Result<()> {
    write_json(&dir.join(MANIFEST), manifest)
}

/// Colours of segments, by their place in the history; the unassigned are grey.
const PALETTE: &[&str] = &[
    "#2f5fd0", "#e07b39", "#2a9d8f", "#c0392b", "#8e6bbf", "#d4a017", "#4f8a3c", "#b5527f",
    "#3b9bd1", "#7a6a58",
];
const UNASSIGNED_COLOUR: &str = "#9aa3b2";
/// Height of the tallest column's bars, without the gaps between them.
const STACK_HEIGHT: f64 = 360.0;
const NODE_WIDTH: f64 = 16.0;
const NODE_GAP: f64 = 8.0;
const COLUMN_SPACING: f64 = 190.0;
const LEFT: f64 = 56.0;
const TOP: f64 = 44.0;
/// Room right of the last column for its labels.
const RIGHT: f64 = 190.0;
const LEGEND_ITEM_WIDTH: f64 = 190.0;
const LEGEND_ROW: f64 = 22.0;
/// Bars shorter than this get no label (their tooltip and the tables have it).
const MIN_LABELLED_HEIGHT: f64 = 11.0;

/// The flow chart of a history, laid out for the SVG in `history.html`.
#[derive(Debug, Clone, Serialize)]
pub struct FlowChart {
    /// Width of the drawing.
    pub width: f64,
    /// Height of the drawing.
    pub height: f64,
    /// One heading per run.
    pub columns: Vec<ChartColumn>,
    /// The stacked bars.
    pub nodes: Vec<ChartNode>,
    /// The flows between consecutive columns.
    pub bands: Vec<ChartBand>,
    /// What each colour means.
    pub legend: Vec<LegendItem>,
}

/// A run's column heading.
#[derive(Debug, Clone, Serialize)]
pub struct ChartColumn {
    /// Centre of the column.
    pub x: f64,
    /// The run's as-of date.
    pub as_of: String,
    /// Its customers.
    pub customers: u64,
}

/// One bar of a column: a segment, the unassigned, or the customers who are new in the next
/// run or gone since the previous one (drawn as outlines).
#[derive(Debug, Clone, Serialize)]
pub struct ChartNode {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Fill colour.
    pub fill: &'static str,
    /// Whether it is an outline (customers not in this run).
    pub outline: bool,
    /// What it is.
    pub label: String,
    /// Whether the label fits beside it.
    pub show_label: bool,
    /// The run's as-of date.
    pub as_of: String,
    /// Customers.
    pub customers: u64,
    /// Share of the run's customers (none for customers not in the run).
    pub share: Option<f64>,
}

/// One flow, as a band between two bars.
#[derive(Debug, Clone, Serialize)]
pub struct ChartBand {
    /// The SVG path of the band's outline.
    pub path: String,
    /// Fill colour.
    pub fill: &'static str,
    /// Where the customers were.
    pub from: String,
    /// Where they went.
    pub to: String,
    /// The earlier run's as-of date.
    pub from_as_of: String,
    /// The later run's as-of date.
    pub to_as_of: String,
    /// Customers.
    pub customers: u64,
}

/// A legend entry.
#[derive(Debug, Clone, Serialize)]
pub struct LegendItem {
    /// Left edge of the swatch.
    pub x: f64,
    /// Top edge of the swatch.
    pub y: f64,
    /// Colour.
    pub fill: &'static str,
    /// Whether the swatch is an outline.
    pub outline: bool,
    /// What the colour means.
    pub label: String,
}

/// Bar keys of customers who are not in a run, beside that run's own bars.
const NEW_KEY: &str = "(new)";
const GONE_KEY: &str = "(gone)";

/// A bar before layout.
struct Bar {
    key: String,
    label: String,
    customers: u64,
    share: Option<f64>,
    fill: &'static str,
    outline: bool,
}

impl FlowChart {
    /// Lay out the flow chart of `history`.
    pub fn of(history: &History) -> Self {
        let colour = |id: &str| -> &'static str {
            if id == UNASSIGNED {
                return UNASSIGNED_COLOUR;
            }
            let place = history.segments.iter().position(|s| s.id == id);
            PALETTE[place.unwrap_or(0) % PALETTE.len()]
        };
        let columns_bars: Vec<Vec<Bar>> = history
            .runs
            .iter()
            .enumerate()
            .map(|(j, run)| {
                let mut bars: Vec<Bar> = history
                    .segments
                    .iter()
                    .filter_map(|segment| {
                        let size = segment.sizes.get(j).copied().flatten()?;
                        (size.customers > 0).then(|| Bar {
                            key: segment.id.clone(),
                            label: segment.name.clone(),
                            customers: size.customers,
                            share: Some(size.share),
                            fill: colour(&segment.id),
                            outline: false,
                        })
                    })
                    .collect();
                if run.unassigned > 0 {
                    bars.push(Bar {
                        key: UNASSIGNED.into(),
                        label: UNASSIGNED.into(),
                        customers: run.unassigned,
                        share: Some(run.unassigned_share),
                        fill: UNASSIGNED_COLOUR,
                        outline: false,
                    });
                }
                let gone = j
                    .checked_sub(1)
                    .and_then(|i| history.steps.get(i))
                    .map_or(0, |s| s.disappeared);
                if gone > 0 {
                    bars.push(Bar {
                        key: GONE_KEY.into(),
                        label: "gone since the previous run".into(),
                        customers: gone,
                        share: None,
                        fill: "#ffffff",
                        outline: true,
                    });
                }
                let new = history.steps.get(j).map_or(0, |s| s.appeared);
                if new > 0 {
                    bars.push(Bar {
                        key: NEW_KEY.into(),
                        label: "new in the next run".into(),
                        customers: new,
                        share: None,
                        fill: "#ffffff",
                        outline: true,
                    });
                }
                bars
            })
            .collect();
        let tallest = columns_bars
            .iter()
            .map(|bars| bars.iter().map(|b| b.customers).sum::<u64>())
            .max()
            .unwrap_or(0)
            .max(1);
        let most_bars = columns_bars.iter().map(Vec::len).max().unwrap_or(0);
        let scale = STACK_HEIGHT / tallest as f64;
        let column_x = |j: usize| LEFT + j as f64 * COLUMN_SPACING;

        let mut nodes = Vec::new();
        // Per column, bar key → index into `nodes`.
        let mut placed: Vec<BTreeMap<String, usize>> = Vec::new();
        for (j, bars) in columns_bars.into_iter().enumerate() {
            let mut y = TOP;
            let mut keys = BTreeMap::new();
            for bar in bars {
                let height = bar.customers as f64 * scale;
                keys.insert(bar.key, nodes.len());
                nodes.push(ChartNode {
                    x: column_x(j),
                    y: round(y),
                    width: NODE_WIDTH,
                    height: round(height),
                    fill: bar.fill,
                    outline: bar.outline,
                    label: bar.label,
                    show_label: height >= MIN_LABELLED_HEIGHT,
                    as_of: history.runs[j].as_of.clone(),
                    customers: bar.customers,
                    share: bar.share,
                });
                y += height + NODE_GAP;
            }
            placed.push(keys);
        }

        let mut bands = Vec::new();
        for (j, step) in history.steps.iter().enumerate() {
            let (Some(left), Some(right)) = (placed.get(j), placed.get(j + 1)) else {
                continue;
            };
            // (source bar, target bar, customers, flow) with both bars drawn.
            let mut links: Vec<(usize, usize, u64, usize)> = step
                .flows
                .iter()
                .enumerate()
                .filter(|(_, flow)| !flow.masked)
                .filter_map(|(f, flow)| {
                    let from = if flow.from == NOT_IN_EARLIER {
                        NEW_KEY
                    } else {
                        flow.from.as_str()
                    };
                    let to = if flow.to == NOT_IN_LATER {
                        GONE_KEY
                    } else {
                        flow.to.as_str()
                    };
                    Some((*left.get(from)?, *right.get(to)?, flow.customers, f))
                })
                .collect();
            // Bands leave each bar in the order of their targets and enter each bar in the order
            // of their sources, which keeps crossings few.
            let mut leaving: BTreeMap<usize, f64> = BTreeMap::new();
            let mut starts = vec![0.0; step.flows.len()];
            links.sort_by_key(|&(s, t, _, _)| (s, t));
            for &(s, _, customers, f) in &links {
                let offset = leaving.entry(s).or_insert(0.0);
                starts[f] = nodes[s].y + *offset;
                *offset += customers as f64 * scale;
            }
            let mut entering: BTreeMap<usize, f64> = BTreeMap::new();
            links.sort_by_key(|&(s, t, _, _)| (t, s));
            for &(s, t, customers, f) in &links {
                let offset = entering.entry(t).or_insert(0.0);
                let thickness = customers as f64 * scale;
                let (y0, y1) = (starts[f], nodes[t].y + *offset);
                *offset += thickness;
                let (x0, x1) = (nodes[s].x + NODE_WIDTH, nodes[t].x);
                let middle = (x0 + x1) / 2.0;
                let flow = &step.flows[f];
                let fill = if nodes[s].outline {
                    nodes[t].fill
                } else {
                    nodes[s].fill
                };
                bands.push((
                    (j, f),
                    ChartBand {
                        path: format!(
                            "M{:.1} {:.1}C{:.1} {:.1} {:.1} {:.1} {:.1} {:.1}L{:.1} {:.1}C{:.1} {:.1} {:.1} {:.1} {:.1} {:.1}Z",
                            x0,
                            y0,
                            middle,
                            y0,
                            middle,
                            y1,
                            x1,
                            y1,
                            x1,
                            y1 + thickness,
                            middle,
                            y1 + thickness,
                            middle,
                            y0 + thickness,
                            x0,
                            y0 + thickness
                        ),
                        fill,
                        from: flow.from.clone(),
                        to: flow.to.clone(),
                        from_as_of: step.from.clone(),
                        to_as_of: step.to.clone(),
                        customers: flow.customers,
                    },
                ));
            }
        }
        // Step by step in the order of the flows, as the tables list them.
        bands.sort_by_key(|(place, _)| *place);
        let bands: Vec<ChartBand> = bands.into_iter().map(|(_, band)| band).collect();

        let width = column_x(history.runs.len().saturating_sub(1)) + NODE_WIDTH + RIGHT;
        let legend_top = TOP + STACK_HEIGHT + NODE_GAP * most_bars as f64 + 16.0;
        let per_row = (((width - LEFT) / LEGEND_ITEM_WIDTH).floor() as usize).max(1);
        let mut entries: Vec<(&'static str, bool, String)> = history
            .segments
            .iter()
            .map(|s| (colour(&s.id), false, s.name.clone()))
            .collect();
        if history.runs.iter().any(|r| r.unassigned > 0) {
            entries.push((UNASSIGNED_COLOUR, false, UNASSIGNED.into()));
        }
        if history.steps.iter().any(|s| s.appeared + s.disappeared > 0) {
            entries.push(("#ffffff", true, "not in that run (new or gone)".into()));
        }
        let legend: Vec<LegendItem> = entries
            .into_iter()
            .enumerate()
            .map(|(i, (fill, outline, label))| LegendItem {
                x: LEFT + (i % per_row) as f64 * LEGEND_ITEM_WIDTH,
                y: legend_top + (i / per_row) as f64 * LEGEND_ROW,
                fill,
                outline,
                label,
            })
            .collect();
        let legend_rows = legend.len().div_ceil(per_row);
        FlowChart {
            width,
            height: legend_top + legend_rows as f64 * LEGEND_ROW + 8.0,
            columns: history
                .runs
                .iter()
                .enumerate()
                .map(|(j, run)| ChartColumn {
                    x: column_x(j) + NODE_WIDTH / 2.0,
                    as_of: run.as_of.clone(),
                    customers: run.customers,
                })
                .collect(),
            nodes,
            bands,
            legend,
        }
    }
}

/// A coordinate to one decimal.
fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::history::{Flow, HistoryRun, SegmentHistory, Size, Step};

    fn run(as_of: &str, customers: u64, unassigned: u64) -> HistoryRun {
        HistoryRun {
            folder: as_of.into(),
            pipeline: "p".into(),
            as_of: as_of.into(),
            customers,
            unassigned,
            unassigned_share: unassigned as f64 / customers as f64,
            unassigned_masked: false,
        }
    }

    fn size(customers: u64, of: u64) -> Option<Size> {
        Some(Size {
            customers,
            share: customers as f64 / of as f64,
            masked: false,
        })
    }

    fn example() -> History {
        let flow = |from: &str, to: &str, customers| Flow {
            from: from.into(),
            to: to.into(),
            customers,
            masked: false,
        };
        History {
            pipeline: "p".into(),
            title: "P".into(),
            runs: vec![run("2026-01-01", 100, 0), run("2026-04-01", 100, 10)],
            segments: vec![
                SegmentHistory {
                    id: "a".into(),
                    name: "A".into(),
                    sizes: vec![size(60, 100), size(50, 100)],
                },
                SegmentHistory {
                    id: "b".into(),
                    name: "B".into(),
                    sizes: vec![size(40, 100), None],
                },
                SegmentHistory {
                    id: "c".into(),
                    name: "C".into(),
                    sizes: vec![None, size(40, 100)],
                },
            ],
            steps: vec![Step {
                from: "2026-01-01".into(),
                to: "2026-04-01".into(),
                flows: vec![
                    flow("a", "a", 50),
                    flow("a", NOT_IN_LATER, 10),
                    flow("b", "c", 30),
                    flow("b", UNASSIGNED, 10),
                    flow(NOT_IN_EARLIER, "c", 10),
                ],
                stayed: 50,
                moved: 40,
                appeared: 10,
                disappeared: 10,
                totals_masked: false,
            }],
            features: Vec::new(),
            means: Vec::new(),
            criteria: Vec::new(),
            notes: Vec::new(),
            min_cell: 0,
        }
    }

    #[test]
    fn small_flows_and_sizes_are_masked_for_people_with_a_partner_in_each_line() {
        let mut history = example();
        history.min_cell = 15;
        let shown = for_people(&history);
        let step = &shown.steps[0];
        let masked: Vec<(&str, &str)> = step
            .flows
            .iter()
            .filter(|f| f.masked)
            .map(|f| (f.from.as_str(), f.to.as_str()))
            .collect();
        // Every flow of 10 is small; each row and column holding one also masks another.
        for small in [
            ("a", NOT_IN_LATER),
            ("b", UNASSIGNED),
            (NOT_IN_EARLIER, "c"),
        ] {
            assert!(masked.contains(&small), "{masked:?}");
        }
        for flow in step.flows.iter().filter(|f| f.masked) {
            assert_eq!(flow.customers, 0, "a masked flow keeps no count");
        }
        // Lines with one flow only have their total masked too (appeared, disappeared, the
        // unassigned), checked below.
        for line in ["a", "b"] {
            assert_ne!(
                masked.iter().filter(|(from, _)| *from == line).count(),
                1,
                "row {line}: {masked:?}"
            );
        }
        assert_ne!(
            masked.iter().filter(|(_, to)| *to == "c").count(),
            1,
            "column c: {masked:?}"
        );
        assert!(step.totals_masked, "appeared and disappeared are 10");
        assert!(
            shown.runs[1].unassigned_masked,
            "10 unassigned in the second run"
        );
        // The complete history is untouched.
        assert!(
            history.steps[0]
                .flows
                .iter()
                .all(|f| !f.masked && f.customers > 0)
        );
        // The chart draws no band of a masked flow.
        let chart = FlowChart::of(&shown);
        let unmasked = step.flows.iter().filter(|f| !f.masked).count();
        assert!(chart.bands.len() <= unmasked, "{} bands", chart.bands.len());
    }

    #[test]
    fn bars_are_proportional_and_bands_as_wide_as_their_flows() {
        let history = example();
        let chart = FlowChart::of(&history);
        // Column 1: a, b, new (10); column 2: a, c, unassigned, gone (10). Tallest: 110.
        let heights: Vec<(String, f64)> = chart
            .nodes
            .iter()
            .map(|n| (n.label.clone(), n.height))
            .collect();
        let unit = STACK_HEIGHT / 110.0;
        let expected = [
            ("A", 60.0),
            ("B", 40.0),
            ("new in the next run", 10.0),
            ("A", 50.0),
            ("C", 40.0),
            (UNASSIGNED, 10.0),
            ("gone since the previous run", 10.0),
        ];
        assert_eq!(heights.len(), expected.len());
        for ((label, height), (want_label, want)) in heights.iter().zip(expected) {
            assert_eq!(label, want_label);
            assert!((height - round(want * unit)).abs() < 1e-9, "{label}");
        }
        assert_eq!(chart.bands.len(), 5);
        let customers: Vec<u64> = chart.bands.iter().map(|b| b.customers).collect();
        assert_eq!(customers, [50, 10, 30, 10, 10]);
        // The band a → a starts at the top of both bars and is 50 customers thick.
        let first = &chart.bands[0].path;
        assert!(
            first.starts_with(&format!("M{:.1} {:.1}C", LEFT + NODE_WIDTH, TOP)),
            "{first}"
        );
        assert!(
            first.ends_with(&format!(
                "{:.1} {:.1}Z",
                LEFT + NODE_WIDTH,
                TOP + 50.0 * unit
            )),
            "{first}"
        );
        assert_eq!(chart.legend.len(), 5, "three segments, unassigned, outline");
    }
}

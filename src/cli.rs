//! Command-line definitions (clap derive) and nothing else.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::engine::{Engine, Scheduler};

/// Customer segmentation as version-controlled, reviewable, repeatable pipelines.
///
/// A pipeline file declares sources, per-customer features, ordered segment rules and their
/// owners; segflow runs it on the embedded Apache DataFusion engine and writes segment
/// assignments, statistics and stakeholder reports.
#[derive(Debug, Parser)]
#[command(name = "segflow", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// segflow's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline and write its run folder.
    ///
    /// The run folder is written completely or not at all, and an existing one is never
    /// overwritten unless --replace. It holds:
    ///   assignments.parquet      one row per customer: key, segment, features
    ///   segments.json            size, share and feature statistics per segment
    ///   segments.csv             the same figures as one flat table
    ///   criteria.json            each validation criterion's checks and verdicts
    ///   scoring.json             the prioritisation (when `scoring` is declared)
    ///   cohorts.json             cohorts, retention and lifetime value (when `cohorts` is declared)
    ///   lint.json                the run's lint warnings
    ///   report.html, report.md   the briefing for stakeholders
    ///   charts/*.svg             the report's charts
    ///   suppression.json         what small-cell suppression masked
    ///   personas/<segment>.md    one document per declared persona
    ///   manifest.json            version, pipeline, sources and their hashes, timings, exports
    ///   comparison.json          with --compare-to
    ///   report-context.json      with --context
    ///   profile.txt              with --profile
    ///
    /// Example:
    ///   segflow run pipelines/saas_quarterly.yaml
    ///   segflow run pipelines/saas_quarterly.yaml --as-of 2027-01-01 \
    ///       --source events=exports/2026q4/events.parquet --out runs/2026q4
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Write a starter pipeline, DIR/segments.yaml, from data files.
    ///
    /// Reads the files (CSV, Parquet, NDJSON, or folders of them): their columns and types,
    /// the key column that links them (`customer_id`, `id`, ...), the file listing each
    /// customer once, each other file's time column and role (transactions when it has an
    /// amount, events when not). Writes sources with declared types, the entity, starter
    /// features (recency, frequency and monetary value; activity counts and active days;
    /// tenure), three or four segments with thresholds from the data, and the five criteria.
    /// Every guess is a comment beside what it produced. When the files allow no guess, init
    /// says on stderr what it needs and writes a skeleton to fill in. An existing
    /// segments.yaml is never overwritten (exit code 5).
    ///
    /// Example:
    ///   segflow init my-segments --from exports/
    ///   segflow init my-segments --from customers.csv --from orders.parquet --dry-run
    #[command(verbatim_doc_comment)]
    Init(InitArgs),
    /// Check a pipeline file without running it.
    ///
    /// Checks YAML syntax, keys and types, names and references (unknown sources, features or
    /// columns, with the names that exist), SQL that does not parse or plan, duplicate ids and
    /// feature cycles. Reads only the sources' schemas, not their rows. Every problem is
    /// reported with its file, line and column.
    ///
    /// Example:
    ///   segflow validate pipelines/saas_quarterly.yaml
    #[command(verbatim_doc_comment)]
    Validate(ValidateArgs),
    /// Compare two run folders: last quarter's and this quarter's.
    ///
    /// Shows segment size changes (count, share, change in points), the migration matrix (how
    /// many customers moved from each old segment to each new one, including customers who
    /// appeared or disappeared), per-segment feature drift (mean, median and the population
    /// stability index), criteria whose status changed, and segments that appeared or
    /// vanished. Segments are matched by id; what cannot be matched is listed.
    ///
    /// Example:
    ///   segflow diff runs/saas_quarterly-2026-07-01 runs/saas_quarterly-2026-10-01
    #[command(verbatim_doc_comment)]
    Diff(DiffArgs),
    /// Show how the segments changed over many runs: sizes, flows, feature means, criteria.
    ///
    /// Reads run folders (or glob patterns, expanded by segflow when the shell did not), puts
    /// them in order of as-of date and writes a history folder: history.json, history.md and
    /// history.html with each segment's customers and share per run, the flows of customers
    /// between consecutive runs (a Sankey-style chart and tables: who stayed, moved, appeared
    /// or disappeared), the mean of chosen features per segment, and each criteria check's
    /// status per run. Segments are matched by id, as `diff` does; a segment that a run's
    /// pipeline does not declare is shown as absent, not as 0. Two runs of one pipeline with
    /// the same as-of date are refused.
    ///
    /// Example:
    ///   segflow history 'runs/saas_quarterly-*'
    ///   segflow history runs/2026q1 runs/2026q2 runs/2026q3 --feature revenue_12m \
    ///       --out runs/history-2026
    #[command(verbatim_doc_comment)]
    History(HistoryArgs),
    /// Lint the segmentation: warnings about anti-patterns and rules that can never match.
    ///
    /// Codes: too-many-segments, demographic-only, unreachable-rule, stale-review,
    /// missing-owner, missing-action, no-negative-segment, one-size-fits-all,
    /// segment-proliferation (against the earlier runs in --runs-dir) and, during `run`,
    /// empty-segment and persona-without-data. `segflow explain CODE` tells what each means.
    /// `validate` and `run` lint too; --deny-warnings makes warnings fail (exit code 7).
    ///
    /// Example:
    ///   segflow lint pipelines/saas_quarterly.yaml --deny-warnings
    #[command(verbatim_doc_comment)]
    Lint(LintArgs),
    /// Run the pipeline's own segment tests (its `tests:` section) on their fixture rows.
    ///
    /// Each test lists small hand-written customers (inline rows or fixture files per source)
    /// and the segment each must land in, optionally with feature values. The real sources are
    /// not read. Failures name the customer, the expected and actual segment, and the rule that
    /// matched. Exit code 8 when a test fails.
    ///
    /// Example:
    ///   segflow test pipelines/saas_quarterly.yaml
    #[command(verbatim_doc_comment)]
    Test(ValidateArgs),
    /// Show exactly what a run would execute, without reading any rows.
    ///
    /// Prints the generated SQL of every stage (the aggregate queries per source and window,
    /// each expression feature's projection, the segment CASE), or DataFusion's optimised
    /// logical plan, or its physical plan. Like dbt's `compile`.
    ///
    /// Example:
    ///   segflow plan pipelines/saas_quarterly.yaml
    ///   segflow plan pipelines/saas_quarterly.yaml --format physical
    #[command(verbatim_doc_comment)]
    Plan(PlanArgs),
    /// Print the pipeline as one SQL statement that computes the assignments in a warehouse.
    ///
    /// The statement (common table expressions, then a SELECT) returns one row per customer:
    /// the key, `segment`, then every feature in declaration order, as `segflow run` computes
    /// them. The as-of date is a literal. Each source is read from a table named after it (a
    /// Postgres source: its own table); --table maps a source to another table. What a dialect
    /// cannot express is refused (exit code 3), never written as SQL that computes something
    /// else. postgres and duckdb are run by segflow's tests; the others are checked as text
    /// only (see the README's table of engines and dialects).
    ///
    /// Example:
    ///   segflow compile pipelines/saas_quarterly.yaml --dialect postgres
    ///   segflow compile pipelines/saas_quarterly.yaml --dialect duckdb --as-of 2027-01-01 \
    ///       --table events=analytics.events
    #[command(verbatim_doc_comment)]
    Compile(CompileArgs),
    /// Explain a diagnostic code (an error or a lint): what it means, why it matters, what to do.
    ///
    /// Every code segflow prints (`segflow::unknown-column`, `segflow::stale-review`, ...) has
    /// an explanation.
    ///
    /// Example:
    ///   segflow explain unreachable-rule
    #[command(verbatim_doc_comment)]
    Explain {
        /// The code, e.g. `too-many-segments`.
        code: String,
    },
    /// Print the JSON Schema of the pipeline file.
    ///
    /// schemas/pipeline.schema.json is this output. Point your editor at it for completion and
    /// checking, e.g. with a first line
    ///   # yaml-language-server: $schema=../schemas/pipeline.schema.json
    ///
    /// Example:
    ///   segflow schema > schemas/pipeline.schema.json
    #[command(verbatim_doc_comment)]
    Schema,
    /// Print shell completions for segflow's commands and flags.
    ///
    /// Example (bash):
    ///   segflow completions bash > ~/.local/share/bash-completion/completions/segflow
    /// zsh: `segflow completions zsh > ~/.zfunc/_segflow` (with ~/.zfunc in $fpath);
    /// fish: `segflow completions fish > ~/.config/fish/completions/segflow.fish`.
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Re-render a finished run's reports and persona documents from its folder alone.
    ///
    /// Reads the run folder's documents (segments.json, criteria.json, scoring.json,
    /// lint.json, comparison.json, manifest.json) and renders report.html, report.md and the
    /// persona documents into a new folder, with edited templates and no data rerun. With the
    /// same templates the reports are byte-identical to the run's own.
    ///
    /// Example:
    ///   segflow templates export my-templates
    ///   segflow report runs/saas_quarterly-2026-10-01 --templates my-templates --out briefing
    ///   segflow report runs/saas_quarterly-2026-10-01 --pdf
    #[command(verbatim_doc_comment)]
    Report(ReportArgs),
    /// Work with report templates.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Show what a change of the pipeline does to the customers, before it merges.
    ///
    /// Runs the base version (a git revision, or --base-file) and the current version on the
    /// same data and as-of date, and writes impact.md (a pull-request comment: a summary first,
    /// details folded) and impact.json into a new folder (default under runs/; never
    /// overwritten unless --replace): the migration matrix, a deterministic sample of customers
    /// per changed cell, the rules, criteria, priorities, lints and feature definitions that
    /// changed. When only rules changed, the features are computed once. Exit code 14 when
    /// --fail-if-moved-above is exceeded (everything is written first).
    ///
    /// Example:
    ///   segflow impact pipelines/saas_quarterly.yaml --base main
    ///   segflow impact pipelines/saas_quarterly.yaml --base-file old.yaml \
    ///       --fail-if-moved-above 5% --no-sample
    #[command(verbatim_doc_comment)]
    Impact(ImpactArgs),
    /// Show what one segment is made of before it goes live.
    ///
    /// Computes the features as a run does, then prints: the customers left after each
    /// top-level AND condition of the segment's rule, in rule order (a funnel); how many of the
    /// customers the rule matches an earlier rule claimed (shadowing), by segment; a
    /// deterministic sample of members with their features; the overlap with every other
    /// segment's condition, ignoring order; and with --by, the members by a feature or a column
    /// of the customers' table.
    ///
    /// Example:
    ///   segflow preview pipelines/saas_quarterly.yaml --segment power_users --by plan
    #[command(verbatim_doc_comment)]
    Preview(PreviewArgs),
    /// Start the processes of an Apache Ballista cluster for `run --engine ballista://`.
    ///
    /// Stock Ballista scheduler and executors of the release segflow is built with; segflow's
    /// plans need no function of its own on them. Start one scheduler, then executors on every
    /// machine that sees the source files at the same paths.
    ///
    /// Example:
    ///   segflow ballista scheduler --bind 127.0.0.1:50050
    ///   segflow ballista executor --scheduler 127.0.0.1:50050 --bind 127.0.0.1:50051 \
    ///       --grpc-port 50052
    ///   segflow run pipelines/saas_quarterly.yaml --engine ballista://127.0.0.1:50050
    #[cfg(feature = "ballista")]
    #[command(subcommand, verbatim_doc_comment)]
    Ballista(BallistaCommand),
}

/// `segflow ballista` subcommands.
#[cfg(feature = "ballista")]
#[derive(Debug, Subcommand)]
pub enum BallistaCommand {
    /// Run a Ballista scheduler until stopped.
    Scheduler {
        /// Address and port to listen on.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
        bind: std::net::SocketAddr,
    },
    /// Run a Ballista executor until stopped.
    Executor {
        /// The scheduler to register with.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
        scheduler: std::net::SocketAddr,
        /// Address and port to listen on for shuffle data (Arrow Flight).
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
        bind: std::net::SocketAddr,
        /// Port for the scheduler's task requests (gRPC).
        #[arg(long, value_name = "PORT", default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once. Default: one per core.
        #[arg(long, value_name = "N")]
        concurrent_tasks: Option<usize>,
        /// Folder for shuffle files. Default: a temporary folder.
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Memory the executor's tasks share before they spill, e.g. `4GiB`. Default:
        /// Ballista's, a share of the machine's memory.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        memory_limit: Option<u64>,
    },
}

/// The folder default output folders are made in, set once per machine.
#[derive(Debug, Args)]
pub struct RunsDir {
    /// Folder of the pipeline's runs: `run` makes its default output folder there, `history`
    /// and the segment-proliferation lint read the earlier runs in it.
    #[arg(
        long = "runs-dir",
        value_name = "DIR",
        default_value = "runs",
        env = "SEGFLOW_RUNS_DIR"
    )]
    pub dir: PathBuf,
}

/// Options shared by commands that read a pipeline's sources.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Observation date (YYYY-MM-DD), replacing the pipeline's `as_of`.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<NaiveDate>,
    /// Read source NAME from PATH (relative to the working directory) instead of its declared
    /// path. Repeatable. E.g. `--source events=exports/q4/events.parquet`.
    #[arg(long = "source", value_name = "NAME=PATH", value_parser = parse_source_override)]
    pub sources: Vec<(String, PathBuf)>,
    /// Treat lint warnings as failures (exit code 7), for CI.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Options of `segflow run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pipeline and source options.
    #[command(flatten)]
    pub input: SourceArgs,
    /// Run folder to create. Default: <runs-dir>/<pipeline name>-<as-of date>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where the default output folder is made.
    #[command(flatten)]
    pub runs_dir: RunsDir,
    /// Replace the run folder if it exists, once the new run has fully succeeded; and export
    /// files an earlier segflow run exported.
    #[arg(long)]
    pub replace: bool,
    /// Compare with an earlier run folder: adds comparison.json and a comparison section to
    /// the reports.
    #[arg(long, value_name = "RUN_DIR")]
    pub compare_to: Option<PathBuf>,
    /// Report failed validation criteria as warnings and exit 0, instead of exiting with code 6.
    #[arg(long)]
    pub criteria_as_warnings: bool,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub format: MessageFormat,
    /// Memory the engine may use, e.g. `2GiB`, `512MiB`, `8GB`. Aggregations, joins and sorts
    /// spill to the temporary folder ($TMPDIR) rather than exceed it. Default: half of the
    /// machine's memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, env = "SEGFLOW_MEMORY_LIMIT")]
    pub memory_limit: Option<u64>,
    /// Worker threads (and partitions of each query). Default: one per core.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=1024),
        env = "SEGFLOW_THREADS"
    )]
    pub threads: Option<u16>,
    /// Where to compute the assignments: `embedded` (DataFusion inside segflow), `postgres`
    /// (inside the PostgreSQL database every source is in, as the SQL `segflow compile
    /// --dialect postgres` prints; the URL is the sources' own) or `ballista://HOST:PORT` (on
    /// an Apache Ballista cluster whose executors read the source files at the same paths; in
    /// builds with the `ballista` feature). Only the assignments are fetched; statistics,
    /// criteria and reports are the same as an embedded run's.
    #[arg(long, value_name = "ENGINE", default_value = "embedded", value_parser = parse_engine)]
    pub engine: Engine,
    /// Write `profile.txt` into the run folder: the executed physical plan with each
    /// operator's rows, time and spills.
    #[arg(long)]
    pub profile: bool,
    /// Show no progress on the terminal.
    #[arg(long, short)]
    pub quiet: bool,
    /// Render the reports with the templates in DIR (file by file; the rest built in). Takes
    /// the place of the pipeline's `templates:` folder.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Also write report-context.json: every field the report templates see.
    #[arg(long)]
    pub context: bool,
}

/// Options of `segflow init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to write segments.yaml into (created if missing).
    pub dir: PathBuf,
    /// Data files (CSV, Parquet, NDJSON) or folders of them. Repeatable; several values may
    /// follow one `--from`.
    #[arg(long, value_name = "FILE_OR_FOLDER", required = true, num_args = 1..)]
    pub from: Vec<PathBuf>,
    /// Print the pipeline on standard output instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `segflow report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The finished run folder.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Render with the templates in DIR (file by file; the rest built in).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Folder to create for the reports. Default: RUN_DIR-report beside the run folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the reports folder if it exists (only one segflow wrote).
    #[arg(long)]
    pub replace: bool,
    /// Also print report.html to report.pdf with headless Chromium.
    #[arg(long)]
    pub pdf: bool,
    /// Also write report-context.json: every field the report templates see.
    #[arg(long)]
    pub context: bool,
}

/// Options of `segflow impact`.
#[derive(Debug, Args)]
pub struct ImpactArgs {
    /// Pipeline and source options (of the current version; both versions read these sources).
    #[command(flatten)]
    pub input: SourceArgs,
    /// The base version: the pipeline file at this git revision (branch, tag or commit).
    #[arg(
        long,
        value_name = "REF",
        required_unless_present = "base_file",
        conflicts_with = "base_file"
    )]
    pub base: Option<String>,
    /// The base version as a file; its sources are read from the current version's folder.
    #[arg(long, value_name = "OLD.yaml")]
    pub base_file: Option<PathBuf>,
    /// Folder to write (default `<runs-dir>/<name>-impact-<as_of>`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where the default output folder is made.
    #[command(flatten)]
    pub runs_dir: RunsDir,
    /// Replace an impact folder segflow wrote earlier.
    #[arg(long)]
    pub replace: bool,
    /// Customer keys shown per changed cell of the migration matrix.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub sample: usize,
    /// Show no customer keys (for sensitive data).
    #[arg(long)]
    pub no_sample: bool,
    /// Exit with code 14 when more than this share of customers change segment, e.g. `5%` or
    /// `0.05`.
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    pub fail_if_moved_above: Option<f64>,
    /// Memory the engine may use, as for `run`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, env = "SEGFLOW_MEMORY_LIMIT")]
    pub memory_limit: Option<u64>,
    /// Show no progress on the terminal.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Options of `segflow preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Pipeline and source options.
    #[command(flatten)]
    pub input: SourceArgs,
    /// The segment's id.
    #[arg(long, value_name = "ID")]
    pub segment: String,
    /// Break the members down by this feature or column of the customers' table.
    #[arg(long, value_name = "COLUMN")]
    pub by: Option<String>,
    /// Members shown with their features.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub sample: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A share: `5%` or `0.05`, between 0 and 1.
fn parse_share(text: &str) -> Result<f64, String> {
    let share = match text.trim().strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a share: write `5%` or `0.05`"))?;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!("`{text}` is not between 0% and 100%"));
    }
    Ok(share)
}

/// `segflow templates` subcommands.
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Write the built-in templates into DIR for editing (an existing file is never
    /// overwritten).
    ///
    /// Example:
    ///   segflow templates export my-templates
    ///   segflow run pipelines/saas_quarterly.yaml --templates my-templates
    #[command(verbatim_doc_comment)]
    Export {
        /// Folder to write the templates into (created if missing).
        dir: PathBuf,
    },
    /// Print the reference of every field the report templates see, as Markdown.
    ///
    /// docs/template-context.md is this output.
    ///
    /// Example:
    ///   segflow templates reference > docs/template-context.md
    #[command(verbatim_doc_comment)]
    Reference,
}

/// A size in bytes from `2GiB`, `512MiB`, `1.5GB`, `100000` (binary and decimal units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. 2GiB, 512MiB or 8GB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}`; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
            ));
        }
    };
    let bytes = number * factor;
    if !(1.0..1e18).contains(&bytes) {
        return Err(format!("`{text}` is not a usable size"));
    }
    Ok(bytes as u64)
}

/// How diagnostics (errors and lint warnings) are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormat {
    /// For people, on stderr, with the pipeline file's lines.
    Human,
    /// One JSON object per line on stdout (code, severity, message, file, line, column, help),
    /// for editors and CI; stdout then holds nothing else.
    Json,
}

/// Where `segflow run` computes the assignments: `embedded`, `postgres` or
/// `ballista://HOST:PORT`.
fn parse_engine(text: &str) -> Result<Engine, String> {
    match text {
        "embedded" => Ok(Engine::Embedded),
        "postgres" => Ok(Engine::Postgres),
        _ if text.starts_with("ballista://") => Scheduler::parse(text).map(Engine::Ballista),
        _ => Err(format!(
            "`{text}` is not an engine: use `embedded`, `postgres` or `ballista://HOST:PORT`"
        )),
    }
}

/// What `segflow plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// The SQL of every stage, in order.
    Sql,
    /// DataFusion's optimised logical plan of the whole run.
    Logical,
    /// DataFusion's physical plan of the whole run.
    Physical,
}

/// Options of `segflow plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Pipeline and source options.
    #[command(flatten)]
    pub input: SourceArgs,
    /// What to print.
    #[arg(long, value_enum, default_value_t = PlanFormat::Sql)]
    pub format: PlanFormat,
}

impl Command {
    /// The diagnostics format this command was asked for.
    pub fn message_format(&self) -> MessageFormat {
        match self {
            Command::Run(args) => args.format,
            Command::Validate(args) | Command::Test(args) => args.format,
            Command::Lint(args) => args.format,
            _ => MessageFormat::Human,
        }
    }
}

/// Options of `segflow compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Pipeline and source options (the sources' columns are read, not their rows).
    #[command(flatten)]
    pub input: SourceArgs,
    /// The SQL dialect: postgres, duckdb, bigquery, snowflake, mysql or sqlite.
    #[arg(long, value_name = "DIALECT")]
    pub dialect: crate::engine::Dialect,
    /// Read source NAME from TABLE (e.g. `events=analytics.events`), as the target spells it.
    /// Repeatable.
    #[arg(long = "table", value_name = "NAME=TABLE", value_parser = parse_table)]
    pub tables: Vec<(String, crate::engine::portable::TableName)>,
}

/// Options of `segflow diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run folder.
    pub old: PathBuf,
    /// The later run folder.
    pub new: PathBuf,
    /// Print the comparison as JSON (the content of comparison.json) instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

/// Options of `segflow history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Run folders, or glob patterns matching them (`'runs/saas_quarterly-*'`; history folders
    /// are skipped), in any order: they are shown in order of as-of date. At least two.
    #[arg(value_name = "RUN_FOLDER", required = true)]
    pub runs: Vec<PathBuf>,
    /// Show the mean of feature NAME per segment and run. Repeatable. Default: the numeric
    /// features of the latest run.
    #[arg(long = "feature", value_name = "NAME")]
    pub features: Vec<String>,
    /// History folder to create. Default: <runs-dir>/NAME-history-FIRST-LAST, with the latest
    /// run's pipeline NAME and the first and last as-of dates.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where the default output folder is made.
    #[command(flatten)]
    pub runs_dir: RunsDir,
    /// Replace the history folder if it exists (only one segflow wrote), once the new one is
    /// complete.
    #[arg(long)]
    pub replace: bool,
    /// Read history.md.j2 and history.html.j2 from DIR when it has them, instead of the
    /// built-in templates.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// Options of `segflow validate`, `lint` and `test`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Pipeline and source options.
    #[command(flatten)]
    pub input: SourceArgs,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub format: MessageFormat,
}

/// Options of `segflow lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Pipeline and source options.
    #[command(flatten)]
    pub input: SourceArgs,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    pub format: MessageFormat,
    /// The pipeline's earlier runs, for the segment-proliferation lint.
    #[command(flatten)]
    pub runs_dir: RunsDir,
}

fn parse_table(text: &str) -> Result<(String, crate::engine::portable::TableName), String> {
    match text.split_once('=') {
        Some((name, table)) if !name.is_empty() && !table.is_empty() => Ok((
            name.to_string(),
            crate::engine::portable::parse_table(table)?,
        )),
        _ => Err(format!("expected NAME=TABLE, got `{text}`")),
    }
}

fn parse_source_override(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=PATH, got `{text}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `segflow help run` names every file of the README's run-folder table.
    #[test]
    fn help_run_lists_every_file_a_run_writes() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("### The run folder\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").nth(1))
            .expect("the README's run-folder table");
        let help = Cli::command()
            .find_subcommand_mut("run")
            .expect("run")
            .render_long_help()
            .to_string();
        let files: Vec<&str> = table
            .lines()
            .skip(2)
            .filter_map(|row| row.split('`').nth(1))
            .collect();
        assert!(files.len() > 10, "{files:?}");
        for file in files {
            assert!(help.contains(file), "`segflow help run` lacks {file}");
        }
    }

    /// Every command `--help` shows has a row in the README's command table, and the row names
    /// every flag that `--help` lists for it.
    #[test]
    fn the_readme_command_table_lists_every_command_and_flag() {
        let readme = include_str!("../README.md");
        let table: Vec<&str> = readme
            .split("## Commands\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("the README's command table")
            .lines()
            .collect();
        fn visit(command: &clap::Command, path: &str, table: &[&str], missing: &mut Vec<String>) {
            if command.has_subcommands() {
                for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                    visit(sub, &format!("{path} {}", sub.get_name()), table, missing);
                }
                return;
            }
            let Some(row) = table
                .iter()
                .find(|row| row.contains(&format!("`segflow{path}")))
            else {
                missing.push(format!("segflow{path}: no row"));
                return;
            };
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if long != "help" && !row.contains(&format!("--{long}")) {
                    missing.push(format!("segflow{path}: --{long}"));
                }
            }
        }
        let mut missing = Vec::new();
        visit(&Cli::command(), "", &table, &mut missing);
        assert!(
            missing.is_empty(),
            "missing from the README's table: {missing:?}"
        );
    }

    #[test]
    fn sizes_in_binary_and_decimal_units() {
        assert_eq!(parse_size("2GiB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("512 MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("100000"), Ok(100_000));
        assert!(parse_size("2 GiGs").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn source_override_needs_name_and_path() {
        assert_eq!(
            parse_source_override("events=a/b.parquet").unwrap(),
            ("events".to_string(), PathBuf::from("a/b.parquet"))
        );
        assert!(parse_source_override("events").is_err());
        assert!(parse_source_override("=x").is_err());
    }
}

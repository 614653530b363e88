//! The registry of every diagnostic code segflow emits, errors and lints alike, with the text
//! `segflow explain CODE` prints. Emitters refer to these constants, never to bare strings, so a
//! code cannot exist without its documentation.

/// Whether a code stops the command or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The command fails.
    Error,
    /// A lint: reported, and a failure only with `--deny-warnings`.
    Warning,
}

/// One diagnostic code and its documentation.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    /// The code as users see it, e.g. `unknown-column`.
    pub name: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What it means, why it matters, and what to do.
    pub explanation: &'static str,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $constant:ident = $name:literal, $severity:ident, $explanation:literal; )*) => {
        $( $(#[$doc])* pub const $constant: &Code = &Code {
            name: $name,
            severity: Severity::$severity,
            explanation: $explanation,
        }; )*
        /// Every code, in documentation order.
        pub const ALL: &[&Code] = &[$($constant),*];
    };
}

codes! {
    /// The pipeline file is not valid YAML, or its keys and types do not match the schema.
    INVALID_YAML = "invalid-yaml", Error, "The pipeline file is not valid YAML, or a key or value does not fit the pipeline schema (a misspelt key, a list where a mapping belongs, a word where a number belongs, a key given twice). The message says which, at the line and column; misspelt keys get a did-you-mean. `segflow schema` prints the schema, and editors check files against schemas/pipeline.schema.json as you type.";
    /// `version` is not 1.
    UNSUPPORTED_VERSION = "unsupported-version", Error, "The file declares a `version` this segflow does not read. Pipeline files are versioned so that a change of format never silently changes what a file means. Write `version: 1`.";
    /// A name does not follow the name pattern.
    INVALID_NAME = "invalid-name", Error, "A pipeline, source, feature or segment name does not follow the pattern ^[a-z][a-z0-9_]{0,62}$. Names become SQL identifiers, column names, file names and URLs, so they are kept to lowercase letters, digits and `_`, starting with a letter.";
    /// Two features or segments share a name.
    DUPLICATE_NAME = "duplicate-name", Error, "Two features, or two segments, have the same name. Every feature is a column and every segment an id in the outputs, so names must be unique. Rename one of them.";
    /// A feature takes a name the assignments table already uses.
    RESERVED_NAME = "reserved-name", Error, "A feature is named like a column segflow adds to the assignments table: the entity key or `segment`. Choose another name.";
    /// A feature declares none, or more than one, of expr/aggregate/quantile.
    FEATURE_DEFINITION = "feature-definition", Error, "A feature needs exactly one definition: `expr` (SQL over the entity's columns and other features), `aggregate` (an aggregate over another source, per customer) or `quantile` (buckets of another feature).";
    /// A source name that is not declared.
    UNKNOWN_SOURCE = "unknown-source", Error, "The entity, an aggregate feature or a segment test names a source that is not declared under `sources:`. The help line lists the declared sources.";
    /// An entity section that does not say where the customers come from.
    ENTITY = "entity", Error, "The `entity` section must say where the customers come from: `source` (a table with one row per customer; with `distinct: true`, any table whose distinct keys are the customers) or `from` (a list of sources whose distinct keys together are the customers), not both and not neither. `since` needs a table with one row per customer, and a source's `valid_to` needs its `valid_from`.";
    /// An entity source that holds events, whose keys repeat.
    ENTITY_REPEATS = "entity-repeats", Error, "The entity source declares a `time_column`, so it is a table of events (transactions, page views) whose keys repeat, and `run` would stop at the repeated keys. Known from the pipeline file, without reading rows, so `validate` reports it too. Write `distinct: true` to take the customers from its distinct keys, use `from: [...]` for several sources, or point `entity.source` at a table with one row per customer. Repeated keys in a table without a time column can only be found by reading its rows: `run` reports them (exit 4).";
    /// A name that is not a feature where a feature is required.
    UNKNOWN_FEATURE = "unknown-feature", Error, "A segment rule, a quantile, the matrix, a criterion or a scoring factor names something that is not a feature. Segment rules use features only: declare a feature for an entity column with `expr: <column>`. The help line lists the features.";
    /// A column that the source or the feature table does not have.
    UNKNOWN_COLUMN = "unknown-column", Error, "An expression, key or time column names a column the source does not have (checked against the source's real schema, without reading rows). The help line lists the columns that exist.";
    /// A source whose format cannot be told.
    SOURCE_ORIGIN = "source-origin", Error, "A source must say where its rows come from: exactly one of `path` (files) and `postgres` (a database), and a `postgres` source exactly one of `table` and `query` (and no file `format`). Its `url` is written as an environment variable (`\"${CRM_DATABASE_URL}\"`): a password written in the pipeline file is refused, since the file is shared and versioned.";
    UNKNOWN_FORMAT = "unknown-format", Error, "segflow cannot tell a source's format from its file name. Name files `.csv`, `.parquet` or `.ndjson` (also `.pq`, `.jsonl`, `.json`), or declare `format: csv | parquet | ndjson`.";
    /// `${VAR}` names an environment variable that is not set.
    UNSET_VARIABLE = "unset-variable", Error, "A source path uses `${NAME}`, and the environment variable NAME is not set. Set it before running. Its value is never written to outputs or messages.";
    /// A malformed `${...}` in a source path.
    INTERPOLATION = "interpolation", Error, "A source path holds a malformed `${...}`. Write `${NAME}` with letters, digits and `_` to insert an environment variable.";
    /// A window over a source without a time column.
    WINDOW_WITHOUT_TIME = "window-without-time", Error, "An aggregate feature has `window_days`, but its source declares no `time_column`, so there is nothing to measure the window on. Declare `time_column` on the source, or remove the window.";
    /// A window that holds no rows or no representable dates.
    INVALID_WINDOW = "invalid-window", Error, "An aggregate's `window_days` is 0, so the window holds no rows; or the window (or the as-of date itself) reaches outside 1677-09-22 to 2262-04-10, the dates a timestamp can hold. Use a positive number of days, at most a few centuries.";
    /// A matrix axis on a feature that is not a number.
    MATRIX_TYPE = "matrix-type", Error, "An axis of the 2x2 value x engagement matrix names a feature that is neither a number nor true/false (a date or text), so it cannot be split at a value. Choose a numeric feature, or declare one, e.g. days since a date.";
    /// A concentration feature that is not a number.
    CONCENTRATION_TYPE = "concentration-type", Error, "A feature listed under `concentration` is neither a number nor true/false (a date or text), so its values cannot be summed into shares of a total. List value or cost features such as revenue or tickets.";
    /// An ideal customer profile without exactly one target.
    ICP_TARGET = "icp-target", Error, "The `icp` section names its customers in one of two ways: `segment` (the id of the target segment) or `when` (an SQL condition over the features). Give exactly one.";
    /// A feature `unit` that is empty, too long or not one line.
    INVALID_UNIT = "invalid-unit", Error, "A feature's `unit` is empty, longer than 16 characters, or holds a line break or another control character. A unit is a short word reports write beside the value: an ISO 4217 currency code in capitals (`EUR`, `USD`, `GBP`) makes the feature money (`EUR 1.23M`); anything else (`days`, `tickets`) is written after the number (`12 days`).";
    /// A quantile feature without valid buckets or cuts.
    INVALID_QUANTILE = "invalid-quantile", Error, "A quantile feature needs either `buckets` (at least 2, equal-sized groups; at most 100 with `ties: together`) or `cuts` (strictly ascending cut points), not both and not neither; `ties` applies to `buckets` only. `labels` (and the `tiers` shorthand's labels) name every bucket, lowest first: one distinct, non-empty label per bucket.";
    /// Features that use each other in a cycle.
    FEATURE_CYCLE = "feature-cycle", Error, "Features use each other in a cycle, so none of them can be computed first. A feature may use other features only if they do not, directly or indirectly, use it.";
    /// No segments declared.
    NO_SEGMENTS = "no-segments", Error, "The pipeline declares no segments. Add at least one; the seeds recommend starting with 3 to 4.";
    /// A catch-all segment that is not last.
    CATCH_ALL = "catch-all", Error, "A segment without `when` (the catch-all) matches everyone, and rules are tried in order, so segments after it could never match. Move the catch-all to the end, or give it a rule.";
    /// SQL that does not parse.
    SQL_SYNTAX = "sql-syntax", Error, "An SQL expression (a feature, a rule, a filter) does not parse. The caret points at where the parser stopped. Expressions are single SQL expressions, not statements.";
    /// SQL a pipeline expression may not use.
    SQL_NOT_ALLOWED = "sql-not-allowed", Error, "A feature, rule, filter or `reachable` condition uses a subquery or a function that generates rows (`generate_series`, `range`, `unnest`). Pipeline expressions compute one value per customer: expression features and rules from features and entity columns, aggregates from their own source's rows. Reading another table is what an `aggregate` feature is for; row generators can produce unbounded data. Checked when the file loads.";
    /// SQL that parses but does not plan.
    SQL_PLAN = "sql-plan", Error, "An SQL expression parses but DataFusion cannot plan it against the sources' schemas: a function that does not exist, wrong argument types, an aggregate where none is allowed. The message is DataFusion's, naming the feature or segment.";
    /// A rule that is not true/false, or compares text with a number.
    RULE_TYPE = "rule-type", Error, "A segment rule (or the accessible criterion's `reachable` condition) is not a true/false condition, or compares a text column with a number (or a number with text). DataFusion would cast and fail mid-run or compare as text; compare text with text ('pro') and numbers with numbers (5), or CAST one side.";
    /// A time column that holds neither dates nor timestamps.
    TIME_COLUMN_TYPE = "time-column-type", Error, "A source's `time_column` holds values that are neither dates nor timestamps, so windows cannot be measured on it. Declare its type under `columns:` (`date` or `timestamp`).";
    /// An inline fixture value that does not fit its column's declared type.
    FIXTURE_VALUE = "fixture-value", Error, "A value in a segment test's inline fixture rows does not fit the type its source declares for that column (text in an `int64` column, a date that is not YYYY-MM-DD). The message points at the value. Write the value as the declared type, or change the declaration. Exit code 3.";
    /// A criterion list that is empty.
    EMPTY_LIST = "empty-list", Error, "A list that must name something is empty, e.g. `criteria.differentiable.features`. Name at least one feature.";
    /// Scoring weights that do not sum to 100.
    WEIGHTS_SUM = "weights-sum", Error, "The prioritisation factors' weights must sum to 100 (the weighted prioritisation matrix of the seeds: 25/25/20/15/15). The message gives the sum.";
    /// A negative or non-finite weight.
    INVALID_WEIGHT = "invalid-weight", Error, "A scoring factor's weight is negative. Weights are shares of 100 points.";
    /// Breakpoints that are empty or not ascending.
    INVALID_BREAKPOINTS = "invalid-breakpoints", Error, "A derived factor scored by `breakpoints` needs a non-empty, strictly ascending list: a value at or above the n-th breakpoint scores n+1 (scaled to 1-10).";
    /// A segment without a hand score for a factor.
    MISSING_SCORE = "missing-score", Error, "A scoring factor that is not derived from data needs a hand score (1-10, with a note) on every segment. Add `scores: { factor: { score: 7, note: ... } }`, or derive the factor with `derived:`.";
    /// A hand score for a factor that does not exist.
    UNKNOWN_FACTOR = "unknown-factor", Error, "A segment scores a factor that `scoring.factors` does not declare. The help line lists the factors.";
    /// A hand score for a derived factor.
    DERIVED_FACTOR = "derived-factor", Error, "A segment gives a hand score for a factor that is derived from data. Remove the hand score, or remove `derived:` from the factor.";
    /// A hand score outside 1..10.
    SCORE_RANGE = "score-range", Error, "A hand score is outside 1 to 10. Hand scores in the prioritisation matrix run from 1 (poor) to 10 (excellent), with a note saying why.";
    /// Stability settings that cannot work.
    INVALID_STABILITY = "invalid-stability", Error, "The rank-stability analysis needs at least one draw and a non-negative `max_shift` (points each weight may move).";
    /// A `review.allow` entry that names no lint or gives no reason.
    UNKNOWN_LINT = "unknown-lint", Error, "`review.allow` names a code that is not a lint (a warning `segflow explain` documents), or gives it an empty reason. Allowing a lint turns off a check the team agreed on, so each entry says which lint and why it does not apply to this pipeline, e.g. `demographic-only: \"reproduces the seed's firmographic worked example\"`. The help line lists the lint codes.";
    /// A persona for a segment that does not exist.
    PERSONA_WITHOUT_SEGMENT = "persona-without-segment", Error, "A persona names a segment that the pipeline does not declare. A persona must stand for a segment in the data, not for a wish (persona theater).";
    /// A segment id that does not exist.
    UNKNOWN_SEGMENT = "unknown-segment", Error, "A segment test expects a segment that the pipeline does not declare. The help line lists the segment ids.";
    /// A threshold with no level.
    THRESHOLD_EMPTY = "threshold-empty", Error, "A criterion threshold gives no level. Give `warn_if_below`/`error_if_below` for a minimum or `warn_if_above`/`error_if_above` for a maximum.";
    /// A threshold level outside its range.
    THRESHOLD_RANGE = "threshold-range", Error, "A threshold level (or a quantile split) is outside the range its measure can take, e.g. a share above 1.";
    /// Warning and error levels in the wrong order.
    THRESHOLD_ORDER = "threshold-order", Error, "A threshold's error level is less strict than its warning level. error_if_below must be at most warn_if_below, error_if_above at least warn_if_above.";
    /// A `cohorts` or `lifetime_value` section that cannot be computed.
    COHORTS = "cohorts", Error, "The `cohorts` section needs `by`, a date or timestamp feature (the cohort is its calendar month or quarter), `active`, an aggregate feature over a source with a `time_column` (a customer is active at a period's end when that aggregate, computed as of that date, is above 0 or true), and `periods` between 1 and 60. `lifetime_value` needs `cohorts` (its periods are the cohorts' periods), a numeric `value` feature, a `margin` between 0 and 1 and `max_periods` of at least 1. A feature's type is known once it is planned, so `by` and `value` are checked by `validate` and `run` against the planned features.";

    /// An export that does not say where it goes, or names a table that cannot be one.
    EXPORT_DEFINITION = "export-definition", Error, "An export under `exports:` needs exactly one of `postgres` (a table) and `file` (a `.parquet` or `.csv` path). A table is `table` or `schema.table` in lowercase letters, digits and `_` (segflow writes only names that need no quoting), and the history table must differ from the table. A file export's name must end in `.parquet` or `.csv`. Each table (per connection URL) and each file is written by one export only.";

    /// A Postgres server `validate` could not reach.
    DATABASE_UNREACHABLE = "database-unreachable", Warning, "`segflow validate` could not reach the database server of a Postgres source (nothing listening, no route, an unknown host), so that source's columns and the pipeline's SQL were not checked against the data. The warning names the server (user@host:port/database, never the password). A server that answers and refuses (a wrong password, a missing database) is an error (exit 4). `run` always needs the server. `--deny-warnings` makes the warning fail validation.";
    /// More segments than `review.max_segments`.
    TOO_MANY_SEGMENTS = "too-many-segments", Warning, "More segments than `review.max_segments` (default 4). Too many segments is an anti-pattern: nobody can act on twelve groups, and the seeds recommend starting with 3 to 4. Merge segments that are served the same way, or raise `review.max_segments` on purpose, with a comment saying why.";
    /// Rules that use only demographic, firmographic or geographic features.
    DEMOGRAPHIC_ONLY = "demographic-only", Warning, "Every segment rule uses only demographic, firmographic or geographic features: who customers are (age, company size, industry, country), not what they do, need or are worth. The seed's example is \"small businesses\": too broad, what do they have in common? Segments by who customers are rarely predict behaviour. Add behavioral, value or needs features to the rules, e.g. \"growing e-commerce businesses with 10-50 employees struggling with inventory management\".";
    /// A rule an earlier rule always pre-empts.
    UNREACHABLE_RULE = "unreachable-rule", Warning, "A rule can never match because an earlier rule matches every customer it would (first match wins). Found statically when both rules are ANDs of comparisons of features with numbers, e.g. `active_days >= 40` after `active_days >= 10`. Reorder the rules (more specific first) or remove the later one.";
    /// A segment without customers in this run.
    EMPTY_SEGMENT = "empty-segment", Warning, "A segment has no customers in this run: its rule never matched, often because earlier rules cover it. Check the rule order and the thresholds.";
    /// A persona whose segment is empty in this run.
    PERSONA_WITHOUT_DATA = "persona-without-data", Warning, "A persona describes a segment that has no customers in this run, so nothing in the data backs it (persona theater). Revisit the persona or the segment.";
    /// A review date older than the review interval.
    STALE_REVIEW = "stale-review", Warning, "`review.last_reviewed` is older than `review.interval_days` (default one quarter) before the as-of date. Static segments are an anti-pattern: customers change. Review the segments with their owners and update the date.";
    /// A segment without an owner.
    MISSING_OWNER = "missing-owner", Warning, "A segment has no `owner`. A segment nobody owns is not acted on. Name the team or person accountable.";
    /// A segment without actions.
    MISSING_ACTION = "missing-action", Warning, "A segment (not marked negative) declares no `actions`. Segments exist to be served differently; say what the team will do.";
    /// No segment is marked negative.
    NO_NEGATIVE_SEGMENT = "no-negative-segment", Warning, "No segment is marked `negative: true`. Ignoring negative segments is an anti-pattern of the seeds: a segmentation should say explicitly which customers are a bad fit and get no team time, so that nobody spends effort on them by default. Mark the bad-fit segment `negative: true` with a `negative_reason` (it may keep a cheap action); add one if no segment is a bad fit yet.";
    /// Two segments declare the same actions.
    ONE_SIZE_FITS_ALL = "one-size-fits-all", Warning, "Two segments declare the same set of `actions` (compared trimmed and case-insensitively, in any order). One-size-fits-all is an anti-pattern of the seeds: segments exist to be served differently, and two segments served the same way are one segment. Give each its own actions, or merge them. Segments without actions are left to `missing-action`.";
    /// More segments than the last reviewed run, without a note.
    SEGMENT_PROLIFERATION = "segment-proliferation", Warning, "The pipeline declares more segments than the last reviewed run of it had, and `review.note` does not say why. Segment proliferation (creating new segments instead of validating existing ones) is an anti-pattern of the seeds. The last reviewed run is the newest earlier run of this pipeline in the runs folder (`--runs-dir`, `SEGFLOW_RUNS_DIR`, default `runs`) whose as-of date is on or before `review.last_reviewed`, or else the newest earlier run. The lint needs that run history, so `segflow run` and `segflow lint` check it (they know the runs folder); `validate` and `impact` do not. Validate the existing segments first; if the new ones are needed, write in `review.note` what changed since the last review and why.";

    /// A file segflow was told to read cannot be read.
    READ = "read", Error, "A file named on the command line (the pipeline, a run folder's file) cannot be read: it does not exist or is not readable. Exit code 3 for a pipeline file.";
    /// A pipeline file with several problems.
    PIPELINE = "pipeline", Error, "The pipeline file has several problems; each is listed below the summary with its own code, line and column. Exit code 3.";
    /// An input source that cannot be used.
    SOURCE = "source", Error, "An input source is missing, unreadable, or holds data the pipeline cannot use: no files match its path, a value does not fit a declared column type, the entity has null or repeated keys, or is empty. The message names the source. Exit code 4.";
    /// Data that broke an assumption while executing.
    DATA = "data", Error, "The data broke an assumption while the pipeline executed (DataFusion reported an error evaluating it). The message says what; fix the data or the expression. Exit code 4.";
    /// A report template that fails.
    TEMPLATE = "template", Error, "A report template (a default one, or one from the pipeline's `templates` folder) fails to load or render; the message names the template and line. Also when a template names another one outside its folder and the built-in set (an absolute name, `..`, a backslash, a NUL byte, a symlink out of the folder), does too much work (a loop too long), or includes itself. Exit code 3.";
    /// Outputs that cannot be written.
    OUTPUT = "output", Error, "The run folder cannot be written: it exists already (use --replace or another --out), its parent is not writable, or the disk is full. Nothing half-written is left behind and earlier runs are untouched. Exit code 5.";
    /// A command line that names something that does not exist.
    USAGE = "usage", Error, "The command line names something that does not exist, such as `--source` with an undeclared source or `explain` with an unknown code. Exit code 2.";
    /// Failed validation criteria.
    CRITERIA = "criteria", Error, "The run completed and wrote everything, but a validation criterion failed (identifiable, substantial, accessible, differentiable, actionable). The failed checks are listed. Exit code 6; `--criteria-as-warnings` exits 0.";
    /// Lint warnings with --deny-warnings.
    LINT = "lint", Error, "Lint warnings were found and `--deny-warnings` turns them into a failure. Exit code 7.";
    /// Failed segment tests.
    TESTS = "tests", Error, "The pipeline's own segment tests (`segflow test`) failed: a fixture customer landed in another segment, or a feature had another value. Exit code 8.";
    /// The engine ran out of memory even after spilling.
    MEMORY = "memory", Error, "A stage of the run needed more memory than `--memory-limit` allows, even after spilling to the temporary folder. The message names the stage and the limit. Raise --memory-limit, or give the run a machine with more memory. Exit code 9.";
    /// A run folder that cannot be compared with.
    RUN_FOLDER = "run-folder", Error, "A run folder given to `segflow diff`, `segflow history` or `run --compare-to` is missing, is not a folder, or lacks or has a corrupt segments.json, criteria.json or assignments.parquet. A comparison never treats a missing file as \"nothing changed\". A `history` glob pattern that matches no run folder is this error too. Pass a folder written by `segflow run`. Exit code 10.";
    /// Chromium, which prints the report to PDF, is missing or failed.
    CHROMIUM = "chromium", Error, "Printing the report to PDF needs Chromium (or Chrome): it is not installed (none of `chromium`, `chromium-browser`, `google-chrome` is on PATH), `SEGFLOW_CHROMIUM` names no executable file, or Chromium failed, printed nothing, or did not finish within 120 s and was stopped. Install it (Debian/Ubuntu: `apt-get install chromium`) or set SEGFLOW_CHROMIUM to its path. Exit code 11.";
    /// A Postgres source that cannot be read.
    DATABASE = "database", Error, "A Postgres source could not be read: the server is not reachable, the password is refused, the table or a declared column is missing, a value does not fit the declared type, or the connection dropped while reading. The message names the source, the host and the database (never the URL's password). Nothing is written. Exit code 4.";
    /// An export that failed.
    EXPORT = "export", Error, "An export named in the pipeline's `exports:` failed: the database refused the connection or the write, or the file could not be written. A failed export changes nothing: a database table keeps its old content (the new rows are written in one transaction), a file is written beside its destination and moved into place only when complete, and the run folder is not written. Exit code 12.";
    /// `--engine ballista://`: the cluster is out of reach, has no executor, or failed the job.
    CLUSTER = "cluster", Error, "`segflow run --engine ballista://HOST:PORT` could not use the Ballista cluster: nothing listens at the scheduler's address, the host name does not resolve, no executor ran a one-row probe within 60 s (a scheduler without executors queues jobs for ever), or the cluster failed the job (its message is shown). Start the scheduler and executors (`segflow ballista scheduler`, `segflow ballista executor`) and read their logs. A bad value in a source file is still named with its file (exit 4). Nothing is written. Exit code 13.";
    /// `segflow impact --fail-if-moved-above`: too many customers change segment.
    MOVED = "moved", Error, "`segflow impact --fail-if-moved-above SHARE` found that a larger share of customers changes segment between the base and the current version of the pipeline. The impact folder (impact.md, impact.json) is written first: read which cells moved, then either fix the rules or raise the gate on purpose. Exit code 14.";
    /// A bug.
    INTERNAL = "internal", Error, "A bug in segflow. Please report it with the command and, if you can, the pipeline file. Exit code 70.";
}

/// The registered code called `name`.
pub fn find(name: &str) -> Option<&'static Code> {
    ALL.iter().copied().find(|code| code.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        let mut names: Vec<&str> = ALL.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a code is registered twice");
        for code in ALL {
            assert!(
                code.explanation.len() > 40,
                "`{}` is not explained",
                code.name
            );
        }
    }
}

//! The commands, and the one place that prints errors and picks exit codes.

use std::borrow::Cow;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::analysis::{self, Analysis, Status};
use crate::cli::{
    Cli, Command, CompileArgs, DiffArgs, HistoryArgs, MessageFormat, PlanArgs, PlanFormat,
    ReportArgs, RunArgs, SourceArgs, TemplatesCommand,
};
use crate::diagnostic::{self, Problem, available_help};
use crate::engine::{self, RunOptions};
use crate::error::{Error, Result, exit};
use crate::lint;
use crate::pipeline::{Pipeline, PipelineSpec};
use crate::progress::Progress;
use crate::report::{self, FolderKind, NewDocuments, StagedOutput, Templates};
use crate::run_folder;
use crate::run_folder::{
    LintRecord, Manifest, ReportManifest, RunInfo, SegmentsDocument, StageTiming,
};
use crate::secrets::{self, redact};

/// Stack of the thread that plans queries: deep enough for DataFusion's recursion over large
/// expressions (reserved address space; memory is used only as deep as the recursion goes).
const ENGINE_STACK: usize = 512 << 20;

/// Stack of each engine worker thread, which evaluates expressions recursively too; smaller,
/// since there is one per core and all count against the bounded address space.
const WORKER_STACK: usize = 64 << 20;

/// Parse arguments, run the command, print any error, and return the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return clap_exit(&error),
    };
    let _ = FORMAT.set(cli.command.message_format());
    // A panic inside one of DataFusion's tasks is turned into an error by DataFusion; only one
    // that reaches the top is a bug to report. So the hook only remembers the message.
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string());
        }
    }));
    watch_for_interrupts();
    bound_address_space();
    // DataFusion plans and optimises recursively: a rule of 1,000 ORed conditions or a few
    // hundred features overflow an 8 MiB stack (exit 134). Commands run on a thread with a
    // large stack (address space reserved, memory used only as deep as the recursion goes).
    let outcome = std::thread::Builder::new()
        .name("segflow".into())
        .stack_size(ENGINE_STACK)
        .spawn(|| std::panic::catch_unwind(|| run(cli)))
        .map_err(|e| Error::Internal(format!("cannot start the main thread: {e}")))
        .and_then(|thread| {
            thread
                .join()
                .map_err(|_| Error::Internal("the main thread panicked".into()))
        });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => Ok(Err(error)),
    };
    match outcome {
        Ok(Ok(())) => ExitCode::from(exit::OK),
        Ok(Err(Error::BrokenPipe)) => ExitCode::from(exit::OK),
        Ok(Err(error)) => {
            // Rendering must not turn a clear error into a crash: fall back to plain text.
            let rendered =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| print_diagnostic(&error)));
            if rendered.is_err() {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "error: {}", redact(&error.to_string()));
            }
            ExitCode::from(error.exit_code())
        }
        Err(_) => {
            let message = LAST_PANIC
                .lock()
                .ok()
                .and_then(|mut last| last.take())
                .unwrap_or_else(|| "a panic".into());
            print_diagnostic(&Error::Internal(message));
            ExitCode::from(exit::INTERNAL)
        }
    }
}

/// Print clap's help, version or usage error. Help and version go to stdout like any output: one
/// that cannot be written is exit 5, not a silent 0.
fn clap_exit(error: &clap::Error) -> ExitCode {
    let printed = error.print().and_then(|()| {
        use std::io::Write;
        std::io::stdout().flush()
    });
    let code = u8::try_from(error.exit_code()).unwrap_or(exit::USAGE);
    match printed {
        Err(e) if !error.use_stderr() && e.kind() != std::io::ErrorKind::BrokenPipe => {
            let error = Error::Output {
                message: format!("cannot write to standard output: {e}"),
                help: Some("check where standard output is redirected".into()),
            };
            print_diagnostic(&error);
            ExitCode::from(error.exit_code())
        }
        _ => ExitCode::from(code),
    }
}

/// On Ctrl-C, a termination signal or a closed terminal (SIGHUP), remove the run folder being
/// staged (so nothing half-written remains and earlier runs stay untouched) and exit with 130.
/// A signal after the run folder is in place lets the command finish with its own outcome.
fn watch_for_interrupts() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut watched = vec![SIGINT, SIGTERM];
    // Under `nohup` SIGHUP is ignored on purpose: the run must go on when the terminal closes.
    if !ignored_at_start(SIGHUP) {
        watched.push(SIGHUP);
    }
    let Ok(mut signals) = signal_hook::iterator::Signals::new(watched) else {
        return;
    };
    std::thread::spawn(move || {
        for _ in signals.forever() {
            let report::Interrupt::Stop { removed } = report::interrupt() else {
                continue;
            };
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "error: interrupted{}",
                if removed.is_some() {
                    "; the unfinished run folder was removed"
                } else {
                    ""
                }
            );
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    });
}

/// Whether `signal` was ignored when segflow started (the `SigIgn` mask of /proc/self/status;
/// false where there is none).
fn ignored_at_start(signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| signal >= 1 && mask & (1 << (signal - 1)) != 0)
}

/// Called by the executable's allocator when the machine refuses an allocation of `size` bytes:
/// remove the unfinished run folder, say what happened, and exit 9 like any other resources
/// error. Small allocations still succeed at this point (only the huge one failed), so the
/// cleanup and the message can allocate; a second refusal while doing so aborts.
pub fn allocation_refused(size: usize) -> ! {
    static REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if REFUSED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        std::process::abort();
    }
    let removed = match report::interrupt() {
        report::Interrupt::Stop { removed } => removed.is_some(),
        report::Interrupt::AfterCommit => false,
    };
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "error: segflow::resources\n\n  × the machine refused {} of memory in one piece: an expression \
         or a template builds a value far too large (e.g. `repeat` with a huge count, or text \
         doubled in a loop){}",
        size_text(size),
        if removed {
            "; the unfinished run folder was removed"
        } else {
            ""
        }
    );
    std::process::exit(i32::from(exit::MEMORY))
}

/// `204800000000` → `190.7 GiB`.
fn size_text(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Write to standard output, without control characters (a segment name from a received run
/// folder must not drive the terminal). A closed pipe (`segflow schema | head -1`) ends the command quietly
/// with exit 0, as ripgrep and cargo do; any other failure (a full disk) is an output error.
macro_rules! out {
    ($($arg:tt)*) => {
        write_stdout(format_args!($($arg)*))?
    };
}

fn write_stdout(text: std::fmt::Arguments<'_>) -> Result<()> {
    use std::io::Write;
    let text = text.to_string();
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(redact(&report::strip_controls(&text)).as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Error::BrokenPipe,
            _ => Error::Output {
                message: format!("cannot write to standard output: {e}"),
                help: Some("check where standard output is redirected".into()),
            },
        })
}

/// The message of the latest panic, printed if it reaches the top.
static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// How diagnostics are printed, set once from the command line.
static FORMAT: std::sync::OnceLock<MessageFormat> = std::sync::OnceLock::new();

fn json_format() -> bool {
    FORMAT.get() == Some(&MessageFormat::Json)
}

/// Print `diagnostic` for people on stderr, or as JSON lines on stdout with `--format json`.
/// Used for a command's final error, where a failed write cannot change the exit code.
fn print_diagnostic(diagnostic: &dyn miette::Diagnostic) {
    if emit_diagnostic(diagnostic).is_err() && json_format() {
        // stdout is gone (a full disk): stderr is the last place to say why the command failed.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "error: {}",
            redact(&diagnostic.to_string())
        );
    }
}

/// Print a diagnostic the command goes on after (a warning, a failed segment test): one that
/// cannot be written is an output error, not silently lost.
fn emit_diagnostic(diagnostic: &dyn miette::Diagnostic) -> Result<()> {
    if json_format() {
        for line in diagnostic::json_lines(diagnostic) {
            write_stdout(format_args!("{line}\n"))?;
        }
        return Ok(());
    }
    let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // Wrapping could break a secret across lines, out of `redact`'s sight.
    let width = if secrets::any() { usize::MAX / 2 } else { 100 };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width);
    let mut text = String::new();
    if handler.render_report(&mut text, diagnostic).is_err() {
        text = format!("{diagnostic}\n");
    }
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    stderr
        .write_all(redact(&text).as_bytes())
        .and_then(|()| stderr.flush())
        .map_err(|e| Error::Output {
            message: format!("cannot write to standard error: {e}"),
            help: Some("check where standard error is redirected".into()),
        })
}

/// Run one command.
pub fn run(cli: Cli) -> Result<()> {
    // A test-only way to reach the panic path (exit 70), compiled into debug builds only.
    #[cfg(debug_assertions)]
    if std::env::var_os("SEGFLOW_TEST_PANIC").is_some() {
        panic!("SEGFLOW_TEST_PANIC is set");
    }
    match cli.command {
        Command::Run(args) => run_pipeline(args),
        Command::Init(args) => init(&args),
        Command::Validate(args) => validate(&args.input),
        Command::Diff(args) => diff(&args),
        Command::History(args) => history(&args),
        Command::Lint(args) => {
            let (pipeline, options) = prepare(&args.input)?;
            let mut lints = lint::static_lints(&pipeline, options.as_of);
            lints.extend(history_lints(&pipeline, &args.runs_dir.dir, options.as_of));
            report_lints(&lints, args.input.deny_warnings)?;
            summary(format_args!(
                "{}: {} lint warning(s)",
                args.input.pipeline.display(),
                lints.len()
            ))?;
            Ok(())
        }
        Command::Plan(args) => plan(&args),
        Command::Compile(args) => compile(&args),
        Command::Impact(args) => impact(&args),
        Command::Preview(args) => preview(&args),
        #[cfg(feature = "ballista")]
        Command::Ballista(command) => ballista_process(command),
        Command::Test(args) => segment_tests(&args.input),
        // Errors print codes as `segflow::feature-cycle`; both spellings are accepted.
        Command::Explain { code } => {
            match diagnostic::codes::find(code.strip_prefix("segflow::").unwrap_or(&code)) {
                Some(found) => {
                    out!("{code}: {}\n", found.explanation);
                    Ok(())
                }
                None => Err(Error::Usage {
                    message: format!("no code `{code}`"),
                    help: Some(available_help(
                        &code,
                        "code",
                        diagnostic::codes::ALL.iter().map(|c| c.name),
                    )),
                }),
            }
        }
        Command::Report(args) => render_report(&args),
        Command::Templates(TemplatesCommand::Export { dir }) => export_templates(&dir),
        Command::Templates(TemplatesCommand::Reference) => {
            out!("{}", report::context_reference());
            Ok(())
        }
        Command::Schema => {
            out!("{}\n", schema_json());
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "segflow", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            Ok(())
        }
    }
}

/// Write a starter pipeline from data files (`segflow init`).
fn init(args: &crate::cli::InitArgs) -> Result<()> {
    let destination = args.dir.join(crate::init::FILE_NAME);
    if !args.dry_run && std::fs::symlink_metadata(&destination).is_ok() {
        return Err(crate::init::already_exists(&destination));
    }
    let generated = runtime()?.block_on(crate::init::generate(
        &args.dir,
        &args.from,
        &default_resources(),
    ))?;
    for note in &generated.notes {
        writeln!(std::io::stderr(), "note: {}", redact(note)).map_err(|e| Error::Output {
            message: format!("cannot write to standard error: {e}"),
            help: Some("check where standard error is redirected".into()),
        })?;
    }
    if args.dry_run {
        out!("{}", generated.text);
        return Ok(());
    }
    // Staged beside it and moved into place: a failed write leaves nothing, and a file that
    // appeared meanwhile is not replaced.
    crate::init::write_new(&args.dir, &generated.text)?;
    out!(
        "wrote {}{}\n",
        destination.display(),
        if generated.skeleton {
            " (a skeleton: fill in what is marked TODO)"
        } else {
            ""
        }
    );
    Ok(())
}

/// The JSON Schema of the pipeline file, as `segflow schema` prints it.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(PipelineSpec);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// Print what one segment is made of.
fn preview(args: &crate::cli::PreviewArgs) -> Result<()> {
    let (pipeline, options) = prepare(&args.input)?;
    let work = tempfile::TempDir::new().map_err(|e| Error::output(&std::env::temp_dir(), e))?;
    let preview = runtime()?.block_on(engine::preview::preview(
        &pipeline,
        &options,
        &args.segment,
        args.by.as_deref(),
        args.sample,
        work.path(),
    ))?;
    if args.json {
        let text =
            serde_json::to_string_pretty(&preview).map_err(|e| Error::Internal(e.to_string()))?;
        out!("{text}\n");
        return Ok(());
    }
    let share = |n: u64| {
        if preview.customers == 0 {
            0.0
        } else {
            n as f64 * 100.0 / preview.customers as f64
        }
    };
    out!(
        "segment {} ({}): {} of {} customers ({:.1}%)\n",
        preview.segment,
        preview.name,
        preview.members,
        preview.customers,
        share(preview.members)
    );
    match &preview.rule {
        Some(rule) => out!("rule: {rule}\n"),
        None => out!("rule: none (the catch-all)\n"),
    }
    if !preview.funnel.is_empty() {
        out!("funnel (each condition with those before it):\n");
        for step in &preview.funnel {
            out!(
                "  {:>9}  {:>5.1}%  {}\n",
                step.customers,
                share(step.customers),
                step.condition
            );
        }
    }
    out!(
        "the rule matches {} customers; {} of them an earlier rule claimed\n",
        preview.matching,
        preview.matching.saturating_sub(preview.members)
    );
    for count in &preview.shadowed_by {
        out!("  {:>9}  claimed by {}\n", count.customers, count.segment);
    }
    if !preview.overlaps.is_empty() {
        out!("overlap with the other rules, ignoring order:\n");
        for count in &preview.overlaps {
            out!("  {:>9}  {}\n", count.customers, count.segment);
        }
    }
    if let Some(by) = &preview.by {
        out!("members by {}:\n", by.column);
        for (value, n) in &by.values {
            let shown = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "(null)".into(),
                other => other.to_string(),
            };
            out!("  {n:>9}  {shown}\n");
        }
    }
    if !preview.sample.is_empty() {
        out!("sample of members:\n");
        for row in &preview.sample {
            let cells: Vec<String> = row.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out!("  {}\n", cells.join(" "));
        }
    }
    Ok(())
}

/// Run the base and current versions of a pipeline and write what the change does.
fn impact(args: &crate::cli::ImpactArgs) -> Result<()> {
    let (current, mut options) = prepare(&args.input)?;
    let mut base = match (&args.base, &args.base_file) {
        (Some(reference), _) => {
            crate::impact::base_from_git(&args.input.pipeline, reference, &current)?
        }
        (None, Some(file)) => crate::impact::base_from_file(file, &current)?,
        (None, None) => {
            return Err(Error::Usage {
                message: "name the base version with --base REF or --base-file OLD.yaml".into(),
                help: None,
            });
        }
    };
    for (name, path) in &args.input.sources {
        base.override_source(name, path)?;
    }
    let base_label = match (&args.base, &args.base_file) {
        (Some(reference), _) => format!("{reference}:{}", args.input.pipeline.display()),
        (_, Some(file)) => file.display().to_string(),
        _ => String::new(),
    };
    options.resources = engine::Resources {
        memory_limit: Some(args.memory_limit.unwrap_or_else(default_memory_limit)),
        threads: None,
    };
    options.progress = Progress::on_terminal(args.quiet || json_format());
    let templates = Templates::new(None)?;
    let destination = args.out.clone().unwrap_or_else(|| {
        args.runs_dir
            .dir
            .join(format!("{}-impact-{}", current.spec.name, options.as_of))
    });
    let mut protected = engine::source_files(&current)?;
    protected.extend(engine::source_files(&base)?);
    protected.push(args.input.pipeline.clone());
    protected.push(PathBuf::from("."));
    let staged = StagedOutput::begin(&destination, args.replace, &protected, FolderKind::Impact)?;
    let relocate = |e: Error| e.relocated(staged.path(), &destination);
    let work = tempfile::TempDir::new().map_err(|e| Error::output(&std::env::temp_dir(), e))?;
    let sample = if args.no_sample { 0 } else { args.sample };
    let measured = runtime()?.block_on(crate::impact::measure(
        &base,
        &current,
        &options,
        work.path(),
        sample,
    ));
    options.progress.finish();
    let mut impact = measured?;
    impact.base = base_label.clone();
    impact.current = args.input.pipeline.display().to_string();
    impact.gate = args
        .fail_if_moved_above
        .map(|threshold| crate::analysis::impact::Gate {
            threshold,
            failed: impact.moved_share > threshold,
        });
    let mut outputs = report::write_impact(staged.path(), &impact, &templates).map_err(relocate)?;
    outputs.push(run_folder::MANIFEST.into());
    report::write_impact_manifest(
        staged.path(),
        &run_folder::impact::ImpactManifest {
            segflow_version: env!("CARGO_PKG_VERSION").into(),
            kind: run_folder::impact::IMPACT_KIND.into(),
            pipeline_file: args.input.pipeline.display().to_string(),
            base: base_label,
            as_of: options.as_of.to_string(),
            outputs,
        },
    )
    .map_err(relocate)?;
    let destination = staged.commit()?;
    out!(
        "{} of {} customers ({:.1}%) change segment{}\n",
        impact.moved,
        impact.stayed + impact.moved,
        impact.moved_share * 100.0,
        if impact.features_computed_once {
            " (only rules changed: features computed once)".to_string()
        } else if !impact.recomputed_features.is_empty() {
            format!(
                " (the base recomputed {} of its features)",
                impact.recomputed_features.len()
            )
        } else {
            String::new()
        }
    );
    for m in impact.moves.iter().take(5) {
        out!("  {:>9}  {} → {}\n", m.customers, m.from, m.to);
    }
    out!(
        "impact: {}\n",
        destination.join(run_folder::impact::IMPACT_MD).display()
    );
    match &impact.gate {
        Some(gate) if gate.failed => Err(Error::TooManyMoved {
            moved: impact.moved,
            share: impact.moved_share * 100.0,
            threshold: gate.threshold * 100.0,
            folder: destination.display().to_string(),
        }),
        _ => Ok(()),
    }
}

/// Run a process of a Ballista cluster until it is stopped.
#[cfg(feature = "ballista")]
fn ballista_process(command: crate::cli::BallistaCommand) -> Result<()> {
    use crate::cli::BallistaCommand;
    let runtime = runtime()?;
    match command {
        BallistaCommand::Scheduler { bind } => runtime.block_on(crate::cluster::scheduler(bind)),
        BallistaCommand::Executor {
            scheduler,
            bind,
            grpc_port,
            concurrent_tasks,
            work_dir,
            memory_limit,
        } => runtime.block_on(crate::cluster::executor(crate::cluster::ExecutorOptions {
            scheduler,
            bind,
            grpc_port,
            concurrent_tasks,
            work_dir,
            memory_limit,
        })),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    runtime_with(None)
}

/// The async runtime, with `threads` workers (default: one per core).
fn runtime_with(threads: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads);
    }
    builder
        .thread_stack_size(WORKER_STACK)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}

/// The default memory limit: half of the machine's memory, or 4 GiB when it cannot be read.
/// What commands without `--memory-limit` and `--threads` may use: the default memory limit
/// and one thread per core.
fn default_resources() -> engine::Resources {
    engine::Resources {
        memory_limit: Some(default_memory_limit()),
        threads: None,
    }
}

fn default_memory_limit() -> u64 {
    machine_memory().map_or(4 << 30, |bytes| bytes / 2)
}

/// The machine's memory (`MemTotal`), where Linux tells it.
fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = info
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// Bound the process's address space to the machine's memory (at least 8 GiB), unless a lower
/// bound is set already. With overcommit Linux grants any allocation and later kills the process
/// (SIGKILL: no cleanup, no message) when a template or expression runs away; with the bound,
/// the allocation is refused and [`allocation_refused`] ends the command with exit 9. Real runs
/// stay far below it (20M customers use 3.7 GiB).
fn bound_address_space() {
    let Some(memory) = machine_memory() else {
        return;
    };
    let bound = memory.max(8 << 30);
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_AS, &mut current) != 0 {
            return;
        }
        if current.rlim_cur != libc::RLIM_INFINITY && current.rlim_cur <= bound {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: bound.min(current.rlim_max),
            rlim_max: current.rlim_max,
        };
        let _ = libc::setrlimit(libc::RLIMIT_AS, &wanted);
    }
}

/// A line for people on stdout; left out with `--format json`, where stdout holds JSON only.
fn summary(line: std::fmt::Arguments<'_>) -> Result<()> {
    if !json_format() {
        out!("{line}\n");
    }
    Ok(())
}

/// A source named twice by `--source` would silently read only the last path.
fn refuse_repeated_sources(input: &SourceArgs) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    match input.sources.iter().find(|(name, _)| !seen.insert(name)) {
        Some((name, _)) => Err(Error::Usage {
            message: format!("--source names source `{name}` more than once"),
            help: Some(format!("give one `--source {name}=PATH`")),
        }),
        None => Ok(()),
    }
}

/// Load the pipeline, apply `--source` overrides, and work out the run options.
fn prepare(input: &SourceArgs) -> Result<(Pipeline, RunOptions)> {
    let mut pipeline = load(&input.pipeline)?;
    refuse_repeated_sources(input)?;
    for (name, path) in &input.sources {
        pipeline.override_source(name, path)?;
    }
    let options = RunOptions::new(pipeline.as_of(input.as_of));
    Ok((pipeline, options))
}

/// Print what a run would execute, without reading any rows.
fn plan(args: &PlanArgs) -> Result<()> {
    let (pipeline, options) = prepare(&args.input)?;
    let view = match args.format {
        PlanFormat::Sql => engine::PlanView::Sql,
        PlanFormat::Logical => engine::PlanView::Logical,
        PlanFormat::Physical => engine::PlanView::Physical,
    };
    let text = runtime()?.block_on(engine::explain(&pipeline, &options, view))?;
    out!("{text}");
    Ok(())
}

fn compile(args: &CompileArgs) -> Result<()> {
    let (pipeline, options) = prepare(&args.input)?;
    let tables = args.tables.iter().cloned().collect();
    let sql = runtime()?.block_on(engine::compile_sql(
        &pipeline,
        &options,
        args.dialect,
        &tables,
    ))?;
    out!("{sql}");
    Ok(())
}

fn diff(args: &DiffArgs) -> Result<()> {
    let (old, new) = (run_folder::read(&args.old)?, run_folder::read(&args.new)?);
    let comparison = runtime()?.block_on(run_folder::compare(&old, &new, &default_resources()))?;
    if args.json {
        let text = serde_json::to_string_pretty(&comparison)
            .map_err(|e| Error::Internal(e.to_string()))?;
        out!("{text}\n");
    } else {
        let templates = Templates::new(None)?;
        out!(
            "{}",
            templates.render(
                "comparison.md.j2",
                &minijinja::context! { comparison => &comparison }
            )?
        );
    }
    Ok(())
}

/// Write the history of many runs into a history folder and print a summary.
fn history(args: &HistoryArgs) -> Result<()> {
    use run_folder::history::{HistoryManifest, expand};
    let folders = expand(&args.runs)?;
    if folders.len() < 2 {
        let named: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
        return Err(Error::Usage {
            message: format!(
                "a history needs at least two run folders, got {}: {}",
                folders.len(),
                named.join(", ")
            ),
            help: Some(
                "name two or more run folders, or a glob pattern such as \
                 'runs/saas_quarterly-*'"
                    .into(),
            ),
        });
    }
    let runs = folders
        .iter()
        .map(|folder| run_folder::read(folder))
        .collect::<Result<Vec<_>>>()?;
    if let Some(dir) = args.templates.as_deref().filter(|dir| !dir.is_dir()) {
        return Err(Error::Usage {
            message: format!("--templates {}: no such folder", dir.display()),
            help: Some("name a folder holding history.md.j2 or history.html.j2".into()),
        });
    }
    let templates = Templates::new(args.templates.clone())?;
    let history = runtime()?.block_on(run_folder::history::history(
        &runs,
        &args.features,
        &default_resources(),
    ))?;
    let (Some(first), Some(last)) = (history.runs.first(), history.runs.last()) else {
        return Err(Error::Internal("a history of no runs".into()));
    };
    let destination = match args.out.clone() {
        Some(out) => out,
        // The name comes from the run folders, which may come from elsewhere: it must be a
        // pipeline name before it becomes part of a path (`../../x` would write outside runs/).
        None if crate::pipeline::is_valid_name(&history.pipeline) => {
            args.runs_dir.dir.join(format!(
                "{}-history-{}-{}",
                history.pipeline, first.as_of, last.as_of
            ))
        }
        None => {
            return Err(Error::RunFolder {
                folder: folders[0].display().to_string(),
                message: format!(
                    "its segments.json names the pipeline `{}`, which is not a pipeline name, so it cannot name the history folder; pass --out",
                    history.pipeline
                ),
            });
        }
    };
    let mut protected = folders.clone();
    protected.push(PathBuf::from("."));
    let staged = StagedOutput::begin(&destination, args.replace, &protected, FolderKind::History)?;
    let relocate = |e: Error| e.relocated(staged.path(), &destination);
    let mut outputs =
        report::write_history(staged.path(), &history, &templates).map_err(relocate)?;
    outputs.push(run_folder::MANIFEST.into());
    let manifest = HistoryManifest {
        segflow_version: env!("CARGO_PKG_VERSION").into(),
        kind: run_folder::history::HISTORY_KIND.into(),
        runs: history.runs.iter().map(|r| r.folder.clone()).collect(),
        features: history.features.clone(),
        outputs,
    };
    report::write_history_manifest(staged.path(), &manifest).map_err(relocate)?;
    let destination = staged.commit()?;
    out!(
        "history of {} runs as of {} to {}\n",
        history.runs.len(),
        first.as_of,
        last.as_of
    );
    for run in &history.runs {
        out!(
            "  {} {:>9} customers  {}\n",
            run.as_of,
            run.customers,
            run.folder
        );
    }
    for step in &history.steps {
        out!(
            "  {} → {}: {} stayed, {} moved, {} appeared, {} disappeared\n",
            step.from,
            step.to,
            step.stayed,
            step.moved,
            step.appeared,
            step.disappeared
        );
    }
    out!(
        "report: {}\n",
        destination
            .join(run_folder::history::HISTORY_HTML)
            .display()
    );
    Ok(())
}

/// Print lint warnings; with `deny`, fail when there are any.
fn report_lints(lints: &[Problem], deny: bool) -> Result<()> {
    for lint in lints {
        emit_diagnostic(lint)?;
    }
    if deny && !lints.is_empty() {
        return Err(Error::LintDenied { count: lints.len() });
    }
    Ok(())
}

/// Load a pipeline and remember the secrets it interpolates, for redaction.
fn load(path: &Path) -> Result<Pipeline> {
    let pipeline = Pipeline::load(path)?;
    secrets::remember(pipeline.secrets());
    Ok(pipeline)
}

fn segment_tests(input: &SourceArgs) -> Result<()> {
    // The tests read fixtures, not sources; an override is still checked as everywhere else.
    let (pipeline, options) = prepare(input)?;
    let as_of = options.as_of;
    let tests = &pipeline.spec.tests;
    if tests.is_empty() {
        out!(
            "{}: no segment tests declared (add a `tests:` section)\n",
            input.pipeline.display()
        );
        return Ok(());
    }
    let runtime = runtime()?;
    let mut failed = 0;
    for test in tests {
        let rows = runtime.block_on(engine::fixtures::assign(&pipeline, as_of, test))?;
        let outcome = analysis::segment_tests::evaluate(test, &pipeline.spec.segments, &rows);
        if outcome.failures.is_empty() {
            summary(format_args!(
                "ok     {} ({} customers)",
                outcome.name, outcome.checked
            ))?;
        } else {
            failed += 1;
            summary(format_args!("FAILED {}", outcome.name))?;
            for failure in &outcome.failures {
                if json_format() {
                    let failure = Error::TestFailure {
                        test: outcome.name.clone(),
                        failure: failure.clone(),
                    };
                    emit_diagnostic(&failure)?;
                }
                summary(format_args!("       {failure}"))?;
            }
        }
    }
    summary(format_args!(
        "segment tests: {} ok, {failed} failed",
        tests.len() - failed
    ))?;
    if failed > 0 {
        return Err(Error::TestsFailed {
            failed,
            total: tests.len(),
        });
    }
    Ok(())
}

/// Lints that need the pipeline's earlier runs, found in the runs folder.
fn history_lints(pipeline: &Pipeline, runs_dir: &Path, as_of: chrono::NaiveDate) -> Vec<Problem> {
    let earlier = run_folder::earlier::earlier_runs(runs_dir, &pipeline.spec.name, as_of);
    lint::history_lints(pipeline, &earlier)
}

fn validate(input: &SourceArgs) -> Result<()> {
    let (pipeline, options) = prepare(input)?;
    let validated = runtime()?.block_on(engine::validate(&pipeline, &options))?;
    let mut warnings = lint::static_lints(&pipeline, options.as_of);
    for server in &validated.unreachable {
        let sources: Vec<String> = server.sources.iter().map(|s| format!("`{s}`")).collect();
        warnings.push(
            pipeline
                .file
                .problem(
                    diagnostic::codes::DATABASE_UNREACHABLE,
                    None,
                    format!(
                        "cannot reach {} ({}): the columns of source {} and the pipeline's SQL were not checked",
                        server.target,
                        server.message,
                        sources.join(", ")
                    ),
                )
                .help("run `segflow validate` where the database is reachable to check them"),
        );
    }
    report_lints(&warnings, input.deny_warnings)?;
    summary(format_args!(
        "{}: ok ({} sources, {} features, {} segments; rows are not read, so repeated or null \
         customer keys and values that do not fit show only in `run`)",
        input.pipeline.display(),
        pipeline.sources.len(),
        pipeline.features.len(),
        pipeline.segments.len()
    ))?;
    Ok(())
}

fn run_pipeline(args: RunArgs) -> Result<()> {
    let started_at = chrono::Utc::now();
    let (pipeline, mut options) = prepare(&args.input)?;
    let threads = args.threads.map(usize::from);
    options.resources = engine::Resources {
        memory_limit: Some(args.memory_limit.unwrap_or_else(default_memory_limit)),
        threads,
    };
    options.profile = args.profile;
    if !args.engine.available() {
        return Err(engine::without_ballista());
    }
    options.engine = args.engine.clone();
    options.progress = Progress::on_terminal(args.quiet || json_format());
    let destination = args.out.clone().unwrap_or_else(|| {
        args.runs_dir
            .dir
            .join(format!("{}-{}", pipeline.spec.name, options.as_of))
    });
    let templates = Templates::new(args.templates.clone().or_else(|| {
        pipeline
            .spec
            .templates
            .as_ref()
            .map(|dir| pipeline.base_dir.join(dir))
    }))?;
    let mut static_lints = lint::static_lints(&pipeline, options.as_of);
    static_lints.extend(history_lints(&pipeline, &args.runs_dir.dir, options.as_of));
    report_lints(&static_lints, args.input.deny_warnings)?;
    // Read the run to compare with first, so a broken one stops before any work is done.
    let earlier = args
        .compare_to
        .as_deref()
        .map(run_folder::read)
        .transpose()?;
    let mut protected = engine::source_files(&pipeline)?;
    protected.push(args.input.pipeline.clone());
    protected.push(PathBuf::from("."));
    let staged = StagedOutput::begin(&destination, args.replace, &protected, FolderKind::Run)?;
    let exports = report::exports::Exports::begin(&pipeline, args.replace)?;
    let relocate = |e: Error| e.relocated(staged.path(), &destination);
    let runtime = runtime_with(threads)?;
    let results = runtime
        .block_on(engine::run(&pipeline, &options, staged.path()))
        .map_err(relocate);
    options.progress.finish();
    let results = results?;

    let render_start = std::time::Instant::now();
    let mut analysis = analysis::analyse(&pipeline, &results);
    let runtime_lints = lint::runtime_lints(&pipeline, &results);
    let comparison = match &earlier {
        Some(earlier) => {
            // This run, from memory; its assignments are already in the staging folder.
            let this_run = run_folder::Run {
                folder: destination.display().to_string(),
                assignments: staged.path().join(run_folder::ASSIGNMENTS),
                segments: SegmentsDocument::new(&pipeline, &results, &analysis.profiles),
                criteria: Cow::Borrowed(&analysis.criteria),
            };
            Some(runtime.block_on(run_folder::compare(earlier, &this_run, &options.resources))?)
        }
        None => None,
    };
    // The stable criterion judges the comparison, so it is evaluated after it.
    if let Some(stable) = pipeline
        .spec
        .criteria
        .as_ref()
        .and_then(|c| c.stable.as_ref())
    {
        analysis.criteria.add(analysis::stable::evaluate_stability(
            stable,
            comparison.as_ref(),
        ));
    }
    let lints: Vec<LintRecord> = static_lints
        .iter()
        .chain(&runtime_lints)
        .map(LintRecord::of)
        .collect();
    let cohorts = results
        .cohorts
        .as_ref()
        .map(|cohorts| run_folder::CohortsDocument::new(&pipeline, options.as_of, cohorts));
    let documents = NewDocuments {
        cohorts: cohorts.as_ref(),
        segments: SegmentsDocument::new(&pipeline, &results, &analysis.profiles),
        criteria: &analysis.criteria,
        scoring: analysis.scoring.as_ref(),
        lints: &lints,
        comparison: comparison.as_ref(),
    };
    let run_info = RunInfo {
        segflow_version: env!("CARGO_PKG_VERSION").into(),
        pipeline_file: args.input.pipeline.display().to_string(),
        pipeline_sha256: pipeline.sha256.clone(),
        git: report::git_state(&args.input.pipeline),
        pipeline_name: pipeline.spec.name.clone(),
        as_of: options.as_of.to_string(),
        sources: results.sources.clone(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        masked_variables: pipeline.secret_variables(),
        engine: results.engine.clone(),
    };
    let mut outputs = vec![run_folder::ASSIGNMENTS.to_string()];
    outputs.extend(report::write_data(staged.path(), &documents).map_err(relocate)?);
    // Reports are rendered from the documents as written, exactly as `segflow report` would.
    let written =
        run_folder::read_documents(staged.path(), Some(run_info.clone())).map_err(relocate)?;
    outputs.extend(report::write_reports(staged.path(), &written, &templates).map_err(relocate)?);
    if args.context {
        outputs.push(report::write_context(staged.path(), &written).map_err(relocate)?);
    }
    if let Some(profile) = &results.profile {
        report::write_profile(staged.path(), profile).map_err(relocate)?;
        outputs.push(run_folder::PROFILE.into());
    }
    outputs.push(run_folder::MANIFEST.into());
    let mut timings: Vec<StageTiming> = results
        .timings
        .iter()
        .map(|(stage, seconds)| StageTiming {
            stage: stage.clone(),
            seconds: *seconds,
        })
        .collect();
    timings.push(StageTiming {
        stage: "analysis and reports".into(),
        seconds: render_start.elapsed().as_secs_f64(),
    });
    // Every export is prepared (Postgres: rows written in an open transaction) before anything
    // is committed: a failed export leaves the tables as they were and no run folder.
    let run_id = report::exports::run_id(started_at, &pipeline.sha256);
    let export_start = std::time::Instant::now();
    let exports = runtime.block_on(report::exports::prepare_all(
        exports,
        &pipeline,
        &staged.path().join(run_folder::ASSIGNMENTS),
        &run_id,
        options.as_of,
    ))?;
    if !exports.records.is_empty() {
        // Writing every export's rows; the commits that follow are not in it.
        timings.push(StageTiming {
            stage: "exports".into(),
            seconds: export_start.elapsed().as_secs_f64(),
        });
    }
    let manifest = Manifest {
        run: run_info,
        timings,
        outputs,
        exports: exports.records.clone(),
    };
    report::write_manifest(staged.path(), &manifest).map_err(relocate)?;
    // The exports commit first and the run folder last (README, "Exports"): a failure between
    // the two leaves exports without their run folder, never a run folder claiming exports that
    // did not happen.
    staged.check_commit()?;
    runtime.block_on(exports.commit())?;
    let destination = staged.commit()?;
    // The run folder is complete; a closed stdout only cuts the summary short.
    if !json_format()
        && let Err(error) = print_summary(&destination, &results, &analysis)
        && !matches!(error, Error::BrokenPipe)
    {
        return Err(error);
    }
    report_lints(&runtime_lints, args.input.deny_warnings)?;
    if analysis.criteria.status == Status::Fail && !args.criteria_as_warnings {
        return Err(Error::CriteriaFailed {
            failed: failed_criteria(&analysis),
        });
    }
    Ok(())
}

/// `segflow report`: the reports of a finished run, rendered again from its documents.
fn render_report(args: &ReportArgs) -> Result<()> {
    let templates = Templates::new(args.templates.clone())?;
    let documents = run_folder::read_documents(&args.run, None)?;
    // The run masked the values of these variables in its reports; mask them again.
    let mut values = Vec::new();
    for name in &documents.run.masked_variables {
        match std::env::var(name) {
            Ok(value) => values.push(value),
            Err(_) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "note: the run masked the value of `${{{name}}}` in its reports; it is not set now, so these reports cannot mask it (set it to re-render them exactly)"
                );
            }
        }
    }
    secrets::remember(values.into_iter().filter(|v| v.len() >= 4).collect());
    let destination = match &args.out {
        Some(out) => out.clone(),
        None => {
            let trimmed = args.run.components().collect::<PathBuf>();
            let Some(name) = trimmed.file_name() else {
                return Err(Error::RunFolder {
                    folder: args.run.display().to_string(),
                    message: "has no folder name to name the reports after; pass --out".into(),
                });
            };
            let mut name = name.to_os_string();
            name.push("-report");
            trimmed.with_file_name(name)
        }
    };
    let protected = vec![args.run.clone(), PathBuf::from(".")];
    let staged = StagedOutput::begin(&destination, args.replace, &protected, FolderKind::Report)?;
    let relocate = |e: Error| e.relocated(staged.path(), &destination);
    let mut outputs =
        report::write_reports(staged.path(), &documents, &templates).map_err(relocate)?;
    if args.context {
        outputs.push(report::write_context(staged.path(), &documents).map_err(relocate)?);
    }
    if args.pdf {
        let pdf = staged.path().join("report.pdf");
        report::print_to_pdf(&staged.path().join("report.html"), &pdf).map_err(relocate)?;
        outputs.push("report.pdf".into());
    }
    outputs.push(run_folder::MANIFEST.into());
    let manifest = ReportManifest {
        segflow_version: env!("CARGO_PKG_VERSION").into(),
        kind: run_folder::REPORT_KIND.into(),
        run: args.run.display().to_string(),
        templates: args.templates.as_ref().map(|t| t.display().to_string()),
        outputs,
    };
    report::write_report_manifest(staged.path(), &manifest).map_err(relocate)?;
    let destination = staged.commit()?;
    out!(
        "reports of {} to {}\n",
        args.run.display(),
        destination.join("report.html").display()
    );
    Ok(())
}

/// `segflow templates export`: the built-in templates, for editing. Never overwrites a file.
fn export_templates(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let mut written = 0;
    for (name, text) in report::DEFAULT_TEMPLATES {
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match file {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(text.as_bytes())
                    .map_err(|e| Error::output(&path, e))?;
                written += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                out!("kept {} (exists)\n", path.display());
            }
            Err(e) => return Err(Error::output(&path, e)),
        }
    }
    out!("wrote {written} templates to {}\n", dir.display());
    Ok(())
}

fn failed_criteria(analysis: &Analysis) -> Vec<String> {
    analysis
        .criteria
        .criteria
        .iter()
        .flat_map(|c| {
            c.checks
                .iter()
                .filter(|check| check.status == Status::Fail)
                .map(move |check| {
                    format!(
                        "{} · {} · {}: {} ({}){}",
                        c.criterion,
                        check.subject,
                        check.measure,
                        check.value.map_or("–".to_string(), |v| format!("{v:.4}")),
                        check.threshold,
                        check
                            .detail
                            .as_ref()
                            .map_or(String::new(), |d| format!(" — {d}"))
                    )
                })
        })
        .collect()
}

fn print_summary(
    destination: &Path,
    results: &engine::RunResults,
    analysis: &Analysis,
) -> Result<()> {
    out!(
        "segmented {} customers as of {} into {} segments\n",
        results.customers,
        results.as_of,
        results.segments.len()
    );
    for segment in &results.segments {
        out!(
            "  {:<24} {:>9} {:>6.1}%\n",
            segment.id,
            segment.customers,
            segment.share * 100.0
        );
    }
    if results.unassigned > 0 {
        out!(
            "  {:<24} {:>9} {:>6.1}%\n",
            crate::pipeline::model::UNASSIGNED,
            results.unassigned,
            results.unassigned_share * 100.0
        );
    }
    for criterion in &analysis.criteria.criteria {
        out!(
            "  criterion {:<16} {:?}\n",
            criterion.criterion,
            criterion.status
        );
    }
    if let Some(beachhead) = analysis.scoring.as_ref().and_then(|s| s.beachhead.as_ref()) {
        out!("  beachhead: {beachhead}\n");
    }
    out!("report: {}\n", destination.join("report.html").display());
    Ok(())
}

"""segflow's benchmark: segflow against DuckDB and Polars on the same generated tables.

Started by scripts/bench/run (which builds segflow and prepares the Python venv); see
BENCHMARKS.md. For each size it generates the saas tables once (Parquet, reused on later runs),
then for each repeat runs segflow, DuckDB and Polars in rotating order, each as a process of its
own, measuring wall time and peak RSS; checks that every engine gives every customer the same
segment; prints a table and writes a JSON (and a Markdown) results file.

Exit codes: 0 all engines that finished agree and segflow finished every run; 1 some customer got
different segments from two engines; 2 the command line was wrong; 3 segflow did not finish a run
(out of memory, timeout or error) or a reference failed with an error other than running out of
memory or time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ENGINES = ("segflow", "duckdb", "polars")
TABLES = ("customers", "events", "invoices", "tickets")
# What segflow's targets ask for at the large sizes; passed only if `segflow run --help` lists the
# flag (see --segflow-args).
DEFAULT_SEGFLOW_ARGS = {"5m": "--memory-limit 2GiB", "20m": "--memory-limit 4GiB"}

OK = "ok"
OOM_CAP = "out of memory (killed at cap)"
OOM_ENGINE = "out of memory (engine error)"
OOM_KILLED = "killed by SIGKILL (likely the kernel's OOM killer)"
TIMEOUT = "timeout"
FAILED = "failed"
RESOURCE_LIMITS = (OOM_CAP, OOM_ENGINE, OOM_KILLED, TIMEOUT)


# ---------------------------------------------------------------------------------------------
# Small helpers


def log(message: str = "") -> None:
    print(message, file=sys.stderr, flush=True)


def parse_size(text: str) -> tuple[str, int]:
    """'100k' -> ('100k', 100000); '1m' -> ('1m', 1000000); '2500' -> ('2500', 2500)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100k, 1m, 20m)")
    number, suffix = float(match.group(1)), match.group(2).lower()
    count = int(round(number * {"": 1, "k": 1_000, "m": 1_000_000}[suffix]))
    if count <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return text.strip().lower(), count


def parse_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size in bytes: {text!r} (e.g. 14GiB)")
    unit = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[match.group(2).lower()]
    return int(float(match.group(1)) * unit)


def gib(n_bytes: float | None) -> str:
    return "—" if n_bytes is None else f"{n_bytes / 2**30:.2f} GiB"


def secs(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def command_output(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        return subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Running one engine process, measured


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        processes = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def busy_cpu_seconds() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def watch(popen: subprocess.Popen, started: float, mem_cap: int, timeout: float):
    """Waits for the engine, polling its tree's RSS; kills it at the cap or the timeout.

    Returns (wait status, rusage, largest RSS sum seen, why it was killed or None).
    """
    proc = psutil.Process(popen.pid)
    polled_peak, killed_for = 0, None
    while True:
        pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
        if pid != 0:
            return status, usage, polled_peak, killed_for
        rss = tree_rss(proc)
        polled_peak = max(polled_peak, rss)
        elapsed = time.perf_counter() - started
        if killed_for is None and (rss > mem_cap or elapsed > timeout):
            killed_for = OOM_CAP if rss > mem_cap else TIMEOUT
            try:
                os.killpg(popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Poll often at first (short runs), then less, to leave the cores to the engine.
        time.sleep(0.05 if elapsed < 2 else 0.1 if elapsed < 10 else 0.25)


def measure(
    cmd: list[str], cwd: Path, log_dir: Path, name: str, mem_cap: int, timeout: float,
    env: dict[str, str] | None = None,
) -> dict:
    """Runs cmd as a process group of its own; returns wall seconds, peak RSS and how it ended.

    Peak RSS is the larger of the kernel's high-water mark for the engine process (ru_maxrss from
    wait4) and the largest sum of RSS over its process tree seen while polling (every 50 ms at
    first, every 250 ms after 10 s). The tree is killed when that sum passes mem_cap or the run
    passes timeout seconds.
    """
    stdout_path, stderr_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    cpu_before = busy_cpu_seconds()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started = time.perf_counter()
        popen = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )
        try:
            status, usage, polled_peak, killed_for = watch(popen, started, mem_cap, timeout)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): stop the engine too.
            try:
                os.killpg(popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise
        wall = time.perf_counter() - started
        other_cpu = busy_cpu_seconds() - cpu_before - usage.ru_utime - usage.ru_stime
        popen.returncode = os.waitstatus_to_exitcode(status)
    # Children the engine left behind are part of its run: end them too.
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    peak = max(polled_peak, usage.ru_maxrss * 1024)
    stderr_text = stderr_path.read_text(errors="replace")
    code = popen.returncode
    if killed_for is not None:
        outcome = killed_for
    elif code == 0:
        outcome = OK
    elif code == -signal.SIGKILL:
        outcome = OOM_KILLED
    else:
        outcome = FAILED
    return {
        "cmd": cmd,
        "wall_s": wall,
        "peak_rss_bytes": peak,
        "exit_code": code,
        "outcome": outcome,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # CPU seconds the rest of the machine (this harness's polling included) used meanwhile:
        # the machine may be shared, and a run that had to share the cores is slower.
        "other_cpu_s": max(0.0, other_cpu),
        "stderr_tail": "\n".join(stderr_text.strip().splitlines()[-15:]),
        "stdout_path": str(stdout_path),
        "stderr_path": str(stderr_path),
    }


# ---------------------------------------------------------------------------------------------
# Data


def ensure_data(args, label: str, customers: int, datagen: Path | None) -> dict:
    """Generates the saas tables for `customers` into data_dir/label unless already there."""
    target = args.data_dir / label
    stamp = target / "datagen.json"
    wanted = {"customers": customers, "seed": args.seed, "format": "parquet"}
    if stamp.exists():
        done = json.loads(stamp.read_text())
        if all(done.get(k) == v for k, v in wanted.items()) and all(
            (target / f"{t}.parquet").exists() for t in TABLES
        ):
            log(f"[{label}] reusing data in {target}")
            return done
        log(f"[{label}] data in {target} was made differently; making it again")
    if datagen is None:
        datagen = args.resolve_datagen()
    staging = args.data_dir / f".{label}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cmd = [str(datagen), "--customers", str(customers), "--seed", str(args.seed),
           "--format", "parquet", "--out", str(staging)]
    log(f"[{label}] generating {customers:,} customers: {shlex.join(cmd)}")
    run = measure(cmd, staging, staging, "datagen", args.mem_cap, args.datagen_timeout)
    (staging / "datagen.stdout").unlink(missing_ok=True)
    (staging / "datagen.stderr").unlink(missing_ok=True)
    if run["outcome"] != OK:
        shutil.rmtree(staging, ignore_errors=True)
        raise SystemExit(f"[{label}] segflow-datagen {run['outcome']}:\n{run['stderr_tail']}")
    rows = {t: pq.ParquetFile(staging / f"{t}.parquet").metadata.num_rows for t in TABLES}
    size = {t: (staging / f"{t}.parquet").stat().st_size for t in TABLES}
    done = {
        **wanted,
        "command": shlex.join(cmd),
        "datagen_sha256": sha256_of(datagen),
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": run["wall_s"],
        "peak_rss_bytes": run["peak_rss_bytes"],
        "rows": rows,
        "bytes": size,
    }
    (staging / "datagen.json").write_text(json.dumps(done, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    log(f"[{label}] generated in {run['wall_s']:.1f} s (peak RSS {gib(run['peak_rss_bytes'])}): "
        + ", ".join(f"{rows[t]:,} {t}" for t in TABLES))
    return done


def warm(data: Path) -> None:
    """Reads the tables once so that no engine pays for the first read from disk."""
    for t in TABLES:
        with open(data / f"{t}.parquet", "rb") as f:
            while f.read(1 << 24):
                pass


# ---------------------------------------------------------------------------------------------
# Engines


def flag_supported(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


def filter_flags(tokens: list[str], help_text: str) -> tuple[list[str], list[str]]:
    """Keeps the flags `segflow run --help` lists (with their values); returns (kept, dropped)."""
    kept, dropped, i = [], [], 0
    while i < len(tokens):
        token = tokens[i]
        group = [token]
        if token.startswith("--") and "=" not in token:
            while i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                i += 1
                group.append(tokens[i])
        flag = token.split("=", 1)[0]
        (kept if flag_supported(help_text, flag) else dropped).extend(group)
        i += 1
    return kept, dropped


def engine_command(args, engine: str, data: Path, out_dir: Path, extra: list[str]) -> tuple[list[str], Path, Path]:
    """(command, working directory, file with customer_id and segment) for one run."""
    if engine == "segflow":
        run_dir = out_dir / "run"
        cmd = [str(args.segflow), "run", str(args.pipeline), "--out", str(run_dir)]
        for t in TABLES:
            cmd += ["--source", f"{t}={data / f'{t}.parquet'}"]
        return cmd + extra, args.repo, run_dir / "assignments.parquet"
    out = out_dir / "segments.parquet"
    script = HERE / ("duckdb_ref.py" if engine == "duckdb" else "polars_ref.py")
    cmd = [sys.executable, str(script), "--data", str(data), "--out", str(out)]
    if engine == "duckdb":
        cmd += ["--threads", str(args.duckdb_threads)]
        if args.duckdb_memory_limit:
            cmd += ["--memory-limit", args.duckdb_memory_limit]
    return cmd, out_dir, out


def classify(engine: str, run: dict) -> str:
    """Turns an engine's own out-of-memory error into OOM_ENGINE."""
    if run["outcome"] != FAILED:
        return run["outcome"]
    if engine != "segflow" and run["exit_code"] == 3:
        return OOM_ENGINE
    text = run["stderr_tail"].lower()
    if "resources exhausted" in text or "out of memory" in text or "memory allocation" in text:
        return OOM_ENGINE
    if engine == "segflow" and run["exit_code"] == 6:
        # Exit 6: the run completed and wrote everything, but a validation criterion failed.
        return OK
    return FAILED


def read_segments(path: Path) -> pa.Table:
    table = pq.read_table(path, columns=["customer_id", "segment"])
    return pa.table({
        "customer_id": pc.cast(table["customer_id"], pa.int64()),
        "segment": pc.cast(table["segment"], pa.large_string()),
    })


def compare(a: pa.Table, b: pa.Table) -> dict:
    """Customers whose segment differs (or who are missing on one side, or listed twice)."""
    dup_a = a.num_rows - pc.count_distinct(a["customer_id"]).as_py()
    dup_b = b.num_rows - pc.count_distinct(b["customer_id"]).as_py()
    joined = a.join(b, "customer_id", join_type="full outer", left_suffix="_a", right_suffix="_b",
                    coalesce_keys=True)
    left, right = joined["segment_a"], joined["segment_b"]
    only_b = pc.sum(pc.is_null(left)).as_py() or 0
    only_a = pc.sum(pc.is_null(right)).as_py() or 0
    differs = pc.fill_null(pc.not_equal(left, right), False)
    different = pc.sum(differs).as_py() or 0
    examples = joined.filter(
        pc.or_(differs, pc.or_(pc.is_null(left), pc.is_null(right)))
    ).sort_by("customer_id").slice(0, 5).to_pylist()
    return {
        "mismatches": different + only_a + only_b + dup_a + dup_b,
        "different_segment": different,
        "only_in_first": only_a,
        "only_in_second": only_b,
        "duplicates": dup_a + dup_b,
        "examples": examples,
    }


def distribution(table: pa.Table) -> dict[str, int]:
    counts = pc.value_counts(table["segment"]).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: str(c["values"]))}


def stage_timings(run_dir: Path) -> dict[str, float] | None:
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    timings = manifest.get("timings")
    if isinstance(timings, dict):
        return {k: float(v) for k, v in timings.items()}
    if isinstance(timings, list):
        return {t["stage"]: float(t["seconds"]) for t in timings if "stage" in t}
    return None


# ---------------------------------------------------------------------------------------------
# Reporting


def summarise(size_result: dict, engines: list[str]) -> dict:
    summary: dict = {}
    for engine in engines:
        runs = [r[engine] for r in size_result["repeats"] if engine in r]
        good = [r for r in runs if r["outcome"] == OK]
        walls = [r["wall_s"] for r in good]
        rss = [r["peak_rss_bytes"] for r in good]
        outcomes: dict[str, int] = {}
        for r in runs:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        stopped = [f"{r['outcome']} after {r['wall_s']:.1f} s at {gib(r['peak_rss_bytes'])}"
                   for r in runs if r["outcome"] != OK]
        summary[engine] = {
            "runs": len(runs),
            "ok": len(good),
            "outcomes": outcomes,
            "stopped": stopped,
            "wall_s_median": median(walls),
            "wall_s_min": min(walls) if walls else None,
            "wall_s_max": max(walls) if walls else None,
            "peak_rss_bytes_median": median(rss),
            "engine_s_median": median([r["engine_s"] for r in good if r.get("engine_s") is not None]),
            "other_cpu_s_median": median([r["other_cpu_s"] for r in good if "other_cpu_s" in r]),
        }
    sf = summary.get("segflow")
    for engine in engines:
        if engine == "segflow" or sf is None:
            continue
        other = summary[engine]
        summary[engine]["segflow_wall_ratio"] = (
            sf["wall_s_median"] / other["wall_s_median"]
            if sf["wall_s_median"] and other["wall_s_median"] else None)
        summary[engine]["segflow_rss_ratio"] = (
            sf["peak_rss_bytes_median"] / other["peak_rss_bytes_median"]
            if sf["peak_rss_bytes_median"] and other["peak_rss_bytes_median"] else None)
    mismatches: dict[str, int | None] = {}
    for repeat in size_result["repeats"]:
        for pair, result in repeat.get("comparisons", {}).items():
            prev = mismatches.get(pair) or 0
            mismatches[pair] = max(prev, result["mismatches"])
    summary["mismatches"] = mismatches
    stages: dict[str, list[float]] = {}
    for repeat in size_result["repeats"]:
        for stage, seconds in (repeat.get("segflow", {}).get("stages") or {}).items():
            stages.setdefault(stage, []).append(seconds)
    summary["segflow_stages_median_s"] = {k: median(v) for k, v in stages.items()}
    return summary


def status_text(s: dict) -> str:
    if s["runs"] == 0:
        return "not run"
    parts = s.get("stopped") or [f"{n}× {o}" for o, n in s["outcomes"].items() if o != OK]
    return f"{s['ok']}/{s['runs']} ok" + (f"; {', '.join(parts)}" if parts else "")


def ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def markdown_size(label: str, size_result: dict, engines: list[str]) -> str:
    s = size_result["summary"]
    data = size_result["data"]
    lines = [
        f"#### {label}: {data['customers']:,} customers, {data['rows']['events']:,} events "
        f"({size_result['repeats_asked']} repeat(s))",
        "",
        f"segflow flags: `{' '.join(size_result['segflow_args']) or '(none)'}`"
        + (f" (dropped, not in `segflow run --help`: `{' '.join(size_result['segflow_args_dropped'])}`)"
           if size_result["segflow_args_dropped"] else ""),
        "",
        "| engine | wall, median (min–max) | peak RSS, median | segflow ÷ engine: wall | segflow ÷ engine: RSS | runs | mismatches vs segflow | other processes' CPU-s during run, median |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for engine in engines:
        e = s[engine]
        wall = ("—" if e["wall_s_median"] is None else
                f"{e['wall_s_median']:.2f} s ({e['wall_s_min']:.2f}–{e['wall_s_max']:.2f})")
        mism = "—" if engine == "segflow" else s["mismatches"].get(f"segflow vs {engine}", "not compared")
        lines.append(
            f"| {engine} | {wall} | {gib(e['peak_rss_bytes_median'])} | "
            f"{'' if engine == 'segflow' else ratio(e.get('segflow_wall_ratio'))} | "
            f"{'' if engine == 'segflow' else ratio(e.get('segflow_rss_ratio'))} | "
            f"{status_text(e)} | {mism} | "
            f"{'—' if e.get('other_cpu_s_median') is None else format(e['other_cpu_s_median'], '.1f')} |")
    other_pairs = {k: v for k, v in s["mismatches"].items() if not k.startswith("segflow vs")}
    if other_pairs:
        lines += ["", "Between the references: " + ", ".join(f"{k}: {v}" for k, v in other_pairs.items())
                  + " mismatches."]
    if s["segflow_stages_median_s"]:
        lines += ["", "segflow's stages (manifest.json `timings`, median seconds):", "",
                  "| stage | seconds |", "| --- | --- |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in s["segflow_stages_median_s"].items()]
    dist = size_result.get("segments")
    if dist:
        lines += ["", "Segment sizes: " + ", ".join(f"{k} {v:,}" for k, v in dist.items())]
    return "\n".join(lines) + "\n"


def overview(results: dict) -> list[str]:
    """One row per size: the figures BENCHMARKS.md quotes."""
    engines = results["settings"]["engines"]
    lines = [
        "| size | events | segflow flags | segflow wall | DuckDB wall | Polars wall | segflow peak RSS "
        "| DuckDB peak RSS | Polars peak RSS | segflow ÷ DuckDB (wall / RSS) | segflow ÷ Polars (wall / RSS) "
        "| mismatches (sf–duck, sf–pol, duck–pol) | other CPU-s during segflow runs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def wall(e: dict | None) -> str:
        if e is None:
            return "not run"
        if e["wall_s_median"] is None:
            return "; ".join(e.get("stopped") or ["—"])
        text = f"{e['wall_s_median']:.2f} s ({e['wall_s_min']:.2f}–{e['wall_s_max']:.2f})"
        return text if e["ok"] == e["runs"] else f"{text} [{e['ok']}/{e['runs']} ok]"

    def rss(e: dict | None) -> str:
        return "—" if e is None else gib(e["peak_rss_bytes_median"])

    def ratios(e: dict | None) -> str:
        if e is None or e.get("segflow_wall_ratio") is None:
            return "—"
        return f"{ratio(e['segflow_wall_ratio'])} / {ratio(e.get('segflow_rss_ratio'))}"

    for label, size_result in results["sizes"].items():
        if not size_result.get("repeats"):
            continue
        s = summarise(size_result, engines)
        sf, duck, pol = s.get("segflow"), s.get("duckdb"), s.get("polars")
        m = s["mismatches"]
        mism = ", ".join(str(m.get(k, "—")) for k in ("segflow vs duckdb", "segflow vs polars", "duckdb vs polars"))
        other = "—" if sf is None or sf.get("other_cpu_s_median") is None else f"{sf['other_cpu_s_median']:.1f}"
        lines.append(
            f"| {label} ×{len(size_result['repeats'])} | {size_result['data']['rows']['events']:,} "
            f"| `{' '.join(size_result['segflow_args']) or '—'}` | {wall(sf)} | {wall(duck)} | {wall(pol)} "
            f"| {rss(sf)} | {rss(duck)} | {rss(pol)} | {ratios(duck)} | {ratios(pol)} | {mism} | {other} |")
    return lines


def markdown(results: dict) -> str:
    """The results file's tables, as Markdown (what BENCHMARKS.md quotes)."""
    machine, settings, segflow = results["machine"], results["settings"], results.get("segflow") or {}
    engines = settings["engines"]
    md = [f"Command: `{results['command']}`  ",
          f"Started {results['started_at']}"
          + (f", finished {results['finished_at']}" if results.get("finished_at") else "") + "  ",
          f"segflow: `{segflow.get('binary', '—')}` ({segflow.get('version', '')}, sha256 "
          f"{segflow.get('sha256', '')[:12]}); harness from repo {results['repo']['describe']}"
          + (f"; {results['label']}" if results.get("label") else "") + "  ",
          f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), "
          f"{machine['memory_bytes'] / 2**30:.1f} GiB; DuckDB {machine['duckdb']} "
          f"({settings['duckdb_threads']} threads, memory_limit "
          f"{settings.get('duckdb_memory_limit', 'default (80% of RAM)')}), Polars {machine['polars']} "
          f"(threads: {settings['polars_threads']}); memory cap {gib(settings['mem_cap_bytes'])}, "
          f"timeout {settings['timeout_s']:.0f} s", ""]
    md += ["Overview (medians; ratios are segflow's median ÷ the reference's):", "",
           *overview(results), ""]
    for label, size_result in results["sizes"].items():
        if size_result.get("repeats"):
            size_result["summary"] = summarise(size_result, engines)
            md.append(markdown_size(label, size_result, engines))
    return "\n".join(md)


def print_size(label: str, size_result: dict, engines: list[str]) -> None:
    s = size_result["summary"]
    data = size_result["data"]
    print()
    print(f"== {label}: {data['customers']:,} customers, {data['rows']['events']:,} events, "
          f"{len(size_result['repeats'])} repeat(s)")
    print(f"   {'engine':8} {'wall median (min–max)':>28} {'peak RSS med.':>14} "
          f"{'sf/eng wall':>11} {'sf/eng RSS':>10}  status")
    for engine in engines:
        e = s[engine]
        wall = ("—" if e["wall_s_median"] is None else
                f"{e['wall_s_median']:.2f} s ({e['wall_s_min']:.2f}–{e['wall_s_max']:.2f})")
        print(f"   {engine:8} {wall:>28} {gib(e['peak_rss_bytes_median']):>14} "
              f"{'' if engine == 'segflow' else ratio(e.get('segflow_wall_ratio')):>11} "
              f"{'' if engine == 'segflow' else ratio(e.get('segflow_rss_ratio')):>10}  {status_text(e)}")
    for pair, n in s["mismatches"].items():
        print(f"   mismatches {pair}: {n}" + ("   <<<<<<<< MISMATCH" if n else ""))
    if s["segflow_stages_median_s"]:
        print("   segflow stages (median s): " + ", ".join(
            f"{k} {v:.2f}" for k, v in s["segflow_stages_median_s"].items()))
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# Main


def strip_repo(argv: list[str]) -> list[str]:
    """The command line as typed: without the --repo that scripts/bench/run adds."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--repo":
            skip = True
        elif not token.startswith("--repo="):
            out.append(token)
    return out


def machine_info() -> dict:
    lscpu = command_output(["lscpu"])
    model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "")
    import duckdb  # noqa: PLC0415  (versions only; engines run in their own processes)
    import polars  # noqa: PLC0415
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
        "pyarrow": pa.__version__,
        "psutil": psutil.__version__,
    }


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(
        prog="scripts/bench/run",
        description="Benchmark segflow against DuckDB and Polars on generated data (see BENCHMARKS.md).",
    )
    p.add_argument("--sizes", default="100k,1m", help="customer counts, comma-separated, k and m suffixes (default: 100k,1m)")
    p.add_argument("--repeats", default="3",
                   help="runs of each engine per size, or one count per size, e.g. 3,3,3,1 (default: 3)")
    p.add_argument("--engines", default=",".join(ENGINES), help="engines to run, comma-separated (default: segflow,duckdb,polars)")
    p.add_argument("--segflow", type=Path, help="segflow binary to benchmark (default: build and use $CARGO_TARGET_DIR/release/segflow)")
    p.add_argument("--datagen", type=Path, help="segflow-datagen binary (default: $CARGO_TARGET_DIR/release/segflow-datagen, built if missing)")
    p.add_argument("--segflow-args", action="append", default=[], metavar="SIZE:FLAGS",
                   help="extra flags for `segflow run` at one size ('*' for every size), e.g. "
                        "'5m:--memory-limit 2GiB'; passed only if `segflow run --help` lists them; "
                        f"replaces the default for that size (defaults: {DEFAULT_SEGFLOW_ARGS})")
    p.add_argument("--pipeline", type=Path, help="pipeline file (default: scripts/bench/saas_core.yaml, the segmentation the references compute)")
    p.add_argument("--data-dir", type=Path, default=Path.home() / ".cache/segflow/bench-data",
                   help="where generated tables are kept and reused, one folder per size (default: ~/.cache/segflow/bench-data)")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default: 42)")
    p.add_argument("--results", type=Path, help="results JSON (default: ~/.cache/segflow/bench-results/<UTC time>.json); "
                   "a .md beside it holds the tables")
    p.add_argument("--mem-cap", type=parse_bytes, default="14GiB",
                   help="kill an engine whose process tree's RSS passes this (default: 14GiB)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before an engine run is killed (default: 600)")
    p.add_argument("--datagen-timeout", type=float, default=3600.0, help="seconds before data generation is killed (default: 3600)")
    p.add_argument("--duckdb-threads", type=int, default=2, help="DuckDB's threads (default: 2)")
    p.add_argument("--duckdb-memory-limit", metavar="SIZE",
                   help="DuckDB's memory_limit, e.g. 10GiB, so that it spills below --mem-cap "
                        "(default: DuckDB's own, 80%% of RAM)")
    p.add_argument("--label", default="", help="a note stored with the results, e.g. which commit the segflow binary was built from")
    p.add_argument("--generate-only", action="store_true", help="only make the data for --sizes (timed), run no engine")
    p.add_argument("--report", type=Path, metavar="RESULTS_JSON",
                   help="only write RESULTS_JSON's tables again (to the .md beside it) and print them")
    p.add_argument("--keep", action="store_true", help="keep every run's outputs in the scratch folder (printed at the end)")
    p.add_argument("--repo", type=Path, default=HERE.parent.parent, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown or not args.engines:
        p.error(f"unknown engines {unknown}; choose from {', '.join(ENGINES)}")
    try:
        repeats = [int(r) for r in str(args.repeats).split(",")]
    except ValueError:
        p.error(f"--repeats wants a count or one count per size, got {args.repeats!r}")
    if len(repeats) == 1:
        repeats *= len(args.sizes)
    if len(repeats) != len(args.sizes) or min(repeats) < 1:
        p.error("--repeats wants one count (at least 1), or one per size")
    args.repeats = dict(zip([label for label, _ in args.sizes], repeats))
    overrides = dict(DEFAULT_SEGFLOW_ARGS)
    for item in args.segflow_args:
        if ":" not in item:
            p.error(f"--segflow-args wants SIZE:FLAGS, got {item!r}")
        size, flags = item.split(":", 1)
        overrides[size.strip().lower()] = flags
    args.segflow_args = overrides
    args.repo = args.repo.resolve()
    args.pipeline = (args.pipeline or args.repo / "scripts/bench/saas_core.yaml").resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", args.repo / "target"))
    if not target.is_absolute():
        target = args.repo / target
    args.target = target

    def resolve_datagen() -> Path:
        path = args.datagen or target / "release/segflow-datagen"
        if not path.exists():
            log(f"building segflow-datagen ({path} is missing)")
            subprocess.run(["cargo", "build", "--release", "--bin", "segflow-datagen"],
                           cwd=args.repo, check=True)
        return path.resolve()

    args.resolve_datagen = resolve_datagen
    return args


def interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # A termination signal ends the run like Ctrl-C: the engine running now is stopped and the
    # results so far are saved.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    if args.report:
        results = json.loads(args.report.read_text())
        text = markdown(results)
        args.report.with_suffix(".md").write_text(text)
        print(text)
        return 0
    if args.generate_only:
        for label, customers in args.sizes:
            info = ensure_data(args, label, customers, args.datagen)
            print(json.dumps({label: info}, indent=2))
        return 0
    if "segflow" in args.engines:
        if args.segflow is None:
            log("building the release binaries: cargo build --release --bins")
            subprocess.run(["cargo", "build", "--release", "--bins"], cwd=args.repo, check=True)
            args.segflow = args.target / "release/segflow"
            if args.datagen is None:
                args.datagen = args.target / "release/segflow-datagen"
        args.segflow = args.segflow.resolve()
        if not args.segflow.exists():
            raise SystemExit(f"no segflow binary at {args.segflow}")
        help_text = command_output([str(args.segflow), "run", "--help"])
    else:
        help_text = ""

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results_path = args.results or Path.home() / f".cache/segflow/bench-results/{stamp}.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="segflow-bench-"))
    results = {
        "label": args.label,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["scripts/bench/run", *strip_repo(argv)]),
        "machine": machine_info(),
        "segflow": None if "segflow" not in args.engines else {
            "binary": str(args.segflow),
            "sha256": sha256_of(args.segflow),
            "modified": dt.datetime.fromtimestamp(args.segflow.stat().st_mtime, dt.timezone.utc).isoformat(timespec="seconds"),
            "version": command_output([str(args.segflow), "--version"]),
        },
        "repo": {
            "path": str(args.repo),
            "commit": command_output(["git", "rev-parse", "HEAD"], cwd=args.repo),
            "describe": command_output(["git", "describe", "--always", "--dirty"], cwd=args.repo),
        },
        "settings": {
            "engines": args.engines,
            "repeats": args.repeats,
            "mem_cap_bytes": args.mem_cap,
            "timeout_s": args.timeout,
            "duckdb_threads": args.duckdb_threads,
            "duckdb_memory_limit": args.duckdb_memory_limit or "default (80% of RAM)",
            "polars_threads": os.environ.get("POLARS_MAX_THREADS", "default (one per core)"),
            "pipeline": str(args.pipeline),
        },
        "sizes": {},
    }

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        results_path.with_suffix(".md").write_text(markdown(results))

    exit_code = 0
    rotation = 0
    try:
        for label, customers in args.sizes:
            data_info = ensure_data(args, label, customers, args.datagen)
            data = args.data_dir / label
            warm(data)
            extra, dropped = filter_flags(shlex.split(args.segflow_args.get(label, args.segflow_args.get("*", ""))),
                                          help_text)
            if dropped:
                log(f"[{label}] segflow run --help does not list {dropped}; running without them")
            size_result = {"data": data_info, "segflow_args": extra, "segflow_args_dropped": dropped,
                           "repeats_asked": args.repeats[label], "repeats": []}
            results["sizes"][label] = size_result
            for repeat in range(args.repeats[label]):
                order = args.engines[rotation % len(args.engines):] + args.engines[:rotation % len(args.engines)]
                rotation += 1
                record: dict = {"order": order}
                size_result["repeats"].append(record)
                outputs: dict[str, Path] = {}
                for engine in order:
                    out_dir = scratch / label / f"r{repeat + 1}" / engine
                    out_dir.mkdir(parents=True, exist_ok=True)
                    cmd, cwd, out = engine_command(args, engine, data, out_dir, extra)
                    run = measure(cmd, cwd, out_dir, engine, args.mem_cap, args.timeout)
                    run["outcome"] = classify(engine, run)
                    if run["outcome"] == OK and not out.exists():
                        run["outcome"] = FAILED
                        run["stderr_tail"] += f"\n(no output at {out})"
                    if engine == "segflow":
                        run["stages"] = stage_timings(out.parent)
                    else:
                        try:
                            last = Path(run["stdout_path"]).read_text().strip().splitlines()[-1]
                            run["engine_s"] = json.loads(last)["seconds"]
                        except (IndexError, ValueError, KeyError, OSError):
                            run["engine_s"] = None
                    record[engine] = run
                    log(f"[{label} r{repeat + 1}] {engine:8} {run['outcome']:>8}  "
                        f"{run['wall_s']:8.2f} s  {gib(run['peak_rss_bytes'])}"
                        + (f"  (other processes used {run['other_cpu_s']:.1f} CPU-s meanwhile)"
                           if run["other_cpu_s"] > 0.1 * run["wall_s"] * (os.cpu_count() or 1) else ""))
                    if run["outcome"] == OK:
                        outputs[engine] = out
                    else:
                        log(f"    exit {run['exit_code']}; {shlex.join(cmd)}\n    "
                            + run["stderr_tail"].replace("\n", "\n    "))
                        if (run["outcome"] == FAILED or engine == "segflow") and exit_code == 0:
                            exit_code = 3
                    save()
                # Compare every engine's segments with every other's, customer by customer.
                tables = {e: read_segments(p) for e, p in outputs.items()}
                record["comparisons"] = {}
                names = [e for e in args.engines if e in tables]
                for i, a in enumerate(names):
                    for b in names[i + 1:]:
                        result = compare(tables[a], tables[b])
                        record["comparisons"][f"{a} vs {b}"] = result
                        if result["mismatches"]:
                            exit_code = 1
                            log(f"!!!!!!!! [{label} r{repeat + 1}] {a} vs {b}: {result['mismatches']:,} "
                                f"customers differ ({result['different_segment']:,} different segment, "
                                f"{result['only_in_first']:,} only in {a}, {result['only_in_second']:,} only in {b}, "
                                f"{result['duplicates']:,} duplicates); e.g. {result['examples']}")
                if names and "segments" not in size_result:
                    size_result["segments"] = distribution(tables[names[0]])
                del tables
                if not args.keep:
                    shutil.rmtree(scratch / label / f"r{repeat + 1}", ignore_errors=True)
                size_result["summary"] = summarise(size_result, args.engines)
                save()
            print_size(label, size_result, args.engines)
    except KeyboardInterrupt:
        log("interrupted; results so far are saved")
        exit_code = 130
    finally:
        results["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        results["exit_code"] = exit_code
        save()
        if args.keep:
            log(f"outputs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(f"results: {results_path} (tables: {results_path.with_suffix('.md')})")
    if exit_code == 1:
        print("MISMATCH: engines disagree on some customers' segments (see above)")
    if exit_code == 3 or any(
        r.get("segflow", {}).get("outcome", OK) != OK
        for s in results["sizes"].values() for r in s["repeats"]
    ):
        print("segflow did not finish every run, or a reference failed with an error (see above)")
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

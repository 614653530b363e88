//! `run --engine ballista://`: a real Ballista scheduler and two executors, started as processes
//! on loopback with `segflow ballista scheduler|executor`, run the pipelines; every customer's
//! segment and features, and the segments' statistics and criteria, must be the embedded run's.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::{read_assignments, read_json, repo_path, segflow, stderr, stderr_unwrapped};

/// A scheduler and two executors on loopback, stopped when dropped.
struct Cluster {
    processes: Vec<Child>,
    scheduler: SocketAddr,
    folder: TempDir,
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Wait until something accepts connections at `address`.
fn wait_for(address: SocketAddr, what: &str, cluster: &Cluster) {
    let started = Instant::now();
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the {what} did not listen on {address} within 60 s; logs:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Cluster {
    fn start() -> Self {
        let folder = TempDir::new().expect("temp dir");
        let scheduler = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut cluster = Cluster {
            processes: Vec::new(),
            scheduler,
            folder,
        };
        cluster.spawn("scheduler", &["--bind", &scheduler.to_string()]);
        wait_for(scheduler, "scheduler", &cluster);
        for executor in ["executor-1", "executor-2"] {
            let flight = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let grpc = free_port();
            let work = cluster.folder.path().join(format!("{executor}-work"));
            std::fs::create_dir(&work).expect("work dir");
            cluster.spawn(
                executor,
                &[
                    "--scheduler",
                    &scheduler.to_string(),
                    "--bind",
                    &flight.to_string(),
                    "--grpc-port",
                    &grpc.to_string(),
                    "--concurrent-tasks",
                    "2",
                    "--work-dir",
                    work.to_str().expect("path"),
                ],
            );
            wait_for(flight, executor, &cluster);
        }
        cluster
    }

    /// Start `segflow ballista scheduler|executor`, its output into `NAME.log`.
    fn spawn(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.log(name)).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_segflow"))
            .arg("ballista")
            .arg(if name == "scheduler" {
                "scheduler"
            } else {
                "executor"
            })
            .args(args)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start a Ballista process");
        self.processes.push(child);
    }

    fn log(&self, name: &str) -> PathBuf {
        self.folder.path().join(format!("{name}.log"))
    }

    fn logs(&self) -> String {
        ["scheduler", "executor-1", "executor-2"]
            .iter()
            .map(|name| {
                format!(
                    "--- {name}\n{}",
                    std::fs::read_to_string(self.log(name)).unwrap_or_default()
                )
            })
            .collect()
    }

    fn engine(&self) -> String {
        format!("ballista://{}", self.scheduler)
    }

    /// Shuffle files each executor wrote: both must have taken part.
    fn executors_with_work(&self) -> usize {
        ["executor-1", "executor-2"]
            .iter()
            .filter(|name| {
                std::fs::read_dir(self.folder.path().join(format!("{name}-work")))
                    .map(|entries| entries.count() > 0)
                    .unwrap_or(false)
            })
            .count()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// Run `pipeline` into `out` with `extra` arguments.
fn run(pipeline: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    segflow()
        .current_dir(repo_path(""))
        .arg("run")
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .args(["--criteria-as-warnings", "--quiet"])
        .args(extra)
        .output()
        .expect("run segflow")
}

/// Run `pipeline` embedded and on `cluster`, and require the same customers, segments,
/// features, statistics and criteria.
fn assert_same_as_embedded(cluster: &Cluster, pipeline: &Path, key: &str) -> usize {
    let folder = TempDir::new().expect("temp dir");
    let embedded = folder.path().join("embedded");
    let distributed = folder.path().join("ballista");
    let output = run(pipeline, &embedded, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(pipeline, &distributed, &["--engine", &cluster.engine()]);
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        cluster.logs()
    );

    let (expected, expected_types) = read_assignments(&embedded.join("assignments.parquet"), key);
    let (found, found_types) = read_assignments(&distributed.join("assignments.parquet"), key);
    assert_eq!(
        found_types,
        expected_types,
        "{}: column types",
        pipeline.display()
    );
    assert_eq!(
        found.len(),
        expected.len(),
        "{}: customers",
        pipeline.display()
    );
    let mut differences = Vec::new();
    for (id, row) in &expected {
        match found.get(id) {
            None => differences.push(format!("customer {id} is missing")),
            Some(other) => {
                for (column, value) in row {
                    let same = match (value.as_f64(), other[column].as_f64()) {
                        // Sums may add in another order on another partitioning.
                        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                        _ => *value == other[column],
                    };
                    if !same {
                        differences.push(format!(
                            "customer {id}, {column}: embedded {value}, ballista {}",
                            other[column]
                        ));
                    }
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{}: {} differences, first: {:?}",
        pipeline.display(),
        differences.len(),
        &differences[..differences.len().min(10)]
    );
    for file in ["segments.json", "criteria.json"] {
        assert_eq!(
            read_json(&distributed.join(file)),
            read_json(&embedded.join(file)),
            "{}: {file}",
            pipeline.display()
        );
    }
    // Cohorts are measured embedded from the same files: the same tables.
    if embedded.join("cohorts.json").exists() {
        assert_eq!(
            read_json(&distributed.join("cohorts.json"))["tables"],
            read_json(&embedded.join("cohorts.json"))["tables"],
            "{}: cohorts.json",
            pipeline.display()
        );
    }
    let manifest = read_json(&distributed.join("manifest.json"));
    assert_eq!(manifest["engine"], "ballista");
    expected.len()
}

#[test]
fn the_example_pipelines_on_a_two_executor_cluster_assign_every_customer_as_embedded() {
    let cluster = Cluster::start();
    for pipeline in [
        "pipelines/saas_quarterly.yaml",
        "pipelines/rfm_retail.yaml",
        "pipelines/prioritization_example.yaml",
        "pipelines/needs_survey.yaml",
    ] {
        let customers = assert_same_as_embedded(&cluster, &repo_path(pipeline), "customer_id");
        assert!(customers > 0, "{pipeline}: customers");
    }
    assert_eq!(
        cluster.executors_with_work(),
        2,
        "both executors ran tasks; logs:\n{}",
        cluster.logs()
    );
}

#[test]
fn one_hundred_thousand_generated_customers_on_a_cluster_match_the_embedded_run() {
    let folder = TempDir::new().expect("temp dir");
    let data = folder.path().join("data/saas");
    let generated = Command::new(env!("CARGO_BIN_EXE_segflow-datagen"))
        .args(["--customers", "100000", "--seed", "11", "--out"])
        .arg(&data)
        .output()
        .expect("run datagen");
    assert!(generated.status.success(), "{}", stderr(&generated));
    let pipeline = folder.path().join("pipeline.yaml");
    std::fs::copy(repo_path("pipelines/saas_quarterly.yaml"), &pipeline).expect("copy");
    let cluster = Cluster::start();
    let customers = assert_same_as_embedded(&cluster, &pipeline, "customer_id");
    assert_eq!(customers, 100_000);
}

#[test]
fn a_scheduler_out_of_reach_or_without_executors_is_named_and_nothing_is_written() {
    let folder = TempDir::new().expect("temp dir");
    let out = folder.path().join("run");
    let nowhere = format!("ballista://127.0.0.1:{}", free_port());
    let output = run(
        &repo_path("pipelines/saas_quarterly.yaml"),
        &out,
        &["--engine", &nowhere],
    );
    assert_eq!(output.status.code(), Some(13), "{}", stderr(&output));
    let message = stderr_unwrapped(&output);
    assert!(
        message.contains(&format!("Ballista cluster {nowhere}"))
            && message.contains("connection refused")
            && message.contains("segflow::cluster"),
        "{message}"
    );
    assert!(!out.exists(), "no run folder");

    let bad = run(
        &repo_path("pipelines/saas_quarterly.yaml"),
        &out,
        &["--engine", "ballista://"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("ballista://HOST:PORT"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_postgres_source_is_refused_because_executors_cannot_read_it() {
    let workspace = crate::support::Workspace::from_fixture("windows");
    workspace.edit_pipeline(
        "    path: events.csv\n",
        "    postgres: { url: \"postgres://segflow@127.0.0.1:1/none\", table: events }\n",
    );
    let out = workspace.path().join("run");
    let output = run(
        &workspace.path().join("pipeline.yaml"),
        &out,
        &["--engine", "ballista://127.0.0.1:1"],
    );
    let message = stderr_unwrapped(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("source `events` is a Postgres table"),
        "{message}"
    );
    assert!(!out.exists(), "no run folder");
}

//! `segflow ballista scheduler` and `segflow ballista executor`: the processes of an Apache
//! Ballista cluster, started from segflow's own binary so that the scheduler and executors are
//! the same Ballista and DataFusion release as the client. They are stock Ballista processes:
//! segflow registers no function of its own on them, because `--engine ballista://` sends plans
//! that need none (portable shapes; `as_of()` folded into a literal).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;

use crate::error::{Error, Result};

/// How an executor is started.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler it registers with.
    pub scheduler: SocketAddr,
    /// The address it listens on (its Arrow Flight port, where shuffle data is fetched).
    pub bind: SocketAddr,
    /// Its gRPC port, where the scheduler sends tasks.
    pub grpc_port: u16,
    /// Tasks it runs at once; default one per core.
    pub concurrent_tasks: Option<usize>,
    /// Where it writes shuffle files; default a temporary folder.
    pub work_dir: Option<PathBuf>,
    /// Bytes its tasks' memory pools share before they spill; default Ballista's (a share of
    /// the machine's memory).
    pub memory_limit: Option<u64>,
}

fn failed(what: &str, at: impl std::fmt::Display, error: impl std::fmt::Display) -> Error {
    Error::Cluster {
        scheduler: format!("{what} at {at}"),
        message: error.to_string(),
        help: Some("check that the port is free and the address is this machine's".into()),
    }
}

/// Run a scheduler listening on `bind` until the process is stopped.
pub async fn scheduler(bind: SocketAddr) -> Result<()> {
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        external_host: bind.ip().to_string(),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| failed("scheduler", bind, e))?;
    eprintln!("segflow: Ballista scheduler listening on {bind}");
    start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(|e| failed("scheduler", bind, e))
}

/// Run an executor registered with `options.scheduler` until the process is stopped.
pub async fn executor(options: ExecutorOptions) -> Result<()> {
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        external_host: Some(options.bind.ip().to_string()),
        port: options.bind.port(),
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler.ip().to_string(),
        scheduler_port: options.scheduler.port(),
        // Wait for a scheduler that starts at the same time instead of failing at once.
        scheduler_connect_timeout_seconds: 30,
        vcores: options.concurrent_tasks.unwrap_or(defaults.vcores).max(1),
        work_dir: options
            .work_dir
            .as_ref()
            .map(|dir| dir.display().to_string()),
        memory_pool_size: options.memory_limit,
        ..defaults
    };
    eprintln!(
        "segflow: Ballista executor on {} ({} concurrent tasks), registering with {}",
        options.bind, config.vcores, options.scheduler
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| failed("executor", options.bind, e))
}

//! The `gregor` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gregor_broker::config::BrokerConfig;
use gregor_broker::http::{self, Stage};
use gregor_broker::node::{self, Node};
use gregor_broker::tasks::Tasks;
use gregor_broker::{bind, dev, log_cleaner, maintenance, server};
use tokio::sync::watch;

/// mimalloc rather than the C library's allocator: the image ships the
/// static musl build, whose allocator takes a lock on every call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the broker's tasks get at shutdown to end (a replica fetch in
/// flight, a retention pass, loading a group partition).
const TASKS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "gregor",
    version,
    about = "A Kafka-compatible broker, and the tools to use it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker from a Kafka-style properties file (like
    /// kafka-server-start.sh). GREGOR_<KEY> environment variables override
    /// the file: GREGOR_LOG_DIRS sets log.dirs.
    Broker {
        /// Path to server.properties.
        config: PathBuf,
        /// Stop, as on SIGTERM, when process PID (the parent that started
        /// this broker) exits; `gregor dev` starts its brokers so, so that
        /// none outlives it however it ends.
        #[arg(long, value_name = "PID", hide = true)]
        exit_with: Option<u32>,
    },
    /// Start a local three-broker cluster: internal listeners on
    /// 127.0.0.1:29092-29094, external ones on localhost:9092-9094. Ctrl-C
    /// stops all three.
    Dev {
        /// Keep the brokers' data in DIR (and reuse it next time); without
        /// it, a temporary folder is used and removed at exit.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Secure it as production clusters are: TLS everywhere, clients
        /// with SCRAM-SHA-512 as the admin user, ACLs on; writes
        /// client.properties and librdkafka.conf for clients.
        #[arg(long)]
        secure: bool,
    },
    /// Prepare a new cluster's metadata before its first start, as
    /// kafka-storage format does: SCRAM users given with --add-scram exist
    /// from the cluster's first moment.
    Format {
        /// Path to server.properties (its metadata.log.dir or first log dir).
        #[arg(long)]
        config: PathBuf,
        /// A SCRAM user, as Kafka writes it:
        /// 'SCRAM-SHA-512=[name=alice,password=alice-secret]' (repeatable;
        /// iterations=N optional).
        #[arg(long = "add-scram", value_name = "CREDENTIAL")]
        add_scram: Vec<String>,
    },
    /// Print the reference of every broker and topic setting, in Markdown
    /// (the repository keeps it as docs/configuration.md).
    ConfigDocs,
    #[command(flatten)]
    Client(gregor_cli::Command),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Broker { config, exit_with } => {
            if let Some(parent) = exit_with {
                if let Err(e) = exit_with_parent(parent) {
                    eprintln!("gregor: {e}");
                    return ExitCode::FAILURE;
                }
            }
            run_broker(config)
        }
        Command::Dev { data, secure } => run_dev(data, secure),
        Command::Format { config, add_scram } => run_format(config, add_scram),
        Command::ConfigDocs => {
            print!("{}", gregor_broker::config_docs::render());
            ExitCode::SUCCESS
        }
        Command::Client(command) => run_client(command),
    }
}

/// Asks the kernel for SIGTERM when the parent exits; fails when `parent`
/// is already gone (this process was handed to another).
fn exit_with_parent(parent: u32) -> Result<(), String> {
    use nix::sys::signal::Signal;
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
        .map_err(|e| format!("cannot follow the parent process: {e}"))?;
    if nix::unistd::getppid().as_raw() as u32 != parent {
        return Err(format!("parent process {parent} has already exited"));
    }
    Ok(())
}

/// `gregor topics|produce|consume`: a client of some cluster.
fn run_client(command: gregor_cli::Command) -> ExitCode {
    let Some(runtime) = runtime(&mut tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(gregor_cli::run(command, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gregor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `gregor format`: writes the new cluster's bootstrap records.
fn run_format(path: PathBuf, add_scram: Vec<String>) -> ExitCode {
    use gregor_broker::metadata::bootstrap;
    let config = match BrokerConfig::load(&path, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gregor: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let records: Result<Vec<_>, _> = add_scram
        .iter()
        .map(|a| bootstrap::parse_add_scram(a))
        .collect();
    let written =
        records.and_then(|r| bootstrap::write(&config.metadata_quorum_dir(), &r).map(|()| r.len()));
    match written {
        Ok(n) => {
            println!(
                "gregor: {} holds {n} record(s) for the new cluster",
                config.metadata_quorum_dir().join(bootstrap::FILE).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gregor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_broker(path: PathBuf) -> ExitCode {
    let config = match BrokerConfig::load(&path, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gregor: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime(&mut tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let stage = watch::channel(Stage::Starting).0;
        if let Some(listener) = &config.http_listener {
            match bind::bind_all(std::slice::from_ref(listener)).await {
                Ok(mut bound) => {
                    if let Some(b) = bound.pop() {
                        // Not one of the broker's tasks: probes are answered
                        // until the process exits, through shutdown.
                        tokio::spawn(http::serve(b.socket, stage.subscribe()));
                    }
                }
                Err(e) => {
                    eprintln!("gregor: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        if !config.roles.broker {
            return run_controller(config, stage).await;
        }
        let node = match Node::start(config).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("gregor: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        let listeners: Vec<_> = node.config.kafka_listeners().cloned().collect();
        let bound = match bind::bind_all(&listeners).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("gregor: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(node_id = node.config.node_id, cluster_id = %node.cluster_id, "broker started");
        let tasks = &node.tasks;
        tasks.spawn("retention", maintenance::run(node.clone()));
        tasks.spawn("log cleaner", log_cleaner::run(node.clone()));
        tasks.spawn("flusher", maintenance::run_flusher(node.clone()));
        tasks.spawn(
            "producer expiry",
            maintenance::run_producer_expiry(node.clone()),
        );
        tasks.spawn("ISR checks", maintenance::run_isr_checks(node.clone()));
        tasks.spawn("group sessions", node.groups.clone().run_session_sweeper());
        stage.send_replace(Stage::Broker(node.clone()));
        let stopping = node.clone();
        server::serve(node.clone(), bound, node.tls.clone(), async move {
            shutdown_signal().await;
            stage.send_replace(Stage::Stopping);
            tracing::info!("shutting down: moving leadership away");
            stopping.shutdown().await;
        })
        .await;
        node.tasks.stop(TASKS_PATIENCE).await;
        tracing::info!("flushing logs");
        maintenance::flush_all(&node);
        node.quorum.shutdown().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// A dedicated controller (`process.roles=controller`): a voter of the
/// metadata quorum and nothing else.
async fn run_controller(config: BrokerConfig, stage: watch::Sender<Stage>) -> ExitCode {
    let tasks = Tasks::new();
    let tls = match node::load_tls(&config, &tasks) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gregor: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The log directories stay locked until the controller stops.
    let (quorum, _log_dirs) = match node::start_quorum(&config, &tasks, &tls).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("gregor: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(node_id = config.node_id, "controller started");
    stage.send_replace(Stage::Controller(quorum.clone()));
    shutdown_signal().await;
    stage.send_replace(Stage::Stopping);
    tasks.stop(TASKS_PATIENCE).await;
    quorum.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Runs three broker processes of this same executable and stops them
/// together.
fn run_dev(data: Option<PathBuf>, secure: bool) -> ExitCode {
    let keep = data.is_some();
    let root = data
        .unwrap_or_else(|| std::env::temp_dir().join(format!("gregor-dev-{}", std::process::id())));
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gregor: cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secure = match secure.then(|| dev::Secure::at(&root)).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gregor: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut children = Vec::new();
    for n in 1..=dev::BROKERS {
        let dir = root.join(format!("broker-{n}"));
        let file = dir.join("server.properties");
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&file, dev::server_properties(n, &dir, secure.as_ref())));
        if let Err(e) = written {
            eprintln!("gregor: cannot write {}: {e}", file.display());
            stop(&mut children);
            return ExitCode::FAILURE;
        }
        if let Some(s) = &secure {
            if let Err(e) = seed_admin(&file, s) {
                eprintln!("gregor: cannot prepare broker {n}: {e}");
                stop(&mut children);
                return ExitCode::FAILURE;
            }
        }
        match std::process::Command::new(&exe)
            .arg("broker")
            .arg(&file)
            .arg("--exit-with")
            .arg(std::process::id().to_string())
            .stderr(std::process::Stdio::piped())
            .spawn()
        {
            Ok(mut child) => {
                if let Some(err) = child.stderr.take() {
                    prefix_lines(format!("broker-{n} | "), err);
                }
                children.push(child);
            }
            Err(e) => {
                eprintln!("gregor: cannot start broker {n}: {e}");
                stop(&mut children);
                return ExitCode::FAILURE;
            }
        }
    }
    let removed = if keep {
        ""
    } else {
        " (removed at exit; --data DIR keeps it)"
    };
    match &secure {
        None => eprintln!(
            "gregor dev: {} brokers, data in {}{removed}\n  clients: --bootstrap-server {}\n  Ctrl-C stops them.",
            dev::BROKERS,
            root.display(),
            dev::bootstrap()
        ),
        Some(s) => {
            let java = root.join("client.properties");
            let librdkafka = root.join("librdkafka.conf");
            let written = std::fs::write(&java, s.client_properties())
                .and_then(|()| std::fs::write(&librdkafka, s.librdkafka_conf()));
            if let Err(e) = written {
                eprintln!("gregor: cannot write the client settings in {}: {e}", root.display());
                stop(&mut children);
                return ExitCode::FAILURE;
            }
            eprintln!(
                "gregor dev: {} brokers with TLS, SCRAM-SHA-512 and ACLs, data in {}{removed}\n  \
                 clients log in as user {} (a super user; the password is in the files below):\n  \
                 Kafka's tools: --bootstrap-server {} --command-config {}\n  \
                 kcat -F {}  (and librdkafka's other clients)\n  Ctrl-C stops them.",
                dev::BROKERS,
                root.display(),
                dev::ADMIN,
                dev::bootstrap(),
                java.display(),
                librdkafka.display(),
            );
        }
    }
    let Some(runtime) = runtime(&mut tokio::runtime::Builder::new_current_thread()) else {
        stop(&mut children);
        return ExitCode::FAILURE;
    };
    runtime.block_on(shutdown_signal());
    stop(&mut children);
    if !keep {
        if let Err(e) = std::fs::remove_dir_all(&root) {
            eprintln!("gregor: could not remove {}: {e}", root.display());
        }
    }
    ExitCode::SUCCESS
}

/// Seeds the admin user's SCRAM credential for the broker configured in
/// `file`, as `gregor format --add-scram` does; nothing to do once the
/// broker's metadata log exists.
fn seed_admin(file: &std::path::Path, secure: &dev::Secure) -> Result<(), String> {
    use gregor_broker::metadata::bootstrap::{self, BootstrapError};
    let config = BrokerConfig::load(file, std::iter::empty()).map_err(|e| e.to_string())?;
    let record = bootstrap::parse_add_scram(&secure.add_scram()).map_err(|e| e.to_string())?;
    match bootstrap::write(&config.metadata_quorum_dir(), &[record]) {
        Ok(()) | Err(BootstrapError::Formatted(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Asks every broker to stop (SIGTERM: controlled shutdown) and waits.
fn stop(children: &mut [std::process::Child]) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for c in children.iter() {
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

/// Copies a child's output to ours, each line prefixed.
fn prefix_lines(prefix: String, from: impl std::io::Read + Send + 'static) {
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
            eprintln!("{prefix}{line}");
        }
    });
}

/// Builds a runtime, saying why when that fails.
fn runtime(builder: &mut tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    match builder.enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("gregor: cannot start the async runtime: {e}");
            None
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

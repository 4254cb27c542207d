//! The `cqlpulse` binary: parse arguments, set up logging and the runtime, call the library,
//! and turn the outcome into one line and an exit status:
//! 0 done, 1 runtime failure, 2 bad spec or arguments, 3 aborted by the abort policy,
//! 130 a second signal while draining.

use std::process::ExitCode;

use clap::Parser;
use cqlpulse::cli::{self, Cli, Command, LogFormat};
use cqlpulse::daemon::{self, Loaded, RunError, RunOptions};
use cqlpulse::logging::LogSink;
use cqlpulse::output::WriteError;
use cqlpulse::plan::Model;
use cqlpulse::{compare, http};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's allocator: the driver allocates several times per request, and
/// glibc's malloc and free were 7% of the client's CPU (A/B in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A line on stderr. Not `eprintln!`, which panics when stderr cannot be written (a full
/// disk behind `2> file`): that failure is reported by the exit status instead.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The log's writer, which keeps its first write error for the exit status.
static LOG: std::sync::LazyLock<LogSink> = std::sync::LazyLock::new(LogSink::stderr);

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    // A multi-thread runtime also for `--threads 1`: a current-thread runtime (no response
    // crossing threads) measured no cheaper per op (BENCHMARKS.md, "The floor").
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            say!("cqlpulse: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut code = runtime.block_on(run(cli.command));
    // Do not wait for driver tasks still closing connections.
    runtime.shutdown_background();
    if let Err(e) = LOG.result() {
        say!("cqlpulse: {e}");
        code = code.max(1);
    }
    ExitCode::from(code)
}

fn init_logging(cli: &Cli) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match cli.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(cqlpulse::logging::colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(|| LOG.writer());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command) -> u8 {
    let result = match command {
        Command::Run(args) => run_daemon(args).await,
        Command::Check(args) => check(args).await,
        Command::Compare(args) => run_compare(args).await,
        Command::Init(args) => init(args).await,
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            say!("cqlpulse: {e}");
            e.exit_code() as u8
        }
    }
}

/// First SIGTERM or SIGINT: cancel `shutdown` (drain). SIGHUP: `on_hup`. Returns on a second
/// terminating signal, for the caller to exit at once.
async fn signals(shutdown: CancellationToken, on_hup: impl Fn()) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => { on_hup(); continue; }
        }
        if shutdown.is_cancelled() {
            return;
        }
        tracing::info!("stopping: draining requests in flight (a second signal exits at once)");
        shutdown.cancel();
    }
}

fn load(spec: &cli::SpecArgs) -> Result<Loaded, RunError> {
    let overrides = spec.overrides().map_err(RunError::Usage)?;
    Ok(Loaded::load(spec.spec.clone(), overrides)?)
}

async fn run_daemon(args: cli::RunArgs) -> Result<(), RunError> {
    let loaded = load(&args.spec)?;
    let listener = if args.no_http {
        None
    } else {
        let addr = loaded.plan.metrics.listen;
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Listen { addr, source })?;
        tracing::info!(
            "serving /metrics, /status and control on http://{}",
            l.local_addr().unwrap_or(addr)
        );
        Some(l)
    };
    // SIGHUP asks the daemon to reload through this.
    let reload = std::sync::Arc::new(tokio::sync::Notify::new());
    let opts = RunOptions {
        summary_json: args.summary_json,
        hdr_log: args.hdr_log,
        recall_log: args.recall_log,
        status_every: args.status_every,
        linger: args.linger,
        print_summary: true,
        reload: Some(reload.clone()),
    };
    let shutdown = CancellationToken::new();
    let serve = move |handle: daemon::Handle, stop: CancellationToken| async move {
        if let Some(l) = listener {
            http::serve(l, handle, stop).await;
        }
    };
    let hup = reload.clone();
    tokio::select! {
        r = daemon::run(loaded, opts, shutdown.clone(), serve) => r.map(|_| ()),
        _ = signals(shutdown.clone(), move || hup.notify_one()) => {
            say!("cqlpulse: second signal: exiting without draining");
            std::process::exit(130);
        }
    }
}

async fn check(args: cli::CheckArgs) -> Result<(), RunError> {
    let loaded = load(&args.spec)?;
    let plan = &loaded.plan;
    // `ok` only once every check asked for has passed: with --connect, the statements and
    // the generators that fill their bind markers too.
    if args.connect {
        daemon::check::connect(plan).await?;
    }
    println!(
        "{}: ok: {}",
        args.spec.spec.display(),
        daemon::check::describe(plan)
    );
    if args.connect {
        println!(
            "connected to {} and prepared {} statement(s)",
            plan.cluster.contact_points.join(", "),
            plan.ops.len()
        );
    }
    Ok(())
}

async fn init(args: cli::InitArgs) -> Result<(), RunError> {
    let access = cqlpulse::cql::init::Access {
        username: args.username.clone(),
        password_env: args.password_env.clone(),
        tls: args.tls_ca_file.as_ref().map(|ca| cqlpulse::spec::TlsSpec {
            ca_file: ca.clone(),
            cert_file: args.tls_cert_file.clone(),
            key_file: args.tls_key_file.clone(),
            verify_server_name: !args.tls_no_verify_server_name,
        }),
    };
    if access.tls.is_none() && (args.tls_cert_file.is_some() || args.tls_no_verify_server_name) {
        return Err(RunError::Usage(
            "--tls-cert-file, --tls-key-file and --tls-no-verify-server-name need --tls-ca-file"
                .into(),
        ));
    }
    let spec = cqlpulse::cql::template::from_table_with(&args.contact_points, &args.from, &access)
        .await
        .map_err(RunError::Usage)?;
    match &args.output {
        None => print!("{spec}"),
        Some(path) => std::fs::write(path, &spec).map_err(|source| {
            RunError::Unwritten(vec![WriteError {
                what: "the spec",
                path: path.clone(),
                source,
            }])
        })?,
    }
    Ok(())
}

async fn run_compare(args: cli::CompareArgs) -> Result<(), RunError> {
    let overrides = args.spec.overrides().map_err(RunError::Usage)?;
    let mut models = Vec::new();
    for m in &args.models {
        models.push(Model::parse(m.trim()).ok_or_else(|| {
            RunError::Usage(format!(
                "--models: unknown model `{m}` (one of {})",
                cqlpulse::spec::MODEL_NAMES.replace(',', ", ")
            ))
        })?);
    }
    let opts = compare::CompareOptions {
        models,
        concurrency: args.concurrency,
        sync_workers: args.sync_workers,
    };
    let shutdown = CancellationToken::new();
    let rows = tokio::select! {
        r = compare::compare(&args.spec.spec, &overrides, &opts, &shutdown) => r?,
        _ = signals(shutdown.clone(), || {}) => std::process::exit(130),
    };
    let text = compare::render(&rows, args.format);
    print!("{text}");
    if let Some(path) = &args.output {
        std::fs::write(path, &text).map_err(|source| {
            RunError::Unwritten(vec![WriteError {
                what: "the comparison",
                path: path.clone(),
                source,
            }])
        })?;
    }
    Ok(())
}

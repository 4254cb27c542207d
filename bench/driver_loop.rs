//! The floor of `scripts/bench`: a bare `scylla` driver loop sending the insert of
//! `config/bench-fixed.toml` (bigint, 100-byte blob, consistency ONE) as fast as the node takes
//! it, with `--concurrency` requests in flight. No schedule, no statistics, no metrics: what any
//! load generator on this driver pays at least per request.
//!
//!   cargo run --release --example driver_loop -- --ops 1000000 [--concurrency 128]
//!       [--idiom tasks|buffered|spawn] [--runtime current|multi] [--timeout none|driver]
//!       [--tracing silent|none] [--node 127.0.0.1:9042]
//!
//! The default is the cheapest idiom we know, and so the floor: a current-thread runtime,
//! `--concurrency` tasks each looping over its share of the keys with one request outstanding,
//! a prepared statement, no driver timeout, a silent tracing subscriber. The others are kept to
//! show what they cost:
//! - `buffered` keeps every request in one task (`buffer_unordered`): each completion wakes the
//!   one task, which then polls its whole set of futures (`FuturesUnordered` is cheap, but the
//!   stream also re-polls the source and rebalances its ready queue).
//! - `spawn` is the driver's own example of bounded parallelism: a semaphore and a new task per
//!   request, so one task allocation and one semaphore round per request.
//! - `--runtime multi` (one worker thread, as `cqlpulse --threads 1`) runs `block_on` on the
//!   main thread and the driver's connection tasks on the worker: every response crosses
//!   threads (a futex wake-up), unless all request tasks are spawned onto the worker.
//! - `--timeout driver` arms the driver's per-request timer (a timer-wheel entry per request);
//!   cqlpulse keeps its deadlines in the lanes instead.
//! - `--tracing none` sets no tracing subscriber: `tracing` (built with its `log` feature here)
//!   then falls back to `log` and checks every driver span against it, about 1,000
//!   instructions per request (callgrind, BENCHMARKS.md) that no tool with a subscriber of its
//!   own pays. The default, `silent`, sets one that is never interested.
//!
//! Prints one line of JSON.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, PartialEq)]
enum Idiom {
    Tasks,
    Buffered,
    Spawn,
}

struct Args {
    ops: u64,
    concurrency: usize,
    idiom: Idiom,
    current_thread: bool,
    timeout: bool,
    /// A subscriber that is never interested (`--tracing silent`), or none (`none`).
    silent_tracing: bool,
    node: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        ops: 1_000_000,
        concurrency: 128,
        idiom: Idiom::Tasks,
        current_thread: true,
        timeout: false,
        silent_tracing: true,
        node: "127.0.0.1:9042".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--ops" => a.ops = value.parse().map_err(bad)?,
            "--concurrency" => a.concurrency = value.parse().map_err(bad)?,
            "--idiom" => {
                a.idiom = match value.as_str() {
                    "tasks" => Idiom::Tasks,
                    "buffered" => Idiom::Buffered,
                    "spawn" => Idiom::Spawn,
                    _ => return Err(format!("--idiom {value}: tasks, buffered or spawn")),
                }
            }
            "--runtime" => {
                a.current_thread = match value.as_str() {
                    "current" => true,
                    "multi" => false,
                    _ => return Err(format!("--runtime {value}: current or multi")),
                }
            }
            "--timeout" => {
                a.timeout = match value.as_str() {
                    "driver" => true,
                    "none" => false,
                    _ => return Err(format!("--timeout {value}: driver or none")),
                }
            }
            "--tracing" => {
                a.silent_tracing = match value.as_str() {
                    "silent" => true,
                    "none" => false,
                    _ => return Err(format!("--tracing {value}: silent or none")),
                }
            }
            "--node" => a.node = value,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

async fn run(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let session = SessionBuilder::new().known_node(&a.node).build().await?;
    session
        .query_unpaged(
            "CREATE KEYSPACE IF NOT EXISTS cqlpulse_floor WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 1}",
            (),
        )
        .await?;
    session
        .query_unpaged("DROP TABLE IF EXISTS cqlpulse_floor.kv", ())
        .await?;
    session
        .query_unpaged(
            "CREATE TABLE cqlpulse_floor.kv (id bigint PRIMARY KEY, v blob)",
            (),
        )
        .await?;
    let mut insert = session
        .prepare("INSERT INTO cqlpulse_floor.kv (id, v) VALUES (?, ?)")
        .await?;
    insert.set_consistency(Consistency::One);
    if !a.timeout {
        // The statement's own consistency (ONE, above) wins over the profile's.
        let profile = ExecutionProfile::builder().request_timeout(None).build();
        insert.set_execution_profile_handle(Some(profile.into_handle()));
    }
    let blob = vec![0x5au8; 100];

    let session = Arc::new(session);
    let insert = Arc::new(insert);
    let blob: Arc<[u8]> = blob.into();
    // The library's CPU clock (the process's, to the nanosecond), as cqlpulse's summary reads it.
    let cpu_seconds = || cqlpulse::process::cpu_seconds().unwrap_or(0.0);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let failed = match a.idiom {
        Idiom::Tasks => tasks(&a, session, insert, blob).await?,
        Idiom::Buffered => buffered(&a, &session, &insert, &blob).await,
        Idiom::Spawn => spawned(&a, session, insert, blob).await?,
    };
    let (cpu, secs) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    println!(
        "{{\"idiom\": \"{}\", \"runtime\": \"{}\", \"timeout\": {}, \"tracing\": \"{}\", \"ops\": {}, \"failed\": {failed}, \
         \"seconds\": {secs:.3}, \"ops_per_second\": {:.0}, \"cpu_us_per_op\": {:.2}}}",
        match a.idiom {
            Idiom::Tasks => "tasks",
            Idiom::Buffered => "buffered",
            Idiom::Spawn => "spawn",
        },
        if a.current_thread { "current" } else { "multi" },
        a.timeout,
        if a.silent_tracing { "silent" } else { "none" },
        a.ops,
        a.ops as f64 / secs,
        cpu * 1e6 / a.ops as f64
    );
    Ok(())
}

/// The floor: `concurrency` tasks, task `t` inserting keys t, t + C, t + 2C, ... one at a time.
/// A completion wakes exactly the task that waits for it; nothing is allocated per request
/// beyond what the driver itself allocates.
async fn tasks(
    a: &Args,
    session: Arc<Session>,
    insert: Arc<PreparedStatement>,
    blob: Arc<[u8]>,
) -> Result<u64, tokio::task::JoinError> {
    let c = a.concurrency as u64;
    let handles: Vec<_> = (0..c)
        .map(|t| {
            let (session, insert, blob) = (session.clone(), insert.clone(), blob.clone());
            let ops = a.ops;
            tokio::spawn(async move {
                let mut failed = 0u64;
                let mut i = t;
                while i < ops {
                    let r = session.execute_unpaged(&insert, (i as i64, &*blob)).await;
                    failed += u64::from(r.is_err());
                    i += c;
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for h in handles {
        failed += h.await?;
    }
    Ok(failed)
}

/// Every request in one task, at most `concurrency` at once (`buffer_unordered`).
async fn buffered(a: &Args, session: &Session, insert: &PreparedStatement, blob: &[u8]) -> u64 {
    let mut done = futures::stream::iter(0..a.ops)
        .map(|i| session.execute_unpaged(insert, (i as i64, blob)))
        .buffer_unordered(a.concurrency);
    let mut failed = 0;
    while let Some(r) = done.next().await {
        failed += u64::from(r.is_err());
    }
    failed
}

/// The driver's example of bounded parallelism: a semaphore permit and a task per request.
async fn spawned(
    a: &Args,
    session: Arc<Session>,
    insert: Arc<PreparedStatement>,
    blob: Arc<[u8]>,
) -> Result<u64, tokio::sync::AcquireError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for i in 0..a.ops {
        let permit = permits.clone().acquire_owned().await?;
        let (session, insert, blob, failures) = (
            session.clone(),
            insert.clone(),
            blob.clone(),
            failures.clone(),
        );
        tokio::spawn(async move {
            if session
                .execute_unpaged(&insert, (i as i64, &*blob))
                .await
                .is_err()
            {
                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    let _all = permits.acquire_many(a.concurrency as u32).await?;
    Ok(failures.load(std::sync::atomic::Ordering::Relaxed))
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("driver_loop: {e}");
            std::process::exit(2);
        }
    };
    // The driver's spans cost least with a subscriber that is never interested (header).
    if a.silent_tracing {
        let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::new());
    }
    let runtime = if a.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(rt) => rt.block_on(run(a)),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = result {
        eprintln!("driver_loop: {e}");
        std::process::exit(1);
    }
}

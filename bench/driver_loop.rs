//! The floor of `scripts/bench`: a bare `scylla` driver loop sending the insert of
//! `config/bench-fixed.toml` (bigint, 100-byte blob, consistency ONE) as fast as the node takes
//! it, with at most `--concurrency` requests in flight. No schedule, no statistics, no metrics:
//! what any load generator on this driver pays at least per request.
//!
//!   cargo run --release --example driver_loop -- --ops 1000000 [--concurrency 128]
//!       [--idiom buffered|spawn] [--timeout driver|none] [--node 127.0.0.1:9042]
//!
//! `buffered` keeps the requests in one task (`buffer_unordered`), `spawn` is the driver's own
//! example of bounded parallelism (a semaphore and a task per request). Both on one runtime
//! worker thread and mimalloc, as `cqlpulse --threads 1`. `--timeout none` runs the insert
//! without the driver's per-request timeout (a timer per request), as cqlpulse does (its lanes
//! keep the deadlines). Prints one line of JSON.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    ops: u64,
    concurrency: usize,
    spawn: bool,
    timeout: bool,
    node: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        ops: 1_000_000,
        concurrency: 128,
        spawn: false,
        timeout: true,
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
                a.spawn = match value.as_str() {
                    "spawn" => true,
                    "buffered" => false,
                    _ => return Err(format!("--idiom {value}: buffered or spawn")),
                }
            }
            "--timeout" => {
                a.timeout = match value.as_str() {
                    "driver" => true,
                    "none" => false,
                    _ => return Err(format!("--timeout {value}: driver or none")),
                }
            }
            "--node" => a.node = value,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
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

    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut failed = 0u64;
    if a.spawn {
        let session = Arc::new(session);
        let insert = Arc::new(insert);
        let blob = Arc::new(blob);
        let permits = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        for i in 0..a.ops {
            let permit = permits.clone().acquire_owned().await?;
            let (session, insert, blob, tx) =
                (session.clone(), insert.clone(), blob.clone(), tx.clone());
            tokio::spawn(async move {
                let ok = session
                    .execute_unpaged(&insert, (i as i64, blob.as_slice()))
                    .await
                    .is_ok();
                if !ok {
                    let _ = tx.send(false);
                }
                drop(permit);
            });
        }
        drop(tx);
        let _all = permits.acquire_many(a.concurrency as u32).await?;
        while let Ok(ok) = rx.try_recv() {
            failed += u64::from(!ok);
        }
    } else {
        let mut done = futures::stream::iter(0..a.ops)
            .map(|i| session.execute_unpaged(&insert, (i as i64, blob.as_slice())))
            .buffer_unordered(a.concurrency);
        while let Some(r) = done.next().await {
            failed += u64::from(r.is_err());
        }
    }
    let (cpu, secs) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    println!(
        "{{\"idiom\": \"{}\", \"timeout\": {}, \"ops\": {}, \"failed\": {failed}, \"seconds\": {secs:.3}, \
         \"ops_per_second\": {:.0}, \"cpu_us_per_op\": {:.2}}}",
        if a.spawn { "spawn" } else { "buffered" },
        a.timeout,
        a.ops,
        a.ops as f64 / secs,
        cpu * 1e6 / a.ops as f64
    );
    Ok(())
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("driver_loop: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run(a)),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = result {
        eprintln!("driver_loop: {e}");
        std::process::exit(1);
    }
}

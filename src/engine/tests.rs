//! Scheduling logic against a fake executor, on tokio's paused clock: exact op counts, the
//! in-flight cap of every model, open-loop pacing, backlog and drops.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::plan::{self, ShardEnv};
use crate::spec::{self, Source};
use crate::stats::{Aggregator, AggregatorConfig, ClusterGauges, Gauges, Phase, Summary};

/// Sleeps `delay` per op and remembers every index and the highest concurrency it saw. The
/// first `hang` attempts of each index never answer.
struct Fake {
    delay: Duration,
    hang: usize,
    started: Mutex<Vec<u64>>,
    /// When each attempt started (the clock is tokio's, paused).
    started_at: Mutex<Vec<tokio::time::Instant>>,
    seen: Mutex<Vec<u64>>,
    now: AtomicU32,
    peak: AtomicU32,
}

impl Fake {
    fn new(delay: Duration) -> Arc<Fake> {
        Fake::hanging(delay, 0)
    }

    fn hanging(delay: Duration, hang: usize) -> Arc<Fake> {
        Arc::new(Fake {
            delay,
            hang,
            started: Mutex::new(Vec::new()),
            started_at: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            now: AtomicU32::new(0),
            peak: AtomicU32::new(0),
        })
    }
}

impl Executor for Fake {
    async fn execute(&self, _op: usize, index: u64) -> Outcome {
        let attempt = {
            let mut started = self.started.lock().unwrap();
            started.push(index);
            self.started_at
                .lock()
                .unwrap()
                .push(tokio::time::Instant::now());
            started.iter().filter(|&&i| i == index).count()
        };
        if attempt <= self.hang {
            std::future::pending::<()>().await;
        }
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.seen.lock().unwrap().push(index);
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(Done::written(8))
    }
}

fn plan_of(load: &str) -> Arc<Plan> {
    plan_with("", "", load)
}

/// A plan with extra `[cluster]` keys and keys of its one op.
fn plan_with(cluster: &str, op: &str, load: &str) -> Arc<Plan> {
    let text = format!(
        "name = \"t\"\n[cluster]\n{cluster}\n[data.k]\nkind = \"sequence\"\n[[ops]]\nname = \"w\"\ncql = \"INSERT INTO t (k) VALUES (?)\"\nargs = [\"k\"]\n{op}\n[load]\n{load}\n"
    );
    let source = Source {
        path: PathBuf::from("t.toml"),
        text,
    };
    let spec = spec::parse(&source, &[]).unwrap();
    Arc::new(plan::build(&spec, &source, &|_| None, &ShardEnv::default(), 0).unwrap())
}

/// Runs `plan` to its end against `fake`; returns the summary and the (virtual) time it took.
async fn run_timed(plan: Arc<Plan>, fake: Arc<Fake>) -> (Summary, Duration) {
    let start = tokio::time::Instant::now();
    let (summary, _) = run_with(plan, fake, CancellationToken::new()).await;
    (summary, start.elapsed())
}

/// Runs the engine and the aggregator to the end; returns the summary.
async fn run_with(
    plan: Arc<Plan>,
    fake: Arc<impl Executor>,
    stop: CancellationToken,
) -> (Summary, Arc<Control>) {
    let control = Control::new(&plan.load, &plan.ops);
    let c = control.clone();
    let gauges = Box::new(move || {
        (
            Gauges {
                phase: Phase::Running,
                paused: false,
                target_rate: c.target_rate(),
                in_flight_limit: c.in_flight_limit() as u64,
                reloads_applied: 0,
                reloads_rejected: 0,
                ..Gauges::default()
            },
            ClusterGauges::default(),
        )
    });
    let cfg = AggregatorConfig {
        publish_every: Duration::from_millis(200),
        ..AggregatorConfig::for_plan(&plan)
    };
    let (agg, _snapshots) = Aggregator::new(cfg, gauges);
    let (tx, rx) = crate::stats::report_channel();
    let summary = tokio::spawn(agg.run(rx));
    run(fake, plan, control.clone(), tx, stop).await;
    (summary.await.unwrap(), control)
}

#[tokio::test(start_paused = true)]
async fn every_model_sends_exactly_n_distinct_ops_within_its_cap() {
    for (model, knob, cap) in [
        ("sync", "workers = 3", 3),
        ("batches", "batch_size = 7", 7),
        ("pipeline", "window = 5", 5),
        ("unbounded", "max_in_flight = 9", 9),
        ("chains", "chains = 6", 6),
    ] {
        let plan = plan_of(&format!(
            "model = \"{model}\"\n{knob}\nops = 1000\nlanes = 2"
        ));
        let fake = Fake::new(Duration::from_millis(3));
        let (summary, _) = run_with(plan, fake.clone(), CancellationToken::new()).await;
        let seen = fake.seen.lock().unwrap().clone();
        let distinct: HashSet<u64> = seen.iter().copied().collect();
        assert_eq!(seen.len(), 1000, "{model}: ops sent");
        assert_eq!(distinct, (0..1000).collect(), "{model}: each index once");
        let peak = fake.peak.load(Ordering::SeqCst);
        assert!(peak <= cap, "{model}: {peak} in flight, cap {cap}");
        assert!(
            peak == cap,
            "{model}: the model should fill its window ({peak} of {cap})"
        );
        assert!(
            summary.peak_in_flight <= cap as u64,
            "{model}: the engine's own gauge"
        );
        assert_eq!(
            (summary.sent, summary.ok, summary.dropped),
            (1000, 1000, 0),
            "{model}"
        );
    }
}

/// A knob below the number of lanes leaves a lane without a share of the limit: it claims
/// nothing, and must still see the ops used up and end (a `sync` run of one worker on two
/// lanes, as `cqlpulse compare` runs it by default, never ended).
#[tokio::test(start_paused = true)]
async fn a_lane_without_a_share_of_the_limit_ends_with_the_ops() {
    for (model, knob) in [("sync", "workers = 1"), ("pipeline", "window = 1")] {
        let plan = plan_of(&format!(
            "model = \"{model}\"\n{knob}\nops = 200\nlanes = 3"
        ));
        let fake = Fake::new(Duration::from_millis(1));
        let ran = tokio::time::timeout(
            Duration::from_secs(60),
            run_with(plan, fake.clone(), CancellationToken::new()),
        )
        .await;
        let (summary, _) = ran.unwrap_or_else(|_| panic!("{model}: the run never ended"));
        assert_eq!((summary.sent, summary.ok), (200, 200), "{model}");
        assert_eq!(
            fake.peak.load(Ordering::SeqCst),
            1,
            "{model}: one in flight"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn requests_past_their_timeout_end_as_client_timeouts_at_their_deadline() {
    for (model, knob) in [
        ("chains", "chains"),
        ("pipeline", "window"),
        ("sync", "workers"),
    ] {
        // 10 ops that never answer, 4 at a time, 50 ms each: three rounds, 150 ms.
        let plan = plan_with(
            "",
            "timeout = \"50ms\"",
            &format!("model = \"{model}\"\n{knob} = 4\nops = 10\nlanes = 1"),
        );
        let (summary, took) = run_timed(plan, Fake::hanging(Duration::ZERO, usize::MAX)).await;
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_millis(160),
            "{model}: {took:?}"
        );
        assert_eq!(
            (summary.sent, summary.failed, summary.abandoned),
            (10, 10, 0),
            "{model}"
        );
        assert_eq!(
            summary.total.errors_by_kind.get("client_timeout"),
            Some(&10),
            "{model}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_idempotent_op_is_retried_after_its_backoff() {
    for (model, knob) in [("chains", "chains"), ("pipeline", "window")] {
        // Each first attempt hangs: 50 ms timeout, 10 ms backoff, then 1 ms to answer.
        let plan = plan_with(
            "retries = 2\nretry_backoff = \"10ms\"",
            "timeout = \"50ms\"\nidempotent = true",
            &format!("model = \"{model}\"\n{knob} = 8\nops = 8\nlanes = 1"),
        );
        let fake = Fake::hanging(Duration::from_millis(1), 1);
        let (summary, took) = run_timed(plan, fake.clone()).await;
        assert!(
            took >= Duration::from_millis(61) && took < Duration::from_millis(70),
            "{model}: {took:?}"
        );
        assert_eq!(
            (summary.sent, summary.ok, summary.failed),
            (8, 8, 0),
            "{model}"
        );
        assert_eq!(summary.total.retries, 8, "{model}");
        assert_eq!(
            fake.started.lock().unwrap().len(),
            16,
            "{model}: two attempts each"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn batches_wait_for_the_whole_batch() {
    // 3 ops of 10 ms in batches of 2 on one lane: 2 batches of 10 ms, so 20 ms, not 15.
    let plan = plan_of("model = \"batches\"\nbatch_size = 2\nops = 4\nlanes = 1");
    let (_, took) = run_timed(plan, Fake::new(Duration::from_millis(10))).await;
    assert!(
        took >= Duration::from_millis(20) && took < Duration::from_millis(25),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_loop_rate_paces_ops_from_an_absolute_start() {
    // 500 ops at 1000/s take half a second of (virtual) time, whatever the model's speed.
    let plan = plan_of("model = \"chains\"\nchains = 50\nops = 500\nrate = 1000.0");
    let (summary, took) = run_timed(plan, Fake::new(Duration::from_millis(1))).await;
    let took = took.as_secs_f64();
    assert!((0.499..0.51).contains(&took), "took {took} s");
    assert_eq!(summary.sent, 500);
    let lag = summary.schedule_lag.expect("lag is measured with a rate");
    assert!(lag.p99_ms <= 1.1, "timer granularity only: {lag:?}");
    assert!(summary.total.response_time.is_some());
}

#[tokio::test(start_paused = true)]
async fn ops_due_within_a_release_go_out_together_each_with_its_own_lag() {
    // 20 ops per millisecond for 20 ms. On the paused clock every wake-up falls on a timer
    // tick, so sent one by one they leave at every tick; with `release_every` of 5 ms they
    // leave in a bunch per 5 ms.
    let sends = |release: &str| {
        let plan = plan_of(&format!(
            "model = \"chains\"\nchains = 128\nops = 400\nrate = 20000.0\nrelease_every = \"{release}\""
        ));
        async move {
            let fake = Fake::new(Duration::from_micros(300));
            let (summary, _) = run_timed(plan, fake.clone()).await;
            let mut at = fake.started_at.lock().unwrap().clone();
            at.dedup();
            (summary, at.len())
        }
    };
    let (together, bunches) = sends("5ms").await;
    let (alone, instants) = sends("0s").await;
    assert_eq!((together.sent, alone.sent), (400, 400));
    assert!((4..=6).contains(&bunches), "{bunches} send instants");
    assert!(instants >= 19, "{instants} send instants without releases");
    // Each op is still measured from its own intended time: the wait shows as lag, within a
    // release and a timer tick.
    let lag = together.schedule_lag.unwrap();
    assert!(lag.p50_ms >= 1.0 && lag.max_ms <= 6.1, "{lag:?}");
    assert!(alone.schedule_lag.unwrap().max_ms <= 1.1);
}

#[tokio::test(start_paused = true)]
async fn a_rate_above_capacity_queues_with_growing_lag() {
    // One worker at 10 ms per op can do 100/s; asked for 1000/s, lag grows.
    let plan = plan_of("model = \"sync\"\nworkers = 1\nops = 100\nrate = 1000.0");
    let (summary, _) = run_with(
        plan,
        Fake::new(Duration::from_millis(10)),
        CancellationToken::new(),
    )
    .await;
    assert_eq!((summary.sent, summary.dropped), (100, 0));
    let lag = summary.schedule_lag.unwrap();
    // Op 99 is due at 99 ms but sent at 990 ms.
    assert!(lag.max_ms > 850.0, "{lag:?}");
    let response = summary.total.response_time.clone().unwrap();
    let service = summary.total.service_time.clone().unwrap();
    assert!(
        response.max_ms > service.max_ms * 50.0,
        "response time includes the queueing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_above_capacity_drops_and_counts_under_drop() {
    let plan =
        plan_of("model = \"sync\"\nworkers = 1\nops = 1000\nrate = 1000.0\non_backlog = \"drop\"");
    let (summary, _) = run_with(
        plan,
        Fake::new(Duration::from_millis(10)),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(summary.scheduled, 1000, "every op is accounted for");
    assert_eq!(summary.sent + summary.dropped, 1000);
    assert!(summary.dropped > 800, "{summary:?}");
    assert!(summary.schedule_lag.unwrap().max_ms <= 10.0 + DROP_AFTER.as_millis() as f64);
}

#[tokio::test(start_paused = true)]
async fn stopping_drains_and_accounts_for_every_op() {
    let plan = plan_of("model = \"chains\"\nchains = 20\nrate = 2000.0");
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1234)).await;
        s.cancel();
    });
    let (summary, _) = run_with(plan, Fake::new(Duration::from_millis(5)), stop).await;
    assert!((2400..=2500).contains(&summary.sent), "{}", summary.sent);
    assert_eq!(
        summary.ok + summary.failed + summary.abandoned,
        summary.sent
    );
    assert_eq!(
        summary.abandoned, 0,
        "5 ms requests drain well within the timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn control_changes_rate_and_concurrency_while_running() {
    let plan = plan_of(
        "model = \"chains\"\nchains = 4\nmax_in_flight = 64\nrate = 100.0\nduration = \"4s\"",
    );
    let fake = Fake::new(Duration::from_millis(2));
    let control = Control::new(&plan.load, &plan.ops);
    let c = control.clone();
    let f = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.set_rate(1000.0).unwrap();
        assert!(c.set_concurrency(65).is_err(), "above the cap");
        c.set_concurrency(32).unwrap();
        let _ = f;
    });
    let (tx, mut rx) = crate::stats::report_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    run(
        fake.clone(),
        plan,
        control.clone(),
        tx,
        CancellationToken::new(),
    )
    .await;
    drain.await.unwrap();
    let n = fake.seen.lock().unwrap().len();
    // 2 s at 100/s and 2 s at 1000/s.
    assert!((2150..=2250).contains(&n), "{n} ops");
    assert_eq!(control.in_flight_limit(), 32);
}

#[tokio::test(start_paused = true)]
async fn resume_continues_the_stages_shifted_by_the_pause() {
    // 1 s at 100/s, then 1000/s; paused from 0.5 s to 2.5 s; 4 s in all, so 2 s issuing:
    // the whole first stage (100 ops) and a second at 1000/s. Re-anchoring at the rate of
    // the moment (the old resume) would give 100/s throughout: 200 ops.
    let plan = plan_of(
        "model = \"chains\"\nchains = 8\nduration = \"4s\"\nstages = [{ duration = \"1s\", rate = 100.0 }, { duration = \"1s\", rate = 1000.0 }]",
    );
    let fake = Fake::new(Duration::from_millis(1));
    let control = Control::new(&plan.load, &plan.ops);
    let c = control.clone();
    let checks = tokio::spawn(async move {
        let ms = |n| tokio::time::sleep(Duration::from_millis(n));
        ms(500).await;
        c.pause();
        ms(2000).await;
        assert_eq!(c.target_rate(), 0.0, "paused");
        assert_eq!(c.stage().map(|(i, _)| i), Some(0), "held while paused");
        c.resume();
        ms(300).await;
        assert_eq!(c.stage().map(|(i, s)| (i, s.rate)), Some((0, 100.0)));
        ms(400).await;
        assert_eq!(c.stage().map(|(i, s)| (i, s.rate)), Some((1, 1000.0)));
        assert_eq!(c.target_rate(), 1000.0);
    });
    let (tx, mut rx) = crate::stats::report_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    run(fake.clone(), plan, control, tx, CancellationToken::new()).await;
    drain.await.unwrap();
    checks.await.unwrap();
    let n = fake.seen.lock().unwrap().len();
    assert!((1095..=1102).contains(&n), "{n} ops");
}

#[tokio::test(start_paused = true)]
async fn every_op_due_before_the_end_is_sent_dropped_or_counted_as_not_sent() {
    // 1000/s for 1.0005 s (off the 1 ms grid): ops 0..=1000 are due before the end. One worker of 10 ms can send
    // about 100 of them; two chains on two lanes about 200. Under "queue" nothing is
    // dropped: the rest were still queued when the run ended.
    for (model, backlog) in [
        ("model = \"sync\"\nworkers = 1", "queue"),
        ("model = \"chains\"\nchains = 2\nlanes = 2", "queue"),
        ("model = \"chains\"\nchains = 2\nlanes = 2", "drop"),
    ] {
        let plan = plan_of(&format!(
            "{model}\nrate = 1000.0\nduration = \"1s 500us\"\non_backlog = \"{backlog}\""
        ));
        let (s, _) = run_timed(plan, Fake::new(Duration::from_millis(10))).await;
        let case = format!("{model}, {backlog}: {}", s.table());
        assert_eq!(s.scheduled, 1001, "{case}");
        assert_eq!(s.sent + s.dropped + s.not_sent_run_ended, 1001, "{case}");
        assert!(s.sent >= 100, "{case}");
        if backlog == "queue" {
            assert_eq!(s.dropped, 0, "{case}");
            assert!(s.not_sent_run_ended >= 700, "{case}");
        } else {
            assert!(s.dropped >= 700, "{case}");
            // An op is dropped once 10 ms late: those of the last 10 ms were still queued.
            assert!(s.not_sent_run_ended <= 12, "{case}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_within_capacity_sends_every_due_op_and_drops_none() {
    // The stray `dropped 1` of a queued run: op 2000 is due at the very end (1 s), so it is
    // not part of the run; it was counted as dropped, or sent, when its lane woke for it
    // before or after seeing the end.
    let plan = plan_of("model = \"chains\"\nchains = 4\nrate = 2000.0\nduration = \"1s\"");
    let (s, _) = run_timed(plan, Fake::new(Duration::from_millis(1))).await;
    assert_eq!(
        (s.scheduled, s.sent, s.dropped, s.not_sent_run_ended),
        (2000, 2000, 0, 0),
        "{}",
        s.table()
    );
}

#[test]
fn a_reload_replaces_an_explicit_rate_only_when_it_changes_the_rate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let stages =
            "stages = [{ duration = \"10s\", rate = 100.0 }, { duration = \"10s\", rate = 200.0 }]";
        let running = plan_of(&format!("model = \"chains\"\nchains = 4\n{stages}"));
        let control = Control::new(&running.load, &running.ops);
        control.start(tokio::time::Instant::now());
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert_eq!(control.stage().map(|(i, _)| i), Some(1));

        // A reload of other fields keeps the stage in progress...
        let wider = plan_of(&format!("model = \"chains\"\nchains = 8\n{stages}"));
        control.apply_reload(&running.load, &wider.load, &wider.ops);
        assert_eq!(control.stage().map(|(i, _)| i), Some(1));
        assert_eq!(control.in_flight_limit(), 8);

        // ... and an explicit rate, which ends the stages.
        control.set_rate(500.0).unwrap();
        assert_eq!(control.stage(), None);
        control.apply_reload(&wider.load, &running.load, &running.ops);
        assert_eq!(
            control.target_rate(),
            500.0,
            "set_rate wins over a reload of the knob"
        );

        // A reload that changes the rate or the stages wins: its stages start now.
        let faster = plan_of("model = \"chains\"\nchains = 4\nrate = 300.0");
        control.apply_reload(&running.load, &faster.load, &faster.ops);
        assert_eq!(control.target_rate(), 300.0);
        control.apply_reload(&faster.load, &running.load, &running.ops);
        assert_eq!(control.stage().map(|(i, s)| (i, s.rate)), Some((0, 100.0)));
    });
}

#[tokio::test(start_paused = true)]
async fn a_rate_or_reload_applied_before_the_start_is_the_one_that_runs() {
    let spec = plan_of("model = \"chains\"\nchains = 4\nrate = 2000.0");
    let control = Control::new(&spec.load, &spec.ops);
    control.set_rate(500.0).unwrap();
    assert_eq!(
        control.target_rate(),
        500.0,
        "what /status says before the start"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    control.start(tokio::time::Instant::now());
    assert_eq!(control.target_rate(), 500.0, "... is what runs after it");

    // A reload during the wait: its stages start with the run, not with the reload.
    let control = Control::new(&spec.load, &spec.ops);
    let staged = plan_of(
        "model = \"chains\"\nchains = 8\nstages = [{ duration = \"10s\", rate = 100.0 }, { duration = \"10s\", rate = 300.0 }]",
    );
    control.apply_reload(&spec.load, &staged.load, &staged.ops);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let start = tokio::time::Instant::now();
    control.start(start);
    assert_eq!(control.stage().map(|(i, s)| (i, s.rate)), Some((0, 100.0)));
    assert_eq!(control.in_flight_limit(), 8);
    let s = control.settings().schedule;
    assert_eq!(
        s.due(100),
        Some(start + Duration::from_secs(1)),
        "anchored at the start"
    );
}

#[tokio::test(start_paused = true)]
async fn the_summary_json_reads_back_as_a_summary_and_keeps_its_keys() {
    let plan = plan_of("model = \"chains\"\nchains = 4\nops = 50\nrate = 1000.0");
    let (summary, _) = run_timed(plan, Fake::new(Duration::from_millis(1))).await;
    let json = serde_json::to_value(&summary).unwrap();
    // Typed, unknown fields refused: a field renamed on one side only fails here.
    let back: Summary = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), json);
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    // The interface: fields may be added (here and in the README), never renamed or removed.
    let mut top = keys(&json);
    top.sort();
    assert_eq!(
        top,
        [
            "abandoned",
            "client_cpu_seconds",
            "client_cpu_us_per_op",
            "dropped",
            "duration_seconds",
            "failed",
            "in_flight_limit",
            "model",
            "not_sent_run_ended",
            "ok",
            "ops",
            "peak_in_flight",
            "peak_rss_bytes",
            "schedule_lag",
            "scheduled",
            "sent",
            "total",
            "workload",
        ]
    );
    let mut op = keys(&json["total"]);
    op.sort();
    assert_eq!(
        op,
        [
            "count",
            "errors",
            "errors_by_kind",
            "failed_service_time",
            "name",
            "ok",
            "ops_per_second",
            "pages",
            "payload_bytes",
            "response_time",
            "retries",
            "rows",
            "service_time",
        ]
    );
    let mut p = keys(&json["total"]["service_time"]);
    p.sort();
    assert_eq!(
        p,
        ["max_ms", "mean_ms", "p50_ms", "p90_ms", "p999_ms", "p99_ms"]
    );
    assert_eq!(json["ops"][0]["name"], "w");
    assert_eq!(json["sent"], 50);
}

#[test]
fn op_choice_follows_weights() {
    let cumulative = [1.0, 4.0]; // weights 1 and 3
    let n = 100_000;
    let second = (0..n).filter(|&i| choose(&cumulative, 5, i) == 1).count() as f64 / n as f64;
    assert!((second - 0.75).abs() < 0.01, "{second}");
    assert_eq!(
        model::share(10, 0, 3) + model::share(10, 1, 3) + model::share(10, 2, 3),
        10
    );
}

/// Notes node `index % 3` as the driver's policy would, in the poll that sends the op: node 0
/// answers after 2 ms, node 1 never answers, node 2 fails at once.
struct ThreeNodes;

impl Executor for ThreeNodes {
    async fn execute(&self, _op: usize, index: u64) -> Outcome {
        let node = (index % 3) as u8;
        crate::cql::nodes::note(node);
        match node {
            0 => tokio::time::sleep(Duration::from_millis(2)).await,
            1 => std::future::pending::<()>().await,
            _ => return Err(crate::cql::ErrorKind::Overloaded),
        }
        // A later poll notes the node again, as `on_request_success` does.
        crate::cql::nodes::note(node);
        Ok(Done::written(8))
    }
}

#[tokio::test(start_paused = true)]
async fn each_request_is_counted_at_the_node_it_went_to_timeouts_included() {
    let plan = plan_with(
        "",
        "timeout = \"50ms\"",
        "model = \"chains\"\nchains = 6\nops = 300\nlanes = 2",
    );
    let control = Control::new(&plan.load, &plan.ops);
    let c = control.clone();
    let names = ["127.0.0.1:9042", "127.0.0.2:9042", "127.0.0.3:9042"];
    let gauges = Box::new(move || {
        let cluster = ClusterGauges {
            nodes: names
                .iter()
                .map(|n| crate::stats::NodeState {
                    node: n.to_string(),
                    up: true,
                })
                .collect(),
            ..ClusterGauges::default()
        };
        (
            Gauges {
                phase: Phase::Running,
                paused: false,
                target_rate: c.target_rate(),
                in_flight_limit: c.in_flight_limit() as u64,
                reloads_applied: 0,
                reloads_rejected: 0,
                ..Gauges::default()
            },
            cluster,
        )
    });
    let (agg, snapshots) = Aggregator::new(AggregatorConfig::for_plan(&plan), gauges);
    let (tx, rx) = crate::stats::report_channel();
    let summary = tokio::spawn(agg.run(rx));
    run(
        Arc::new(ThreeNodes),
        plan,
        control,
        tx,
        CancellationToken::new(),
    )
    .await;
    let summary = summary.await.unwrap();
    let s = snapshots.borrow().clone();
    assert_eq!(summary.sent, 300);
    let by_node: Vec<(&str, u64, u64, u64)> = s
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.ok, n.errors, n.in_flight))
        .collect();
    assert_eq!(
        by_node,
        vec![
            ("127.0.0.1:9042", 100, 0, 0),
            ("127.0.0.2:9042", 0, 100, 0),
            ("127.0.0.3:9042", 0, 100, 0),
        ]
    );
    assert_eq!(s.nodes[0].service.count, 100);
    assert_eq!(s.nodes[1].service.count, 0, "failures have no service time");
}

/// Answers in 1 ms; the attempt of index `jump` moves the (paused) clock on by `by` while the
/// lane polls it, as a lane busy for that long would see it: late for the run's end, before
/// the task that stops issuing has run.
struct Jump {
    jump: u64,
    by: Duration,
    seen: Mutex<Vec<u64>>,
}

impl Executor for Jump {
    async fn execute(&self, _op: usize, index: u64) -> Outcome {
        self.seen.lock().unwrap().push(index);
        if index == self.jump {
            tokio::time::advance(self.by).await;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(Done::written(8))
    }
}

#[tokio::test(start_paused = true)]
async fn a_lane_that_sees_the_end_late_counts_no_op_due_after_it() {
    // 100 ops/s for 1 s: ops 0..100 are the run. The lane is held up 200 ms while sending op
    // 95 (due at 950 ms): it comes back at 1.15 s with op 96 late, and drops it with every
    // other op late by then; those due after the end (100..114) are not part of the run.
    let plan = plan_of(
        "model = \"chains\"\nchains = 2\nlanes = 1\nrate = 100.0\nduration = \"1s\"\non_backlog = \"drop\"",
    );
    let jump = Arc::new(Jump {
        jump: 95,
        by: Duration::from_millis(200),
        seen: Mutex::new(Vec::new()),
    });
    let (s, _) = run_with(plan, jump.clone(), CancellationToken::new()).await;
    let table = s.table();
    assert!(
        jump.seen.lock().unwrap().iter().all(|&i| i < 100),
        "{table}"
    );
    assert_eq!(s.scheduled, 100, "{table}");
    assert_eq!(s.sent, 96, "ops 0..=95: {table}");
    assert_eq!(s.sent + s.dropped + s.not_sent_run_ended, 100, "{table}");
}

#[tokio::test(start_paused = true)]
async fn requests_still_out_at_the_drain_deadline_are_counted_as_abandoned() {
    // 10 ops due in 1 s; four chains, each stuck on a request that never answers: four sent,
    // six never sent, the four given up 100 ms into the drain.
    let plan = plan_with(
        "",
        "timeout = \"60s\"",
        "model = \"chains\"\nchains = 4\nlanes = 2\nrate = 10.0\nduration = \"1s\"\ndrain_timeout = \"100ms\"",
    );
    let (s, took) = run_timed(plan, Fake::hanging(Duration::ZERO, usize::MAX)).await;
    let table = s.table();
    assert_eq!(
        (s.scheduled, s.sent, s.not_sent_run_ended, s.abandoned),
        (10, 4, 6, 4),
        "{table}"
    );
    assert_eq!((s.ok, s.failed), (0, 0), "{table}");
    assert!(took < Duration::from_millis(1150), "{took:?}");
}

/// What the engine reported, read straight off the report channel: the lanes that reported,
/// how many lane reports, and the sums of requests sent and completed.
#[derive(Debug, Default)]
struct Reported {
    lanes: HashSet<usize>,
    reports: usize,
    issued: u64,
    completed: u64,
}

async fn read_reports(mut rx: tokio::sync::mpsc::Receiver<crate::stats::Report>) -> Reported {
    let mut out = Reported::default();
    while let Some(r) = rx.recv().await {
        if let crate::stats::Report::Lane(r) = r {
            out.lanes.insert(r.lane);
            out.reports += 1;
            out.issued += r.stats.issued;
            out.completed += r.stats.completed();
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn sync_workers_share_the_statistics_of_their_lane() {
    // A thousand workers on two lanes: two sets of statistics, not a thousand (each worker
    // its own lane took 12.8 GiB at 1,000 workers), and still a thousand requests in flight.
    let plan = plan_of("model = \"sync\"\nworkers = 1000\nops = 5000\nlanes = 2");
    let fake = Fake::new(Duration::from_millis(10));
    let control = Control::new(&plan.load, &plan.ops);
    let (tx, rx) = crate::stats::report_channel();
    let reported = tokio::spawn(read_reports(rx));
    run(fake.clone(), plan, control, tx, CancellationToken::new()).await;
    let reported = reported.await.unwrap();
    assert_eq!(reported.lanes, HashSet::from([0, 1]), "{reported:?}");
    assert_eq!((reported.issued, reported.completed), (5000, 5000));
    assert_eq!(fake.peak.load(Ordering::SeqCst), 1000, "every worker busy");
    assert_eq!(fake.seen.lock().unwrap().len(), 5000);
}

#[tokio::test(start_paused = true)]
async fn a_full_report_channel_coalesces_intervals_and_never_holds_requests_back() {
    // The aggregator reads nothing for 3 s, through a channel of one report: the lanes go
    // on sending at their rate, and the intervals they could not hand over arrive later,
    // merged, with every request counted.
    let plan = plan_of("model = \"chains\"\nchains = 8\nlanes = 2\nops = 2000\nrate = 1000.0");
    let fake = Fake::new(Duration::from_millis(1));
    let control = Control::new(&plan.load, &plan.ops);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let reported = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        read_reports(rx).await
    });
    let start = tokio::time::Instant::now();
    run(fake.clone(), plan, control, tx, CancellationToken::new()).await;
    let reported = reported.await.unwrap();
    let last_sent = *fake.started_at.lock().unwrap().last().unwrap() - start;
    assert!(
        last_sent < Duration::from_millis(2002),
        "the last op is due at 1.999 s, sent at {last_sent:?}"
    );
    assert_eq!((reported.issued, reported.completed), (2000, 2000));
    // Two lanes reporting five times a second for 2 s: about 20 reports if none waited.
    assert!(reported.reports <= 8, "{reported:?}");
}

/// Acknowledges what the lanes record: index `i % 4 == 1` fails for good (invalid), `i % 4
/// == 2` times out once (the retry succeeds), the rest succeed after a while. While an
/// attempt is in flight its index must not be acknowledged.
struct Acking {
    acked: Acked,
    seen_early: AtomicU32,
    attempts: Mutex<HashSet<u64>>,
}

impl Executor for Acking {
    async fn execute(&self, _op: usize, index: u64) -> Outcome {
        if self.acked.contains(index) {
            self.seen_early.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
        let first = self.attempts.lock().unwrap().insert(index);
        match index % 4 {
            1 => Err(crate::cql::ErrorKind::Invalid),
            2 if first => Err(crate::cql::ErrorKind::WriteTimeout),
            _ => Ok(Done::written(8)),
        }
    }

    fn acked(&self, _op: usize) -> Option<&Acked> {
        Some(&self.acked)
    }
}

#[tokio::test(start_paused = true)]
async fn the_lanes_acknowledge_exactly_the_writes_that_succeeded_after_their_retries() {
    let plan = plan_with(
        "retries = 2\nretry_backoff = \"1ms\"",
        "",
        "model = \"chains\"\nchains = 8\nops = 400\nlanes = 2",
    );
    let fake = Arc::new(Acking {
        acked: Acked::new(plan.load.index_map),
        seen_early: AtomicU32::new(0),
        attempts: Mutex::new(HashSet::new()),
    });
    let (summary, _) = run_with(plan, fake.clone(), CancellationToken::new()).await;
    assert_eq!((summary.ok, summary.failed), (300, 100));
    let acked: Vec<u64> = fake.acked.acknowledged_below(u64::MAX).collect();
    let expected: Vec<u64> = (0..400).filter(|i| i % 4 != 1).collect();
    assert_eq!(acked, expected, "the successes, retried ones included");
    assert_eq!(fake.acked.failed(), 100);
    assert_eq!(
        fake.seen_early.load(Ordering::SeqCst),
        0,
        "never while in flight"
    );
}

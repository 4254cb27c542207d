//! The abort policy: stop a run whose errors persist. Reads the published snapshots once a
//! second, so it costs the request path nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::plan::AbortPlan;
use crate::stats::Snapshot;

/// Returns the reason when it stopped the run.
pub async fn watch(
    policy: AbortPlan,
    mut snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    stop: CancellationToken,
) -> Option<String> {
    if policy == AbortPlan::default() {
        return None;
    }
    let mut window: VecDeque<(tokio::time::Instant, u64, u64)> = VecDeque::new();
    let mut streak = 0u64;
    let (mut last_ok, mut last_err) = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return None,
        }
        let s = snapshots.borrow_and_update().clone();
        let ok = s.ok();
        let err = s.errors();
        // Between two snapshots without a success, every error extends the streak.
        if ok == last_ok {
            streak += err - last_err;
        } else {
            streak = 0;
        }
        (last_ok, last_err) = (ok, err);
        if let Some(n) = policy.consecutive_errors
            && streak >= n
        {
            stop.cancel();
            return Some(format!(
                "{streak} consecutive errors (load.abort.consecutive_errors = {n})"
            ));
        }
        if let Some((ratio, span)) = policy.error_ratio {
            let now = tokio::time::Instant::now();
            window.push_back((now, ok, err));
            while window.front().is_some_and(|&(t, _, _)| now - t > span) {
                window.pop_front();
            }
            let (t0, ok0, err0) = window[0];
            let (d_ok, d_err) = (ok - ok0, err - err0);
            if now - t0 >= span.mul_f64(0.9) && d_ok + d_err > 0 {
                let r = d_err as f64 / (d_ok + d_err) as f64;
                if r > ratio {
                    stop.cancel();
                    return Some(format!(
                        "error ratio {r:.3} over {} is above load.abort.error_ratio = {ratio}",
                        humantime::format_duration(span)
                    ));
                }
            }
        }
    }
}

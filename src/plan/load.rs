//! The load part of the plan: the model and its knob, rate and stages, the end, and this
//! shard's slice of it all.

use std::time::Duration;

use super::shard::{self, IndexMap, ShardEnv};
use super::*;
use crate::spec::{LoadSpec, MODELS, ShardIndex, Spec};

/// The longest `load.release_every`: an op held longer could count as late (and be dropped
/// under `on_backlog = "drop"`) for the release alone.
pub const MAX_RELEASE_EVERY: Duration = Duration::from_millis(10);

pub(super) fn shard_plan(
    spec: &Spec,
    shard_env: &ShardEnv,
    err: &ErrorAt,
) -> Result<ShardPlan, SpecError> {
    let s = &spec.shard;
    if s.count == 0 {
        return Err(err("shard.count", "must be at least 1".into()));
    }
    let (index, auto) = match &s.index {
        ShardIndex::Index(i) => (*i, false),
        ShardIndex::Named(n) if n == "auto" => (
            shard_env.ordinal().map_err(|m| err("shard.index", m))?,
            true,
        ),
        ShardIndex::Named(n) => {
            return Err(err(
                "shard.index",
                format!("`{n}` is neither a number nor \"auto\""),
            ));
        }
    };
    // A pod ordinal beyond the count (a StatefulSet scaled up without raising shard.count)
    // is not a spec error: restarting would not fix it, and exiting would crash-loop. The
    // daemon waits instead, saying why (see `ShardPlan::surplus`).
    if index >= s.count && !auto {
        return Err(err(
            "shard.index",
            format!("{index} is not below shard.count ({})", s.count),
        ));
    }
    let start_at = match &s.start_at {
        None => None,
        Some(t) => Some(humantime::parse_rfc3339_weak(t).map_err(|e| {
            err(
                "shard.start_at",
                format!("`{t}` is not an RFC 3339 time: {e}"),
            )
        })?),
    };
    Ok(ShardPlan {
        index,
        count: s.count,
        start_at,
        surplus: index >= s.count,
    })
}

pub(super) fn load(l: &LoadSpec, shard: &ShardPlan, err: &ErrorAt) -> Result<LoadPlan, SpecError> {
    let concurrency = knob(l, err)?;
    let (rate, stages) = rate_and_stages(l, shard, err)?;
    let (end, index_map) = end(l, shard, err)?;
    if l.release_every.0 > MAX_RELEASE_EVERY {
        return Err(err(
            "load.release_every",
            format!(
                "{} is longer than {}: ops would wait past the point where they count as late",
                l.release_every,
                humantime::format_duration(MAX_RELEASE_EVERY)
            ),
        ));
    }
    Ok(LoadPlan {
        model: l.model,
        concurrency,
        rate,
        stages,
        max_in_flight: l.max_in_flight,
        on_backlog: l.on_backlog,
        end,
        warmup: l.warmup.0,
        release_every: l.release_every.0,
        lanes: l.lanes,
        drain_timeout: l.drain_timeout.0,
        abort: abort(l, err)?,
        index_map,
    })
}

/// The model's knob as it will run: only the model's own knob may be written, at least 1 and
/// not above the cap.
fn knob(l: &LoadSpec, err: &ErrorAt) -> Result<u32, SpecError> {
    let model = l.model;
    // Knobs of other models are refused: a `window` on a `chains` run is a mistake.
    for row in &MODELS {
        let Some(value) = row.field.and_then(|f| (f.get)(l)) else {
            continue;
        };
        let key = format!("load.{}", row.knob);
        if row.model != model {
            return Err(err(
                &key,
                format!(
                    "is the knob of model `{}`, but load.model is `{}` (whose knob is {})",
                    row.name,
                    model.name(),
                    model.knob()
                ),
            ));
        }
        if value == 0 {
            return Err(err(&key, "must be at least 1".into()));
        }
    }
    if l.max_in_flight == 0 {
        return Err(err("load.max_in_flight", "must be at least 1".into()));
    }
    let concurrency = l.knob();
    if concurrency > l.max_in_flight {
        return Err(err(
            &format!("load.{}", model.knob()),
            format!(
                "{concurrency} is above load.max_in_flight ({}), the hard cap",
                l.max_in_flight
            ),
        ));
    }
    Ok(concurrency)
}

/// This shard's rate (its share of the spec's) and stages; the rate is the last stage's when
/// there are stages.
fn rate_and_stages(
    l: &LoadSpec,
    shard: &ShardPlan,
    err: &ErrorAt,
) -> Result<(f64, Vec<Stage>), SpecError> {
    // Range only: without stages, a 0 rate under "drop" is reported at load.on_backlog below.
    check_rate(l.rate, OnBacklog::Queue).map_err(|m| err("load.rate", m))?;
    if l.rate > 0.0 && !l.stages.is_empty() {
        return Err(err("load.stages", "set either load.rate or load.stages; after its stages a run holds the last stage's rate".into()));
    }
    let share = 1.0 / shard.count as f64;
    let mut stages = Vec::new();
    for (i, s) in l.stages.iter().enumerate() {
        if s.duration.0.is_zero() {
            return Err(err(
                &format!("load.stages[{i}].duration"),
                "must be greater than zero".into(),
            ));
        }
        if !RATE_RANGE.contains(&s.rate) {
            return Err(err(
                &format!("load.stages[{i}].rate"),
                format!("must be between 0.01 and 1e8 ops/s, not {}", s.rate),
            ));
        }
        stages.push(Stage {
            duration: s.duration.0,
            rate: s.rate * share,
            ramp: s.ramp,
        });
    }
    let rate = stages.last().map_or(l.rate * share, |s| s.rate);
    if rate == 0.0 && l.on_backlog == OnBacklog::Drop {
        return Err(err("load.on_backlog", DROP_NEEDS_RATE.into()));
    }
    Ok((rate, stages))
}

/// When the run ends, and which op indices this shard takes.
fn end(l: &LoadSpec, shard: &ShardPlan, err: &ErrorAt) -> Result<(End, IndexMap), SpecError> {
    let (end, index_map) = match (l.duration, l.ops) {
        (Some(_), Some(_)) => {
            return Err(err(
                "load.ops",
                "set either load.duration or load.ops, not both".into(),
            ));
        }
        (Some(d), None) if d.0.is_zero() => {
            return Err(err("load.duration", "must be greater than zero".into()));
        }
        (Some(d), None) => (End::Duration(d.0), interleaved(shard)),
        (None, Some(0)) => return Err(err("load.ops", "must be at least 1".into())),
        (None, Some(n)) => {
            let (len, offset) = shard::share(n, shard.index, shard.count);
            (End::Ops(len), IndexMap::Contiguous { offset })
        }
        (None, None) => (End::Forever, interleaved(shard)),
    };
    if let End::Duration(d) = end
        && l.warmup.0 >= d
    {
        return Err(err(
            "load.warmup",
            format!("{} is not shorter than load.duration", l.warmup),
        ));
    }
    Ok((end, index_map))
}

fn abort(l: &LoadSpec, err: &ErrorAt) -> Result<AbortPlan, SpecError> {
    let a = &l.abort;
    let error_ratio = match (a.error_ratio, a.error_window) {
        (None, None) => None,
        (Some(r), _) if !(r > 0.0 && r <= 1.0) => {
            return Err(err(
                "load.abort.error_ratio",
                format!("must be in (0, 1], not {r}"),
            ));
        }
        (Some(r), w) => Some((r, w.map_or(Duration::from_secs(30), |w| w.0))),
        (None, Some(_)) => {
            return Err(err(
                "load.abort.error_window",
                "needs load.abort.error_ratio".into(),
            ));
        }
    };
    if a.consecutive_errors == Some(0) {
        return Err(err(
            "load.abort.consecutive_errors",
            "must be at least 1".into(),
        ));
    }
    Ok(AbortPlan {
        error_ratio,
        consecutive_errors: a.consecutive_errors,
    })
}

fn interleaved(shard: &ShardPlan) -> IndexMap {
    IndexMap::Interleaved {
        stride: shard.count as u64,
        offset: shard.index as u64,
    }
}

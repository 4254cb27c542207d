//! The open-loop schedule: op `k` is due at an absolute time computed from an anchor, never
//! from accumulated sleeps, so a slow moment never shifts what comes after it.

use std::time::Duration;

use tokio::time::Instant;

use crate::plan::Stage;

/// A rate function anchored at (`at`, `first_op`): op `first_op + n` is due when the integral
/// of the rate since `at` reaches `n`. Immutable: a rate change builds a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub at: Instant,
    pub first_op: u64,
    /// Stages from the anchor on; the last stage's rate holds after them.
    stages: Vec<Stage>,
    /// Ops/s after the stages; 0 = unthrottled.
    rate: f64,
}

impl Schedule {
    pub fn unthrottled(at: Instant, first_op: u64) -> Schedule {
        Schedule {
            at,
            first_op,
            stages: Vec::new(),
            rate: 0.0,
        }
    }

    pub fn constant(at: Instant, first_op: u64, rate: f64) -> Schedule {
        Schedule {
            at,
            first_op,
            stages: Vec::new(),
            rate,
        }
    }

    pub fn staged(at: Instant, first_op: u64, stages: Vec<Stage>, rate: f64) -> Schedule {
        Schedule {
            at,
            first_op,
            stages,
            rate,
        }
    }

    /// The same rates and stages, anchored at (`at`, `first_op`).
    pub fn anchored(&self, at: Instant, first_op: u64) -> Schedule {
        Schedule {
            at,
            first_op,
            ..self.clone()
        }
    }

    /// The same plan, `by` later: what a pause of `by` does to it. Ops due before the pause
    /// and not yet sent stay as late as they were; the stage in force goes on where it was.
    pub fn shifted(&self, by: Duration) -> Schedule {
        Schedule {
            at: self.at.checked_add(by).unwrap_or(self.at),
            ..self.clone()
        }
    }

    /// The stage in force at `now` (its index among this schedule's stages); `None` once the
    /// stages are over (the last rate holds) or when there are none.
    pub fn stage_at(&self, now: Instant) -> Option<usize> {
        let mut end = self.at;
        for (i, s) in self.stages.iter().enumerate() {
            end += s.duration;
            if now < end {
                return Some(i);
            }
        }
        None
    }

    /// The stages of this schedule (from its anchor on).
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn is_throttled(&self) -> bool {
        self.rate > 0.0 || !self.stages.is_empty()
    }

    /// Ops/s asked for at `now` (0 = unthrottled).
    pub fn rate_at(&self, now: Instant) -> f64 {
        let mut t = self.at;
        let mut previous = 0.0;
        for s in &self.stages {
            let end = t + s.duration;
            if now < end {
                if !s.ramp {
                    return s.rate;
                }
                let f = now.saturating_duration_since(t).as_secs_f64() / s.duration.as_secs_f64();
                return previous + (s.rate - previous) * f;
            }
            t = end;
            previous = s.rate;
        }
        self.rate
    }

    /// When op `k` is due; `None` when unthrottled. Ops before the anchor are due at it.
    pub fn due(&self, k: u64) -> Option<Instant> {
        if !self.is_throttled() {
            return None;
        }
        let mut n = k.saturating_sub(self.first_op) as f64;
        let mut t = self.at;
        let mut previous = 0.0;
        for s in &self.stages {
            let secs = s.duration.as_secs_f64();
            let ops = if s.ramp {
                (previous + s.rate) / 2.0 * secs
            } else {
                s.rate * secs
            };
            if n < ops {
                let offset = if s.ramp {
                    // Solve previous*x + a*x^2 = n for x, in the form that is stable when a -> 0.
                    let a = (s.rate - previous) / (2.0 * secs);
                    2.0 * n / (previous + (previous * previous + 4.0 * a * n).sqrt())
                } else {
                    n / s.rate
                };
                return Some(after(t, offset));
            }
            n -= ops;
            t += s.duration;
            previous = s.rate;
        }
        Some(after(t, n / self.rate))
    }

    /// The number of ops due strictly before `now`, counted from op 0 (for dropping late
    /// ops in one step). Exact at stage boundaries and within constant-rate stretches.
    pub fn due_before(&self, now: Instant) -> u64 {
        let mut elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let mut n = 0.0;
        let mut previous = 0.0;
        for s in &self.stages {
            let secs = s.duration.as_secs_f64();
            if elapsed < secs {
                n += if s.ramp {
                    let a = (s.rate - previous) / (2.0 * secs);
                    previous * elapsed + a * elapsed * elapsed
                } else {
                    s.rate * elapsed
                };
                return self.first_op + n.ceil() as u64;
            }
            n += if s.ramp {
                (previous + s.rate) / 2.0 * secs
            } else {
                s.rate * secs
            };
            elapsed -= secs;
            previous = s.rate;
        }
        self.first_op + (n + self.rate * elapsed).ceil() as u64
    }
}

/// `t` plus `secs`, saturating: a schedule far in the future must not overflow.
fn after(t: Instant, secs: f64) -> Instant {
    let d = Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(crate::plan::MAX_DURATION);
    t.checked_add(d.min(crate::plan::MAX_DURATION)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &Schedule, k: u64) -> f64 {
        s.due(k).unwrap().duration_since(s.at).as_secs_f64()
    }

    #[test]
    fn constant_rate_is_absolute() {
        let s = Schedule::constant(Instant::now(), 100, 1000.0);
        assert_eq!(secs(&s, 100), 0.0);
        assert!((secs(&s, 1100) - 1.0).abs() < 1e-9);
        assert!(
            (secs(&s, 100 + 1_000_000) - 1000.0).abs() < 1e-6,
            "no drift after a million ops"
        );
        assert_eq!(
            s.due(5),
            s.due(100),
            "ops before the anchor are due at once"
        );
    }

    #[test]
    fn stages_step_and_ramp() {
        let stages = vec![
            Stage {
                duration: Duration::from_secs(10),
                rate: 100.0,
                ramp: false,
            },
            Stage {
                duration: Duration::from_secs(10),
                rate: 300.0,
                ramp: true,
            },
        ];
        let s = Schedule::staged(Instant::now(), 0, stages, 300.0);
        assert!((secs(&s, 500) - 5.0).abs() < 1e-9);
        // The ramp from 100 to 300 over 10 s carries 2000 ops; half of the time carries
        // 100*5 + 10*25 = 750 of them.
        assert!((secs(&s, 1000 + 750) - 15.0).abs() < 1e-6);
        assert!((secs(&s, 3000) - 20.0).abs() < 1e-6);
        assert!(
            (secs(&s, 3300) - 21.0).abs() < 1e-6,
            "the last rate holds after the stages"
        );
        assert!((s.rate_at(s.at + Duration::from_secs(15)) - 200.0).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_from_zero_starts_slowly() {
        let stages = vec![Stage {
            duration: Duration::from_secs(10),
            rate: 100.0,
            ramp: true,
        }];
        let s = Schedule::staged(Instant::now(), 0, stages, 100.0);
        // n = 5 t^2, so op 5 is due at 1 s and op 500 at 10 s.
        assert!((secs(&s, 5) - 1.0).abs() < 1e-9);
        assert!((secs(&s, 500) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn due_before_inverts_due() {
        let stages = vec![Stage {
            duration: Duration::from_secs(4),
            rate: 50.0,
            ramp: true,
        }];
        let s = Schedule::staged(Instant::now(), 7, stages, 80.0);
        for k in [7u64, 20, 107, 300, 1000] {
            let t = s.due(k).unwrap();
            assert_eq!(s.due_before(t + Duration::from_nanos(1)), k + 1, "op {k}");
        }
        assert!(Schedule::unthrottled(Instant::now(), 0).due(3).is_none());
    }

    #[test]
    fn a_shifted_schedule_keeps_its_stages() {
        let stages = vec![
            Stage {
                duration: Duration::from_secs(10),
                rate: 100.0,
                ramp: false,
            },
            Stage {
                duration: Duration::from_secs(10),
                rate: 300.0,
                ramp: false,
            },
        ];
        let s = Schedule::staged(Instant::now(), 0, stages, 300.0);
        let later = s.shifted(Duration::from_secs(4));
        assert_eq!(s.stage_at(s.at + Duration::from_secs(9)), Some(0));
        assert_eq!(later.stage_at(s.at + Duration::from_secs(13)), Some(0));
        assert_eq!(later.stage_at(s.at + Duration::from_secs(14)), Some(1));
        assert_eq!(later.stage_at(s.at + Duration::from_secs(24)), None);
        assert_eq!(
            later.due(1500).unwrap() - s.due(1500).unwrap(),
            Duration::from_secs(4)
        );
        assert_eq!(later.rate_at(s.at + Duration::from_secs(15)), 300.0);
    }
}

//! The raise/clear state machine behind every rule: exact in event time, so the alerts of a
//! replay do not depend on how often time was advanced.
//!
//! Input: a [`Signal`] set at times, and time advancing. Output: [`Transition`]s, each at the
//! exact time it happened. Raised when the value stays above `above` for `for_ms` (and the
//! cool-down after the last clear is over); cleared when it stays at or below `clear_at` for
//! `clear_ms`. Between `clear_at` and `above` nothing changes (the dead band).

/// The value a rule watches, from some time on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// A level that holds until the next change (people, crossings per interval).
    Level(f64),
    /// Seconds since this time, growing (the longest dwell, time without frames).
    Since(i64),
    /// The condition holds whatever the value (a camera reported down); the value is seconds
    /// since this time.
    Forced(i64),
}

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// True: raised; false: cleared.
    pub raised: bool,
    /// When, Unix ms.
    pub ts_ms: i64,
    /// The value then.
    pub value: f64,
}

/// Thresholds and times of a machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    /// Raise above this.
    pub above: f64,
    /// Clear at or below this (≤ `above`).
    pub clear_at: f64,
    /// The raise condition must hold this long, ms.
    pub for_ms: i64,
    /// The clear condition must hold this long, ms.
    pub clear_ms: i64,
    /// No raise sooner than this after a clear, ms.
    pub cooldown_ms: i64,
}

/// One raise/clear state.
#[derive(Debug, Clone)]
pub struct Machine {
    l: Levels,
    signal: Signal,
    /// The signal (or the state) is as it is since this time.
    set_ms: i64,
    /// The condition already held continuously from this time when the signal was last set.
    held_from: Option<i64>,
    raised: bool,
    cooldown_until: i64,
    now: i64,
}

fn ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

impl Machine {
    /// Cleared, value 0.
    pub fn new(l: Levels) -> Self {
        Self {
            l,
            signal: Signal::Level(0.0),
            set_ms: i64::MIN,
            held_from: None,
            raised: false,
            cooldown_until: i64::MIN,
            now: i64::MIN,
        }
    }

    /// Raised now.
    pub fn raised(&self) -> bool {
        self.raised
    }

    /// The signal's value at `t`.
    pub fn value_at(&self, t: i64) -> f64 {
        match self.signal {
            Signal::Level(v) => v,
            Signal::Since(a) | Signal::Forced(a) => (t.saturating_sub(a)) as f64 / 1000.0,
        }
    }

    /// Sets the signal at `ts_ms` (not before the time already reached); returns transitions
    /// up to then.
    pub fn set(&mut self, ts_ms: i64, signal: Signal) -> Vec<Transition> {
        let ts = ts_ms.max(self.now);
        let out = self.advance(ts);
        let held = self
            .interval()
            .filter(|(from, until)| *from <= ts && ts < *until)
            .map(|(from, _)| from);
        (self.signal, self.set_ms) = (signal, ts);
        self.held_from = held;
        out
    }

    /// Moves time to `now_ms`; returns the transitions on the way, in order.
    pub fn advance(&mut self, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        self.now = self.now.max(now_ms);
        while let Some((from, until)) = self.interval() {
            let hold = if self.raised {
                self.l.clear_ms
            } else {
                self.l.for_ms
            };
            let mut fire = from.saturating_add(hold);
            if !self.raised {
                fire = fire.max(self.cooldown_until);
            }
            if fire >= until || fire > self.now {
                break;
            }
            self.raised = !self.raised;
            (self.set_ms, self.held_from) = (fire, None);
            if !self.raised {
                self.cooldown_until = fire.saturating_add(self.l.cooldown_ms);
            }
            out.push(Transition {
                raised: self.raised,
                ts_ms: fire,
                value: self.value_at(fire),
            });
        }
        out
    }

    /// When the condition that flips the current state holds: `[from, until)` from the time
    /// the signal was set on.
    fn interval(&self) -> Option<(i64, i64)> {
        let lo = self.set_ms;
        let (from, until) = match (self.signal, self.raised) {
            (Signal::Level(v), false) => (v > self.l.above).then_some((lo, i64::MAX))?,
            (Signal::Level(v), true) => (v <= self.l.clear_at).then_some((lo, i64::MAX))?,
            // Strictly above: the first millisecond past the threshold.
            (Signal::Since(a), false) => (lo.max(a.saturating_add(ms(self.l.above) + 1)), i64::MAX),
            (Signal::Since(a), true) => (lo, a.saturating_add(ms(self.l.clear_at)) + 1),
            (Signal::Forced(_), false) => (lo, i64::MAX),
            (Signal::Forced(_), true) => return None,
        };
        if from >= until {
            return None;
        }
        // Still the condition that held when the signal changed: it holds since then.
        let from = match self.held_from {
            Some(h) if from == lo => h,
            _ => from,
        };
        Some((from, until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Levels = Levels {
        above: 5.0,
        clear_at: 3.0,
        for_ms: 10_000,
        clear_ms: 5_000,
        cooldown_ms: 60_000,
    };

    fn run(m: &mut Machine, steps: &[(i64, Signal)], until: i64) -> Vec<(bool, i64)> {
        let mut out = Vec::new();
        for &(t, s) in steps {
            out.extend(m.set(t, s));
        }
        out.extend(m.advance(until));
        out.iter().map(|t| (t.raised, t.ts_ms)).collect()
    }

    #[test]
    fn level_raises_after_holding_and_the_dead_band_changes_nothing() {
        let mut m = Machine::new(L);
        let lv = Signal::Level;
        // 6 from 0 s; wobbles 6-7-5.5-6 (all above 5) keep the timer: raised at 10 s.
        // Drops to 4 (dead band) at 20 s, back to 6, to 3 at 40 s, 4 at 43 s (the clear
        // condition breaks), 2 at 44 s: cleared at 49 s.
        let steps = [
            (0, lv(6.0)),
            (3_000, lv(7.0)),
            (6_000, lv(5.5)),
            (8_000, lv(6.0)),
            (20_000, lv(4.0)),
            (25_000, lv(6.0)),
            (40_000, lv(3.0)),
            (43_000, lv(4.0)), // condition broken before clear_ms
            (44_000, lv(2.0)),
        ];
        assert_eq!(
            run(&mut m, &steps, 100_000),
            vec![(true, 10_000), (false, 49_000)]
        );
        // A dip below `above` restarts the raise timer.
        let mut m = Machine::new(L);
        let steps = [(0, lv(6.0)), (9_000, lv(5.0)), (9_500, lv(6.0))];
        assert_eq!(run(&mut m, &steps, 30_000), vec![(true, 19_500)]);
    }

    #[test]
    fn cooldown_delays_the_next_raise() {
        let mut m = Machine::new(L);
        let lv = Signal::Level;
        let steps = [(0, lv(9.0)), (20_000, lv(0.0)), (30_000, lv(9.0))];
        // Raised 10 s, cleared 25 s, condition again from 30 s: raise waits for 85 s.
        assert_eq!(
            run(&mut m, &steps, 200_000),
            vec![(true, 10_000), (false, 25_000), (true, 85_000)]
        );
    }

    #[test]
    fn growing_values_raise_at_the_exact_time_whatever_the_ticks() {
        let l = Levels {
            above: 120.0,
            clear_at: 120.0,
            for_ms: 0,
            clear_ms: 0,
            cooldown_ms: 0,
        };
        let expected = vec![(true, 130_001), (false, 200_000)];
        for tick in [1, 700, 60_000] {
            let mut m = Machine::new(l);
            let mut got = m.set(10_000, Signal::Since(10_000));
            let mut t = 10_000;
            while t < 200_000 {
                t += tick;
                got.extend(m.advance(t.min(200_000)));
            }
            // The loiterer leaves; the next one has been there 30 s.
            got.extend(m.set(200_000, Signal::Since(170_000)));
            got.extend(m.advance(250_000));
            let got: Vec<(bool, i64)> = got.iter().map(|t| (t.raised, t.ts_ms)).collect();
            assert_eq!(got, expected, "tick {tick}");
        }
        // A forced signal raises at once and clears only when a level replaces it.
        let mut m = Machine::new(l);
        let mut got = m.set(5_000, Signal::Forced(1_000));
        got.extend(m.advance(9_000));
        assert_eq!(got.len(), 1);
        assert!((got[0].value - 4.0).abs() < 1e-9);
        assert_eq!(m.set(9_000, Signal::Since(9_000)).len(), 0);
        assert!(!m.advance(9_001).first().unwrap().raised);
    }
}

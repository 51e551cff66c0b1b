//! A circuit breaker per downstream service: after `threshold` consecutive failures it
//! opens and calls fail fast for `open_for`; then one probe is let through (half-open):
//! success closes it, failure opens it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// Whether a call may go ahead.
#[derive(Debug, PartialEq, Eq)]
pub enum Permit {
    Closed,
    /// The one call that tests a service after the open period.
    Probe,
    /// Open: fail fast, for this much longer.
    Rejected(Duration),
}

impl CircuitBreaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self { threshold: threshold.max(1), open_for, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn permit(&self) -> Permit {
        self.permit_at(Instant::now())
    }

    pub fn permit_at(&self, now: Instant) -> Permit {
        let mut state = self.state();
        match state.open_until {
            None => Permit::Closed,
            Some(until) if now < until => Permit::Rejected(until - now),
            Some(_) if state.probing => Permit::Rejected(Duration::ZERO),
            Some(_) => {
                state.probing = true;
                Permit::Probe
            }
        }
    }

    pub fn success(&self) {
        *self.state() = State::default();
    }

    pub fn failure(&self) {
        self.failure_at(Instant::now());
    }

    pub fn failure_at(&self, now: Instant) {
        let mut state = self.state();
        state.consecutive_failures += 1;
        if state.probing || state.consecutive_failures >= self.threshold {
            state.open_until = Some(now + self.open_for);
            state.probing = false;
        }
    }

    pub fn is_open(&self) -> bool {
        self.state().open_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_once_and_closes_on_success() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        let start = Instant::now();
        for _ in 0..2 {
            assert_eq!(breaker.permit_at(start), Permit::Closed);
            breaker.failure_at(start);
        }
        assert!(!breaker.is_open(), "two failures are not enough");
        breaker.failure_at(start);
        assert!(
            matches!(breaker.permit_at(start + Duration::from_secs(1)), Permit::Rejected(d) if d == Duration::from_secs(9))
        );
        let later = start + Duration::from_secs(11);
        assert_eq!(breaker.permit_at(later), Permit::Probe);
        assert!(matches!(breaker.permit_at(later), Permit::Rejected(_)), "one probe at a time");
        breaker.success();
        assert_eq!(breaker.permit_at(later), Permit::Closed);
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_successes_reset_the_count() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(5));
        let start = Instant::now();
        breaker.failure_at(start);
        breaker.success();
        breaker.failure_at(start);
        assert!(!breaker.is_open(), "not consecutive");
        breaker.failure_at(start);
        let later = start + Duration::from_secs(6);
        assert_eq!(breaker.permit_at(later), Permit::Probe);
        breaker.failure_at(later);
        assert!(matches!(breaker.permit_at(later + Duration::from_secs(1)), Permit::Rejected(_)));
    }
}

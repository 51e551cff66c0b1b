//! The money path under an adversarial, seeded scheduler: the real checkout, payment, stock
//! and order code (in-process, memory stores), with customers who double-click, retry and
//! give up, calls that fail before or after their effect, functions that crash, events
//! duplicated, reordered and relayed late; see `money_simulation` (src/lib.rs) for what is
//! simulated and the invariants checked once a schedule is quiet.
//!
//! Replay one schedule: `SIM_SEED=<n> cargo test -p money-simulation` (add `SIM_TRACE=1` to
//! print what happened, `-- --nocapture` to see it). Run another number of schedules:
//! `SIM_SCHEDULES=<n>`. Seeds are 1..=SIM_SCHEDULES.

use std::sync::Mutex;

use money_simulation::{Outcome, Stats, run};

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `seed`, turning a panic into a violation of its own.
fn run_caught(seed: u64) -> Outcome {
    match std::panic::catch_unwind(|| run(seed)) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome { seed, violations: vec![format!("[panic] {text}")], ..Outcome::default() }
        }
    }
}

#[test]
fn ten_thousand_adversarial_schedules_keep_orders_money_and_stock_straight() {
    let seeds: Vec<u64> = match env("SIM_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env("SIM_SCHEDULES").unwrap_or(10_000)).collect(),
    };
    let trace = std::env::var("SIM_TRACE").is_ok();
    let failures: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let total = Mutex::new(Stats::default());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(seeds.len().max(1));
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (seeds, failures, total) = (&seeds, &failures, &total);
            scope.spawn(move || {
                for seed in seeds.iter().skip(worker).step_by(workers) {
                    let outcome = run_caught(*seed);
                    if trace {
                        println!("seed {seed}:\n{}", outcome.trace.join("\n"));
                    }
                    total.lock().unwrap().add(&outcome.stats);
                    if !outcome.violations.is_empty() {
                        failures.lock().unwrap().push(outcome);
                    }
                }
            });
        }
    });
    let total = total.into_inner().unwrap();
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|f| f.seed);
    eprintln!("{} schedules: {total:?}", seeds.len());
    if failures.is_empty() {
        return;
    }
    // What broke, by invariant, with the first seeds that show it.
    let mut kinds: std::collections::BTreeMap<String, Vec<u64>> = std::collections::BTreeMap::new();
    for failure in &failures {
        for violation in &failure.violations {
            let kind = violation.split(']').next().unwrap_or("").trim_start_matches('[').to_owned();
            let seeds = kinds.entry(kind).or_default();
            if seeds.last() != Some(&failure.seed) {
                seeds.push(failure.seed);
            }
        }
    }
    let mut report = format!("{} of {} schedules broke an invariant\n", failures.len(), seeds.len());
    for (kind, seeds) in &kinds {
        report += &format!("  [{kind}] in {} schedules, e.g. seeds {:?}\n", seeds.len(), &seeds[..seeds.len().min(8)]);
    }
    for failure in failures.iter().take(5) {
        report +=
            &format!("seed {} (replay: SIM_SEED={} cargo test -p money-simulation):\n", failure.seed, failure.seed);
        for violation in failure.violations.iter().take(6) {
            report += &format!("    {violation}\n");
        }
    }
    panic!("{report}");
}

#[test]
fn a_seed_replays_exactly_the_same_schedule() {
    for seed in (1..=200).chain([99_999, 123_456_789]) {
        let (first, second) = (run_caught(seed), run_caught(seed));
        assert!(first.trace.len() > 3, "seed {seed} did something: {:?}", first.trace);
        assert_eq!(first.trace, second.trace, "seed {seed} ran differently twice");
        assert_eq!(first.violations.len(), second.violations.len(), "seed {seed} ran differently twice");
    }
}

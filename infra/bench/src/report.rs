//! `target/bench/report.json` (the shape issue 7 fixed) and the same figures as a Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use devstack::proxy::Counts;

/// The goals the figures are checked against.
pub const INIT_RATIO_GOAL: f64 = 1.5;
pub const ZIP_BYTES_GOAL: u64 = 6 * 1024 * 1024;
pub const RSS_KB_GOAL: u64 = 40 * 1024;
/// Resident-set growth between the 100th and the last warm invocation that counts as growth
/// (allocator noise is a few pages).
pub const RSS_GROWTH_KB_LIMIT: i64 = 256;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The same figures for the bare `lambda_runtime` function the others are compared with.
    pub baseline: FunctionFigures,
    pub functions: BTreeMap<String, FunctionFigures>,
    pub checkout: BTreeMap<String, CheckoutFigures>,
    pub paid_after_ms_p50: Option<f64>,
    pub paid_after_ms_p95: Option<f64>,
    /// Per function, the connections its init opens (`Ok(0)`: none, as the goal is) or why
    /// its init failed, with no network to reach.
    pub init_connections: BTreeMap<String, Result<u64, String>>,
    /// The functions again under Lambda's CPU share of each memory size.
    pub memory_model: Option<MemoryModel>,
    /// What 1,000 orders cost on AWS.
    pub cost: Option<crate::cost::OrderCost>,
    /// How the figures were taken (runs, host, build), for whoever reads the file later.
    pub method: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryModel {
    pub assumptions: String,
    pub cfs_period_us: u64,
    pub cold_runs: usize,
    pub warm_invocations: usize,
    /// Function (the baseline as `Baseline`) -> memory size in MB -> its figures there;
    /// `init_ratio` is over the baseline's init at the same size (cold starts interleaved).
    pub functions: BTreeMap<String, BTreeMap<u32, FunctionFigures>>,
    /// Why there are no figures, when the machine cannot set a CPU quota.
    pub unavailable: Option<String>,
    /// Per function, the memory size [`choose`] picks from its figures.
    pub chosen_mb: BTreeMap<String, u32>,
}

/// How much slower than at its fastest size a size may be and still be chosen: a synchronous
/// function gets the smallest size at which more CPU no longer buys latency. Differences
/// below this are the emulator's run-to-run noise, not the function's.
pub const LATENCY_SLACK: f64 = 0.25;
pub const LATENCY_SLACK_MS: f64 = 10.0;

/// The memory size for a function from its figures per size. One a caller waits for
/// (`synchronous`: a route or the authorizer): the smallest size whose first invocation and
/// warm p99 are within [`LATENCY_SLACK`] + [`LATENCY_SLACK_MS`] of the best any size gave,
/// since below it the function is CPU-bound and a customer waits for the quota. One nobody waits for
/// (a queue consumer, a schedule): the cheapest, by memory × warm p50 (a tie, as when it is
/// CPU-bound, goes to the smaller).
pub fn choose(sizes: &BTreeMap<u32, FunctionFigures>, synchronous: bool) -> Option<u32> {
    let (&largest, _) = sizes.iter().next_back()?;
    let near = |value: f64, reference: f64| value <= reference * (1.0 + LATENCY_SLACK) + LATENCY_SLACK_MS;
    if synchronous {
        let best = |field: fn(&FunctionFigures) -> f64| sizes.values().map(field).fold(f64::INFINITY, f64::min);
        let (first, p99) = (best(|f| f.first_ms_p50), best(|f| f.warm_ms_p99));
        return sizes
            .iter()
            .find(|(_, f)| near(f.first_ms_p50, first) && near(f.warm_ms_p99, p99))
            .map(|(mb, _)| *mb)
            .or(Some(largest));
    }
    let cost = |(mb, f): (&u32, &FunctionFigures)| f64::from(*mb) * f.warm_ms_p50.max(1.0).ceil();
    let cheapest = sizes.iter().map(cost).fold(f64::INFINITY, f64::min);
    sizes.iter().find(|entry| cost(*entry) <= cheapest * (1.0 + LATENCY_SLACK)).map(|(mb, _)| *mb)
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct FunctionFigures {
    pub init_ms_p50: f64,
    pub init_ms_p95: f64,
    /// Over the baseline's init p50 from cold starts interleaved with this function's, so
    /// that the machine drifting during a run (another process, the page cache) cannot make
    /// one function look slower than another.
    pub init_ratio: f64,
    pub baseline_init_ms_p50: Option<f64>,
    pub first_ms_p50: f64,
    pub warm_ms_p50: f64,
    pub warm_ms_p99: f64,
    /// Host release binary (stripped) when no arm64 build was found.
    pub binary_bytes: Option<u64>,
    pub zip_bytes: Option<u64>,
    pub rss_kb_peak: Option<u64>,
    /// Resident set after the 100th and after the last warm invocation.
    pub rss_kb_at_100: Option<u64>,
    pub rss_kb_at_end: Option<u64>,
    pub warm_invocations: usize,
    /// What the replayed event got back (HTTP status, `ok`, `N failed`, `error`), and how often.
    pub outcomes: BTreeMap<String, u64>,
    pub sample: String,
}

#[derive(Debug, Default, Serialize)]
pub struct CheckoutFigures {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// AWS API calls of one checkout, every function of the chain included.
    pub aws_calls: u64,
    pub aws_calls_by_operation: Counts,
    /// Lambda invocations of one checkout (authorizer and internal routes included).
    pub lambda_invocations: u64,
    pub runs: usize,
}

/// Milliseconds, sorted, with nearest-rank percentiles.
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn new(durations: &[Duration]) -> Self {
        let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Self(ms)
    }

    /// The `q` quantile (0 < q <= 1) by nearest rank; 0 without samples.
    pub fn percentile(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = (q * self.0.len() as f64).ceil() as usize;
        round(self.0[rank.clamp(1, self.0.len()) - 1])
    }
}

/// Two decimals are plenty for milliseconds.
pub fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map(|b| format!("{:.2}", b as f64 / 1048576.0)).unwrap_or_else(|| "–".into())
}

fn kb_as_mb(kb: Option<u64>) -> String {
    kb.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "–".into())
}

impl Report {
    /// The figures as Markdown, goals marked where missed.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let b = &self.baseline;
        let _ = writeln!(
            out,
            "Baseline (`infra/bench/baseline`): init p50 {} ms, p95 {} ms; warm p50 {} ms; zip {} MB; RSS {} MB\n",
            b.init_ms_p50,
            b.init_ms_p95,
            b.warm_ms_p50,
            mb(b.zip_bytes),
            kb_as_mb(b.rss_kb_peak)
        );
        out.push_str(
            "| function | init p50 ms | init p95 ms | × baseline | first p50 ms | warm p50 ms | warm p99 ms | arm64 binary MB | zip MB | peak RSS MB | RSS growth 100→end KB | replayed sample → answers |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (name, f) in &self.functions {
            let flag = |missed: bool| if missed { " ⚠" } else { "" };
            let growth = match (f.rss_kb_at_100, f.rss_kb_at_end) {
                (Some(a), Some(b)) => {
                    let kb = b as i64 - a as i64;
                    format!("{kb}{}", flag(kb > RSS_GROWTH_KB_LIMIT))
                }
                _ => "–".into(),
            };
            let answers: Vec<String> = f.outcomes.iter().map(|(what, n)| format!("{what} ×{n}")).collect();
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {:.2}{} | {} | {} | {} | {} | {}{} | {}{} | {growth} | `{}` → {} |",
                f.init_ms_p50,
                f.init_ms_p95,
                f.init_ratio,
                flag(f.init_ratio > INIT_RATIO_GOAL),
                f.first_ms_p50,
                f.warm_ms_p50,
                f.warm_ms_p99,
                mb(f.binary_bytes),
                mb(f.zip_bytes),
                flag(f.zip_bytes.is_some_and(|z| z > ZIP_BYTES_GOAL)),
                kb_as_mb(f.rss_kb_peak),
                flag(f.rss_kb_peak.is_some_and(|r| r > RSS_KB_GOAL)),
                f.sample,
                answers.join(", "),
            );
        }
        out.push_str("\n| checkout | p50 ms | p95 ms | p99 ms | AWS calls | Lambda invocations | runs |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        let mut sizes: Vec<_> = self.checkout.iter().collect();
        sizes.sort_by_key(|(lines, _)| lines.trim_start_matches("lines_").parse::<usize>().unwrap_or(0));
        for (lines, c) in sizes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                lines.replace('_', " "),
                c.p50_ms,
                c.p95_ms,
                c.p99_ms,
                c.aws_calls,
                c.lambda_invocations,
                c.runs
            );
        }
        if let (Some(p50), Some(p95)) = (self.paid_after_ms_p50, self.paid_after_ms_p95) {
            let _ =
                writeln!(out, "\nCheckout → order `paid` with every notification stored: p50 {p50} ms, p95 {p95} ms");
        }
        let reaching: Vec<String> = self
            .init_connections
            .iter()
            .filter(|(_, found)| !matches!(found, Ok(0)))
            .map(|(name, found)| match found {
                Ok(n) => format!("{name} (opens {n} connections)"),
                Err(e) => format!("{name} (init fails without it: {e})"),
            })
            .collect();
        let _ = writeln!(
            out,
            "\nInit without the network (every URL pointed at a listener that answers nothing): {} of {} functions{}",
            self.init_connections.len() - reaching.len(),
            self.init_connections.len(),
            if reaching.is_empty() { String::new() } else { format!("; ⚠ not: {}", reaching.join(", ")) }
        );
        if let Some(cost) = &self.cost {
            cost.table(&mut out);
        }
        if let Some(model) = &self.memory_model {
            model.table(&mut out);
        }
        out
    }
}

impl MemoryModel {
    fn table(&self, out: &mut String) {
        let _ = writeln!(out, "\n### Under Lambda's CPU share by memory size\n\n{}.", self.assumptions);
        if let Some(reason) = &self.unavailable {
            let _ = writeln!(out, "\nNot measured: {reason}");
            return;
        }
        let _ = writeln!(
            out,
            "CFS period {} µs; {} cold starts and {} warm invocations per function and size.\n",
            self.cfs_period_us, self.cold_runs, self.warm_invocations
        );
        out.push_str(
            "| function | MB | init p50 ms | × baseline | first p50 ms | warm p50 ms | warm p99 ms | peak RSS MB |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (name, sizes) in &self.functions {
            for (mb, f) in sizes {
                let _ = writeln!(
                    out,
                    "| {name} | {mb} | {} | {:.2} | {} | {} | {} | {} |",
                    f.init_ms_p50,
                    f.init_ratio,
                    f.first_ms_p50,
                    f.warm_ms_p50,
                    f.warm_ms_p99,
                    kb_as_mb(f.rss_kb_peak)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(first: f64, p50: f64, p99: f64) -> FunctionFigures {
        FunctionFigures { first_ms_p50: first, warm_ms_p50: p50, warm_ms_p99: p99, ..FunctionFigures::default() }
    }

    #[test]
    fn a_waited_for_function_gets_the_smallest_size_where_more_cpu_stops_helping() {
        // Argon2: CPU-bound up to 1,024 MB.
        let hashing = BTreeMap::from([
            (128, at(1600.0, 550.0, 800.0)),
            (256, at(600.0, 300.0, 470.0)),
            (512, at(400.0, 160.0, 250.0)),
            (1024, at(170.0, 100.0, 150.0)),
        ]);
        assert_eq!(choose(&hashing, true), Some(1024));
        // A quick function whose p99 at 128 MB waits out the quota: 256.
        let quick = BTreeMap::from([(128, at(0.8, 0.6, 70.0)), (256, at(0.7, 0.6, 0.8)), (1024, at(0.8, 0.6, 0.7))]);
        assert_eq!(choose(&quick, true), Some(256));
        // Waiting on the emulator at every size (noise between sizes): the smallest.
        let flat =
            BTreeMap::from([(128, at(33.0, 29.0, 35.0)), (256, at(26.0, 30.0, 41.0)), (1024, at(23.0, 24.0, 28.0))]);
        assert_eq!(choose(&flat, true), Some(128));
    }

    #[test]
    fn a_function_nobody_waits_for_gets_the_cheapest_size() {
        // CPU-bound: twice the memory, half the time, the same cost: the smaller.
        let bound = BTreeMap::from([(128, at(0.0, 80.0, 0.0)), (256, at(0.0, 40.0, 0.0))]);
        assert_eq!(choose(&bound, false), Some(128));
        // Waiting on I/O: more memory only costs more.
        let waiting = BTreeMap::from([(128, at(0.0, 12.0, 0.0)), (1024, at(0.0, 10.0, 0.0))]);
        assert_eq!(choose(&waiting, false), Some(128));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples = Samples::new(&(1..=100).map(Duration::from_millis).collect::<Vec<_>>());
        assert_eq!(samples.percentile(0.5), 50.0);
        assert_eq!(samples.percentile(0.95), 95.0);
        assert_eq!(samples.percentile(0.99), 99.0);
        assert_eq!(samples.percentile(1.0), 100.0);
        let one = Samples::new(&[Duration::from_micros(1500)]);
        assert_eq!(one.percentile(0.5), 1.5);
        assert_eq!(Samples::new(&[]).percentile(0.5), 0.0);
    }
}

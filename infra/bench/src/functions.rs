//! Per function, under a Runtime API of its own (one instance at a time, as one Lambda
//! sandbox): cold starts (init, then the first invocation), warm latency, and memory after
//! many warm invocations. Each function replays its sample from `events/`, with the sample's
//! ids replaced by the benchmark shop's so that the calls reach real items.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Bytes;
use devstack::functions::FunctionSpec;
use devstack::runtime::{InvokeError, Runtime};
use serde_json::Value;

use crate::report::{FunctionFigures, Samples};

/// The sample each queue consumer replays (its queue receives several event types; this is the
/// one that does the most work).
const CONSUMER_SAMPLES: &[(&str, &str)] = &[
    ("SettlePaymentsFunction", "sqs-order-created.json"),
    ("ApplyPaymentsFunction", "sqs-payment-completed.json"),
    ("SettleReservationsFunction", "sqs-order-created.json"),
    ("CartEventsFunction", "sqs-order-completed.json"),
    ("NotifyFunction", "sqs-order-created.json"),
    ("LearnFunction", "sqs-order-completed.json"),
    ("SuppressFunction", "ses-feedback-bounce.json"),
];

/// The register sample's address; replaced by a new one per invocation, so that every
/// registration is a real one (hash, transaction, event), not a 409.
const SAMPLE_NEW_EMAIL: &str = "Ada@Example.com";

/// What to replay: a sample (ids already substituted) or a schedule tick.
#[derive(Clone)]
pub enum Event {
    Sample { file: String, text: String },
    Schedule { region: String, account_id: String, function: String },
}

impl Event {
    pub fn label(&self) -> String {
        match self {
            Event::Sample { file, .. } => file.clone(),
            Event::Schedule { .. } => "scheduled event".into(),
        }
    }

    /// One invocation's payload: a fresh address for registrations, a fresh event id for
    /// every SQS record (consumers de-duplicate on it).
    pub fn payload(&self) -> Result<Bytes> {
        let text = match self {
            Event::Schedule { region, account_id, function } => {
                return Ok(devstack::serve::schedule_event(region, account_id, function));
            }
            // A registration also from a new client address: registrations are throttled per
            // address (10 in 15 minutes by default), and the bench measures registering.
            Event::Sample { text, .. } if text.contains(SAMPLE_NEW_EMAIL) => text
                .replace(SAMPLE_NEW_EMAIL, &format!("bench.{}@example.com", fresh_id()))
                .replace(SAMPLE_SOURCE_IP, &fresh_address()),
            Event::Sample { text, .. } => text.clone(),
        };
        if !text.contains("\"Records\"") {
            return Ok(Bytes::from(text));
        }
        let mut event: Value = serde_json::from_str(&text)?;
        for record in event["Records"].as_array_mut().into_iter().flatten() {
            let mut envelope: Value = serde_json::from_str(record["body"].as_str().unwrap_or("{}"))?;
            envelope["id"] = Value::String(ulid::Ulid::generate().to_string());
            record["body"] = Value::String(envelope.to_string());
        }
        Ok(Bytes::from(event.to_string()))
    }
}

/// The samples' client address (`requestContext.http.sourceIp`).
const SAMPLE_SOURCE_IP: &str = "\"sourceIp\": \"127.0.0.1\"";

/// Another client address each call (10.0.0.1, 10.0.0.2, ...).
fn fresh_address() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0x0a00_0001);
    let address = std::net::Ipv4Addr::from(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    format!("\"sourceIp\": \"{address}\"")
}

fn fresh_id() -> String {
    ulid::Ulid::generate().to_string().to_lowercase()
}

/// Finds each function's sample in `events/`.
pub struct Catalogue {
    dir: PathBuf,
    /// `METHOD /path` -> sample file, from each HTTP sample's `routeKey`.
    by_route: HashMap<String, String>,
    authorizers: HashSet<String>,
    region: String,
    account_id: String,
    /// Sample id -> the benchmark shop's id.
    ids: Vec<(String, String)>,
}

impl Catalogue {
    pub fn load(
        dir: &Path,
        authorizers: HashSet<String>,
        (region, account_id): (&str, &str),
        ids: Vec<(String, String)>,
    ) -> Result<Self> {
        let mut by_route = HashMap::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if !name.starts_with("http-") {
                continue;
            }
            let sample: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            if let Some(key) = sample["routeKey"].as_str() {
                by_route.insert(key.to_owned(), name);
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            by_route,
            authorizers,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            ids,
        })
    }

    pub fn event_for(&self, spec: &FunctionSpec) -> Result<Event> {
        let file = if self.authorizers.contains(&spec.name) {
            "authorizer-request.json".to_owned()
        } else if let Some(route) = spec.routes.first() {
            let key = route.key();
            self.by_route.get(&key).cloned().ok_or_else(|| anyhow!("{}: no sample in events/ for {key}", spec.name))?
        } else if !spec.queues.is_empty() {
            let found = CONSUMER_SAMPLES.iter().find(|(name, _)| *name == spec.name);
            found
                .map(|(_, file)| (*file).to_owned())
                .ok_or_else(|| anyhow!("{}: add its sample to CONSUMER_SAMPLES", spec.name))?
        } else if !spec.schedules.is_empty() {
            return Ok(Event::Schedule {
                region: self.region.clone(),
                account_id: self.account_id.clone(),
                function: spec.name.clone(),
            });
        } else {
            bail!("{}: no route, queue or schedule to take a sample from", spec.name)
        };
        let mut text = std::fs::read_to_string(self.dir.join(&file)).with_context(|| format!("reading {file}"))?;
        for (sample, ours) in &self.ids {
            text = text.replace(sample, ours);
        }
        Ok(Event::Sample { file, text })
    }
}

pub struct Options {
    pub cold_runs: usize,
    pub warm_invocations: usize,
    /// Warm invocations stop early (after at least 100) once they have taken this long, so
    /// that one slow function (on the emulator) cannot hold the whole run up.
    pub warm_budget: Duration,
}

/// Cold starts, then warm invocations on the last instance, of one function; with `baseline`
/// (its name and event, in the same runtime), each cold start follows one of the baseline's,
/// and `init_ratio` is over those.
pub async fn measure(
    runtime: &Runtime,
    name: &str,
    event: &Event,
    options: &Options,
    baseline: Option<(&str, &Event)>,
) -> Result<FunctionFigures> {
    let mut outcomes = BTreeMap::new();
    let (mut inits, mut firsts, mut baseline_inits) = (Vec::new(), Vec::new(), Vec::new());
    // One cold start not counted: the first run of a binary reads it from disk into the page
    // cache, which a Lambda sandbox does not do again for each instance either.
    runtime.stop_idle(name);
    let _ = runtime.invoke(name, event.payload()?).await;
    for _ in 0..options.cold_runs {
        if let Some((baseline, its_event)) = baseline {
            runtime.stop_idle(baseline);
            if let Ok(invocation) = runtime.invoke(baseline, its_event.payload()?).await {
                baseline_inits.extend(invocation.init);
            }
            runtime.stop_idle(baseline);
        }
        runtime.stop_idle(name);
        let result = runtime.invoke(name, event.payload()?).await;
        if let Ok(invocation) = &result {
            inits.extend(invocation.init);
            firsts.push(invocation.duration);
        }
        *outcomes.entry(outcome(&result)).or_default() += 1;
    }
    if inits.is_empty() {
        bail!("{name}: no cold start succeeded: {outcomes:?}");
    }

    let mut warm = Vec::with_capacity(options.warm_invocations);
    let mut rss_at_100 = None;
    let started = std::time::Instant::now();
    for i in 1..=options.warm_invocations {
        if i > 100 && started.elapsed() > options.warm_budget {
            break;
        }
        let result = runtime.invoke(name, event.payload()?).await;
        if let Ok(invocation) = &result
            && invocation.init.is_none()
        {
            warm.push(invocation.duration);
        }
        *outcomes.entry(outcome(&result)).or_default() += 1;
        if i == 100 {
            rss_at_100 = memory(runtime, name).map(|m| m.rss_kb);
        }
    }
    let end = memory(runtime, name);
    runtime.stop_idle(name);

    let warm_invocations = warm.len();
    let (inits, firsts, warm) = (Samples::new(&inits), Samples::new(&firsts), Samples::new(&warm));
    let baseline_init_ms_p50 = (!baseline_inits.is_empty()).then(|| Samples::new(&baseline_inits).percentile(0.5));
    Ok(FunctionFigures {
        init_ratio: baseline_init_ms_p50.map_or(0.0, |b| ratio(inits.percentile(0.5), b)),
        baseline_init_ms_p50,
        init_ms_p50: inits.percentile(0.5),
        init_ms_p95: inits.percentile(0.95),
        first_ms_p50: firsts.percentile(0.5),
        warm_ms_p50: warm.percentile(0.5),
        warm_ms_p99: warm.percentile(0.99),
        rss_kb_peak: end.map(|m| m.peak_kb),
        rss_kb_at_100: rss_at_100,
        rss_kb_at_end: end.map(|m| m.rss_kb),
        warm_invocations,
        outcomes,
        sample: event.label(),
        ..FunctionFigures::default()
    })
}

/// What each function's init reaches over the network: the connections it opens between its
/// start and its first `/next`, with every URL of its environment (the AWS endpoint, the API,
/// Stripe) pointing at a listener that counts connections and answers none. `Err` when the
/// init failed.
pub async fn init_connections(
    specs: &[FunctionSpec],
    bin_dir: &Path,
    arn_prefix: &str,
) -> Result<BTreeMap<String, Result<u64, String>>> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let connections = Arc::new(AtomicU64::new(0));
    let counting = connections.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counting.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let specs: Vec<FunctionSpec> = specs
        .iter()
        .cloned()
        .map(|mut spec| {
            for value in spec.environment.values_mut() {
                if value.starts_with("http://") || value.starts_with("https://") {
                    value.clone_from(&url);
                }
            }
            spec
        })
        .collect();
    let runtime = Runtime::new(specs.clone(), bin_dir.to_owned(), arn_prefix, 1);
    let mut found = BTreeMap::new();
    for spec in &specs {
        let before = connections.load(Ordering::SeqCst);
        let init = runtime.initialize(&spec.name).await;
        let opened = connections.load(Ordering::SeqCst) - before;
        runtime.stop_idle(&spec.name);
        found.insert(spec.name.clone(), init.map(|_| opened).map_err(|e| e.to_string()));
    }
    runtime.stop().await;
    accepting.abort();
    Ok(found)
}

/// How an invocation ended, in a word: the HTTP status, `ok`, `N failed` (SQS records) or the error.
fn outcome(result: &Result<devstack::runtime::Invocation, InvokeError>) -> String {
    let invocation = match result {
        Ok(invocation) => invocation,
        Err(InvokeError::Function { error_type, .. }) => return format!("function error {error_type}"),
        Err(error) => return format!("{}", error).chars().take(60).collect(),
    };
    let answer: Value = serde_json::from_slice(&invocation.payload).unwrap_or_default();
    if let Some(status) = answer["statusCode"].as_u64() {
        return status.to_string();
    }
    match answer["batchItemFailures"].as_array() {
        Some(failed) if !failed.is_empty() => format!("{} of batch failed", failed.len()),
        _ => "ok".into(),
    }
}

#[derive(Clone, Copy)]
struct Memory {
    rss_kb: u64,
    peak_kb: u64,
}

/// Resident and peak resident set of the function's (one) idle instance, from /proc (Linux).
fn memory(runtime: &Runtime, name: &str) -> Option<Memory> {
    let pid = *runtime.idle_pids(name).first()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Memory { rss_kb: field("VmRSS:")?, peak_kb: field("VmHWM:")? })
}

/// The stripped arm64 binary and its deployment zip, where `cargo lambda build --release --arm64
/// --output-format zip` leaves them (`TARGET/aarch64-unknown-linux-gnu/release/BINARY`,
/// `TARGET/lambda/BINARY/bootstrap.zip`).
pub fn sizes(target: &Path, binary: &str) -> (Option<u64>, Option<u64>) {
    let size = |path: PathBuf| std::fs::metadata(path).ok().map(|m| m.len());
    (
        size(target.join("aarch64-unknown-linux-gnu/release").join(binary)),
        size(target.join("lambda").join(binary).join("bootstrap.zip")),
    )
}

/// The cold-start comparison: init p50 over the baseline's init p50.
pub fn ratio(init_ms: f64, baseline_ms: f64) -> f64 {
    if baseline_ms > 0.0 { crate::report::round(init_ms / baseline_ms) } else { 0.0 }
}

/// A function's figures in one line, for progress output.
pub fn describe(figures: &FunctionFigures) -> String {
    format!(
        "init p50 {:.2} ms p95 {:.2} ms, first {:.2} ms, warm p50 {:.2} ms p99 {:.2} ms, rss {} kB, {:?}",
        figures.init_ms_p50,
        figures.init_ms_p95,
        figures.first_ms_p50,
        figures.warm_ms_p50,
        figures.warm_ms_p99,
        figures.rss_kb_peak.unwrap_or_default(),
        figures.outcomes
    )
}

/// How long a step took, for progress lines.
pub fn seconds(elapsed: Duration) -> String {
    format!("{:.1} s", elapsed.as_secs_f64())
}

//! `make bench`: every function of template.yaml (and a bare `lambda_runtime` baseline) under
//! devstack's Runtime API, plus checkout through the local stack, against the emulator at
//! AWS_ENDPOINT_URL. Writes `report.json` and `report.md` into `--out`.
//!
//! The functions run from host release builds (`--bin-dir`); sizes come from the arm64 build
//! that `cargo lambda build --release --arm64 --output-format zip` leaves in the target dir.

mod functions;
mod report;
mod system;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use devstack::runtime::Runtime;
use devstack::serve::{self, LocalStack};
use system_tests::shop::ShopClient;

use crate::functions::{Catalogue, describe, seconds};
use crate::report::Report;

#[derive(Parser)]
#[command(about = "Cold start, latency, size and memory of every function; checkout through the local stack")]
struct Cli {
    /// Host release binaries (default: the release dir beside devstack's debug dir).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Cargo's target dir, where `cargo lambda build --arm64 --output-format zip` put the
    /// arm64 binaries and `lambda/BINARY/bootstrap.zip` (default: the one devstack uses).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Where report.json and report.md go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Cold starts per function.
    #[arg(long, default_value_t = 20)]
    cold_runs: usize,
    /// Warm invocations per function (memory is read after the 100th and the last).
    #[arg(long, default_value_t = 1000)]
    warm: usize,
    /// Seconds of warm invocations per function at most (at least 100 are made).
    #[arg(long, default_value_t = 60)]
    warm_budget_s: u64,
    /// Timed checkouts per cart size.
    #[arg(long, default_value_t = 40)]
    checkouts: usize,
    /// Checkouts followed until paid.
    #[arg(long, default_value_t = 20)]
    paid_runs: usize,
    /// Only these functions (logical ids); all by default.
    #[arg(long)]
    only: Vec<String>,
    /// The SAM template (default: the repository's template.yaml).
    #[arg(long)]
    template: Option<PathBuf>,
}

const BASELINE: &str = "Baseline";
const BASELINE_BINARY: &str = "bench_baseline";

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let started = Instant::now();
    let target = cli
        .target_dir
        .clone()
        .unwrap_or_else(|| devstack::runtime::default_bin_dir().parent().map(PathBuf::from).unwrap_or_default());
    let bin_dir = cli.bin_dir.clone().unwrap_or_else(|| target.join("release"));

    // Every AWS call of the functions goes through the counting proxy.
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let emulator = config.endpoint_url().ok_or_else(|| anyhow!("set AWS_ENDPOINT_URL to the emulator"))?.to_owned();
    let proxy = devstack::proxy::AwsProxy::start(&emulator).await?;
    let config = config.into_builder().endpoint_url(&proxy.url).build();

    let stack_name = format!("bench-{}", ulid::Ulid::generate().to_string().to_lowercase());
    let mut options = serve::default_options(&stack_name, HashMap::new());
    options.bin_dir = bin_dir.clone();
    if let Some(template) = &cli.template {
        options.template = template.clone();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_url = serve::api_url(listener.local_addr()?);
    let local = LocalStack::prepare(&options, &config, &api_url)
        .await
        .with_context(|| format!("preparing the stack from {} (built with `--release`?)", bin_dir.display()))?;
    let service = local.gateway.clone().service();
    tokio::spawn(async move { axum::serve(listener, service).await });
    println!("bench: stack {stack_name} at {api_url}, binaries from {}", bin_dir.display());

    let mut shop = ShopClient::new(&api_url);
    shop.poll_every = std::time::Duration::from_millis(5);
    // The seller's profile is made from `user.registered` by a queue consumer before the admin
    // approves it: the consumers run for that, and only that.
    let event_sources = local.start_event_sources(&config);
    let seller = shop.register("seller").await;
    for task in event_sources {
        task.abort();
    }
    let setup = system::Setup::create(&shop, seller).await?;
    let mut report = Report::default();

    println!("bench: checkout ({} runs per cart size)", cli.checkouts);
    let mut checkout = system::checkout_costs(&shop, &setup, &local.runtime, &proxy).await?;
    let event_sources = local.start_event_sources(&config);
    let paid = system::paid_after(&shop, &setup, cli.paid_runs).await?;
    report.paid_after_ms_p50 = Some(paid.percentile(0.5));
    report.paid_after_ms_p95 = Some(paid.percentile(0.95));
    println!("  paid after: p50 {} ms, p95 {} ms", paid.percentile(0.5), paid.percentile(0.95));
    for task in event_sources {
        task.abort();
    }
    // What the customer waits for: the synchronous chain, with the queue consumers paused. On
    // AWS they run beside it without slowing it; on the emulator (one Python process) they
    // would (AI Buddy alone writes n² co-purchase counters per order of n lines).
    system::checkout_latency(&shop, &setup, cli.checkouts, &mut checkout).await?;
    report.checkout = checkout.into_iter().map(|(lines, figures)| (format!("lines_{lines}"), figures)).collect();

    // Functions one by one, each in instances of its own (the stack's still serve the
    // internal routes they call); the baseline first.
    let mut specs: Vec<_> = local.functions.clone();
    if !cli.only.is_empty() {
        specs.retain(|spec| cli.only.contains(&spec.name));
    }
    let health = local.functions.iter().find(|f| f.name == "HealthFunction").context("HealthFunction")?;
    let mut baseline = health.clone();
    baseline.name = BASELINE.into();
    baseline.binary = BASELINE_BINARY.into();
    specs.insert(0, baseline);
    let arn_prefix = format!("arn:aws:lambda:{}:{}:function:", local.stack.region, local.stack.account_id);
    let runtime = Runtime::new(specs.clone(), bin_dir.clone(), &arn_prefix, 1);
    devstack::runtime::check_binaries(&runtime, &bin_dir)?;
    let template = devstack::template::Template::load(&options.template)?;
    let authorizers: HashSet<_> =
        devstack::functions::http_api_auth(&template)?.0.into_iter().map(|a| a.function).collect();
    let catalogue = Catalogue::load(
        &devstack::repo_root().join("events"),
        authorizers,
        (&local.stack.region, &local.stack.account_id),
        setup.sample_ids(),
    )?;
    let measure_options = functions::Options {
        cold_runs: cli.cold_runs,
        warm_invocations: cli.warm,
        warm_budget: std::time::Duration::from_secs(cli.warm_budget_s),
    };
    println!("bench: {} functions, {} cold starts and {} warm invocations each", specs.len(), cli.cold_runs, cli.warm);
    for spec in &specs {
        let step = Instant::now();
        let event = if spec.name == BASELINE { catalogue.event_for(health)? } else { catalogue.event_for(spec)? };
        let mut figures = functions::measure(&runtime, &spec.name, &event, &measure_options).await?;
        (figures.binary_bytes, figures.zip_bytes) = functions::sizes(&target, &spec.binary);
        println!("  {:<28} {} ({})", spec.name, describe(&figures), seconds(step.elapsed()));
        if spec.name == BASELINE {
            figures.init_ratio = 1.0;
            report.baseline = figures;
        } else {
            figures.init_ratio = functions::ratio(figures.init_ms_p50, report.baseline.init_ms_p50);
            report.functions.insert(spec.name.clone(), figures);
        }
    }
    runtime.stop().await;
    local.runtime.stop().await;

    report.method = [
        ("host", host()),
        (
            "binaries",
            format!("{} (host, release profile); sizes of the arm64 build in {}", bin_dir.display(), target.display()),
        ),
        ("cold_runs", cli.cold_runs.to_string()),
        ("warm_invocations", cli.warm.to_string()),
        ("checkouts_per_size", cli.checkouts.to_string()),
        ("paid_runs", cli.paid_runs.to_string()),
        ("emulator", emulator),
        ("duration_s", format!("{:.0}", started.elapsed().as_secs_f64())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    std::fs::create_dir_all(&cli.out)?;
    std::fs::write(cli.out.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    let table = report.table();
    std::fs::write(cli.out.join("report.md"), &table)?;
    println!("\n{table}\nbench: wrote {} ({})", cli.out.join("report.json").display(), seconds(started.elapsed()));
    Ok(())
}

/// CPU model and count, so that figures from different machines are not compared blindly.
fn host() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cpu}, {cores} cores, {}", std::env::consts::ARCH)
}

//! `make bench`: every function of template.yaml (and a bare `lambda_runtime` baseline) under
//! devstack's Runtime API, plus checkout through the local stack, against the emulator at
//! AWS_ENDPOINT_URL. Writes `report.json` and `report.md` into `--out`.
//!
//! The functions run from host release builds (`--bin-dir`); sizes come from the arm64 build
//! that `cargo lambda build --release --arm64 --output-format zip` leaves in the target dir.

mod cost;
mod cpu;
mod functions;
mod load;
mod report;
mod system;
mod tls;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use devstack::runtime::Runtime;
use devstack::serve::{self, LocalStack};
use system_tests::shop::ShopClient;

use crate::functions::{Catalogue, describe, seconds};
use crate::report::{MemoryModel, Report};

#[derive(Parser)]
#[command(about = "Cold start, latency, size and memory of every function; checkout through the local stack")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
    /// Memory sizes (MB) each function is measured at again under Lambda's CPU share of that
    /// size (a CPU quota; needs root); `--memory-sizes` with no value to skip.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_values_t = [128, 256, 512, 1024])]
    memory_sizes: Vec<u32>,
    /// Cold starts per function and memory size under the CPU share.
    #[arg(long, default_value_t = 5)]
    model_cold_runs: usize,
    /// Warm invocations per function and memory size under the CPU share.
    #[arg(long, default_value_t = 50)]
    model_warm: usize,
    /// The CFS period of the CPU share (Lambda's is not published; Linux's default).
    #[arg(long, default_value_t = 100_000)]
    cfs_period_us: u64,
    /// CPU during init under the CPU share: `burst` (unlimited until the first `/next`, as
    /// AWS's Lambda Web Adapter documents "burst CPU" for init) or `share` (limited as
    /// invocations are: the pessimistic case).
    #[arg(long, value_enum, default_value_t = InitCpu::Burst)]
    init_cpu: InitCpu,
    /// Under the CPU share, the functions reach the emulator over TLS, as they reach AWS
    /// (`--tls false`: plain HTTP, to see what the handshake costs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    tls: bool,
    /// With `--tls`, the functions open their table's connection in init, as on AWS
    /// (`--warm-up false`: in the first invocation, to see what that saves).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    warm_up: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum InitCpu {
    Burst,
    Share,
}

#[derive(clap::Subcommand)]
enum Command {
    /// The stack under load (`make load`): customers shopping at once, then a flash sale.
    Load(LoadArgs),
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Customers shopping at once.
    #[arg(long, default_value_t = 20)]
    customers: usize,
    /// How long they shop.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Buyers of the flash sale, all checking out at once.
    #[arg(long, default_value_t = 500)]
    buyers: usize,
    /// Units of the flash sale's product.
    #[arg(long, default_value_t = 50)]
    units: u32,
    /// Items the flash sale product's stock is spread over (docs/capacity.md).
    #[arg(long, default_value_t = 16)]
    shards: u32,
}

const BASELINE: &str = "Baseline";
const BASELINE_BINARY: &str = "bench_baseline";

/// The local stack the benchmark runs against, serving at `api_url`.
struct Running {
    local: LocalStack,
    api_url: String,
    /// Every AWS call of the functions goes through it: it counts them.
    proxy: devstack::proxy::AwsProxy,
    /// The emulator through the proxy, and directly (the bench's own looks are not counted).
    config: aws_config::SdkConfig,
    direct: aws_config::SdkConfig,
    emulator: String,
    bin_dir: PathBuf,
    target: PathBuf,
    template: PathBuf,
}

/// Provisions a new stack with `parameters` from the release binaries and serves it.
async fn start(cli: &Cli, prefix: &str, parameters: HashMap<String, String>) -> Result<Running> {
    let target = cli
        .target_dir
        .clone()
        .unwrap_or_else(|| devstack::runtime::default_bin_dir().parent().map(PathBuf::from).unwrap_or_default());
    let bin_dir = cli.bin_dir.clone().unwrap_or_else(|| target.join("release"));
    let direct = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let emulator = direct.endpoint_url().ok_or_else(|| anyhow!("set AWS_ENDPOINT_URL to the emulator"))?.to_owned();
    let proxy = devstack::proxy::AwsProxy::start(&emulator).await?;
    let config = direct.clone().into_builder().endpoint_url(&proxy.url).build();

    let stack_name = format!("{prefix}-{}", ulid::Ulid::generate().to_string().to_lowercase());
    let mut options = serve::default_options(&stack_name, parameters);
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
    Ok(Running { local, api_url, proxy, config, direct, emulator, bin_dir, target, template: options.template })
}

/// An approved seller (its profile is made from `user.registered` by a queue consumer before
/// the admin approves it: the consumers run for that, and only that).
async fn seller(shop: &ShopClient, running: &Running) -> system_tests::shop::User {
    let event_sources = running.local.start_event_sources(&running.config);
    let seller = shop.register("seller").await;
    for task in event_sources {
        task.abort();
    }
    seller
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Load(load)) => run_load(&cli, load).await,
        None => run_bench(&cli).await,
    }
}

/// `make load`: writes `load.json` and `load.md` into `--out`; fails if anything was lost, a
/// request got a 5xx, or the flash sale sold more or fewer than its units.
async fn run_load(cli: &Cli, args: &LoadArgs) -> Result<()> {
    // The flash sale's buyers all arrive at once: more than the template's route burst (200),
    // which on AWS is raised for such a sale (docs/capacity.md). The limit is API Gateway's,
    // tested elsewhere; here the stack behind it is measured.
    let burst = (args.buyers.max(args.customers) * 2).to_string();
    let parameters = HashMap::from([
        ("ApiThrottlingBurstLimit".to_owned(), burst.clone()),
        ("ApiThrottlingRateLimit".to_owned(), burst),
    ]);
    let running = start(cli, "load", parameters).await?;
    let shop = ShopClient::new(&running.api_url);
    let seller = seller(&shop, &running).await;
    let event_sources = running.local.start_event_sources(&running.config);

    let products: Vec<String> =
        futures_util::future::join_all((0..20).map(|i| shop.product(&seller, 1000 + i, 1_000_000))).await;
    let customers = load::customers(&shop, args.customers).await;
    println!("bench: {} customers shopping for {} s", args.customers, args.seconds);
    let shopping = load::shopping(&shop, &products, &customers, Duration::from_secs(args.seconds)).await?;
    println!("{}", shopping.table());

    let product = shop.product(&seller, 4900, args.units).await;
    if args.shards > 1 {
        shop.shard_stock(&seller, &product, args.shards).await;
    }
    println!("bench: {} buyers for {} units over {} shards", args.buyers, args.units, args.shards);
    let buyers = load::customers(&shop, args.buyers).await;
    futures_util::future::join_all(buyers.iter().map(|b| shop.put_in_cart(b, &product, 1))).await;
    let sale = load::flash_sale(&shop, &product, args.units, args.shards, &buyers).await?;
    println!("{}", sale.table());
    for task in event_sources {
        task.abort();
    }
    running.local.runtime.stop().await;

    std::fs::create_dir_all(&cli.out)?;
    let report = serde_json::json!({"shopping": shopping, "flash_sale": sale, "host": host()});
    std::fs::write(cli.out.join("load.json"), serde_json::to_string_pretty(&report)?)?;
    std::fs::write(cli.out.join("load.md"), format!("{}\n{}", shopping.table(), sale.table()))?;
    println!("bench: wrote {}", cli.out.join("load.json").display());
    if shopping.server_errors > 0 || !shopping.lost.is_empty() {
        bail!("under load: {} × 5xx or no answer, lost: {:?}", shopping.server_errors, shopping.lost);
    }
    sale.check()
}

async fn run_bench(cli: &Cli) -> Result<()> {
    let started = Instant::now();
    let running = start(cli, "bench", HashMap::new()).await?;
    let Running { local, api_url, proxy, config, direct, emulator, bin_dir, target, template } = &running;
    let mut shop = ShopClient::new(api_url);
    shop.poll_every = std::time::Duration::from_millis(5);
    let seller = seller(&shop, &running).await;
    let setup = system::Setup::create(&shop, seller).await?;
    let mut report = Report::default();

    println!("bench: checkout ({} runs per cart size)", cli.checkouts);
    let mut checkout = system::checkout_costs(&shop, &setup, &local.runtime, proxy).await?;
    let event_sources = local.start_event_sources(config);
    let paid = system::paid_after(&shop, &setup, cli.paid_runs).await?;
    report.paid_after_ms_p50 = Some(paid.percentile(0.5));
    report.paid_after_ms_p95 = Some(paid.percentile(0.95));
    println!("  paid after: p50 {} ms, p95 {} ms", paid.percentile(0.5), paid.percentile(0.95));
    let one_order = order_counts(&shop, &setup, local, direct, proxy).await?;
    println!(
        "  one order's life: {} invocations, {} AWS calls",
        one_order.invocations.values().sum::<u64>(),
        one_order.aws_calls.values().sum::<u64>()
    );
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
    devstack::runtime::check_binaries(&runtime, bin_dir)?;
    let template = devstack::template::Template::load(template)?;
    let authorizers: HashSet<_> =
        devstack::functions::http_api_auth(&template)?.0.into_iter().map(|a| a.function).collect();
    let catalogue = Catalogue::load(
        &devstack::repo_root().join("events"),
        authorizers.clone(),
        (&local.stack.region, &local.stack.account_id),
        setup.sample_ids(),
    )?;
    let baseline_event = catalogue.event_for(health)?;
    let measure_options = functions::Options {
        cold_runs: cli.cold_runs,
        warm_invocations: cli.warm,
        warm_budget: std::time::Duration::from_secs(cli.warm_budget_s),
    };
    let offline = functions::init_connections(&specs, bin_dir, &arn_prefix).await?;
    let reaching: Vec<String> = offline
        .iter()
        .filter(|(_, found)| !matches!(found, Ok(0)))
        .map(|(name, found)| format!("{name} ({found:?})"))
        .collect();
    println!(
        "bench: init without the network: {} of {} functions; not: {reaching:?}",
        offline.len() - reaching.len(),
        offline.len()
    );
    report.init_connections = offline;
    println!("bench: {} functions, {} cold starts and {} warm invocations each", specs.len(), cli.cold_runs, cli.warm);
    for spec in &specs {
        let step = Instant::now();
        let mut figures = measure(&runtime, spec, &catalogue, &baseline_event, &measure_options).await?;
        (figures.binary_bytes, figures.zip_bytes) = functions::sizes(target, &spec.binary);
        println!("  {:<28} {} ({})", spec.name, describe(&figures), seconds(step.elapsed()));
        if spec.name == BASELINE {
            report.baseline = figures;
        } else {
            report.functions.insert(spec.name.clone(), figures);
        }
    }
    runtime.stop().await;

    if !cli.memory_sizes.is_empty() {
        let model = ModelRun { cli, specs: &specs, bin_dir, arn_prefix: &arn_prefix, authorizers: &authorizers };
        report.memory_model = Some(model.measure(&catalogue, health).await?);
    }
    local.runtime.stop().await;

    // Each function billed at its template memory size: under that size's CPU share where
    // measured, else at full speed.
    let modelled = report.memory_model.as_ref().filter(|m| m.unavailable.is_none());
    let billed = local
        .functions
        .iter()
        .filter_map(|spec| {
            let at_size = modelled.and_then(|m| m.functions.get(&spec.name)?.get(&spec.memory_mb));
            let figures = at_size.or_else(|| report.functions.get(&spec.name))?;
            Some((spec.name.clone(), cost::Billed { memory_mb: spec.memory_mb, duration_ms: figures.warm_ms_p50 }))
        })
        .collect();
    let durations = if modelled.is_some() {
        "warm p50 of each function under the CPU share of its template memory size"
    } else {
        "warm p50 of each function at full speed (no CPU model on this machine: an underestimate)"
    };
    report.cost = Some(cost::per_thousand(one_order, &billed, durations.into()));

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
        ("emulator", emulator.clone()),
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

/// One order's life through the running stack (see [`system::order_counts`]).
async fn order_counts(
    shop: &ShopClient,
    setup: &system::Setup,
    local: &LocalStack,
    direct: &aws_config::SdkConfig,
    proxy: &devstack::proxy::AwsProxy,
) -> Result<system::OrderCounts> {
    let functions = &local.functions;
    let names = |keep: &dyn Fn(&devstack::functions::FunctionSpec) -> bool| -> HashSet<String> {
        functions.iter().filter(|f| keep(f)).map(|f| f.name.clone()).collect()
    };
    let routed = names(&|f| !f.routes.is_empty());
    let queued = names(&|f| !f.queues.is_empty());
    let scheduled_only = names(&|f| !f.schedules.is_empty() && f.routes.is_empty() && f.queues.is_empty());
    let quiet = system::Quiet {
        sqs: aws_sdk_sqs::Client::new(direct),
        queues: functions.iter().flat_map(|f| f.queues.iter().map(|q| q.queue_url.clone())).collect(),
        runtime: &local.runtime,
        counted: functions.iter().map(|f| f.name.clone()).filter(|n| !scheduled_only.contains(n)).collect(),
    };
    system::order_counts(shop, setup, &quiet, &routed, &queued, proxy).await
}

/// Every function again at each memory size, under that size's CPU share.
struct ModelRun<'a> {
    cli: &'a Cli,
    specs: &'a [devstack::functions::FunctionSpec],
    bin_dir: &'a std::path::Path,
    arn_prefix: &'a str,
    authorizers: &'a HashSet<String>,
}

impl ModelRun<'_> {
    async fn measure(&self, catalogue: &Catalogue, health: &devstack::functions::FunctionSpec) -> Result<MemoryModel> {
        let tls = match self.cli.tls {
            true => {
                let endpoint =
                    self.specs.iter().find_map(|s| s.environment.get("AWS_ENDPOINT_URL")).context("no AWS endpoint")?;
                Some(tls::TlsFront::start(endpoint, &self.cli.out.join("tls")).await?)
            }
            false => None,
        };
        let mut model = MemoryModel {
            assumptions: format!(
                "{}; init: {}; AWS endpoint: {}",
                cpu::ASSUMPTIONS,
                match self.cli.init_cpu {
                    InitCpu::Burst =>
                        "burst CPU (unlimited until the first /next), as AWS's Lambda Web Adapter documents",
                    InitCpu::Share => "the same share as invocations (pessimistic)",
                },
                match (&tls, self.cli.warm_up) {
                    (Some(_), true) =>
                        "HTTPS (a CA of the run's, trusted through SSL_CERT_FILE), the table's \
                                        connection opened in init",
                    (Some(_), false) => "HTTPS (a CA of the run's, trusted through SSL_CERT_FILE), no warm-up",
                    (None, _) => "plain HTTP",
                }
            ),
            cfs_period_us: self.cli.cfs_period_us,
            cold_runs: self.cli.model_cold_runs,
            warm_invocations: self.cli.model_warm,
            ..MemoryModel::default()
        };
        let options = functions::Options {
            cold_runs: self.cli.model_cold_runs,
            warm_invocations: self.cli.model_warm,
            warm_budget: std::time::Duration::from_secs(self.cli.warm_budget_s),
        };
        for &memory_mb in &self.cli.memory_sizes {
            let share = match cpu::CpuShare::create(memory_mb, self.cli.cfs_period_us) {
                Ok(share) => share,
                Err(e) => {
                    // Not every machine lets us set a quota (no root, no cpu controller): the
                    // report says why the table is missing rather than leaving it out silently.
                    let reason = format!("{e:#}");
                    println!("bench: no CPU model: {reason}");
                    model.unavailable = Some(reason);
                    return Ok(model);
                }
            };
            println!("bench: under the CPU share of {}", share.describe());
            let specs: Vec<_> = self
                .specs
                .iter()
                .cloned()
                .map(|mut spec| {
                    spec.memory_mb = memory_mb;
                    spec.environment.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), memory_mb.to_string());
                    if let Some(front) = &tls {
                        front.apply(&mut spec.environment);
                    }
                    if !self.cli.warm_up {
                        spec.environment.insert("WARM_UP".into(), "false".into());
                    }
                    spec
                })
                .collect();
            let confinement = match self.cli.init_cpu {
                InitCpu::Burst => devstack::runtime::Confinement::AfterInit,
                InitCpu::Share => devstack::runtime::Confinement::FromStart,
            };
            let runtime = Runtime::new(specs.clone(), self.bin_dir.to_owned(), self.arn_prefix, 1)
                .in_cgroup(&share.dir, confinement);
            let baseline_event = catalogue.event_for(health)?;
            for spec in &specs {
                let figures = measure(&runtime, spec, catalogue, &baseline_event, &options).await?;
                println!("  {:<28} {memory_mb:>4} MB: {}", spec.name, describe(&figures));
                model.functions.entry(spec.name.clone()).or_default().insert(memory_mb, figures);
            }
            runtime.stop().await;
        }
        for spec in self.specs.iter().filter(|s| s.name != BASELINE) {
            let synchronous = !spec.routes.is_empty() || self.authorizers.contains(&spec.name);
            if let Some(mb) = model.functions.get(&spec.name).and_then(|sizes| report::choose(sizes, synchronous)) {
                model.chosen_mb.insert(spec.name.clone(), mb);
            }
        }
        Ok(model)
    }
}

/// One function's figures (the baseline's own with it), its init ratio over the baseline's cold
/// starts interleaved with its own.
async fn measure(
    runtime: &Runtime,
    spec: &devstack::functions::FunctionSpec,
    catalogue: &Catalogue,
    baseline_event: &functions::Event,
    options: &functions::Options,
) -> Result<report::FunctionFigures> {
    if spec.name == BASELINE {
        let figures = functions::measure(runtime, BASELINE, baseline_event, options, None).await?;
        return Ok(report::FunctionFigures { init_ratio: 1.0, ..figures });
    }
    let event = catalogue.event_for(spec)?;
    functions::measure(runtime, &spec.name, &event, options, Some((BASELINE, baseline_event))).await
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect: the README's way to skip the CPU model (`--memory-sizes ''`) was refused.
    #[test]
    fn the_cpu_model_is_skipped_by_memory_sizes_with_no_value() {
        let cli = Cli::try_parse_from(["bench", "--memory-sizes", "--only", "HealthFunction"]).unwrap();
        assert!(cli.memory_sizes.is_empty());
        assert_eq!(cli.only, ["HealthFunction"]);
        assert_eq!(Cli::try_parse_from(["bench"]).unwrap().memory_sizes, [128, 256, 512, 1024]);
        assert_eq!(Cli::try_parse_from(["bench", "--memory-sizes", "256,1024"]).unwrap().memory_sizes, [256, 1024]);
    }
}

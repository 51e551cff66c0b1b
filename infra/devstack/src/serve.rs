//! The whole local stack from the template: provision the emulator, then serve the HTTP API,
//! run the functions under the runtime API and poll every SQS event source.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;

use crate::functions::{self, LocalEnvironment};
use crate::gateway::Gateway;
use crate::iam::{self, Iam};
use crate::pollers;
use crate::provision::{self, Options, Stack};
use crate::proxy::AwsProxy;
use crate::runtime::{self, Invocation, InvokeError, Runtime};
use crate::template::Template;
use crate::throttle::Throttle;

/// What devstack's log says before the URL of the proxy the functions' AWS calls go through.
pub const IAM_PROXY_LINE: &str = "[devstack iam] the functions reach AWS through ";

/// What devstack's log says before each grant no call used, once it stopped.
pub const UNUSED_GRANT_LINE: &str = "[devstack iam] unused grant: ";

pub struct StackOptions {
    pub template: PathBuf,
    pub stack_name: String,
    pub parameters: HashMap<String, String>,
    /// Where cargo put the function binaries.
    pub bin_dir: PathBuf,
    /// Instances per function at most.
    pub max_instances: usize,
    /// The web app's built files to serve beside the API, if built (`make web`: web/dist).
    pub web: Option<PathBuf>,
}

/// A provisioned stack with its functions ready to run.
pub struct LocalStack {
    pub stack: Stack,
    pub runtime: Runtime,
    pub gateway: Arc<Gateway>,
    pub functions: Vec<functions::FunctionSpec>,
}

impl LocalStack {
    /// Provisions the template and prepares (but does not start) every function.
    pub async fn prepare(options: &StackOptions, config: &aws_config::SdkConfig, api_url: &str) -> Result<Self> {
        let template = Template::load(&options.template)?;
        let provision_options = Options {
            stack_name: options.stack_name.clone(),
            parameters: options.parameters.clone(),
            api_url: api_url.to_owned(),
        };
        let stack = provision::provision(&template, config, &provision_options).await?;
        crate::stripe::register_webhook(&aws_sdk_secretsmanager::Client::new(config), &stack, api_url).await?;
        // The stack's one admin (docs/api.md, Auth), before any function can be called.
        if let Ok(table) = stack.reference(crate::admin::AUTH_TABLE) {
            let account = auth::admin::AdminAccount::from_env();
            let user_events = stack.reference("UserEventsTopic").ok();
            eprintln!("devstack: {}", crate::admin::ensure(config, table, user_events, &account).await?);
        }
        let local = LocalEnvironment::for_emulator(config, api_url).await?;
        let mut functions = functions::functions(&template, &stack, &local)?;
        let iam = Arc::new(Iam::from_template(&template, &stack, &local.credentials().access_key)?);
        // Every call of a function goes through the proxy that checks it against its role.
        let emulator = config.endpoint_url().context("devstack runs against an emulator: set AWS_ENDPOINT_URL")?;
        let proxy = AwsProxy::start_checked(emulator, iam.clone()).await?;
        eprintln!("{IAM_PROXY_LINE}{}", proxy.url);
        for function in &mut functions {
            function.environment.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
            function.environment.insert("AWS_ACCESS_KEY_ID".into(), iam::access_key(&function.name));
        }
        let arn_prefix = format!("arn:aws:lambda:{}:{}:function:", stack.region, stack.account_id);
        let runtime =
            Runtime::new(functions.clone(), options.bin_dir.clone(), &arn_prefix, options.max_instances).with_iam(iam);
        runtime::check_binaries(&runtime, &options.bin_dir)?;
        proxy.record_into(runtime.console().clone());
        let queues = stack
            .of_type("AWS::SQS::Queue")
            .map(|id| crate::console::QueueRef {
                logical_id: id.to_owned(),
                url: stack.reference(id).unwrap_or_default().to_owned(),
            })
            .collect();
        runtime.console().attach_queues(aws_sdk_sqs::Client::new(config), queues);
        let (authorizers, _) = functions::http_api_auth(&template)?;
        let gateway = Gateway::new(
            &functions,
            authorizers,
            runtime.clone(),
            local.credentials(),
            &stack.account_id,
            &stack.region,
        )?
        .with_throttle(Throttle::from_template(&template, &stack)?);
        let gateway = match &options.web {
            Some(dist) if dist.join("index.html").is_file() => gateway.with_web(dist.clone()),
            Some(dist) => {
                eprintln!("devstack: no web app in {} (make web builds it): serving the API only", dist.display());
                gateway
            }
            None => gateway,
        };
        let gateway = Arc::new(gateway);
        Ok(Self { stack, runtime, gateway, functions })
    }

    /// Serves the API on `listener` and polls every queue until `shutdown` resolves.
    pub async fn run(
        self,
        config: &aws_config::SdkConfig,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let pollers = self.start_event_sources(config);
        let served = axum::serve(listener, self.gateway.clone().service()).with_graceful_shutdown(shutdown).await;
        for poller in pollers {
            poller.abort();
        }
        // After the pollers and schedules: their invocations in flight cannot start a process
        // once the runtime is stopped, and `stop` returns only when every process is reaped.
        self.runtime.stop().await;
        if let Some(iam) = self.runtime.iam() {
            report_unused(iam);
        }
        served.context("serving the HTTP API")
    }

    /// Starts polling every SQS event source and invoking every schedule; abort the tasks to stop.
    pub fn start_event_sources(&self, config: &aws_config::SdkConfig) -> Vec<tokio::task::JoinHandle<()>> {
        let sqs = aws_sdk_sqs::Client::new(config);
        let mut pollers = Vec::new();
        for function in &self.functions {
            for source in &function.queues {
                pollers.push(tokio::spawn(pollers::run(
                    sqs.clone(),
                    self.runtime.clone(),
                    function.name.clone(),
                    source.clone(),
                    self.stack.region.clone(),
                )));
            }
        }
        for function in &self.functions {
            for every in &function.schedules {
                pollers.push(tokio::spawn(scheduled(
                    self.runtime.clone(),
                    function.name.clone(),
                    *every,
                    self.stack.region.clone(),
                    self.stack.account_id.clone(),
                )));
            }
        }
        pollers
    }

    /// What is running, for people.
    pub fn summary(&self, api_url: &str) -> String {
        let mut lines = vec![format!("HTTP API: {api_url}")];
        let mut routes: Vec<_> = self
            .gateway
            .routes
            .iter()
            .map(|r| format!("  {:<7} {:<48} -> {} ({})", r.method, r.path, r.function, r.auth))
            .collect();
        routes.sort();
        lines.extend(routes);
        lines.push("Queues polled:".into());
        for function in &self.functions {
            for source in &function.queues {
                lines.push(format!(
                    "  {} -> {} (batch {}, window {:?})",
                    source.queue_url, function.name, source.batch_size, source.batching_window
                ));
            }
        }
        lines.push("Schedules:".into());
        for function in &self.functions {
            for every in &function.schedules {
                lines.push(format!("  every {every:?} -> {}", function.name));
            }
        }
        lines.join("\n")
    }
}

/// The grants no call used while the stack ran, one line each (tests/tests/system/iam.rs reads them).
fn report_unused(iam: &Iam) {
    let unused = iam.unused();
    eprintln!("[devstack iam] {} of {} grants unused", unused.len(), iam.grants().len());
    for grant in unused {
        eprintln!("{UNUSED_GRANT_LINE}{} {} {}", grant.function, grant.action, grant.resource);
    }
}

/// Invokes `function` every `every` with the event EventBridge sends for a schedule.
async fn scheduled(runtime: Runtime, function: String, every: std::time::Duration, region: String, account_id: String) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        if let Err(error) = runtime.invoke(&function, schedule_event(&region, &account_id, &function)).await {
            eprintln!("[{function}] scheduled invocation failed: {error}");
        }
    }
}

/// The event EventBridge sends for `function`'s schedule rule.
pub fn schedule_event(region: &str, account_id: &str, function: &str) -> Bytes {
    let id: u128 = rand::random();
    // A version 4 UUID, as EventBridge's event ids are.
    let id = (id & !(0xf000 << 64) | (0x4000 << 64)) & !(0xc000 << 48) | (0x8000 << 48);
    let id = format!("{id:032x}");
    let event = serde_json::json!({
        "version": "0",
        "id": format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..]),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:{account_id}:rule/{function}")],
        "detail": {},
    });
    Bytes::from(event.to_string())
}

/// `devstack invoke`: one event to one function, in a fresh instance.
pub async fn invoke_once(
    options: &StackOptions,
    config: &aws_config::SdkConfig,
    api_url: &str,
    function: &str,
    event: Bytes,
) -> Result<Result<Invocation, InvokeError>> {
    let local = LocalStack::prepare(options, config, api_url).await?;
    let result = local.runtime.invoke(function, event).await;
    local.runtime.stop().await;
    Ok(result)
}

/// The default options: template.yaml of this repository, binaries from cargo's target dir.
pub fn default_options(stack_name: &str, parameters: HashMap<String, String>) -> StackOptions {
    StackOptions {
        template: crate::repo_root().join("template.yaml"),
        stack_name: stack_name.to_owned(),
        parameters,
        bin_dir: runtime::default_bin_dir(),
        max_instances: 4,
        web: Some(crate::repo_root().join("web/dist")),
    }
}

/// The address the API listens on.
pub fn api_url(address: SocketAddr) -> String {
    format!("http://{address}")
}

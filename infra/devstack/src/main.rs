//! `devstack provision | serve | invoke | asyncapi | create-admin | jwt-keys | push-apps |
//! redrive`: template.yaml on an AWS emulator, and the one-off admin account, the signing keys,
//! the push applications and DLQ redrives of a deployed stack.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use devstack::provision::{self, Options};
use devstack::serve::{self, LocalStack, StackOptions};
use devstack::template::Template;

#[derive(Parser)]
#[command(about = "The local stack: template.yaml on an AWS emulator")]
struct Cli {
    /// The SAM template.
    #[arg(long, default_value = "template.yaml", global = true)]
    template: PathBuf,
    /// Resolves AWS::StackName; prefixes every resource name.
    #[arg(long, default_value = "ecommerce", global = true)]
    stack_name: String,
    /// Template parameter overrides, NAME=VALUE.
    #[arg(long = "parameter", value_parser = parse_pair, global = true)]
    parameters: Vec<(String, String)>,
    /// Where cargo put the function binaries (default: $CARGO_TARGET_DIR/debug or target/debug).
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,
    /// Where the functions of `provision` and `invoke` reach the HTTP API for their internal
    /// calls (a `devstack serve` of the same stack answering there); `serve` uses its own.
    #[arg(long, default_value = provision::DEFAULT_API_URL, global = true)]
    api_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create (or converge) every topic, queue, subscription and table at AWS_ENDPOINT_URL.
    Provision {
        /// Also write the provisioned ids and ARNs as JSON to this file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Provision, then serve the HTTP API, run the functions and poll the queues.
    Serve {
        /// Address of the HTTP API; port 0 takes a free one (`--output` names it).
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
        /// Instances per function at most (Lambda's concurrency, locally).
        #[arg(long, default_value_t = 4)]
        max_instances: usize,
        /// Once ready, write the API's URL and the provisioned ids and ARNs as JSON to this file.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Once serving, add this demo data through the API (see infra/seed/demo.json).
        #[arg(long)]
        seed: Option<PathBuf>,
    },
    /// Send one event file to one function (a fresh instance) and print its response.
    Invoke {
        /// The function's logical id in the template, e.g. HealthFunction.
        function: String,
        /// The event, e.g. events/http-get-health.json.
        event: PathBuf,
    },
    /// Create the stack's admin account from ADMIN_EMAIL / ADMIN_PASSWORD (defaults
    /// admin@example.com / admin-password-change-me) in the Auth table, with the AWS
    /// credentials and region of the environment (a deployed stack; `serve` does this locally).
    /// Idempotent: an existing admin is left as it is.
    CreateAdmin {
        /// The Auth table (default: the template's AuthTable name for --stack-name).
        #[arg(long)]
        table: Option<String>,
    },
    /// The stack's token-signing keys (docs/operations.md, Signing keys), with the AWS
    /// credentials and region of the environment: a deployed stack's, or the emulator's.
    JwtKeys {
        #[command(subcommand)]
        step: devstack::jwt::Step,
    },
    /// Move a DLQ's messages back to the queue they failed from (SQS `StartMessageMoveTask`,
    /// as the console's Redrive button does), with the AWS credentials and region of the
    /// environment, and wait until they are moved.
    Redrive {
        /// The DLQ's name, with or without the `{stack name}-` prefix: notification-dlq.
        queue: String,
    },
    /// Make or update the stack's SNS platform applications for mobile push from the push
    /// services' credentials (docs/operations.md, Push), with the AWS credentials and region
    /// of the environment.
    PushApps {
        #[command(flatten)]
        files: devstack::push::Files,
    },
    /// Write the AsyncAPI document of the events (infra/asyncapi.yaml) from the Rust types,
    /// the template and the samples.
    Asyncapi {
        /// The sample events (one per event type is each message's example).
        #[arg(long, default_value = "events")]
        events: PathBuf,
        /// Where to write it (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

/// Written aside and renamed into place: whoever waits for the file never reads half of it.
fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, serde_json::to_string_pretty(value)?)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("writing {}", path.display()))
}

/// What `serve --output` writes once the stack is ready: where the API listens (the port
/// the kernel chose for `--listen 127.0.0.1:0`) and what was provisioned.
#[derive(serde::Serialize)]
struct Served<'a> {
    api_url: &'a str,
    #[serde(flatten)]
    stack: &'a provision::Stack,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let parameters: HashMap<_, _> = cli.parameters.into_iter().collect();
    let stack_options = |max_instances| {
        let mut options = serve::default_options(&cli.stack_name, parameters.clone());
        options.template = cli.template.clone();
        if let Some(dir) = &cli.bin_dir {
            options.bin_dir = dir.clone();
        }
        options.max_instances = max_instances;
        options
    };
    match cli.command {
        Command::Provision { output } => {
            let template = Template::load(&cli.template)?;
            let options = Options {
                stack_name: cli.stack_name.clone(),
                parameters: parameters.clone(),
                api_url: cli.api_url.clone(),
            };
            let stack = provision::provision(&template, &config, &options).await?;
            for (id, action) in &stack.actions {
                if *action != provision::Action::Skipped {
                    println!("{action:>9}  {id:<36} {}", stack.resources[id].reference);
                }
            }
            if let Some(path) = output {
                write_json(&path, &stack)?;
            }
        }
        Command::Serve { listen, max_instances, output, seed } => {
            let options: StackOptions = stack_options(max_instances);
            let listener =
                tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
            let api_url = serve::api_url(listener.local_addr()?);
            let local = LocalStack::prepare(&options, &config, &api_url).await?;
            if let Some(path) = output {
                write_json(&path, &Served { api_url: &api_url, stack: &local.stack })?;
            }
            println!("{}", local.summary(&api_url));
            println!("Ready. Function logs follow, prefixed with the function's name. Ctrl-C stops everything.");
            if let Some(path) = seed {
                let url = api_url.clone();
                tokio::spawn(async move {
                    match devstack::seed::seed(&url, &path).await {
                        Ok(done) => println!("{done}"),
                        Err(error) => eprintln!("devstack: seeding failed: {error:#}"),
                    }
                });
            }
            let shutdown = async {
                let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a signal handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            };
            local.run(&config, listener, shutdown).await?;
            println!("devstack: stopped");
        }
        Command::Invoke { function, event } => {
            let body = std::fs::read(&event).with_context(|| format!("reading {}", event.display()))?;
            serde_json::from_slice::<serde_json::Value>(&body)
                .with_context(|| format!("{} is not JSON", event.display()))?;
            let options = stack_options(1);
            match serve::invoke_once(&options, &config, &cli.api_url, &function, body.into()).await? {
                Ok(invocation) => {
                    if let Some(init) = invocation.init {
                        eprintln!(
                            "init {:.1} ms, duration {:.1} ms",
                            init.as_secs_f64() * 1e3,
                            invocation.duration.as_secs_f64() * 1e3
                        );
                    }
                    let response: serde_json::Value = serde_json::from_slice(&invocation.payload)
                        .unwrap_or_else(|_| String::from_utf8_lossy(&invocation.payload).into());
                    println!("{}", serde_json::to_string_pretty(&response)?);
                }
                Err(error) => anyhow::bail!("{function} failed: {error}"),
            }
        }
        Command::CreateAdmin { table } => {
            let table = match table {
                Some(table) => table,
                None => devstack::admin::auth_table_name(&Template::load(&cli.template)?, &cli.stack_name)?,
            };
            let account = auth::admin::AdminAccount::from_env();
            // Its user.registered goes out with the Auth outbox relay's next run (every minute).
            println!("{}", devstack::admin::ensure(&config, &table, None, &account).await?);
        }
        Command::JwtKeys { step } => {
            println!(
                "{}",
                devstack::jwt::run(&aws_sdk_secretsmanager::Client::new(&config), &cli.stack_name, step).await?
            );
        }
        Command::PushApps { files } => {
            println!("{}", devstack::push::run(&config, &cli.stack_name, &files).await?);
        }
        Command::Redrive { queue } => {
            println!(
                "{}",
                devstack::console::redrive_named(&aws_sdk_sqs::Client::new(&config), &cli.stack_name, &queue).await?
            );
        }
        Command::Asyncapi { events, output } => {
            let text = devstack::asyncapi::yaml(&Template::load(&cli.template)?, &events)?;
            match output {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

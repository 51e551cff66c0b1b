//! `devstack provision`: create template.yaml's resources on the emulator.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use devstack::provision::{self, Options};
use devstack::template::Template;

#[derive(Parser)]
#[command(about = "The local stack: template.yaml on an AWS emulator")]
struct Cli {
    /// The SAM template.
    #[arg(long, default_value = "template.yaml", global = true)]
    template: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create (or converge) every topic, queue, subscription and table at AWS_ENDPOINT_URL.
    Provision {
        /// Resolves AWS::StackName; prefixes every resource name.
        #[arg(long, default_value = "ecommerce")]
        stack_name: String,
        /// Template parameter overrides, NAME=VALUE.
        #[arg(long = "parameter", value_parser = parse_pair)]
        parameters: Vec<(String, String)>,
        /// Also write the provisioned ids and ARNs as JSON to this file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Provision {
            stack_name,
            parameters,
            output,
        } => {
            let template = Template::load(&cli.template)?;
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let options = Options {
                stack_name,
                parameters: parameters.into_iter().collect::<HashMap<_, _>>(),
            };
            let stack = provision::provision(&template, &config, &options).await?;
            for (id, action) in &stack.actions {
                if *action != provision::Action::Skipped {
                    println!("{action:>9}  {id:<36} {}", stack.resources[id].reference);
                }
            }
            if let Some(path) = output {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, serde_json::to_string_pretty(&stack)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
    }
}

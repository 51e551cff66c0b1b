//! The stack's SNS platform applications for mobile push (docs/operations.md, Push): GCM
//! (Firebase Cloud Messaging) and APNS, both named `{stack}-push`. CloudFormation has no
//! resource type for them, so the template names them by ARN and `devstack push-apps` makes
//! them (`make push-apps` on AWS, with the credentials of each push service); provisioning
//! locally makes them with placeholder credentials, which LocalStack takes as they are.

use anyhow::{Context, Result, anyhow};
use aws_sdk_sns::error::DisplayErrorContext;

use crate::provision::Action;

/// The platforms of the stack's applications, as SNS names them.
pub const PLATFORMS: [&str; 2] = ["GCM", "APNS"];

pub fn application_name(stack_name: &str) -> String {
    format!("{stack_name}-push")
}

/// One push service's credentials, as SNS takes them: for GCM the Firebase service account's
/// JSON key (no principal); for APNS the TLS private key and certificate (principal).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub credential: String,
    pub principal: Option<String>,
}

/// What provisioning locally gives each application.
pub fn placeholder() -> Credentials {
    Credentials { credential: "local-credential".into(), principal: Some("local-principal".into()) }
}

/// `platform`'s application of the stack, made with `credentials` if missing, and given them
/// if it exists and `replace`; its ARN.
pub async fn ensure(
    sns: &aws_sdk_sns::Client,
    stack_name: &str,
    platform: &str,
    credentials: &Credentials,
    replace: bool,
) -> Result<(Action, String)> {
    let name = application_name(stack_name);
    let mut attributes = vec![("PlatformCredential", credentials.credential.clone())];
    if let Some(principal) = &credentials.principal {
        attributes.push(("PlatformPrincipal", principal.clone()));
    }
    if let Some(arn) = find(sns, platform, &name).await? {
        if !replace {
            return Ok((Action::Unchanged, arn));
        }
        let mut set = sns.set_platform_application_attributes().platform_application_arn(&arn);
        for (key, value) in &attributes {
            set = set.attributes(*key, value);
        }
        set.send().await.map_err(|e| anyhow!("updating {arn}: {}", DisplayErrorContext(e)))?;
        return Ok((Action::Updated, arn));
    }
    let mut create = sns.create_platform_application().name(&name).platform(platform);
    for (key, value) in &attributes {
        create = create.attributes(*key, value);
    }
    let created = create.send().await.map_err(|e| anyhow!("creating {platform} {name}: {}", DisplayErrorContext(e)))?;
    Ok((Action::Created, created.platform_application_arn().unwrap_or_default().to_owned()))
}

/// The ARN of the application `name` on `platform`, if there is one.
async fn find(sns: &aws_sdk_sns::Client, platform: &str, name: &str) -> Result<Option<String>> {
    let suffix = format!(":app/{platform}/{name}");
    let mut pages = sns.list_platform_applications().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| anyhow!("listing the platform applications: {}", DisplayErrorContext(e)))?;
        if let Some(arn) = page
            .platform_applications()
            .iter()
            .filter_map(|a| a.platform_application_arn())
            .find(|a| a.ends_with(&suffix))
        {
            return Ok(Some(arn.to_owned()));
        }
    }
    Ok(None)
}

/// Where `devstack push-apps` reads each service's credentials (files, as the push services
/// hand them out).
#[derive(Debug, Clone, clap::Args)]
pub struct Files {
    /// Firebase Cloud Messaging: the service account's JSON key.
    #[arg(long)]
    pub gcm_key: Option<std::path::PathBuf>,
    /// APNS: the certificate (PEM).
    #[arg(long, requires = "apns_private_key")]
    pub apns_certificate: Option<std::path::PathBuf>,
    /// APNS: the certificate's private key (PEM).
    #[arg(long, requires = "apns_certificate")]
    pub apns_private_key: Option<std::path::PathBuf>,
}

fn read(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `devstack push-apps`: makes or updates the application of each platform given; what it did.
pub async fn run(sns: &aws_sdk_sns::Client, stack_name: &str, files: &Files) -> Result<String> {
    let mut given = Vec::new();
    if let Some(key) = &files.gcm_key {
        given.push(("GCM", Credentials { credential: read(key)?, principal: None }));
    }
    if let (Some(certificate), Some(key)) = (&files.apns_certificate, &files.apns_private_key) {
        given.push(("APNS", Credentials { credential: read(key)?, principal: Some(read(certificate)?) }));
    }
    if given.is_empty() {
        anyhow::bail!("give --gcm-key, or --apns-certificate with --apns-private-key");
    }
    let mut done = Vec::new();
    for (platform, credentials) in given {
        let (action, arn) = ensure(sns, stack_name, platform, &credentials, true).await?;
        done.push(format!("{action:>9}  {arn}"));
    }
    Ok(done.join("\n"))
}

//! The stack's SNS platform applications for mobile push (docs/operations.md, Push): GCM
//! (Firebase Cloud Messaging) and APNS, both named `{stack}-push`. CloudFormation has no
//! resource type for them, so the template names them by ARN and `devstack push-apps` makes
//! them (`make push-apps` on AWS, with the credentials of each push service); provisioning
//! locally makes them with placeholder credentials, which LocalStack takes as they are.

use anyhow::{Context, Result, anyhow, bail};
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

/// Where the stack's applications are: `arn:aws:sns:{region}:{account}:app/{platform}/`.
#[derive(Debug, Clone)]
pub struct Place {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
}

impl Place {
    /// The ARN of `platform`'s application: SNS makes it from the name, as the template does.
    pub fn arn(&self, platform: &str) -> String {
        let name = application_name(&self.stack_name);
        format!("arn:aws:sns:{}:{}:app/{platform}/{name}", self.region, self.account_id)
    }
}

/// `platform`'s application of the stack, made with `credentials` if missing, and given them
/// if it exists and `replace`; its ARN.
pub async fn ensure(
    sns: &aws_sdk_sns::Client,
    place: &Place,
    platform: &str,
    credentials: &Credentials,
    replace: bool,
) -> Result<(Action, String)> {
    let arn = place.arn(platform);
    let mut attributes = vec![("PlatformCredential", credentials.credential.clone())];
    if let Some(principal) = &credentials.principal {
        attributes.push(("PlatformPrincipal", principal.clone()));
    }
    // Looked up by its ARN (listing them all fails on LocalStack past one page).
    let found = sns.get_platform_application_attributes().platform_application_arn(&arn).send().await;
    match found {
        Ok(_) if !replace => return Ok((Action::Unchanged, arn)),
        Ok(_) => {
            let mut set = sns.set_platform_application_attributes().platform_application_arn(&arn);
            for (key, value) in &attributes {
                set = set.attributes(*key, value);
            }
            set.send().await.map_err(|e| anyhow!("updating {arn}: {}", DisplayErrorContext(e)))?;
            return Ok((Action::Updated, arn));
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {}
        Err(e) => bail!("reading {arn}: {}", DisplayErrorContext(e)),
    }
    let name = application_name(&place.stack_name);
    let mut create = sns.create_platform_application().name(&name).platform(platform);
    for (key, value) in &attributes {
        create = create.attributes(*key, value);
    }
    let created = create.send().await.map_err(|e| anyhow!("creating {platform} {name}: {}", DisplayErrorContext(e)))?;
    Ok((Action::Created, created.platform_application_arn().unwrap_or(&arn).to_owned()))
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
pub async fn run(config: &aws_config::SdkConfig, stack_name: &str, files: &Files) -> Result<String> {
    let mut given = Vec::new();
    if let Some(key) = &files.gcm_key {
        given.push(("GCM", Credentials { credential: read(key)?, principal: None }));
    }
    if let (Some(certificate), Some(key)) = (&files.apns_certificate, &files.apns_private_key) {
        given.push(("APNS", Credentials { credential: read(key)?, principal: Some(read(certificate)?) }));
    }
    if given.is_empty() {
        bail!("give --gcm-key, or --apns-certificate with --apns-private-key");
    }
    let identity = aws_sdk_sts::Client::new(config).get_caller_identity().send().await;
    let identity = identity.map_err(|e| anyhow!("who are we: {}", DisplayErrorContext(e)))?;
    let place = Place {
        region: config.region().map(|r| r.to_string()).context("no AWS region is set")?,
        account_id: identity.account().unwrap_or_default().to_owned(),
        stack_name: stack_name.to_owned(),
    };
    let sns = aws_sdk_sns::Client::new(config);
    let mut done = Vec::new();
    for (platform, credentials) in given {
        let (action, arn) = ensure(&sns, &place, platform, &credentials, true).await?;
        done.push(format!("{action:>9}  {arn}"));
    }
    Ok(done.join("\n"))
}

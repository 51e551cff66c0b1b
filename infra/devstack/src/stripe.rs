//! The local Stripe: localstripe (infra/localstripe), which infra/scripts/emulator.sh starts on
//! `STRIPE_API_BASE`. On AWS the Stripe secret and the webhook endpoint are set up by hand
//! (README, Payments with Stripe); locally devstack does both:
//!
//! - the template's `StripeApiBase` is `STRIPE_API_BASE` when that is set (a `--parameter`
//!   still wins), so the payment functions call localstripe;
//! - when that base is a loopback address, provisioning creates the secret the payment
//!   functions read (`StripeSecretName`) if it is missing: a test key and a generated webhook
//!   secret;
//! - preparing the stack to run registers its webhook endpoint (`{api}/webhooks/stripe`,
//!   signed with that secret) with localstripe under the stack's name, at every start:
//!   localstripe keeps registrations in memory only.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::provision::Stack;
use crate::template::Physical;

/// The template parameter with Stripe's API base URL.
pub const API_BASE_PARAMETER: &str = "StripeApiBase";
/// The template parameter naming the Secrets Manager secret with Stripe's keys.
pub const SECRET_NAME_PARAMETER: &str = "StripeSecretName";
/// The environment variable that points the local stack at localstripe.
pub const API_BASE_VARIABLE: &str = "STRIPE_API_BASE";
/// Where the stack takes Stripe's webhooks.
pub const WEBHOOK_PATH: &str = "/webhooks/stripe";
/// The API key of the local secret (localstripe takes any `sk_` key).
pub const LOCAL_SECRET_KEY: &str = "sk_test_local";
/// The id the local secret is recorded under among the stack's resources (it is no resource
/// of the template: on AWS it is made by hand), so that IAM checks know its ARN.
pub const LOCAL_SECRET_ID: &str = "LocalStripeSecret";

/// `STRIPE_API_BASE` for the `StripeApiBase` parameter, if it is set.
pub fn parameter_from_environment(name: &str) -> Option<String> {
    (name == API_BASE_PARAMETER)
        .then(|| std::env::var(API_BASE_VARIABLE).ok())
        .flatten()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether `base` is on this machine (localstripe), not Stripe.
pub fn is_local(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The local Stripe of a stack: its API base and secret name, if the template has them and the
/// base is local.
fn local(stack: &Stack) -> Option<(&str, &str)> {
    let base = stack.parameters.get(API_BASE_PARAMETER)?;
    let name = stack.parameters.get(SECRET_NAME_PARAMETER)?;
    is_local(base).then_some((base.as_str(), name.as_str()))
}

/// Creates the local Stripe secret if it is missing (an existing one keeps its value: the
/// webhook secret registered with it stays valid), and records it in `stack`.
pub async fn provision_secret(secrets: &aws_sdk_secretsmanager::Client, stack: &mut Stack) -> Result<()> {
    let Some((_, name)) = local(stack) else {
        return Ok(());
    };
    let name = name.to_owned();
    let value = || {
        let webhook_secret = format!("whsec_{}", crate::provision::generated_secret(&json!({"PasswordLength": 32}))?);
        Ok(json!({"secret_key": LOCAL_SECRET_KEY, "webhook_secret": webhook_secret}).to_string())
    };
    let description = "Stripe's keys for localstripe (made by devstack; on AWS you make it: README)";
    let (action, arn) = crate::provision::secret_named(secrets, &name, Some(description), value)
        .await
        .map_err(|e| anyhow!("the Stripe secret {name}: {e:#}"))?;
    let physical = Physical { reference: arn.clone(), attributes: [("Id".to_owned(), arn)].into() };
    stack.types.insert(LOCAL_SECRET_ID.to_owned(), "AWS::SecretsManager::Secret".to_owned());
    stack.actions.insert(LOCAL_SECRET_ID.to_owned(), action);
    stack.resources.insert(LOCAL_SECRET_ID.to_owned(), physical);
    Ok(())
}

/// Registers the stack's webhook endpoint at `api_url` with localstripe, signed with the
/// secret's `webhook_secret`. Nothing to do if the stack's Stripe is not local.
pub async fn register_webhook(secrets: &aws_sdk_secretsmanager::Client, stack: &Stack, api_url: &str) -> Result<()> {
    let Some((base, name)) = local(stack) else {
        return Ok(());
    };
    let value = secrets.get_secret_value().secret_id(name).send().await.map_err(|e| {
        anyhow!("reading the Stripe secret {name}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
    })?;
    let keys: Value = serde_json::from_str(value.secret_string().unwrap_or_default())
        .with_context(|| format!("the Stripe secret {name} is not JSON"))?;
    let webhook_secret =
        keys["webhook_secret"].as_str().ok_or_else(|| anyhow!("the Stripe secret {name} has no webhook_secret"))?;
    let url = format!("{}{WEBHOOK_PATH}", api_url.trim_end_matches('/'));
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("url", &url)
        .append_pair("secret", webhook_secret)
        .finish();
    let registration = format!("{}/_config/webhooks/{}", base.trim_end_matches('/'), stack.stack_name);
    let answer = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?
        .post(&registration)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .with_context(|| {
            format!("registering the webhook with localstripe at {base} (is it running? infra/scripts/emulator.sh starts it)")
        })?;
    if !answer.status().is_success() {
        bail!("localstripe refused the webhook registration {registration}: {}", answer.status());
    }
    eprintln!("[devstack stripe] localstripe at {base} sends this stack's webhooks to {url}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_bases_are_local_and_stripe_is_not() {
        for base in ["http://127.0.0.1:8420", "http://localhost:8420/", "http://[::1]:8420", "http://127.1.2.3"] {
            assert!(is_local(base), "{base}");
        }
        for base in ["https://api.stripe.com", "http://10.0.0.1:8420", "http://localhost.example.com", "nonsense"] {
            assert!(!is_local(base), "{base}");
        }
    }
}

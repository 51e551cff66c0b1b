//! The keys that sign access tokens (docs/operations.md, Signing keys). On AWS and locally
//! alike they are the Secrets Manager secret `{stack}/jwt-signing-keys`, an
//! [`auth::tokens::KeySet`], which no template resource makes (CloudFormation cannot derive a
//! public key from a generated secret). `devstack jwt-keys` manages it (`make jwt-keys`) and
//! gives its public halves and the signing key's id as the template parameters
//! `JwtPublicKeys` and `JwtSigningKeyId`: `make deploy` passes them; provisioning locally
//! makes the secret when missing and takes them from it, unless they are given.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use auth::tokens::{KeySet, PublicKey};

use crate::provision::{Action, Stack};
use crate::template::Physical;

pub const PUBLIC_KEYS_PARAMETER: &str = "JwtPublicKeys";
pub const SIGNING_KEY_PARAMETER: &str = "JwtSigningKeyId";
/// The id the secret is recorded under among the stack's resources (it is no resource of the
/// template), so that IAM checks know its ARN.
pub const SECRET_ID: &str = "JwtSigningKeys";

pub fn secret_name(stack_name: &str) -> String {
    format!("{stack_name}/jwt-signing-keys")
}

/// The stack's key set and the secret's ARN, made with one new key if there is none.
pub async fn ensure(secrets: &aws_sdk_secretsmanager::Client, stack_name: &str) -> Result<(Action, String, KeySet)> {
    let name = secret_name(stack_name);
    let description = "The private keys that sign access tokens (auth::tokens::KeySet); see docs/operations.md";
    let value = || Ok(serde_json::to_string(&KeySet::generate()?)?);
    let (action, arn) = crate::provision::secret_named(secrets, &name, Some(description), value)
        .await
        .map_err(|e| anyhow!("the signing keys {name}: {e:#}"))?;
    Ok((action, arn, read(secrets, &name).await?))
}

async fn read(secrets: &aws_sdk_secretsmanager::Client, name: &str) -> Result<KeySet> {
    let value = secrets.get_secret_value().secret_id(name).send().await.map_err(|e| {
        anyhow!("reading the signing keys {name}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
    })?;
    serde_json::from_str(value.secret_string().unwrap_or_default()).with_context(|| format!("{name} is no key set"))
}

async fn write(secrets: &aws_sdk_secretsmanager::Client, stack_name: &str, keys: &KeySet) -> Result<()> {
    secrets
        .put_secret_value()
        .secret_id(secret_name(stack_name))
        .secret_string(serde_json::to_string(keys)?)
        .send()
        .await
        .map_err(|e| anyhow!("writing the signing keys: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// The template parameters a deploy of `keys` needs: every key published, `signing` signs.
pub fn parameters(keys: &KeySet) -> Result<HashMap<String, String>> {
    Ok(HashMap::from([
        (PUBLIC_KEYS_PARAMETER.to_owned(), PublicKey::list(&keys.public_keys()?)),
        (SIGNING_KEY_PARAMETER.to_owned(), keys.signing.clone()),
    ]))
}

/// Records the secret in `stack` (for IAM checks: the signers may read it, nobody else).
pub fn record(stack: &mut Stack, action: Action, arn: String) {
    let physical = Physical { reference: arn.clone(), attributes: [("Id".to_owned(), arn)].into() };
    stack.types.insert(SECRET_ID.to_owned(), "AWS::SecretsManager::Secret".to_owned());
    stack.actions.insert(SECRET_ID.to_owned(), action);
    stack.resources.insert(SECRET_ID.to_owned(), physical);
}

/// A step of the rotation (docs/operations.md); what it did, for people.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Step {
    /// Make the key set if missing and print the parameters a deploy needs, `NAME=VALUE` each.
    Parameters,
    /// Add a new key: published by the next deploy, not signing yet.
    Add,
    /// Let KID sign from the next deploy (it must have been published by a deploy before).
    Sign { kid: String },
    /// Remove KID (not the signing one): the next deploy stops publishing it, so its tokens
    /// stop verifying; wait until the last one expired (15 minutes after it stopped signing).
    Retire { kid: String },
    /// List the keys.
    Show,
}

pub async fn run(secrets: &aws_sdk_secretsmanager::Client, stack_name: &str, step: Step) -> Result<String> {
    let (_, _, mut keys) = ensure(secrets, stack_name).await?;
    match step {
        Step::Parameters => {
            let mut parameters: Vec<_> = parameters(&keys)?.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            parameters.sort();
            Ok(parameters.join(" "))
        }
        Step::Add => {
            let kid = keys.add()?;
            write(secrets, stack_name, &keys).await?;
            Ok(kid)
        }
        Step::Sign { kid } => {
            if !keys.keys.contains_key(&kid) {
                bail!("no key {kid} in {}", secret_name(stack_name));
            }
            keys.signing = kid.clone();
            write(secrets, stack_name, &keys).await?;
            Ok(format!("{kid} signs from the next deploy"))
        }
        Step::Retire { kid } => {
            if kid == keys.signing {
                bail!("{kid} signs: let another key sign first (jwt-keys sign KID, then deploy)");
            }
            if keys.keys.remove(&kid).is_none() {
                bail!("no key {kid} in {}", secret_name(stack_name));
            }
            write(secrets, stack_name, &keys).await?;
            Ok(format!("{kid} removed; the next deploy stops publishing it"))
        }
        Step::Show => Ok(keys
            .keys
            .keys()
            .map(|kid| if *kid == keys.signing { format!("{kid} (signing)") } else { kid.clone() })
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

//! What Auth reads outside itself to handle tokens:
//! - the public keys, from `JWT_PUBLIC_KEYS` (the template hands them over: no network call);
//! - the private key that signs, from the Secrets Manager secret `JWT_SIGNING_SECRET` (the
//!   stack's [`KeySet`]), which only the token-issuing functions may read. It is read at the
//!   first token a function instance issues, not during init: init stays at the bare runtime's
//!   cost, and a failed read is tried again by the next request instead of failing the init.

use shared::config;
use tokio::sync::OnceCell;

use crate::tokens::{KeyError, KeySet, Signer, Verifier};

/// The verifier of this function's tokens, from `JWT_PUBLIC_KEYS`, `JWT_ISSUER`, `JWT_AUDIENCE`.
pub fn verifier_from_env() -> Result<Verifier, Box<dyn std::error::Error + Send + Sync>> {
    let keys = config::required("JWT_PUBLIC_KEYS")?;
    Ok(Verifier::new(&keys, &config::required("JWT_ISSUER")?, &config::required("JWT_AUDIENCE")?)?)
}

/// The signing key, loaded once per instance on first use.
pub struct SigningKey {
    signer: OnceCell<Signer>,
    source: Option<Source>,
}

struct Source {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    kid: String,
    issuer: String,
    audience: String,
}

impl SigningKey {
    /// The key `JWT_SIGNING_KEY_ID` of the secret `JWT_SIGNING_SECRET`, for `JWT_ISSUER` and
    /// `JWT_AUDIENCE`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, config::ConfigError> {
        let source = Source {
            client: aws_sdk_secretsmanager::Client::new(sdk),
            secret_id: config::required("JWT_SIGNING_SECRET")?,
            kid: config::required("JWT_SIGNING_KEY_ID")?,
            issuer: config::required("JWT_ISSUER")?,
            audience: config::required("JWT_AUDIENCE")?,
        };
        Ok(Self { signer: OnceCell::new(), source: Some(source) })
    }

    /// A key already at hand (tests).
    pub fn ready(signer: Signer) -> Self {
        Self { signer: OnceCell::new_with(Some(signer)), source: None }
    }

    /// A key that cannot be read (tests: a secret gone or unreadable).
    #[cfg(test)]
    pub(crate) fn unreadable() -> Self {
        Self { signer: OnceCell::new(), source: None }
    }

    pub async fn signer(&self) -> Result<&Signer, KeyError> {
        self.signer
            .get_or_try_init(|| async {
                let source = self.source.as_ref().ok_or_else(|| KeyError::Unavailable("no secret to read".into()))?;
                let secret =
                    source.client.get_secret_value().secret_id(&source.secret_id).send().await.map_err(|e| {
                        KeyError::Unavailable(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
                    })?;
                let keys: KeySet = serde_json::from_str(secret.secret_string().unwrap_or_default()).map_err(|e| {
                    KeyError::BadPrivateKey(format!("the secret {} is no key set: {e}", source.secret_id))
                })?;
                keys.signer(&source.kid, &source.issuer, &source.audience)
            })
            .await
    }
}

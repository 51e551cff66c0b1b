//! What the service calls outside itself: the channels a message goes out on (email through
//! SES, SMS through SNS), and Auth for the contacts it has not seen.

use std::future::Future;

use aws_sdk_ses::error::ProvideErrorMetadata;
use shared::CorrelationId;
use shared::internal::{CallError, InternalClient};

use crate::domain::Contact;
use crate::messages::Rendered;

/// Where contacts not seen in `user.registered` are looked up: Auth's internal route.
pub trait Directory: Send + Sync {
    fn user(
        &self,
        user_id: &str,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Option<Contact>, CallError>> + Send;
}

pub struct AuthDirectory(pub InternalClient);

impl Directory for AuthDirectory {
    async fn user(&self, user_id: &str, correlation_id: &CorrelationId) -> Result<Option<Contact>, CallError> {
        let user = shared::contracts::user(&self.0, correlation_id, user_id).await?;
        Ok(user.map(|user| Contact { user_id: user.user_id, email: user.email, name: user.name }))
    }
}

/// Why a send did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The provider refused this message for good (a rejected address, an invalid number):
    /// recorded as failed, never retried.
    #[error("refused for good: {0}")]
    Permanent(String),
    /// Throttling, an outage, a timeout: the queue retries it.
    #[error("not sent this time: {0}")]
    Transient(String),
}

/// The channels; each send answers the provider's message id.
pub trait Channels: Send + Sync {
    fn email(&self, to: &str, message: &Rendered) -> impl Future<Output = Result<String, SendError>> + Send;
    fn sms(&self, phone_number: &str, text: &str) -> impl Future<Output = Result<String, SendError>> + Send;
}

/// Email through SES (v1's `SendEmail`: what LocalStack emulates, and AWS serves alike) from
/// `SENDER_EMAIL`, SMS through SNS `Publish` to a phone number.
pub struct AwsChannels {
    pub ses: aws_sdk_ses::Client,
    pub sns: aws_sdk_sns::Client,
    pub from: String,
    /// Sent with it, so that SES publishes the bounces and complaints (crate::feedback).
    pub configuration_set: String,
}

impl AwsChannels {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self {
            ses: aws_sdk_ses::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            from: shared::config::required("SENDER_EMAIL")?,
            configuration_set: shared::config::required("SES_CONFIGURATION_SET")?,
        })
    }
}

/// The error codes that say a message can never go out as it is (SES: a rejected message or
/// sender; SNS: an invalid number, an opted-out or disabled destination). Anything else —
/// throttling, 5xx, a timeout — may pass on a retry.
const PERMANENT: [&str; 5] =
    ["MessageRejected", "MailFromDomainNotVerifiedException", "InvalidParameter", "EndpointDisabled", "OptedOut"];

fn send_error<E, R>(error: aws_sdk_ses::error::SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let permanent = error.as_service_error().and_then(|e| e.code()).is_some_and(|code| PERMANENT.contains(&code));
    let text = aws_sdk_ses::error::DisplayErrorContext(&error).to_string();
    if permanent { SendError::Permanent(text) } else { SendError::Transient(text) }
}

impl Channels for AwsChannels {
    async fn email(&self, to: &str, message: &Rendered) -> Result<String, SendError> {
        use aws_sdk_ses::types::{Body, Content, Destination, Message};
        let content = |data: &str| {
            Content::builder().data(data).charset("UTF-8").build().map_err(|e| SendError::Permanent(e.to_string()))
        };
        let body = Body::builder().text(content(&message.text)?).html(content(&message.html)?).build();
        let sent = self
            .ses
            .send_email()
            .source(&self.from)
            .configuration_set_name(&self.configuration_set)
            .destination(Destination::builder().to_addresses(to).build())
            .message(Message::builder().subject(content(&message.subject)?).body(body).build())
            .send()
            .await
            .map_err(send_error)?;
        Ok(sent.message_id().to_owned())
    }

    async fn sms(&self, phone_number: &str, text: &str) -> Result<String, SendError> {
        let sent = self.sns.publish().phone_number(phone_number).message(text).send().await.map_err(send_error)?;
        Ok(sent.message_id().unwrap_or_default().to_owned())
    }
}

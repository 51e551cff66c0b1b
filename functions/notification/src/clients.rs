//! What the service calls outside itself: the channels a message goes out on (email through
//! SES, SMS and push through SNS), the devices' SNS platform endpoints, and Auth for the
//! contacts it has not seen.

use std::future::Future;

use aws_sdk_ses::error::ProvideErrorMetadata;
use shared::CorrelationId;
use shared::internal::{CallError, InternalClient};

use crate::domain::{Contact, Device, Platform};
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
    /// The destination is gone for good (SNS disabled the device's endpoint — the app was
    /// removed or its token expired — or it was deleted): recorded as failed, and the device
    /// is removed.
    #[error("the destination is gone: {0}")]
    Gone(String),
    /// Throttling, an outage, a timeout: the queue retries it.
    #[error("not sent this time: {0}")]
    Transient(String),
}

/// The channels; each send answers the provider's message id.
pub trait Channels: Send + Sync {
    fn email(&self, to: &str, message: &Rendered) -> impl Future<Output = Result<String, SendError>> + Send;
    fn sms(&self, phone_number: &str, text: &str) -> impl Future<Output = Result<String, SendError>> + Send;
    fn push(&self, device: &Device, message: &Rendered) -> impl Future<Output = Result<String, SendError>> + Send;
}

/// Why a device could not be registered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EndpointError {
    /// The push service refused the token (malformed for its platform).
    #[error("the token was refused: {0}")]
    Refused(String),
    /// This stack has no platform application for it (docs/operations.md, Push).
    #[error("push to {0:?} devices is not set up on this stack")]
    NotSetUp(Platform),
    #[error("the push service is unavailable: {0}")]
    Unavailable(String),
}

/// The devices' SNS platform endpoints.
pub trait Endpoints: Send + Sync {
    /// The endpoint of `token` on `platform`'s application: the one it has already, if any
    /// (enabled again), so registering twice is one endpoint.
    fn register(&self, platform: Platform, token: &str) -> impl Future<Output = Result<String, EndpointError>> + Send;
    /// Deletes the endpoint; one already gone is no error.
    fn remove(&self, endpoint_arn: &str) -> impl Future<Output = Result<(), EndpointError>> + Send;
}

/// Email through SES (v1's `SendEmail`: what LocalStack emulates, and AWS serves alike) from
/// `SENDER_EMAIL`; SMS through SNS `Publish` to a phone number, push to a device's endpoint.
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
const PERMANENT: [&str; 4] = ["MessageRejected", "MailFromDomainNotVerifiedException", "InvalidParameter", "OptedOut"];

/// What SNS says (with `InvalidParameter`) of a publish to an endpoint that was deleted.
const NO_ENDPOINT: &str = "No endpoint found for the target arn";

fn code<E: ProvideErrorMetadata, R>(error: &aws_sdk_ses::error::SdkError<E, R>) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}

fn text<E, R>(error: &aws_sdk_ses::error::SdkError<E, R>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    aws_sdk_ses::error::DisplayErrorContext(error).to_string()
}

fn send_error<E, R>(error: aws_sdk_ses::error::SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // A deleted endpoint is as gone as a disabled one; SNS says so only in the message.
    let no_endpoint = error.as_service_error().and_then(|e| e.message()).is_some_and(|m| m.contains(NO_ENDPOINT));
    match code(&error) {
        Some("EndpointDisabled") => SendError::Gone(text(&error)),
        Some("InvalidParameter") if no_endpoint => SendError::Gone(text(&error)),
        Some(code) if PERMANENT.contains(&code) => SendError::Permanent(text(&error)),
        _ => SendError::Transient(text(&error)),
    }
}

/// What a push carries on `platform`: a title and the short text (SNS sends the entry of the
/// endpoint's platform; `default` is there for any other).
fn push_payload(platform: Platform, message: &Rendered) -> String {
    let (title, body) = (&message.subject, &message.short);
    let native = match platform {
        Platform::Gcm => ("GCM", serde_json::json!({"notification": {"title": title, "body": body}})),
        Platform::Apns => ("APNS", serde_json::json!({"aps": {"alert": {"title": title, "body": body}}})),
    };
    serde_json::json!({"default": body, native.0: native.1.to_string()}).to_string()
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

    async fn push(&self, device: &Device, message: &Rendered) -> Result<String, SendError> {
        let sent = self
            .sns
            .publish()
            .target_arn(&device.endpoint_arn)
            .message_structure("json")
            .message(push_payload(device.platform, message))
            .send()
            .await
            .map_err(send_error)?;
        Ok(sent.message_id().unwrap_or_default().to_owned())
    }
}

/// The platform endpoints of the stack's SNS platform applications (`GCM_APPLICATION_ARN`,
/// `APNS_APPLICATION_ARN`).
pub struct AwsEndpoints {
    pub sns: aws_sdk_sns::Client,
    pub gcm: String,
    pub apns: String,
}

impl AwsEndpoints {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        Ok(Self {
            sns: aws_sdk_sns::Client::new(sdk),
            gcm: shared::config::required("GCM_APPLICATION_ARN")?,
            apns: shared::config::required("APNS_APPLICATION_ARN")?,
        })
    }
}

/// The endpoint ARN in SNS's answer to a token registered already with other attributes
/// (SNS names it only in the message: "Endpoint arn:aws:sns:... already exists with the same
/// Token, but different attributes.").
fn existing_endpoint(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("Endpoint ")?;
    let arn = rest.split_whitespace().next()?;
    (arn.starts_with("arn:") && arn.contains(":endpoint/")).then_some(arn)
}

impl Endpoints for AwsEndpoints {
    async fn register(&self, platform: Platform, token: &str) -> Result<String, EndpointError> {
        let application = match platform {
            Platform::Gcm => &self.gcm,
            Platform::Apns => &self.apns,
        };
        let created =
            self.sns.create_platform_endpoint().platform_application_arn(application).token(token).send().await;
        let error = match created {
            Ok(created) => return Ok(created.endpoint_arn().unwrap_or_default().to_owned()),
            Err(error) => error,
        };
        let existing = error.as_service_error().and_then(|e| e.message()).and_then(existing_endpoint);
        match (code(&error), existing) {
            // Its endpoint is there, disabled or with other attributes: enabled again, it is this
            // registration's (AWS's advice for mobile token management).
            (Some("InvalidParameter"), Some(arn)) => {
                self.sns
                    .set_endpoint_attributes()
                    .endpoint_arn(arn)
                    .attributes("Enabled", "true")
                    .attributes("Token", token)
                    .send()
                    .await
                    .map_err(|e| EndpointError::Unavailable(text(&e)))?;
                Ok(arn.to_owned())
            }
            (Some("InvalidParameter"), None) => Err(EndpointError::Refused(text(&error))),
            (Some("NotFound"), _) => Err(EndpointError::NotSetUp(platform)),
            _ => Err(EndpointError::Unavailable(text(&error))),
        }
    }

    async fn remove(&self, endpoint_arn: &str) -> Result<(), EndpointError> {
        // SNS answers success for an endpoint that is gone already.
        self.sns
            .delete_endpoint()
            .endpoint_arn(endpoint_arn)
            .send()
            .await
            .map_err(|e| EndpointError::Unavailable(text(&e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_sns_names_in_its_refusal_is_found() {
        let message = "Invalid parameter: Token Reason: Endpoint arn:aws:sns:us-east-1:000000000000:endpoint/GCM/shop-push/5e3e9847 already exists with the same Token, but different attributes.";
        assert_eq!(
            existing_endpoint(message),
            Some("arn:aws:sns:us-east-1:000000000000:endpoint/GCM/shop-push/5e3e9847")
        );
        assert_eq!(existing_endpoint("Invalid parameter: Token Reason: malformed"), None);
    }

    #[test]
    fn a_push_carries_the_platforms_entry_and_a_default() {
        let message =
            Rendered { subject: "Order ord_1".into(), text: String::new(), html: String::new(), short: "Paid".into() };
        let payload: serde_json::Value = serde_json::from_str(&push_payload(Platform::Apns, &message)).unwrap();
        assert_eq!(payload["default"], "Paid");
        let apns: serde_json::Value = serde_json::from_str(payload["APNS"].as_str().unwrap()).unwrap();
        assert_eq!(apns["aps"]["alert"]["title"], "Order ord_1");
        assert!(payload.get("GCM").is_none());
    }
}

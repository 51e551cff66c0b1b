//! What the service calls outside itself: the channels a message goes out on, and Auth for
//! the contacts it has not seen.
//!
//! Channels are behind one trait, chosen in the template (`NOTIFICATION_SENDER`), not in
//! code: `ses` (email through SES v2, from `SENDER_EMAIL`), `sns-sms` (SMS through SNS to a
//! phone number, where the contact has one), `recording` (no delivery: the stored
//! notification is the record; for local runs and tests).

use std::future::Future;

use shared::CorrelationId;
use shared::internal::{CallError, InternalClient};

use crate::domain::{Channel, Contact, Notification};

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

#[derive(Debug, thiserror::Error)]
#[error("sending failed: {0}")]
pub struct SendError(pub String);

pub trait Sender: Send + Sync {
    fn channel(&self) -> Channel;
    fn send(&self, notification: &Notification, to: &Contact) -> impl Future<Output = Result<(), SendError>> + Send;
}

pub struct RecordingSender;

impl Sender for RecordingSender {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn send(&self, notification: &Notification, to: &Contact) -> Result<(), SendError> {
        tracing::info!(template = ?notification.template, to = %to.user_id, subject = %notification.subject, "notification recorded (not delivered)");
        Ok(())
    }
}

pub struct SesSender {
    pub client: aws_sdk_sesv2::Client,
    pub from: String,
}

impl Sender for SesSender {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn send(&self, notification: &Notification, to: &Contact) -> Result<(), SendError> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let text =
            |data: &str| Content::builder().data(data).charset("UTF-8").build().map_err(|e| SendError(e.to_string()));
        let message = Message::builder()
            .subject(text(&notification.subject)?)
            .body(Body::builder().text(text(&notification.body)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&to.email).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| SendError(aws_sdk_sesv2::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

pub struct SmsSender {
    pub client: aws_sdk_sns::Client,
}

impl Sender for SmsSender {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    async fn send(&self, notification: &Notification, to: &Contact) -> Result<(), SendError> {
        // Contacts carry no phone number yet: SMS can only go to an address given as one.
        if !to.email.starts_with('+') {
            tracing::warn!(user_id = %to.user_id, "no phone number; SMS not sent");
            return Ok(());
        }
        self.client
            .publish()
            .phone_number(&to.email)
            .message(format!("{}: {}", notification.subject, notification.body))
            .send()
            .await
            .map_err(|e| SendError(aws_sdk_sns::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// One of the senders, as configured.
pub enum Configured {
    Recording(RecordingSender),
    Ses(SesSender),
    Sms(SmsSender),
}

impl Configured {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, shared::config::ConfigError> {
        match shared::config::optional("NOTIFICATION_SENDER", "recording").as_str() {
            "recording" => Ok(Self::Recording(RecordingSender)),
            "ses" => Ok(Self::Ses(SesSender {
                client: aws_sdk_sesv2::Client::new(sdk),
                from: shared::config::required("SENDER_EMAIL")?,
            })),
            "sns-sms" => Ok(Self::Sms(SmsSender { client: aws_sdk_sns::Client::new(sdk) })),
            other => Err(shared::config::ConfigError {
                name: "NOTIFICATION_SENDER".into(),
                problem: format!("{other:?} is not recording, ses or sns-sms"),
            }),
        }
    }
}

impl Sender for Configured {
    fn channel(&self) -> Channel {
        match self {
            Self::Recording(s) => s.channel(),
            Self::Ses(s) => s.channel(),
            Self::Sms(s) => s.channel(),
        }
    }

    async fn send(&self, notification: &Notification, to: &Contact) -> Result<(), SendError> {
        match self {
            Self::Recording(s) => s.send(notification, to).await,
            Self::Ses(s) => s.send(notification, to).await,
            Self::Sms(s) => s.send(notification, to).await,
        }
    }
}

//! Publishing events to SNS. The topic follows from the event type, and every message carries
//! the `event_type` attribute (what subscription filter policies match) and `correlation_id`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_sns::types::MessageAttributeValue;

use crate::config::{self, ConfigError};
use crate::events::{Envelope, Topic};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no ARN configured for topic {0:?} (environment variable {var})", var = .0.arn_env_var())]
    TopicNotConfigured(Topic),
    #[error("SNS publish failed: {0}")]
    Sns(String),
}

/// The port services publish through; [`SnsPublisher`] on AWS, [`MemoryPublisher`] in tests.
pub trait Publish {
    fn publish(&self, envelope: &Envelope) -> impl Future<Output = Result<(), PublishError>> + Send;
}

#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topics: HashMap<Topic, String>,
}

impl SnsPublisher {
    pub fn new(client: aws_sdk_sns::Client, topics: HashMap<Topic, String>) -> Self {
        Self { client, topics }
    }

    /// Takes the ARNs of the topics this function may publish to from `*_TOPIC_ARN`
    /// variables; a function is only given the topics it needs.
    pub fn from_env(client: aws_sdk_sns::Client) -> Result<Self, ConfigError> {
        let topics = Topic::ALL
            .into_iter()
            .filter_map(|topic| match config::required(topic.arn_env_var()) {
                Ok(arn) => Some(Ok((topic, arn))),
                Err(e) if e.problem == "is not set" => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::new(client, topics))
    }
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().expect("data_type is set")
}

impl Publish for SnsPublisher {
    async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        let topic = envelope.event.topic();
        let arn = self.topics.get(&topic).ok_or(PublishError::TopicNotConfigured(topic))?;
        let body = serde_json::to_string(envelope).map_err(|e| PublishError::Sns(e.to_string()))?;
        self.client
            .publish()
            .topic_arn(arn)
            .message(body)
            .message_attributes("event_type", attribute(envelope.event_type()))
            .message_attributes("correlation_id", attribute(&envelope.correlationid))
            .send()
            .await
            .map_err(|e| PublishError::Sns(aws_sdk_sns::error::DisplayErrorContext(e).to_string()))?;
        tracing::info!(event_id = %envelope.id, event_type = envelope.event_type(), "event published");
        Ok(())
    }
}

/// Records what was published; for unit tests of services.
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    published: Mutex<Vec<Envelope>>,
}

impl MemoryPublisher {
    pub fn published(&self) -> Vec<Envelope> {
        self.published.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Publish for MemoryPublisher {
    async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        self.published.lock().unwrap_or_else(|e| e.into_inner()).push(envelope.clone());
        Ok(())
    }
}

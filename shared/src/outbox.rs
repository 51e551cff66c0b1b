//! The transactional outbox: no event is lost between a state change and its publication.
//!
//! A service writes each event it owes in the same DynamoDB transaction as the change it
//! reports (an item `pk = "OUTBOX"`, `sk = event id`, see [`DynamoOutbox::entry`]). Right
//! after the transaction it publishes the event and deletes the item ([`deliver`]). If
//! publishing fails (or the function dies first), the item stays, and the service's outbox
//! relay, a function run every minute, publishes it ([`relay`]). An event may so go out
//! twice; consumers are idempotent on the event id.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::events::Envelope;
use crate::publisher::Publish;

pub const PARTITION: &str = "OUTBOX";

#[derive(Debug, thiserror::Error)]
#[error("outbox: {0}")]
pub struct OutboxError(pub String);

/// The events a service still owes.
pub trait Outbox: Send + Sync {
    /// Up to `limit` pending events, oldest first.
    fn pending(&self, limit: i32) -> impl Future<Output = Result<Vec<Envelope>, OutboxError>> + Send;
    /// Forgets an event that was published.
    fn published(&self, event_id: &str) -> impl Future<Output = Result<(), OutboxError>> + Send;
}

/// Publishes events just committed with their change; what fails stays for the relay.
pub async fn deliver<O: Outbox, P: Publish + Sync>(outbox: &O, publisher: &P, events: &[Envelope]) {
    for envelope in events {
        match publisher.publish(envelope).await {
            Ok(()) => {
                if let Err(error) = outbox.published(&envelope.id).await {
                    // Published but still listed: the relay sends it again, harmlessly.
                    tracing::warn!(%error, event_id = %envelope.id, "published event left in the outbox");
                }
            }
            Err(error) => {
                tracing::warn!(%error, event_id = %envelope.id, "event not published yet; the outbox relay will retry")
            }
        }
    }
}

/// What a relay run did.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RelayReport {
    pub published: usize,
    pub failed: usize,
}

/// Publishes every pending event (the scheduled relay's whole job).
pub async fn relay<O: Outbox, P: Publish + Sync>(outbox: &O, publisher: &P) -> Result<RelayReport, OutboxError> {
    let mut report = RelayReport::default();
    loop {
        let pending = outbox.pending(100).await?;
        let batch = pending.len();
        for envelope in pending {
            match publisher.publish(&envelope).await {
                Ok(()) => {
                    outbox.published(&envelope.id).await?;
                    report.published += 1;
                }
                Err(error) => {
                    tracing::error!(%error, event_id = %envelope.id, "relay could not publish");
                    report.failed += 1;
                }
            }
        }
        // Stop at the first failure (the topic is down) or when nothing is left.
        if report.failed > 0 || batch < 100 {
            return Ok(report);
        }
    }
}

/// The outbox in a service's DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoOutbox {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn error(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

impl DynamoOutbox {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The item to add to the transaction that makes the change `envelope` reports.
    pub fn entry(&self, envelope: &Envelope) -> Result<TransactWriteItem, OutboxError> {
        let body = serde_json::to_string(envelope).map_err(error)?;
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(PARTITION.to_owned())),
            ("sk".to_owned(), AttributeValue::S(envelope.id.clone())),
            ("envelope".to_owned(), AttributeValue::S(body)),
        ]);
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

impl Outbox for DynamoOutbox {
    async fn pending(&self, limit: i32) -> Result<Vec<Envelope>, OutboxError> {
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :outbox")
            .expression_attribute_values(":outbox", AttributeValue::S(PARTITION.to_owned()))
            .consistent_read(true)
            .limit(limit)
            .send()
            .await
            .map_err(|e| error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        found
            .items()
            .iter()
            .map(|item| {
                let body = item
                    .get("envelope")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| error("an outbox item without envelope"))?;
                serde_json::from_str(body).map_err(error)
            })
            .collect()
    }

    async fn published(&self, event_id: &str) -> Result<(), OutboxError> {
        let key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(PARTITION.to_owned())),
            ("sk".to_owned(), AttributeValue::S(event_id.to_owned())),
        ]);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(|e| error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// An in-memory outbox for unit tests: `add` plays the part of the transaction.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    pending: Mutex<Vec<Envelope>>,
}

impl MemoryOutbox {
    pub fn add(&self, envelope: &Envelope) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(envelope.clone());
    }
}

impl Outbox for MemoryOutbox {
    async fn pending(&self, limit: i32) -> Result<Vec<Envelope>, OutboxError> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        Ok(pending.iter().take(limit.max(0) as usize).cloned().collect())
    }

    async fn published(&self, event_id: &str) -> Result<(), OutboxError> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).retain(|e| e.id != event_id);
        Ok(())
    }
}

/// The `main` of a service's outbox relay: a function on a schedule that publishes what its
/// service's outbox still holds. `outbox` and `publisher` are built once, at cold start.
pub async fn run_relay<O: Outbox, P: Publish + Sync>(outbox: O, publisher: P) -> Result<(), lambda_runtime::Error> {
    let (outbox, publisher) = (&outbox, &publisher);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let report = relay(outbox, publisher).await.map_err(lambda_runtime::Error::from)?;
            if report.published > 0 || report.failed > 0 {
                tracing::info!(published = report.published, failed = report.failed, "outbox relayed");
            }
            Ok::<_, lambda_runtime::Error>(report)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlation::CorrelationId;
    use crate::events::{Event, OrderCompleted};
    use crate::publisher::{MemoryPublisher, PublishError};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Fails while `down` is set.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        inner: MemoryPublisher,
    }

    impl Publish for Flaky {
        async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(PublishError::Sns("unreachable".into()));
            }
            self.inner.publish(envelope).await
        }
    }

    fn event() -> Envelope {
        Envelope::new(
            Event::OrderCompleted(OrderCompleted { order_id: "o".into(), user_id: "u".into(), total_cents: 1 }),
            &CorrelationId::generate(),
        )
    }

    #[tokio::test]
    async fn an_event_that_could_not_be_published_is_relayed_later() {
        let (outbox, publisher) = (MemoryOutbox::default(), Flaky::default());
        let envelope = event();
        outbox.add(&envelope);
        publisher.down.store(true, Ordering::SeqCst);
        deliver(&outbox, &publisher, std::slice::from_ref(&envelope)).await;
        assert_eq!(outbox.pending(10).await.unwrap().len(), 1, "kept");
        assert_eq!(relay(&outbox, &publisher).await.unwrap(), RelayReport { published: 0, failed: 1 });

        publisher.down.store(false, Ordering::SeqCst);
        assert_eq!(relay(&outbox, &publisher).await.unwrap(), RelayReport { published: 1, failed: 0 });
        assert!(outbox.pending(10).await.unwrap().is_empty());
        assert_eq!(publisher.inner.published(), vec![envelope]);
    }

    #[tokio::test]
    async fn a_delivered_event_leaves_the_outbox() {
        let (outbox, publisher) = (MemoryOutbox::default(), MemoryPublisher::default());
        let envelope = event();
        outbox.add(&envelope);
        deliver(&outbox, &publisher, std::slice::from_ref(&envelope)).await;
        assert!(outbox.pending(10).await.unwrap().is_empty());
        assert_eq!(publisher.published().len(), 1);
    }
}

//! The transactional outbox: no event is lost between a state change and its publication.
//!
//! A service writes each event it owes in the same DynamoDB transaction as the change it
//! reports (an item `pk = "OUTBOX"`, `sk = event id`, see [`DynamoOutbox::entry`]). Right
//! after the transaction it publishes the event and deletes the item ([`deliver`]). If
//! publishing fails (or the function dies first), the item stays, and the service's outbox
//! relay, a function run every minute, publishes it ([`relay`]). An event may so go out
//! twice; consumers are idempotent on the event id. An item that is no event (corrupt, or
//! from a newer version) is parked ([`Outbox::park`]), so the events after it still go out.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::events::Envelope;
use crate::metrics::Metric;
use crate::publisher::Publish;

pub const PARTITION: &str = "OUTBOX";
/// Where [`relay`] moves items that are no event, same `sk`, with `parked_reason` and
/// `parked_at` added: out of the relay's way, kept for a person to look at.
pub const PARKED_PARTITION: &str = "OUTBOX#PARKED";

#[derive(Debug, thiserror::Error)]
#[error("outbox: {0}")]
pub struct OutboxError(pub String);

/// An outbox item as stored: its key (the event id) and its `envelope` text, if it has one.
/// Only [`relay`] parses it, so that one corrupt item cannot hide the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub body: Option<String>,
}

impl Stored {
    pub fn envelope(&self) -> Result<Envelope, OutboxError> {
        let body = self.body.as_deref().ok_or_else(|| error("an outbox item without envelope"))?;
        serde_json::from_str(body).map_err(error)
    }
}

/// The events a service still owes.
pub trait Outbox: Send + Sync {
    /// Up to `limit` pending items, oldest first.
    fn pending(&self, limit: i32) -> impl Future<Output = Result<Vec<Stored>, OutboxError>> + Send;
    /// Forgets an event that was published.
    fn published(&self, event_id: &str) -> impl Future<Output = Result<(), OutboxError>> + Send;
    /// Moves an item that is no event out of the pending ones, keeping all it holds.
    fn park(&self, item: &Stored, reason: &str) -> impl Future<Output = Result<(), OutboxError>> + Send;
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
    /// Items that are no event, moved aside (see [`Outbox::park`]).
    pub parked: usize,
}

/// Publishes every pending event (the scheduled relay's whole job).
pub async fn relay<O: Outbox, P: Publish + Sync>(outbox: &O, publisher: &P) -> Result<RelayReport, OutboxError> {
    let mut report = RelayReport::default();
    loop {
        let pending = outbox.pending(100).await?;
        let batch = pending.len();
        for item in pending {
            let envelope = match item.envelope() {
                Ok(envelope) => envelope,
                Err(reason) => {
                    // No retry will parse it: set it aside, or it blocks every event after it.
                    let reason = reason.to_string();
                    match outbox.park(&item, &reason).await {
                        Ok(()) => {
                            tracing::error!(%reason, event_id = %item.id, "unparseable outbox item parked");
                            crate::metrics::count(Metric::OutboxParked, ("Service", "outbox"), 1);
                            report.parked += 1;
                        }
                        Err(error) => {
                            tracing::error!(%error, %reason, event_id = %item.id, "unparseable outbox item not parked");
                            report.failed += 1;
                        }
                    }
                    continue;
                }
            };
            match publisher.publish(&envelope).await {
                Ok(()) => {
                    outbox.published(&item.id).await?;
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
    async fn pending(&self, limit: i32) -> Result<Vec<Stored>, OutboxError> {
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
        let text = |item: &crate::dynamo::Item, name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        Ok(found
            .items()
            .iter()
            .map(|item| Stored { id: text(item, "sk").unwrap_or_default(), body: text(item, "envelope") })
            .collect())
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

    async fn park(&self, item: &Stored, reason: &str) -> Result<(), OutboxError> {
        use aws_sdk_dynamodb::types::Delete;
        let table = crate::dynamo::Table::new(self.client.clone(), &self.table);
        let key = crate::dynamo::key(PARTITION, &item.id);
        // The whole item as stored, not only what `pending` understood of it.
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        let Some(mut parked) = found.item else { return Ok(()) };
        parked.insert("pk".into(), AttributeValue::S(PARKED_PARTITION.to_owned()));
        parked.insert("parked_reason".into(), AttributeValue::S(reason.to_owned()));
        parked.insert("parked_at".into(), AttributeValue::S(chrono::Utc::now().to_rfc3339()));
        let put = Put::builder().table_name(&self.table).set_item(Some(parked)).build().map_err(error)?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(error)?;
        // Copy and delete in one transaction: the item is in one place or the other, never lost.
        // A failed condition: someone else removed it meanwhile, nothing to park.
        table
            .transact(vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder().delete(delete).build(),
            ])
            .await
            .map_err(error)?;
        Ok(())
    }
}

/// An in-memory outbox for unit tests: `add` plays the part of the transaction.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    pending: Mutex<Vec<Stored>>,
    parked: Mutex<Vec<Stored>>,
}

impl MemoryOutbox {
    pub fn add(&self, envelope: &Envelope) {
        let body = serde_json::to_string(envelope).expect("an envelope serialises");
        self.add_stored(Stored { id: envelope.id.clone(), body: Some(body) });
    }

    /// Adds an item as it could be stored (a corrupt one, say).
    pub fn add_stored(&self, item: Stored) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(item);
    }

    /// The items parked, as they were stored.
    pub fn parked(&self) -> Vec<Stored> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Outbox for MemoryOutbox {
    async fn pending(&self, limit: i32) -> Result<Vec<Stored>, OutboxError> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        Ok(pending.iter().take(limit.max(0) as usize).cloned().collect())
    }

    async fn published(&self, event_id: &str) -> Result<(), OutboxError> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).retain(|e| e.id != event_id);
        Ok(())
    }

    async fn park(&self, item: &Stored, _reason: &str) -> Result<(), OutboxError> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = pending.iter().position(|p| p.id == item.id) {
            self.parked.lock().unwrap_or_else(|e| e.into_inner()).push(pending.remove(at));
        }
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
            if report.published > 0 || report.failed > 0 || report.parked > 0 {
                let RelayReport { published, failed, parked } = report;
                tracing::info!(published, failed, parked, "outbox relayed");
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
        assert_eq!(relay(&outbox, &publisher).await.unwrap(), RelayReport { published: 0, failed: 1, parked: 0 });

        publisher.down.store(false, Ordering::SeqCst);
        assert_eq!(relay(&outbox, &publisher).await.unwrap(), RelayReport { published: 1, failed: 0, parked: 0 });
        assert!(outbox.pending(10).await.unwrap().is_empty());
        assert_eq!(publisher.inner.published(), vec![envelope]);
    }

    #[tokio::test]
    async fn a_corrupt_item_is_parked_and_the_events_after_it_still_go_out() {
        let (outbox, publisher) = (MemoryOutbox::default(), MemoryPublisher::default());
        let corrupt = Stored { id: "01CORRUPT".into(), body: Some(r#"{"id":"01CORRUPT","detail-type":"#.into()) };
        let empty = Stored { id: "01EMPTY".into(), body: None };
        outbox.add_stored(corrupt.clone());
        outbox.add_stored(empty.clone());
        let (first, second) = (event(), event());
        outbox.add(&first);
        outbox.add(&second);

        let report = relay(&outbox, &publisher).await.unwrap();
        assert_eq!(report, RelayReport { published: 2, failed: 0, parked: 2 });
        assert_eq!(publisher.published(), vec![first, second]);
        assert!(outbox.pending(10).await.unwrap().is_empty(), "nothing is left in the way");
        assert_eq!(outbox.parked(), vec![corrupt, empty], "kept as stored");
        assert_eq!(relay(&outbox, &publisher).await.unwrap(), RelayReport::default(), "parked stays parked");
    }

    #[tokio::test]
    async fn dynamodb_parks_the_whole_item_in_one_transaction() {
        let requests = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let client = crate::dynamo::fake(move |operation, request| {
            seen.lock().unwrap().push((operation.to_owned(), request));
            match operation {
                "GetItem" => {
                    let item = r#"{"pk":{"S":"OUTBOX"},"sk":{"S":"01X"},"envelope":{"M":{"id":{"S":"01X"}}},"extra":{"N":"7"}}"#;
                    (200, format!(r#"{{"Item":{item}}}"#))
                }
                _ => (200, "{}".to_owned()),
            }
        })
        .await;
        let outbox = DynamoOutbox::new(client, "shop");
        outbox.park(&Stored { id: "01X".into(), body: None }, "an outbox item without envelope").await.unwrap();

        let requests = requests.lock().unwrap();
        assert_eq!(requests.iter().map(|(op, _)| op.as_str()).collect::<Vec<_>>(), ["GetItem", "TransactWriteItems"]);
        let items = &requests[1].1["TransactItems"];
        let put = &items[0]["Put"]["Item"];
        assert_eq!(put["pk"]["S"], PARKED_PARTITION);
        assert_eq!(put["sk"]["S"], "01X");
        assert_eq!(put["envelope"]["M"]["id"]["S"], "01X", "kept as stored");
        assert_eq!(put["extra"]["N"], "7");
        assert_eq!(put["parked_reason"]["S"], "an outbox item without envelope");
        assert_eq!(items[1]["Delete"]["Key"], serde_json::json!({"pk": {"S": "OUTBOX"}, "sk": {"S": "01X"}}));
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

//! The one SQS batch runner of every queue consumer: each message is parsed and handled on
//! its own; a failed message is reported in `batchItemFailures` (so SQS redelivers it, and
//! after maxReceiveCount moves it to the DLQ) and the rest of the batch is unaffected.
//! Requires `FunctionResponseTypes: [ReportBatchItemFailures]` on the event source.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

use crate::events::Envelope;
use crate::logging;
use crate::metrics::{self, Metric};

tokio::task_local! {
    /// When the invocation handling the current batch is ended by Lambda (its deadline).
    static DEADLINE: SystemTime;
}

/// Time left before Lambda ends the current invocation, inside [`run`]'s handlers. Work
/// started in an invocation cannot outlive it, so neither need its idempotency claims: a
/// claim left behind by a failed attempt then expires before SQS redelivers the message
/// (the queue's visibility timeout is at least the function's timeout).
pub fn invocation_time_left() -> Option<Duration> {
    DEADLINE.try_with(|deadline| deadline.duration_since(SystemTime::now()).unwrap_or_default()).ok()
}

/// Runs `handler` for every message of every batch, as the function's whole `main` loop.
pub async fn run<F, Fut, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    serve(|event| handle_batch(event, &handler)).await
}

/// [`run`] for a queue of messages that are no envelopes (a provider's notifications, such as
/// SES feedback): `handler` gets each body as it is.
pub async fn run_bodies<F, Fut, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    serve(|event| handle_each(event, |message| handle_body(message, &handler))).await
}

/// The Lambda loop of both: each batch through `batch`, within its invocation's deadline.
async fn serve<B, Fut>(batch: B) -> Result<(), lambda_runtime::Error>
where
    B: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        let batch = batch(event.payload);
        async move { Ok::<_, std::convert::Infallible>(DEADLINE.scope(deadline, batch).await) }
    }))
    .await
}

async fn handle_body<F, Fut, E>(message: SqsMessage, handler: &F) -> Result<(), String>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let failed = failure_of(&message);
    let message_id = message.message_id.unwrap_or_default();
    let span = logging::request_span(&message_id, "");
    match handler(message.body.unwrap_or_default()).instrument(span.clone()).await {
        Ok(()) => Ok(()),
        Err(error) => {
            span.in_scope(|| tracing::error!(%error, "handling failed; the message will be retried"));
            failed(message_id)
        }
    }
}

/// Handles one batch, in order, and reports the messages that failed.
pub async fn handle_batch<F, Fut, E>(event: SqsEvent, handler: &F) -> SqsBatchResponse
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    handle_each(event, |message| handle_message(message, handler)).await
}

/// Each message of `event` through `handle`, in order; the ids of those that failed.
async fn handle_each<'a, H, Fut>(event: SqsEvent, handle: H) -> SqsBatchResponse
where
    H: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), String>> + 'a,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        // Type-erased, so a consumer's deeply nested future does not nest into every caller's
        // type (which would need a raised `recursion_limit` in each consumer's `main`).
        let handled: std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + 'a>> = Box::pin(handle(message));
        if let Err(message_id) = handled.await {
            // An empty identifier makes Lambda retry the whole batch: the safe answer for a
            // message that SQS did not give an id (which it always does).
            response.add_failure(message_id);
        }
    }
    response
}

async fn handle_message<F, Fut, E>(message: SqsMessage, handler: &F) -> Result<(), String>
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let last_attempt = is_last_attempt(&message, max_receive_count());
    let failed = failure_of(&message);
    let message_id = message.message_id.unwrap_or_default();
    let body = message.body.unwrap_or_default();
    // A type this build does not know (a newer publisher, a prefix filter) is not poison:
    // it is acknowledged and skipped, not retried into the DLQ.
    if let Some(unknown) = unknown_event_type(&body) {
        let span = logging::request_span(&message_id, "");
        span.in_scope(|| tracing::warn!(event_type = %unknown, "skipping an event type this consumer does not know"));
        return Ok(());
    }
    let envelope = match serde_json::from_str::<Envelope>(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            let span = logging::request_span(&message_id, "");
            span.in_scope(|| tracing::error!(%error, "message is not a known event envelope"));
            return failed(message_id);
        }
    };
    let span = logging::request_span(&message_id, &envelope.correlationid.clone());
    let (event_id, event_type) = (envelope.id.clone(), envelope.event_type());
    match handler(envelope).instrument(span.clone()).await {
        Ok(()) => Ok(()),
        Err(error) => {
            span.in_scope(
                || tracing::error!(%error, event_id, event_type, last_attempt, "handling failed; the message will be retried"),
            );
            failed(message_id)
        }
    }
}

fn max_receive_count() -> u64 {
    crate::config::parsed("MAX_RECEIVE_COUNT", 0u64).unwrap_or(0)
}

/// How a failure of `message` is answered: its id, for `batchItemFailures`, counted as a DLQ
/// redrive when this was its last attempt.
fn failure_of(message: &SqsMessage) -> impl Fn(String) -> Result<(), String> + use<> {
    let last_attempt = is_last_attempt(message, max_receive_count());
    let queue = message.event_source_arn.as_deref().and_then(|arn| arn.rsplit(':').next()).unwrap_or("").to_owned();
    move |message_id: String| {
        if last_attempt {
            metrics::count(Metric::DlqRedrives, ("Queue", &queue), 1);
        }
        Err(message_id)
    }
}

/// Whether SQS moves the message to its DLQ if it fails now: its receive count has reached
/// the queue's maxReceiveCount (`MAX_RECEIVE_COUNT`, set from the template's parameter; 0 =
/// unknown).
fn is_last_attempt(message: &SqsMessage, max_receive_count: u64) -> bool {
    let received: u64 = message.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
    max_receive_count > 0 && received >= max_receive_count
}

/// The `type` of a readable envelope, if it is not one of the catalogue's.
fn unknown_event_type(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TypeOnly {
        #[serde(rename = "type")]
        event_type: String,
    }
    // Only an object is an envelope: serde would also read `TypeOnly` from an array such as
    // `["x"]`, and so acknowledge poison instead of reporting it.
    if !body.trim_start().starts_with('{') {
        return None;
    }
    let TypeOnly { event_type } = serde_json::from_str(body).ok()?;
    (!crate::events::Event::TYPES.contains(&event_type.as_str())).then_some(event_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn time_left_is_the_invocations_inside_it_and_unknown_outside() {
        assert_eq!(invocation_time_left(), None);
        let deadline = SystemTime::now() + Duration::from_secs(10);
        let left = DEADLINE.scope(deadline, async { invocation_time_left() }).await.unwrap();
        assert!(left > Duration::from_secs(9) && left <= Duration::from_secs(10), "{left:?}");
        let gone = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(DEADLINE.scope(gone, async { invocation_time_left() }).await, Some(Duration::ZERO));
    }
    use crate::correlation::CorrelationId;
    use crate::events::{Event, OrderCompleted};

    fn message(id: &str, body: String) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.into());
        message.body = Some(body);
        message
    }

    fn envelope(order_id: &str) -> String {
        let event =
            Event::OrderCompleted(OrderCompleted { order_id: order_id.into(), user_id: "u".into(), total_cents: 1 });
        serde_json::to_string(&Envelope::new(event, &CorrelationId::generate())).unwrap()
    }

    fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = messages;
        event
    }

    async fn fail_order_2(envelope: Envelope) -> Result<(), String> {
        match envelope.event {
            Event::OrderCompleted(e) if e.order_id == "o2" => Err("boom".into()),
            _ => Ok(()),
        }
    }

    #[test]
    fn the_last_attempt_is_the_one_at_max_receive_count() {
        let mut message = SqsMessage::default();
        assert!(!is_last_attempt(&message, 5));
        message.attributes.insert("ApproximateReceiveCount".into(), "5".into());
        assert!(is_last_attempt(&message, 5));
        assert!(!is_last_attempt(&message, 6));
        assert!(!is_last_attempt(&message, 0), "unknown maxReceiveCount: never claimed");
    }

    #[tokio::test]
    async fn only_the_failed_middle_message_is_reported() {
        let event =
            batch(vec![message("m1", envelope("o1")), message("m2", envelope("o2")), message("m3", envelope("o3"))]);
        let response = handle_batch(event, &fail_order_2).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["m2"]);
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["batchItemFailures"][0]["itemIdentifier"], "m2");
    }

    #[tokio::test]
    async fn a_malformed_body_fails_only_itself() {
        let event = batch(vec![message("m1", "not json".into()), message("m2", envelope("o1"))]);
        let response = handle_batch(event, &fail_order_2).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(response.batch_item_failures[0].item_identifier, "m1");
    }

    #[tokio::test]
    async fn an_unknown_event_type_is_skipped_not_failed() {
        let mut newer: serde_json::Value = serde_json::from_str(&envelope("o1")).unwrap();
        newer["type"] = "order.teleported".into();
        let event = batch(vec![message("m1", newer.to_string())]);
        let response = handle_batch(event, &|_: Envelope| async { Err::<(), _>("must not be called") }).await;
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn an_array_with_an_unknown_type_is_poison_not_skipped() {
        // Found by fuzzing: `["x"]` was read as an envelope of type "x" and acknowledged.
        let event = batch(vec![message("m1", r#"["order.teleported"]"#.into()), message("m2", "[\"\"]".into())]);
        let response = handle_batch(event, &fail_order_2).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["m1", "m2"]);
    }

    #[tokio::test]
    async fn a_clean_batch_reports_nothing() {
        let event = batch(vec![message("m1", envelope("o1"))]);
        let response = handle_batch(event, &fail_order_2).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(serde_json::to_value(&response).unwrap()["batchItemFailures"], serde_json::json!([]));
    }
}

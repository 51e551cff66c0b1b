//! SQS event sources, as Lambda's event source mapping runs them: receive up to BatchSize
//! messages within MaximumBatchingWindowInSeconds, invoke the function with a real SQS event,
//! delete what succeeded, and leave the rest (the reported `batchItemFailures`, or all of
//! the batch on a function error) to reappear after the queue's visibility timeout, so the
//! emulator's redrive moves poison messages to the DLQ exactly as on AWS.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use axum::body::Bytes;
use serde_json::{Map, Value, json};

use crate::functions::QueueSource;
use crate::runtime::Runtime;

/// What one batch came to.
#[derive(Debug, Default, PartialEq)]
pub struct BatchOutcome {
    pub received: usize,
    pub deleted: usize,
    pub failed: usize,
}

/// Polls `source` for `function` until the task is dropped.
pub async fn run(sqs: aws_sdk_sqs::Client, runtime: Runtime, function: String, source: QueueSource, region: String) {
    loop {
        // Taken before the check, so that disabling waits for a batch it did not stop in time.
        let Some(polling) = runtime.polling(&function).await else { return };
        if !runtime.event_sources_enabled(&function) {
            drop(polling);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let polled = poll_once(&sqs, &runtime, &function, &source, &region).await;
        drop(polling);
        if let Err(error) = polled {
            eprintln!("[{function}] polling {} failed: {error}; retrying", source.queue_url);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Receives one batch (long-polling up to 1 s while empty) and hands it to the function.
pub async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    runtime: &Runtime,
    function: &str,
    source: &QueueSource,
    region: &str,
) -> anyhow::Result<BatchOutcome> {
    let batch_size = source.batch_size.max(1);
    let mut messages: Vec<Message> = Vec::new();
    let mut window_end: Option<tokio::time::Instant> = None;
    loop {
        let remaining = batch_size - messages.len();
        let wait = match window_end {
            None => 1,
            // Whole seconds only: round up, so the end of a window is waited for, not spun on.
            Some(end) => {
                let left = end.saturating_duration_since(tokio::time::Instant::now());
                i32::from(!left.is_zero())
            }
        };
        let received = sqs
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(remaining.min(10) as i32)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        messages.extend(received.messages().iter().cloned());
        if messages.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let end = *window_end.get_or_insert_with(|| tokio::time::Instant::now() + source.batching_window);
        if messages.len() >= batch_size || tokio::time::Instant::now() >= end {
            break;
        }
    }

    let event = sqs_event(&messages, &source.queue_arn, region);
    let all: Vec<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
    let trace = trace_id(&messages).unwrap_or_else(crate::xray::new_trace_id);
    let correlation_ids = record_waits(runtime, &messages, &source.queue_url, &trace);
    let failed: HashSet<String> =
        match runtime.invoke_for(function, Bytes::from(event.to_string()), Some(trace), correlation_ids).await {
            Ok(invocation) if source.report_batch_item_failures => {
                let response: Value = serde_json::from_slice(&invocation.payload).unwrap_or(Value::Null);
                let reported: Vec<Option<String>> = response["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| f["itemIdentifier"].as_str().filter(|id| all.contains(id)).map(str::to_owned))
                    .collect();
                if reported.iter().any(Option::is_none) {
                    // An empty or unknown identifier fails the whole batch, as on AWS.
                    all.iter().map(|id| id.to_string()).collect()
                } else {
                    reported.into_iter().flatten().collect()
                }
            }
            Ok(_) => HashSet::new(),
            Err(error) => {
                eprintln!("[{function}] batch of {} failed: {error}; it will be retried", messages.len());
                all.iter().map(|id| id.to_string()).collect()
            }
        };
    let mut outcome = BatchOutcome { received: messages.len(), deleted: 0, failed: failed.len() };
    for message in messages.iter().filter(|m| !m.message_id().is_some_and(|id| failed.contains(id))) {
        if let Some(handle) = message.receipt_handle() {
            sqs.delete_message().queue_url(&source.queue_url).receipt_handle(handle).send().await?;
            outcome.deleted += 1;
        }
    }
    Ok(outcome)
}

/// Each message's wait in the queue (sent to delivered) as a span of the batch's trace, with
/// the correlation id its publisher gave it: how the console joins a consumer to its request.
/// The batch's correlation ids.
fn record_waits(runtime: &Runtime, messages: &[Message], queue_url: &str, trace_id: &str) -> Vec<String> {
    let now = crate::console::now_ms();
    let queue = crate::console::queue_name(queue_url);
    let mut batch = Vec::new();
    for message in messages {
        let correlation =
            message.message_attributes().and_then(|a| a.get("correlation_id")?.string_value.clone()).or_else(|| {
                serde_json::from_str::<Value>(message.body()?).ok()?["correlationid"].as_str().map(str::to_owned)
            });
        if let Some(id) = &correlation
            && !batch.contains(id)
        {
            batch.push(id.clone());
        }
        let sent = message.attributes().and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp));
        let Some(sent) = sent.and_then(|t| t.parse::<f64>().ok()) else { continue };
        runtime.console().record(crate::console::Span {
            trace_id: trace_id.to_owned(),
            correlation_ids: correlation.into_iter().collect(),
            kind: "queue",
            name: queue.to_owned(),
            caller: None,
            target: None,
            start_ms: sent,
            duration_ms: (now - sent).max(0.0),
            init_ms: None,
            outcome: "delivered".into(),
        });
    }
    batch
}

/// The trace a batch's invocation continues, as Lambda does: its first message's
/// `AWSTraceHeader` (SQS sets it on a message sent in a trace), if valid.
pub fn trace_id(messages: &[Message]) -> Option<String> {
    let header = messages.first()?.attributes()?.get(&MessageSystemAttributeName::AwsTraceHeader)?;
    crate::xray::trace_id_of(header).map(str::to_owned)
}

/// The SQS event Lambda delivers for `messages`.
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                .collect();
            let message_attributes: Map<String, Value> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| {
                    let attribute = json!({
                        "stringValue": value.string_value(),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.data_type(),
                    });
                    (name.clone(), attribute)
                })
                .collect();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({"Records": records})
}

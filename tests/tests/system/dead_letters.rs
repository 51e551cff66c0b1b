//! A message that its consumer keeps failing is redelivered until maxReceiveCount, then the
//! emulator moves it to that queue's DLQ, for every queue of the template. The consumer side
//! is the shared batch runner, exactly as deployed functions use it.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use shared::Envelope;
use shared::batch::handle_batch;
use system_tests::{QUEUES, depth, emulator, provision, sample_envelopes, template, unique_stack_name};

fn as_lambda_event(messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id().map(str::to_owned);
            record.receipt_handle = m.receipt_handle().map(str::to_owned);
            record.body = m.body().map(str::to_owned);
            record
        })
        .collect();
    event
}

async fn always_fails(_: Envelope) -> Result<(), String> {
    Err("downstream is broken".into())
}

#[tokio::test]
async fn a_poison_message_ends_in_its_queues_dlq_after_max_receive_count() {
    let config = emulator().await;
    let stack = provision(&config, &unique_stack_name()).await.expect("provisioned");
    let max_receive_count: usize = template().parameters["MaxReceiveCount"]["Default"].as_u64().unwrap() as usize;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let body = serde_json::to_string(&sample_envelopes()[0]).unwrap();

    for queue in QUEUES {
        let url = stack.reference(queue).unwrap();
        let dlq = stack.reference(&queue.replace("Queue", "Dlq")).unwrap();
        sqs.send_message().queue_url(url).message_body(&body).send().await.unwrap();

        let mut receives = 0;
        loop {
            // VisibilityTimeout 0: a failed message is visible again at once, as if its
            // (60 s) timeout had passed.
            let received = sqs
                .receive_message()
                .queue_url(url)
                .visibility_timeout(0)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = received.messages();
            if messages.is_empty() {
                break;
            }
            receives += 1;
            assert!(receives <= max_receive_count, "{queue}: delivered more than maxReceiveCount times");
            let response = handle_batch(as_lambda_event(messages), &always_fails).await;
            assert_eq!(response.batch_item_failures.len(), 1, "{queue}: the failure is reported");
        }
        assert_eq!(receives, max_receive_count, "{queue}: delivered maxReceiveCount times");
        assert_eq!(depth(&sqs, dlq).await.unwrap(), 1, "{queue}: the message is in the DLQ");
        let moved = sqs.receive_message().queue_url(dlq).send().await.unwrap();
        assert_eq!(moved.messages()[0].body(), Some(body.as_str()));
    }
}

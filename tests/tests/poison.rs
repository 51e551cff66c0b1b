//! Poison messages with the real consumers running: a message no consumer can read is
//! retried until maxReceiveCount and then lands in its queue's DLQ, for every queue.

use std::time::Duration;

use system_tests::{LocalApi, QUEUES, depth, emulator};

#[tokio::test]
async fn a_malformed_message_reaches_every_queues_dlq() {
    // A 1 s visibility timeout, so five receives take seconds, not minutes.
    let api = LocalApi::start_with(&[("QueueVisibilitySeconds", "1")]).await;
    let sqs = aws_sdk_sqs::Client::new(&emulator().await);
    for queue in QUEUES {
        sqs.send_message().queue_url(api.reference(queue)).message_body("{not an event").send().await.unwrap();
    }
    for queue in QUEUES {
        let dlq = api.reference(&queue.replace("Queue", "Dlq"));
        let landed = system_tests::eventually(Duration::from_secs(60), || async {
            (depth(&sqs, &dlq).await.ok()? == 1).then_some(())
        })
        .await;
        assert!(landed.is_some(), "{queue}: the poison message did not reach the DLQ");
        assert_eq!(depth(&sqs, &api.reference(queue)).await.unwrap(), 0, "{queue}: nothing left behind");
    }
}

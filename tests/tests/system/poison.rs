//! Poison messages with the real consumers running. A message no consumer can read sits in
//! every queue beside real work (a checkout's events), delivered in the same batches: the
//! real work is done once, the poison is retried until maxReceiveCount, then lands in its
//! queue's DLQ, where the depth alarm's metric sees it, and the consumer counts it in its
//! `DlqRedrives` metric for that queue.

use std::time::Duration;

use serde_json::Value;
use system_tests::shop::Shop;
use system_tests::{QUEUES, depth, emulator, eventually};

const POISON: &str = "{not an event";

#[tokio::test]
async fn poison_beside_real_work_ends_in_the_dlq_and_is_counted_and_the_work_is_done_once() {
    // A 1 s visibility timeout, so five receives take seconds, not minutes.
    let shop = Shop::open(&[("QueueVisibilitySeconds", "1")]).await;
    let sqs = aws_sdk_sqs::Client::new(&emulator().await);
    let template = system_tests::template();
    let consumers: Vec<&str> =
        QUEUES.iter().flat_map(|queue| devstack::asyncapi::consumers_of(&template, queue)).collect();
    assert_eq!(consumers.len(), QUEUES.len(), "one consumer per queue: {consumers:?}");

    // The seller first, consumers running: the admin approves a seller once the Seller service
    // made their profile from `user.registered`.
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 5).await;

    // Consumers paused (their event sources disabled): the poison and a checkout's events wait
    // together, so the first batches hold both.
    for consumer in &consumers {
        shop.api.set_event_sources(consumer, false).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await; // a long poll already under way ends
    for queue in QUEUES {
        sqs.send_message().queue_url(shop.api.reference(queue)).message_body(POISON).send().await.unwrap();
    }
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &product, 1).await;
    let placed: Value = shop.checkout(&customer, "tok_visa", None).await.json().await.unwrap();
    let order_id = placed["order_id"].as_str().expect("an order").to_owned();
    for consumer in &consumers {
        shop.api.set_event_sources(consumer, true).await;
    }

    let order = shop.wait_for_order(&customer, &order_id, Duration::from_secs(60), |o| o["status"] == "paid").await;
    assert_eq!(order["status"], "paid", "the real work is done: {order}");
    for queue in QUEUES {
        let dlq = shop.api.reference(&queue.replace("Queue", "Dlq"));
        let landed =
            eventually(Duration::from_secs(60), || async { (depth(&sqs, &dlq).await.ok()? >= 1).then_some(()) }).await;
        assert!(landed.is_some(), "{queue}: the poison message did not reach the DLQ");
        // What the DLQ depth alarm watches (ApproximateNumberOfMessagesVisible > 0): exactly the poison.
        let dead = system_tests::drain(&sqs, &dlq).await.unwrap();
        let bodies: Vec<&str> = dead.iter().filter_map(|m| m.body()).collect();
        assert_eq!(bodies, [POISON], "{queue}: only the poison is dead");
    }
    let mut templates = shop
        .wait_for_notifications(
            &customer,
            &["welcome", "order_confirmation", "payment_receipt"],
            Duration::from_secs(30),
        )
        .await;
    templates.sort();
    assert_eq!(templates, ["order_confirmation", "payment_receipt", "welcome"], "each once");

    // One DlqRedrives count per queue, dimension Queue = that queue's name.
    let counted: Vec<(String, u64)> = shop
        .api
        .log_lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(&line[line.find('{')?..]).ok())
        .filter(|emf| emf["DlqRedrives"].is_u64())
        .map(|emf| (emf["Queue"].as_str().unwrap_or_default().to_owned(), emf["DlqRedrives"].as_u64().unwrap()))
        .collect();
    for queue in QUEUES {
        let name = shop.api.reference(queue).rsplit('/').next().unwrap().to_owned();
        let for_queue: u64 = counted.iter().filter(|(q, _)| *q == name).map(|(_, n)| n).sum();
        assert_eq!(for_queue, 1, "{queue}: DlqRedrives counted {for_queue} times (all counts: {counted:?})");
    }
}

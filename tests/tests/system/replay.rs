//! Duplicates and reordering. A shop runs a paid order that is shipped and delivered, a failed
//! settlement, a cancel after payment and a seller's suspension and approval, which publishes
//! every event type of the catalogue; a queue subscribed to
//! every topic records what was published. Then:
//! - the same stack gets every one of those events again, shuffled, two or three times each:
//!   nothing changes in any table and nothing lands in a DLQ;
//! - a fresh stack gets them shuffled and duplicated as its first delivery: the consumers
//!   that need no earlier state (notifications, AI Buddy, cart purchases) end exactly where
//!   the in-order run ended, and no notification is sent twice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shared::Envelope;
use shared::publisher::Publish;
use system_tests::shop::Shop;
use system_tests::{LocalApi, emulator, eventually};

const TABLES: [&str; 7] =
    ["AuthTable", "SellerTable", "CartTable", "OrderTable", "PaymentTable", "NotificationTable", "AiBuddyTable"];

fn to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!(s),
        AttributeValue::N(n) => json!(n.parse::<f64>().unwrap()),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(list) => list.iter().map(to_json).collect(),
        AttributeValue::M(map) => {
            map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect::<serde_json::Map<_, _>>().into()
        }
        AttributeValue::Ss(set) => json!(set),
        AttributeValue::Ns(set) => json!(set),
        other => json!(format!("{other:?}")),
    }
}

async fn dump(dynamo: &aws_sdk_dynamodb::Client, api: &LocalApi) -> BTreeMap<&'static str, Vec<Value>> {
    let mut tables = BTreeMap::new();
    for table in TABLES {
        let items: Vec<HashMap<String, AttributeValue>> = dynamo
            .scan()
            .table_name(api.reference(table))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .unwrap();
        let mut rows: Vec<Value> = items
            .iter()
            .map(|i| i.iter().map(|(k, v)| (k.clone(), to_json(v))).collect::<serde_json::Map<_, _>>().into())
            .collect();
        rows.sort_by_key(|r| format!("{}|{}", r["pk"], r["sk"]));
        tables.insert(table, rows);
    }
    tables
}

const DEADLINE: Duration = Duration::from_secs(90);

/// A seeded shuffle (xorshift): the seed is printed, so a failing order can be replayed.
/// The rows of `now` that are not in `start` as they were.
fn since(
    start: &BTreeMap<&'static str, Vec<Value>>,
    mut now: BTreeMap<&'static str, Vec<Value>>,
) -> BTreeMap<&'static str, Vec<Value>> {
    for (table, rows) in now.iter_mut() {
        rows.retain(|row| !start[table].contains(row));
    }
    now
}

fn shuffled<T: Clone>(items: &[T], copies: impl Fn(usize) -> usize, seed: u64) -> Vec<T> {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut all: Vec<T> = items.iter().enumerate().flat_map(|(i, item)| vec![item.clone(); copies(i)]).collect();
    for i in (1..all.len()).rev() {
        all.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    all
}

/// What the consumers that need no earlier state wrote, without what differs by run (times,
/// generated notification ids, claim tokens) or what the API wrote (carts, checkouts).
fn event_made(tables: &BTreeMap<&'static str, Vec<Value>>) -> BTreeMap<&'static str, Vec<Value>> {
    let mut kept = BTreeMap::new();
    for table in ["NotificationTable", "AiBuddyTable", "CartTable"] {
        let mut rows: Vec<Value> = tables[table]
            .iter()
            // The cart table's consumer records purchases; carts and checkouts are the API's.
            .filter(|row| table != "CartTable" || row["sk"].as_str().is_some_and(|sk| sk.starts_with("PURCHASE#")))
            .map(|row| {
                let mut row = row.clone();
                let object = row.as_object_mut().unwrap();
                // item_version counts a row's writes (the condition of the next), which the
                // order of deliveries may change: bookkeeping, like the times.
                for volatile in [
                    "created_at",
                    "completed_at",
                    "updated_at",
                    "expires_at",
                    "token",
                    "notification_id",
                    "sk",
                    "item_version",
                ] {
                    object.remove(volatile);
                }
                // A notification's deliveries: when, and the provider's ids, differ per send.
                for delivery in
                    object.get_mut("deliveries").and_then(Value::as_object_mut).into_iter().flat_map(|d| d.values_mut())
                {
                    if let Some(delivery) = delivery.as_object_mut() {
                        delivery.remove("at");
                        delivery.remove("provider_message_id");
                    }
                }
                row
            })
            .collect();
        rows.sort_by_key(|r| r.to_string());
        kept.insert(table, rows);
    }
    kept
}

fn notifications_per_event(tables: &BTreeMap<&'static str, Vec<Value>>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for row in tables["NotificationTable"].iter().filter(|r| r["sk"].as_str().is_some_and(|s| s.starts_with("NOTIF#")))
    {
        *counts.entry(row["event_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_shuffled_events_change_nothing_and_converge() {
    let config = emulator().await;
    let (sqs, dynamo) = (aws_sdk_sqs::Client::new(&config), aws_sdk_dynamodb::Client::new(&config));
    // A 2 s visibility timeout: a consumer that fails on an early event retries it soon.
    let parameters = [("QueueVisibilitySeconds", "2")];
    let shop = Shop::open(&parameters).await;
    // What the stack made of itself as it started (its admin's registration), before the
    // recorder listened: no replay can make that, so the second comparison leaves it out.
    system_tests::wait_for_quiet(&sqs, &shop.api, DEADLINE).await;
    let at_start = dump(&dynamo, &shop.api).await;
    let topics = system_tests::TOPICS.map(|(_, topic)| topic);
    let recorded = system_tests::recorder(&config, &shop.api, &topics).await;

    // The in-order run: one paid order, one failed settlement, one cancel after payment.
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 10).await;
    let customer = shop.register("customer").await;
    let mut orders = Vec::new();
    for token in ["tok_visa", "tok_settlementFails", "tok_visa"] {
        shop.put_in_cart(&customer, &product, 1).await;
        let placed: Value = shop.checkout(&customer, token, None).await.json().await.unwrap();
        orders.push(placed["order_id"].as_str().unwrap().to_owned());
    }
    let settled = ["paid", "payment_failed", "paid"];
    for (order_id, status) in orders.iter().zip(settled) {
        let order = shop.wait_for_order(&customer, order_id, DEADLINE, |o| o["status"] == status).await;
        assert_eq!(order["status"], status, "{order}");
    }
    // The first order travels on: shipped, then delivered.
    let shipment = shop.pending_shipment(&seller, &orders[0]).await;
    let shipment_id = shipment["shipment_id"].as_str().unwrap();
    assert_eq!(shop.ship(&seller, shipment_id, "1Z999AA10123456784").await.0, reqwest::StatusCode::OK);
    assert_eq!(shop.deliver(&seller, shipment_id).await.0, reqwest::StatusCode::OK);
    assert_eq!(shop.cancel(&customer, &orders[2]).await.status(), reqwest::StatusCode::OK);
    let payment_url = format!("/payments/{}", shop.order(&customer, &orders[2]).await["payment_id"].as_str().unwrap());
    let refunded = eventually(DEADLINE, || async {
        let payment: Value = shop.get(&customer, &payment_url).await.json().await.ok()?;
        (payment["status"] == "refunded").then_some(())
    })
    .await;
    assert!(refunded.is_some(), "the cancel after payment was not refunded");
    // The seller suspended, then approved again (seller.suspended, a second seller.approved).
    assert_eq!(shop.suspend(&seller.id, "a replay test").await["status"], "suspended");
    assert_eq!(shop.approve(&seller.id).await["status"], "approved");
    system_tests::wait_for_quiet(&sqs, &shop.api, DEADLINE).await;
    let in_order = dump(&dynamo, &shop.api).await;
    assert!(
        system_tests::dead_letters(&sqs, &shop.api).await.values().all(|n| *n == 0),
        "the in-order run left dead letters"
    );

    let published: Vec<Envelope> = system_tests::drain(&sqs, &recorded)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    let types: std::collections::BTreeSet<&str> = published.iter().map(Envelope::event_type).collect();
    assert_eq!(types, shared::Event::TYPES.into_iter().collect(), "the run publishes every event type");

    let seed = std::env::var("REPLAY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let replay = shuffled(&published, |i| 2 + i % 2, seed);
    println!("replaying {} deliveries of {} events, REPLAY_SEED={seed}", replay.len(), published.len());

    // 1. The same stack again: every event is a duplicate now, however late or out of order.
    let publisher_a = system_tests::publisher(&config, |id| shop.api.reference(id));
    for envelope in &replay {
        publisher_a.publish(envelope).await.unwrap();
    }
    system_tests::wait_for_quiet(&sqs, &shop.api, DEADLINE).await;
    assert_eq!(system_tests::dead_letters(&sqs, &shop.api).await.values().sum::<u64>(), 0, "REPLAY_SEED={seed}");
    let replayed = dump(&dynamo, &shop.api).await;
    for table in TABLES {
        let gone: Vec<&Value> = in_order[table].iter().filter(|row| !replayed[table].contains(row)).collect();
        let new: Vec<&Value> = replayed[table].iter().filter(|row| !in_order[table].contains(row)).collect();
        assert!(
            gone.is_empty() && new.is_empty(),
            "{table} changed on replay (REPLAY_SEED={seed}): {gone:?} became {new:?}"
        );
    }

    // 2. A fresh stack whose first delivery is shuffled and duplicated. It has the catalogue and
    //    its sellers (AI Buddy looks products up), as any shop has before its first order.
    let fresh = LocalApi::start_with(&parameters).await;
    system_tests::wait_for_quiet(&sqs, &fresh, DEADLINE).await;
    let fresh_at_start = dump(&dynamo, &fresh).await;
    let catalogue = dynamo
        .scan()
        .table_name(shop.api.reference("SellerTable"))
        .filter_expression("begins_with(pk, :p) OR begins_with(pk, :s)")
        .expression_attribute_values(":p", AttributeValue::S("PRODUCT#".into()))
        .expression_attribute_values(":s", AttributeValue::S("SELLER#".into()))
        .send()
        .await
        .unwrap();
    for product in catalogue.items() {
        dynamo
            .put_item()
            .table_name(fresh.reference("SellerTable"))
            .set_item(Some(product.clone()))
            .send()
            .await
            .unwrap();
    }
    let publisher_b = system_tests::publisher(&config, |id| fresh.reference(id));
    for envelope in &replay {
        publisher_b.publish(envelope).await.unwrap();
    }
    // Quiet queues alone do not prove the replay has arrived: on a busy machine SNS can deliver
    // after three empty looks (CI once compared an empty NotificationTable). So wait until what
    // the in-order run made is there, each time after the queues are quiet, so that whatever
    // a duplicate makes on top is in too; past the deadline, compare what there is.
    let in_order = since(&at_start, in_order);
    let in_order_rows = event_made(&in_order);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let converged = loop {
        system_tests::wait_for_quiet(&sqs, &fresh, DEADLINE).await;
        let converged = since(&fresh_at_start, dump(&dynamo, &fresh).await);
        let made = event_made(&converged);
        let arrived = in_order_rows.iter().all(|(table, rows)| rows.iter().all(|row| made[table].contains(row)));
        if arrived || tokio::time::Instant::now() >= deadline {
            break converged;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let converged_rows = event_made(&converged);
    for (table, rows) in &in_order_rows {
        let missing: Vec<&Value> = rows.iter().filter(|row| !converged_rows[table].contains(row)).collect();
        let extra: Vec<&Value> = converged_rows[table].iter().filter(|row| !rows.contains(row)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{table} differs from the in-order run (REPLAY_SEED={seed}):\n expected {missing:?}\n found {extra:?}"
        );
    }
    let sent = notifications_per_event(&converged);
    assert!(!sent.is_empty());
    assert!(sent.values().all(|n| *n == 1), "a notification sent twice: {sent:?} (REPLAY_SEED={seed})");
    assert_eq!(sent, notifications_per_event(&in_order));
}

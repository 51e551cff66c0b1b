//! Faults, injected by a proxy between the local stack (devstack and every function) and the
//! emulator (`devstack::proxy`): the emulator becomes unreachable before a checkout, at
//! different moments during checkouts, and while the background work runs; SNS publishing
//! fails after an order is stored; a downstream function hangs (stopped) or crashes (killed)
//! under a checkout. While it is down the API answers 503 problem+json; afterwards nothing
//! is lost and nothing is done twice: every order paid once, every other authorization
//! voided, no reservation held, stock that adds up, each notification sent once, no DLQ.

use std::time::{Duration, Instant};

use devstack::proxy::AwsProxy;
use reqwest::StatusCode;
use serde_json::Value;
use system_tests::shop::{Shop, User};
use system_tests::{LocalApi, count, statuses};

const DEADLINE: Duration = Duration::from_secs(90);

/// A shop whose every AWS call goes through a fault proxy. The visibility timeout is the
/// consumers' timeout (10 s; Lambda accepts no less): a failed message comes back once its
/// attempt's claim has expired. A 1 s breaker: checkouts are retried within seconds.
async fn shop_behind_proxy() -> (Shop, AwsProxy) {
    let emulator = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let proxy = AwsProxy::start(&emulator).await.expect("the proxy starts");
    let parameters = [("QueueVisibilitySeconds", "10"), ("CircuitOpenSeconds", "1")];
    (Shop::around(LocalApi::start_through(Some(&proxy.url), &parameters).await), proxy)
}

/// A seller's product with `stock` units, and `customers` customers with one unit in their cart.
async fn customers_with_a_unit_in_cart(shop: &Shop, stock: u64, customers: usize) -> (String, Vec<User>) {
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, stock as u32).await;
    let mut found = Vec::new();
    for _ in 0..customers {
        let customer = shop.register("customer").await;
        shop.put_in_cart(&customer, &product, 1).await;
        found.push(customer);
    }
    (product, found)
}

/// Checks out with `key` again until it is not a 503 (the outage and the breaker over).
async fn until_answered(shop: &Shop, customer: &User, key: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = shop.checkout(customer, "tok_visa", Some(key)).await;
        if answer.status() != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn assert_503_problem(answer: reqwest::Response, when: &str) {
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{when}");
    assert_eq!(answer.headers()["content-type"], "application/problem+json", "{when}");
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(problem["status"], 503, "{when}: {problem}");
}

/// Everything adds up once the background work is done: each customer has their one order,
/// paid; one settled payment per order and every other authorization voided; one committed
/// reservation per order and none held; the stock; one confirmation and one receipt each;
/// no dead letters.
async fn books_balance(shop: &Shop, customers: &[User], product: &str, initial_stock: u64) {
    for customer in customers {
        let orders: Value = shop.get(customer, "/orders").await.json().await.unwrap();
        let orders = orders["items"].as_array().unwrap().clone();
        assert_eq!(orders.len(), 1, "one order per customer: {orders:?}");
        let order_id = orders[0]["order_id"].as_str().unwrap();
        let order = shop.wait_for_order(customer, order_id, DEADLINE, |o| o["status"] == "paid").await;
        assert_eq!(order["status"], "paid", "{order}");
    }
    let config = system_tests::emulator().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    system_tests::wait_for_quiet(&sqs, &shop.api, DEADLINE).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let payments = statuses(&dynamo, &shop.api.reference("PaymentTable"), "PAYMENT#").await;
    assert_eq!(count(&payments, "settled"), customers.len(), "one charge per order: {payments:?}");
    assert_eq!(count(&payments, "settled") + count(&payments, "voided"), payments.len(), "{payments:?}");
    let reservations = statuses(&dynamo, &shop.api.reference("SellerTable"), "RESERVATION#").await;
    assert_eq!(count(&reservations, "committed"), customers.len(), "{reservations:?}");
    assert_eq!(count(&reservations, "held"), 0, "a stranded reservation: {reservations:?}");
    assert_eq!(shop.stock(product).await, initial_stock - customers.len() as u64);
    for customer in customers {
        let mut sent = shop
            .wait_for_notifications(customer, &["welcome", "order_confirmation", "payment_receipt"], DEADLINE)
            .await;
        sent.sort();
        assert_eq!(sent, ["order_confirmation", "payment_receipt", "welcome"], "each once");
    }
    let dead = system_tests::dead_letters(&sqs, &shop.api).await;
    assert!(dead.values().all(|n| *n == 0), "dead letters: {dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_going_away_around_checkouts_and_background_work_loses_nothing() {
    let (shop, proxy) = shop_behind_proxy().await;
    const STOCK: u64 = 30;
    let (product, customers) = customers_with_a_unit_in_cart(&shop, STOCK, 8).await;
    // Every function started once, so a cut meets warm instances.
    assert_eq!(shop.checkout(&customers[0], "tok_visa", Some("k0")).await.status(), StatusCode::CREATED);

    // Down before the checkout: a clear 503, and the same key succeeds once it is back.
    proxy.cut("");
    let started = Instant::now();
    assert_503_problem(shop.checkout(&customers[1], "tok_visa", Some("k1")).await, "while down").await;
    println!("checkout while the emulator is unreachable: 503 after {:?}", started.elapsed());
    proxy.restore();
    assert_eq!(until_answered(&shop, &customers[1], "k1").await.status(), StatusCode::CREATED);

    // Down at different moments of a checkout, for 1.5 s: 201 or 503, then the same key
    // gives the one order.
    let mut outcomes = Vec::new();
    for (i, delay_ms) in [(2, 5), (3, 25), (4, 50), (5, 100), (6, 180), (7, 300)] {
        let key = format!("k{i}");
        let outage = async {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            proxy.cut("");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            proxy.restore();
        };
        let (first, ()) = tokio::join!(shop.checkout(&customers[i], "tok_visa", Some(&key)), outage);
        let status = first.status();
        assert!(
            [StatusCode::CREATED, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
            "cut after {delay_ms} ms: {status}"
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_503_problem(first, &format!("cut after {delay_ms} ms")).await;
        }
        let again = until_answered(&shop, &customers[i], &key).await;
        let again_status = again.status();
        let body = again.text().await.unwrap_or_default();
        assert_eq!(again_status, StatusCode::CREATED, "cut after {delay_ms} ms, retried: {body}");
        outcomes.push((delay_ms, status.as_u16()));
    }
    // Down while the consumers work through the last orders' events.
    proxy.cut("");
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    println!("cut after ms -> first answer: {outcomes:?}; calls refused: {:?}", proxy.refused());
    assert!(proxy.refused().values().sum::<u64>() > 0, "the faults were injected");

    books_balance(&shop, &customers, &product, STOCK).await;
}

/// The pids of the running instances of one function's binary under devstack.
fn instances(api: &LocalApi, binary: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", api.pid())).into_iter().flatten().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == binary) {
                found.push(pid);
            }
        }
    }
    found
}

fn signal(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_publish_is_relayed_and_a_hung_or_crashed_downstream_is_undone() {
    let (shop, proxy) = shop_behind_proxy().await;
    const STOCK: u64 = 20;
    let (product, customers) = customers_with_a_unit_in_cart(&shop, STOCK, 3).await;

    // SNS refuses every publish after the order is stored: the order stands (201) and its
    // event waits in the outbox until the relay's next run.
    proxy.cut("sns.Publish");
    let placed = shop.checkout(&customers[0], "tok_visa", Some("k0")).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order_id = placed.json::<Value>().await.unwrap()["order_id"].as_str().unwrap().to_owned();
    assert!(proxy.refused().get("sns.Publish").is_some_and(|n| *n > 0), "{:?}", proxy.refused());
    let stuck = shop.wait_for_order(&customers[0], &order_id, Duration::from_secs(3), |o| o["status"] == "paid").await;
    assert_eq!(stuck["status"], "placed", "nothing moves while the event is unpublished");
    proxy.restore();
    shop.api.run_schedule("OrderOutboxRelayFunction").await;
    let paid = shop.wait_for_order(&customers[0], &order_id, DEADLINE, |o| o["status"] == "paid").await;
    assert_eq!(paid["status"], "paid", "the relay published order.created: {paid}");

    // Reserving stock hangs (its instances stopped): the checkout answers 201 (a retry reached
    // a fresh instance) or 503 (undone); the same key then gives the one order.
    let hung = instances(&shop.api, "reserve_stock");
    assert!(!hung.is_empty(), "reserve_stock runs");
    signal(&hung, "STOP");
    let answer = shop.checkout(&customers[1], "tok_visa", Some("k1")).await;
    println!("checkout with reserve_stock hung: {}", answer.status());
    assert!([StatusCode::CREATED, StatusCode::SERVICE_UNAVAILABLE].contains(&answer.status()));
    signal(&hung, "CONT");
    assert_eq!(until_answered(&shop, &customers[1], "k1").await.status(), StatusCode::CREATED);

    // Creating the order crashes mid-invocation (its instances killed while they hold it).
    let crashing = instances(&shop.api, "create_order");
    assert!(!crashing.is_empty(), "create_order runs");
    signal(&crashing, "STOP");
    let checkout = shop.checkout(&customers[2], "tok_visa", Some("k2"));
    let crash = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        signal(&crashing, "KILL");
    };
    let (answer, ()) = tokio::join!(checkout, crash);
    println!("checkout with create_order crashing: {}", answer.status());
    assert!([StatusCode::CREATED, StatusCode::SERVICE_UNAVAILABLE].contains(&answer.status()));
    assert_eq!(until_answered(&shop, &customers[2], "k2").await.status(), StatusCode::CREATED);

    books_balance(&shop, &customers, &product, STOCK).await;
}

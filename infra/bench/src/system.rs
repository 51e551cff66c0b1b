//! The system through the local stack: checkout latency at 1, 5 and 25 cart lines, what one
//! checkout costs in AWS calls and Lambda invocations, and how long until the order is `paid`
//! with its notifications stored.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use devstack::runtime::Runtime;
use serde_json::Value;
use system_tests::shop::{ShopClient, User};

use crate::report::{CheckoutFigures, Samples};
use devstack::proxy::{self, AwsProxy, Counts, RequestUnits};

pub const LINE_COUNTS: [usize; 3] = [1, 5, 25];

/// The shop the benchmark runs against: a seller with 25 products (ample stock), a customer
/// whose credentials are the login sample's, and one order of theirs.
pub struct Setup {
    pub seller: User,
    pub customer: User,
    pub products: Vec<String>,
    pub order_id: String,
    pub payment_id: String,
}

/// The login sample's credentials (events/http-post-auth-login.json).
const SAMPLE_EMAIL: &str = "ada@example.com";
const SAMPLE_PASSWORD: &str = "correct horse";
const STOCK: u32 = 1_000_000;

impl Setup {
    /// The rest of the world around an approved `seller`.
    pub async fn create(shop: &ShopClient, seller: User) -> Result<Self> {
        let customer = shop.sign_up(SAMPLE_EMAIL, SAMPLE_PASSWORD, "customer").await;
        let mut products = Vec::new();
        for i in 0..LINE_COUNTS[2] {
            products.push(shop.product(&seller, 500 + i as u64, STOCK).await);
        }
        // The same shape as the samples' order: two units of one product, one of another.
        shop.put_in_cart(&customer, &products[0], 2).await;
        shop.put_in_cart(&customer, &products[1], 1).await;
        let order = checkout(shop, &customer).await?;
        let (order_id, payment_id) = (text(&order["order_id"]), text(&order["payment_id"]));
        Ok(Self { seller, customer, products, order_id, payment_id })
    }

    /// Sample id -> ours, for every id the samples in events/ use.
    pub fn sample_ids(&self) -> Vec<(String, String)> {
        [
            ("usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A", self.customer.id.as_str()),
            ("usr_01JD4RY9K8J7H6G5F4E3D2C1B0", self.seller.id.as_str()),
            ("prd_01JD4RZX0A1B2C3D4E5F6G7H8J", self.products[0].as_str()),
            ("prd_01JD4RZX9Z8Y7X6W5V4T3S2R1Q", self.products[1].as_str()),
            ("ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E", self.order_id.as_str()),
            ("pay_01JD4S5Q2R3S4T5V6W7X8Y9Z0A", self.payment_id.as_str()),
            ("Bearer <token>", &format!("Bearer {}", self.customer.token)),
        ]
        .into_iter()
        .map(|(sample, ours)| (sample.to_owned(), ours.to_owned()))
        .collect()
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

async fn fill_cart(shop: &ShopClient, customer: &User, products: &[String]) {
    for product in products {
        shop.put_in_cart(customer, product, 1).await;
    }
}

/// One checkout that must succeed; the order.
async fn checkout(shop: &ShopClient, customer: &User) -> Result<Value> {
    let key = ulid::Ulid::generate().to_string();
    let answer = shop.checkout(customer, "tok_visa", Some(&key)).await;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or_default();
    if status.as_u16() != 201 {
        bail!("checkout answered {status}: {body}");
    }
    Ok(body)
}

/// What one checkout costs, counted while nothing else runs (queue pollers off; the Stripe
/// webhooks localstripe sends late are left out).
pub async fn checkout_costs(
    shop: &ShopClient,
    setup: &Setup,
    runtime: &Runtime,
    proxy: &AwsProxy,
) -> Result<BTreeMap<usize, CheckoutFigures>> {
    // localstripe sends a payment's webhooks a second after the calls that made its events:
    // the previous checkout's may land while this one runs. Not this checkout's work.
    const NOT_THE_CHECKOUTS: &str = "StripeWebhookFunction";
    let calls_now = || proxy.counts_of(|caller| caller != NOT_THE_CHECKOUTS);
    let mut figures = BTreeMap::new();
    for lines in LINE_COUNTS {
        fill_cart(shop, &setup.customer, &setup.products[..lines]).await;
        let (calls_before, invocations_before) = (calls_now(), runtime.invocation_counts());
        checkout(shop, &setup.customer).await?;
        let calls = proxy::difference(&calls_before, &calls_now());
        let invocations_after = runtime.invocation_counts();
        let invocations: u64 = invocations_after
            .iter()
            .filter(|(name, _)| name.as_str() != NOT_THE_CHECKOUTS)
            .map(|(name, n)| n - invocations_before.get(name).copied().unwrap_or(0))
            .sum();
        figures.insert(
            lines,
            CheckoutFigures {
                aws_calls: calls.values().sum(),
                aws_calls_by_operation: calls,
                lambda_invocations: invocations,
                ..CheckoutFigures::default()
            },
        );
    }
    Ok(figures)
}

/// Checkout latency, `runs` per line count.
pub async fn checkout_latency(
    shop: &ShopClient,
    setup: &Setup,
    runs: usize,
    figures: &mut BTreeMap<usize, CheckoutFigures>,
) -> Result<()> {
    for lines in LINE_COUNTS {
        let mut timings = Vec::with_capacity(runs);
        for _ in 0..runs {
            fill_cart(shop, &setup.customer, &setup.products[..lines]).await;
            let started = Instant::now();
            checkout(shop, &setup.customer).await?;
            timings.push(started.elapsed());
        }
        let samples = Samples::new(&timings);
        let entry = figures.entry(lines).or_default();
        entry.p50_ms = samples.percentile(0.5);
        entry.p95_ms = samples.percentile(0.95);
        entry.p99_ms = samples.percentile(0.99);
        entry.runs = runs;
        println!("  {lines:>2} lines: p50 {} ms, p95 {} ms, p99 {} ms", entry.p50_ms, entry.p95_ms, entry.p99_ms);
    }
    Ok(())
}

/// Checkout to `paid` with the order confirmation and the payment receipt stored, for a new
/// customer each run (so that their notifications are this order's).
pub async fn paid_after(shop: &ShopClient, setup: &Setup, runs: usize) -> Result<Samples> {
    const WANTED: [&str; 2] = ["order_confirmation", "payment_receipt"];
    let limit = Duration::from_secs(30);
    let mut timings = Vec::with_capacity(runs);
    for _ in 0..runs {
        let customer = shop.register("customer").await;
        shop.put_in_cart(&customer, &setup.products[0], 1).await;
        let started = Instant::now();
        let order = checkout(shop, &customer).await?;
        let order_id = text(&order["order_id"]);
        let seen = shop.wait_for_order(&customer, &order_id, limit, |o| o["status"] == "paid").await;
        if seen["status"] != "paid" {
            bail!("order {order_id} not paid within {limit:?}: {seen}");
        }
        let stored = shop.wait_for_notifications(&customer, &WANTED, limit).await;
        if !WANTED.iter().all(|w| stored.iter().any(|s| s == w)) {
            bail!("order {order_id}: notifications {stored:?} after {limit:?}, wanted {WANTED:?}");
        }
        timings.push(started.elapsed());
    }
    Ok(Samples::new(&timings))
}

/// What one order makes happen on AWS over its life, counted with the queue consumers
/// running: the customer puts one product in the cart and checks out; the order is paid and
/// its confirmation and receipt are sent; the seller lists their pending shipments, ships and
/// delivers it, and the delivery is notified. Scheduled functions (outbox relays, reapers) are
/// left out: they cost per minute, not per order.
#[derive(Debug, Default, serde::Serialize)]
pub struct OrderCounts {
    /// Lambda invocations per function.
    pub invocations: BTreeMap<String, u64>,
    /// Requests through API Gateway (the public and the internal routes).
    pub api_requests: u64,
    /// Invocations of queue consumers: each is at least one ReceiveMessage and one
    /// DeleteMessageBatch of its event source mapping.
    pub queue_batches: u64,
    /// AWS API calls by operation, every function's (the pollers' own SQS calls excluded).
    pub aws_calls: Counts,
    pub dynamodb_units: RequestUnits,
}

/// The stack's queues and functions, for telling when an order's events are all handled.
pub struct Quiet<'a> {
    pub sqs: aws_sdk_sqs::Client,
    pub queues: Vec<String>,
    pub runtime: &'a Runtime,
    pub counted: Vec<String>,
}

impl Quiet<'_> {
    fn invocations(&self) -> BTreeMap<String, u64> {
        let all = self.runtime.invocation_counts();
        self.counted.iter().map(|name| (name.clone(), all.get(name).copied().unwrap_or(0))).collect()
    }

    async fn waiting(&self) -> Result<u64> {
        let mut waiting = 0;
        for queue in &self.queues {
            let attributes = self
                .sqs
                .get_queue_attributes()
                .queue_url(queue)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await?;
            for value in attributes.attributes().into_iter().flat_map(|a| a.values()) {
                waiting += value.parse::<u64>().unwrap_or(0);
            }
        }
        Ok(waiting)
    }

    /// Waits until no message waits or is in flight in any queue and no counted function has
    /// been invoked for two seconds: what the last step set off has run to its end.
    async fn settle(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut last, mut still) = (self.invocations(), 0);
        while still < 8 {
            if Instant::now() > deadline {
                bail!("the stack did not settle within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.invocations();
            still = if now == last && self.waiting().await? == 0 { still + 1 } else { 0 };
            last = now;
        }
        Ok(())
    }
}

pub async fn order_counts(
    shop: &ShopClient,
    setup: &Setup,
    quiet: &Quiet<'_>,
    routed: &std::collections::HashSet<String>,
    queued: &std::collections::HashSet<String>,
    proxy: &AwsProxy,
) -> Result<OrderCounts> {
    quiet.settle().await?;
    let (calls, units, invocations) = (proxy.counts(), proxy.request_units(), quiet.invocations());
    shop.put_in_cart(&setup.customer, &setup.products[0], 1).await;
    let order = checkout(shop, &setup.customer).await?;
    let order_id = text(&order["order_id"]);
    quiet.settle().await?;
    let pending = shop.shipments(&setup.seller, "pending").await;
    let Some(shipment) = pending.iter().find(|s| s["order_id"] == order_id.as_str()) else {
        bail!("order {order_id}: no pending shipment once the stack settled: {pending:?}");
    };
    let shipment_id = text(&shipment["shipment_id"]);
    let (status, body) = shop.ship(&setup.seller, &shipment_id, "1Z999AA10123456784").await;
    if status.as_u16() != 200 {
        bail!("shipping {shipment_id}: {status} {body}");
    }
    let (status, body) = shop.deliver(&setup.seller, &shipment_id).await;
    if status.as_u16() != 200 {
        bail!("delivering {shipment_id}: {status} {body}");
    }
    quiet.settle().await?;
    let after = quiet.invocations();
    let after_units = proxy.request_units();
    let mut counts = OrderCounts {
        aws_calls: proxy::difference(&calls, &proxy.counts()),
        dynamodb_units: RequestUnits { read: after_units.read - units.read, write: after_units.write - units.write },
        ..OrderCounts::default()
    };
    // The pollers' own calls are the event source mappings', counted as `queue_batches`.
    counts.aws_calls.retain(|operation, _| !operation.starts_with("sqs.ReceiveMessage"));
    counts.aws_calls.retain(|operation, _| !operation.starts_with("sqs.DeleteMessage"));
    for (name, n) in after {
        let made = n - invocations.get(&name).copied().unwrap_or(0);
        if made == 0 {
            continue;
        }
        if routed.contains(&name) {
            counts.api_requests += made;
        }
        if queued.contains(&name) {
            counts.queue_batches += made;
        }
        counts.invocations.insert(name, made);
    }
    // Checked after the counts are taken: these reads are not the order's.
    let seen = shop.order(&setup.customer, &order_id).await;
    if seen["status"] != "delivered" {
        bail!("order {order_id} is {} after its life, wanted delivered: {seen}", seen["status"]);
    }
    Ok(counts)
}

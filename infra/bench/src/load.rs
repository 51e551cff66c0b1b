//! `make load`: the local stack under load, on loopback.
//!
//! - **Shopping**: N customers at once, each in a loop for the run's length: browse the
//!   catalogue, open a product, put it in the cart, check out. Reported: orders per second,
//!   p50/p99 and statuses per route. Nothing may be lost: no 5xx, and every 201 becomes a paid
//!   order whose payment is settled (captured once).
//! - **Flash sale**: B buyers, each with one unit in the cart, check out at the same moment
//!   against U units of one product: exactly U orders, B − U answers 409, no other status.
//!
//! A hand-written generator (tokio tasks and reqwest, already ours) rather than goose: the
//! scenarios need the shop's own steps and checks after the run, which a generic tool's
//! request scripts do not give, and goose's dependency tree is larger than this file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use system_tests::shop::{ShopClient, User};
use tokio::sync::Mutex;

use crate::report::Samples;

/// How long a request may take before the generator gives up on it (and counts it lost).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Registrations in flight while the buyers are made (each is an argon2 hash).
const SIGN_UPS_AT_ONCE: usize = 8;

#[derive(Debug, Default, Serialize)]
pub struct RouteFigures {
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct ShoppingFigures {
    pub customers: usize,
    pub seconds: f64,
    pub orders: u64,
    pub orders_per_second: f64,
    pub routes: BTreeMap<String, RouteFigures>,
    pub server_errors: u64,
    /// Orders answered 201 that were not paid with a settled payment once the stack settled.
    pub lost: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct FlashSaleFigures {
    pub buyers: usize,
    pub units: u32,
    pub shards: u32,
    pub statuses: BTreeMap<u16, u64>,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub stock_after: u64,
    pub paid_orders: usize,
}

#[derive(Default)]
struct Recorder {
    timings: BTreeMap<String, Vec<Duration>>,
    statuses: BTreeMap<String, BTreeMap<u16, u64>>,
}

impl Recorder {
    fn record(&mut self, route: &str, took: Duration, status: u16) {
        self.timings.entry(route.to_owned()).or_default().push(took);
        *self.statuses.entry(route.to_owned()).or_default().entry(status).or_default() += 1;
    }
}

/// One request, timed; its status (0: no answer within REQUEST_TIMEOUT) and body.
async fn timed(recorder: &Mutex<Recorder>, route: &str, request: reqwest::RequestBuilder) -> (u16, Value) {
    let started = Instant::now();
    let (status, body) = match request.timeout(REQUEST_TIMEOUT).send().await {
        Ok(answer) => (answer.status().as_u16(), answer.json().await.unwrap_or_default()),
        Err(_) => (0, Value::Null),
    };
    recorder.lock().await.record(route, started.elapsed(), status);
    (status, body)
}

/// `customers` new customers, each from an address of its own (registration is throttled per
/// address), a few at a time.
pub async fn customers(shop: &ShopClient, n: usize) -> Vec<User> {
    futures_util::stream::iter(0..n)
        .map(|_| shop.register("customer"))
        .buffer_unordered(SIGN_UPS_AT_ONCE)
        .collect()
        .await
}

/// The shopping run.
pub async fn shopping(
    shop: &ShopClient,
    products: &[String],
    customers: &[User],
    length: Duration,
) -> Result<ShoppingFigures> {
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let orders = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = started + length;
    let tasks = customers.iter().enumerate().map(|(i, customer)| {
        let (recorder, orders) = (recorder.clone(), orders.clone());
        async move {
            let mut round = i;
            while Instant::now() < deadline {
                let product = &products[round % products.len()];
                round += 1;
                let http = &shop.http;
                timed(&recorder, "GET /products", http.get(shop.url("/products?limit=20"))).await;
                timed(&recorder, "GET /products/{id}", http.get(shop.url(&format!("/products/{product}")))).await;
                let cart = http
                    .put(shop.url(&format!("/cart/items/{product}")))
                    .bearer_auth(&customer.token)
                    .json(&json!({"quantity": 1}));
                let (status, _) = timed(&recorder, "PUT /cart/items/{id}", cart).await;
                if status != 200 {
                    continue;
                }
                let checkout = http
                    .post(shop.url("/cart/checkout"))
                    .bearer_auth(&customer.token)
                    .header("idempotency-key", ulid::Ulid::generate().to_string())
                    .json(&json!({"payment_token": "tok_visa"}));
                let (status, order) = timed(&recorder, "POST /cart/checkout", checkout).await;
                if status == 201 {
                    orders.lock().await.push((customer.clone(), order));
                }
            }
        }
    });
    futures_util::future::join_all(tasks).await;
    let seconds = started.elapsed().as_secs_f64();
    let recorder = std::mem::take(&mut *recorder.lock().await);
    let orders = std::mem::take(&mut *orders.lock().await);

    let mut figures = ShoppingFigures {
        customers: customers.len(),
        seconds: crate::report::round(seconds),
        orders: orders.len() as u64,
        orders_per_second: crate::report::round(orders.len() as f64 / seconds),
        ..ShoppingFigures::default()
    };
    for (route, timings) in &recorder.timings {
        let samples = Samples::new(timings);
        let statuses = recorder.statuses.get(route).cloned().unwrap_or_default();
        figures.server_errors += statuses.iter().filter(|(s, _)| **s >= 500 || **s == 0).map(|(_, n)| n).sum::<u64>();
        figures.routes.insert(
            route.clone(),
            RouteFigures {
                requests: timings.len() as u64,
                p50_ms: samples.percentile(0.5),
                p99_ms: samples.percentile(0.99),
                statuses,
            },
        );
    }
    figures.lost = unpaid(shop, &orders).await;
    Ok(figures)
}

/// The orders among `orders` that are not paid with their payment settled within a minute
/// (the queue consumers finish them after their 201).
async fn unpaid(shop: &ShopClient, orders: &[(User, Value)]) -> Vec<String> {
    let mut lost = Vec::new();
    for (customer, order) in orders {
        let order_id = order["order_id"].as_str().unwrap_or_default();
        let seen = shop.wait_for_order(customer, order_id, Duration::from_secs(60), |o| o["status"] == "paid").await;
        let payment = if seen["status"] == "paid" { shop.payment_of(customer, &seen).await } else { Value::Null };
        if payment["status"] != "settled" {
            lost.push(format!("{order_id}: order {}, payment {}", seen["status"], payment["status"]));
        }
    }
    lost
}

/// The flash sale: every buyer already has one unit of `product` (with `units` in stock over
/// `shards` items) in the cart; all check out at once.
pub async fn flash_sale(
    shop: &ShopClient,
    product: &str,
    units: u32,
    shards: u32,
    buyers: &[User],
) -> Result<FlashSaleFigures> {
    let recorder = Mutex::new(Recorder::default());
    let started = Instant::now();
    let answers = futures_util::future::join_all(buyers.iter().map(|buyer| {
        let checkout = shop
            .http
            .post(shop.url("/cart/checkout"))
            .bearer_auth(&buyer.token)
            .header("idempotency-key", ulid::Ulid::generate().to_string())
            .json(&json!({"payment_token": "tok_visa"}));
        timed(&recorder, "POST /cart/checkout", checkout)
    }))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let recorder = recorder.into_inner();
    let samples = Samples::new(recorder.timings.get("POST /cart/checkout").map(Vec::as_slice).unwrap_or_default());
    let winners: Vec<(User, Value)> = buyers
        .iter()
        .zip(&answers)
        .filter(|(_, (status, _))| *status == 201)
        .map(|(buyer, (_, order))| (buyer.clone(), order.clone()))
        .collect();
    for (status, body) in &answers {
        if *status == 409 && body["shortages"][0]["product_id"] != product {
            bail!("a 409 that names no shortage of the product: {body}");
        }
    }
    let lost = unpaid(shop, &winners).await;
    if !lost.is_empty() {
        bail!("flash sale: orders not paid: {lost:?}");
    }
    Ok(FlashSaleFigures {
        buyers: buyers.len(),
        units,
        shards,
        statuses: recorder.statuses.get("POST /cart/checkout").cloned().unwrap_or_default(),
        seconds: crate::report::round(seconds),
        p50_ms: samples.percentile(0.5),
        p99_ms: samples.percentile(0.99),
        stock_after: shop.stock(product).await,
        paid_orders: winners.len(),
    })
}

impl ShoppingFigures {
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "Shopping: {} customers for {} s: {} orders ({} orders/s), {} × 5xx or no answer, {} lost\n\n",
            self.customers,
            self.seconds,
            self.orders,
            self.orders_per_second,
            self.server_errors,
            self.lost.len()
        );
        out.push_str("| route | requests | p50 ms | p99 ms | statuses |\n|---|---:|---:|---:|---|\n");
        for (route, r) in &self.routes {
            let statuses: Vec<String> = r.statuses.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
            let _ =
                writeln!(out, "| {route} | {} | {} | {} | {} |", r.requests, r.p50_ms, r.p99_ms, statuses.join(", "));
        }
        out
    }
}

impl FlashSaleFigures {
    pub fn table(&self) -> String {
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
        format!(
            "Flash sale: {} buyers at once for {} units over {} shards: {} in {} s (checkout p50 {} ms, \
             p99 {} ms); stock after {}, {} orders paid\n",
            self.buyers,
            self.units,
            self.shards,
            statuses.join(", "),
            self.seconds,
            self.p50_ms,
            self.p99_ms,
            self.stock_after,
            self.paid_orders
        )
    }

    /// Exactly `units` orders, every other buyer a 409, nothing else.
    pub fn check(&self) -> Result<()> {
        let expected =
            BTreeMap::from([(201, u64::from(self.units)), (409, (self.buyers as u64) - u64::from(self.units))]);
        if self.statuses != expected || self.stock_after != 0 || self.paid_orders != self.units as usize {
            bail!("flash sale: wanted {expected:?}, stock 0 and {} paid orders; got {}", self.units, self.table());
        }
        Ok(())
    }
}

//! Cart and checkout against in-memory stores and a scripted downstream.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use shared::events::Role;
use shared::internal::CallError;
use shared::{CorrelationId, Problem};
use testkit::requests::{as_caller, body, call, sample, with_body, with_path};

use crate::domain::{CartLine, ProductInfo};
use crate::downstream::{Abandoned, Authorization, Downstream, PaymentRequest, Stock};
use crate::store::MemoryStore;
use crate::{checkout, handlers};

const USER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";

/// The other services, scripted: a catalogue with stock, the sandbox tokens, outages.
#[derive(Default)]
struct Fake {
    stock: Mutex<HashMap<String, (u64, u32)>>,
    reservations: Mutex<HashMap<String, Vec<CartLine>>>,
    payments: Mutex<HashMap<String, String>>,
    authorizations: AtomicU32,
    voids: AtomicU32,
    orders: Mutex<HashMap<String, Value>>,
    abandoned: Mutex<std::collections::HashSet<String>>,
    /// Payments voided, by id.
    voided: Mutex<std::collections::HashSet<String>>,
    payment_down: AtomicBool,
    void_down: AtomicBool,
    order_down: AtomicBool,
    /// Orders stored whose answer is then lost (a timeout after the write), this many times.
    order_answers_lost: AtomicU32,
    slow_payment: AtomicBool,
}

fn down(service: &str) -> CallError {
    CallError::Unavailable { service: service.into(), reason: "down".into() }
}

impl Fake {
    fn with(products: &[(&str, u64, u32)]) -> Self {
        let fake = Fake::default();
        for (id, price, stock) in products {
            fake.stock.lock().unwrap().insert(id.to_string(), (*price, *stock));
        }
        fake
    }

    fn stock_of(&self, id: &str) -> u32 {
        self.stock.lock().unwrap()[id].1
    }

    fn set_price(&self, id: &str, price: u64) {
        self.stock.lock().unwrap().get_mut(id).unwrap().0 = price;
    }
}

impl Downstream for Fake {
    async fn abandon_order(&self, order_id: &str, _: &CorrelationId) -> Result<Abandoned, CallError> {
        if self.order_down.load(Ordering::SeqCst) {
            return Err(down("order"));
        }
        Ok(self.abandon(order_id).await)
    }

    async fn lookup(&self, ids: &[String], _: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
        let stock = self.stock.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| {
                let (price, units) = stock.get(id)?;
                Some(ProductInfo {
                    product_id: id.clone(),
                    seller_id: "usr_seller".into(),
                    name: id.to_uppercase(),
                    price_cents: *price,
                    stock: *units,
                })
            })
            .collect())
    }

    async fn authorize(&self, request: &PaymentRequest, _: &CorrelationId) -> Result<Authorization, CallError> {
        if self.payment_down.load(Ordering::SeqCst) {
            return Err(down("payment"));
        }
        if self.slow_payment.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        if request.payment_token == "tok_chargeDeclined" {
            let declined =
                Problem::new(StatusCode::PAYMENT_REQUIRED, "payment-declined", "Payment declined", "declined");
            return Ok(Authorization::Refused(declined));
        }
        let mut payments = self.payments.lock().unwrap();
        if let Some(id) = payments.get(&request.idempotency_key)
            && self.voided.lock().unwrap().contains(id)
        {
            return Ok(Authorization::Over);
        }
        let id = payments
            .entry(request.idempotency_key.clone())
            .or_insert_with(|| {
                self.authorizations.fetch_add(1, Ordering::SeqCst);
                format!("pay_{}", ulid::Ulid::generate())
            })
            .clone();
        Ok(Authorization::Authorized { payment_id: id })
    }

    async fn void(&self, payment_id: &str, _: &CorrelationId) -> Result<(), CallError> {
        if self.void_down.load(Ordering::SeqCst) {
            return Err(down("payment"));
        }
        if self.voided.lock().unwrap().insert(payment_id.to_owned()) {
            self.voids.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn reserve(&self, reservation_id: &str, lines: &[CartLine], _: &CorrelationId) -> Result<Stock, CallError> {
        let mut reservations = self.reservations.lock().unwrap();
        match reservations.get(reservation_id) {
            Some(lines) if lines.is_empty() => {
                return Err(CallError::Unexpected { service: "seller".into(), status: 409, body: "released".into() });
            }
            Some(_) => return Ok(Stock::Reserved),
            None => {}
        }
        let mut stock = self.stock.lock().unwrap();
        let short: Vec<Value> = lines
            .iter()
            .filter(|l| stock.get(&l.product_id).is_none_or(|(_, units)| *units < l.quantity))
            .map(|l| json!({"product_id": l.product_id, "requested": l.quantity, "available": stock.get(&l.product_id).map_or(0, |s| s.1)}))
            .collect();
        if !short.is_empty() {
            let problem = Problem::new(StatusCode::CONFLICT, "insufficient-stock", "Not enough stock", "short")
                .with("shortages", short);
            return Ok(Stock::Short(problem));
        }
        for line in lines {
            stock.get_mut(&line.product_id).unwrap().1 -= line.quantity;
        }
        reservations.insert(reservation_id.to_owned(), lines.to_vec());
        Ok(Stock::Reserved)
    }

    async fn release(&self, reservation_id: &str, _: &CorrelationId) -> Result<(), CallError> {
        // A tombstone: the id stays taken, holding nothing.
        let released = self.reservations.lock().unwrap().insert(reservation_id.to_owned(), Vec::new());
        if let Some(lines) = released {
            let mut stock = self.stock.lock().unwrap();
            for line in lines {
                stock.get_mut(&line.product_id).unwrap().1 += line.quantity;
            }
        }
        Ok(())
    }

    async fn create_order(&self, order: &Value, _: &CorrelationId) -> Result<Value, CallError> {
        if self.order_down.load(Ordering::SeqCst) {
            return Err(down("order"));
        }
        let id = order["order_id"].as_str().unwrap().to_owned();
        if self.abandoned.lock().unwrap().contains(&id) {
            return Err(CallError::Unexpected { service: "order".into(), status: 409, body: "abandoned".into() });
        }
        let mut shown = order.clone();
        shown["status"] = "placed".into();
        let order = self.orders.lock().unwrap().entry(id).or_insert(shown).clone();
        let lost = self.order_answers_lost.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if lost.is_ok() {
            return Err(CallError::Unavailable { service: "order".into(), reason: "timed out".into() });
        }
        Ok(order)
    }
}

impl Fake {
    async fn abandon(&self, order_id: &str) -> Abandoned {
        match self.orders.lock().unwrap().get(order_id) {
            Some(order) => Abandoned::Exists(order.clone()),
            None => {
                self.abandoned.lock().unwrap().insert(order_id.to_owned());
                Abandoned::Abandoned
            }
        }
    }
}

async fn put(
    store: &MemoryStore,
    fake: &Fake,
    product: &str,
    quantity: i64,
) -> lambda_http::Response<lambda_http::Body> {
    let request = with_path(
        with_body(sample("http-put-cart-item.json"), &json!({"quantity": quantity}).to_string()),
        "product_id",
        product,
    );
    call(&|r, c| handlers::set_item(store, fake, r, c), as_caller(request, USER, Role::Customer)).await
}

async fn checkout_with(
    store: &MemoryStore,
    fake: &Fake,
    token: &str,
    key: Option<&str>,
) -> lambda_http::Response<lambda_http::Body> {
    let mut request = with_body(sample("http-post-checkout.json"), &json!({"payment_token": token}).to_string());
    request.headers_mut().remove("idempotency-key");
    if let Some(key) = key {
        request.headers_mut().insert("idempotency-key", key.parse().unwrap());
    }
    call(&|r, c| checkout::checkout(store, fake, r, c), as_caller(request, USER, Role::Customer)).await
}

async fn cart_of(store: &MemoryStore, fake: &Fake) -> Value {
    body(
        &call(&|r, c| handlers::get(store, fake, r, c), as_caller(sample("http-get-cart.json"), USER, Role::Customer))
            .await,
    )
}

#[tokio::test]
async fn carts_are_priced_from_the_catalogue() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    assert_eq!(cart_of(&store, &fake).await["items"], json!([]), "an empty cart, not a 404");
    let cart = body(&put(&store, &fake, "prd_a", 2).await);
    assert_eq!(cart["total_cents"], 2598);
    assert_eq!(cart["items"][0]["name"], "PRD_A");
    assert_eq!(put(&store, &fake, "prd_nope", 1).await.status(), 404);
    assert_eq!(put(&store, &fake, "prd_a", 100).await.status(), 400);
    // Found by fuzzing: out of range was 404 for an unknown product (but 400 when negative).
    assert_eq!(put(&store, &fake, "prd_nope", 100).await.status(), 400, "the quantity, whatever the product");
    assert_eq!(body(&put(&store, &fake, "prd_a", 0).await)["items"], json!([]), "0 removes");
}

#[tokio::test]
async fn a_checkout_places_the_order_takes_stock_and_empties_the_cart() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5), ("prd_b", 500, 1)]));
    put(&store, &fake, "prd_a", 2).await;
    put(&store, &fake, "prd_b", 1).await;
    let placed = checkout_with(&store, &fake, "tok_visa", Some("k1")).await;
    assert_eq!(placed.status(), 201);
    let order = body(&placed);
    assert_eq!(order["total_cents"], 3098);
    assert_eq!(placed.headers()["location"], format!("/orders/{}", order["order_id"].as_str().unwrap()).as_str());
    assert_eq!((fake.stock_of("prd_a"), fake.stock_of("prd_b")), (3, 0));
    assert_eq!(cart_of(&store, &fake).await["items"], json!([]));

    let again = checkout_with(&store, &fake, "tok_visa", Some("k1")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(body(&again), order, "the same order");
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "charged once");
}

#[tokio::test]
async fn a_decline_is_402_and_touches_nothing() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 2).await;
    let declined = checkout_with(&store, &fake, "tok_chargeDeclined", Some("k")).await;
    assert_eq!(declined.status(), 402);
    assert!(body(&declined)["type"].as_str().unwrap().ends_with("/payment-declined"));
    assert_eq!(fake.stock_of("prd_a"), 5);
    assert_eq!(cart_of(&store, &fake).await["items"].as_array().unwrap().len(), 1, "the cart is kept");
    assert_eq!(
        checkout_with(&store, &fake, "tok_chargeDeclined", Some("k")).await.status(),
        402,
        "the same key, the same answer"
    );
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 422, "another request");
    // Without a key, another card may be tried on the same cart.
    assert_eq!(checkout_with(&store, &fake, "tok_chargeDeclined", None).await.status(), 402);
    assert_eq!(checkout_with(&store, &fake, "tok_visa", None).await.status(), 201);
}

#[tokio::test]
async fn a_shortage_is_409_and_the_authorization_is_voided() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 1)]));
    put(&store, &fake, "prd_a", 3).await;
    let short = checkout_with(&store, &fake, "tok_visa", None).await;
    assert_eq!(short.status(), 409);
    assert_eq!(body(&short)["shortages"], json!([{"product_id": "prd_a", "requested": 3, "available": 1}]));
    assert_eq!(fake.voids.load(Ordering::SeqCst), 1);
    assert_eq!(fake.stock_of("prd_a"), 1);
}

#[tokio::test]
async fn an_outage_is_503_and_the_same_key_resumes_the_attempt_with_its_ids() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 2).await;
    fake.payment_down.store(true, Ordering::SeqCst);
    let down = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(down.status(), 503);
    assert_eq!(down.headers()["content-type"], "application/problem+json");
    assert_eq!(fake.stock_of("prd_a"), 5, "nothing reserved");

    fake.payment_down.store(false, Ordering::SeqCst);
    fake.order_down.store(true, Ordering::SeqCst);
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 503);
    assert_eq!(fake.voids.load(Ordering::SeqCst), 0, "the order may exist: nothing undone blind");

    fake.order_down.store(false, Ordering::SeqCst);
    assert_eq!(
        checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(),
        201,
        "a retry with the same key finishes the checkout"
    );
    assert_eq!(fake.stock_of("prd_a"), 3, "one reservation");
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "one authorization");
    assert_eq!(fake.orders.lock().unwrap().len(), 1);
}

/// Defect (issue 14.1): the order was stored but its answer was lost; checkout released the
/// stock and voided the payment, leaving an order to settle with no stock behind it.
#[tokio::test]
async fn an_order_whose_answer_was_lost_is_resumed_never_undone() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 1).await;
    fake.order_answers_lost.store(2, Ordering::SeqCst);
    let lost = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(lost.status(), 503);
    assert_eq!(fake.voids.load(Ordering::SeqCst), 0, "the payment of a stored order is not voided");
    assert_eq!(fake.stock_of("prd_a"), 4, "its stock stays reserved");
    let mut resumed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    if resumed.status() == 503 {
        resumed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    }
    assert_eq!(resumed.status(), 201);
    let order = body(&resumed);
    assert!(fake.orders.lock().unwrap().contains_key(order["order_id"].as_str().unwrap()), "the stored order");
    assert_eq!(fake.orders.lock().unwrap().len(), 1);
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "charged once");
    assert_eq!(fake.stock_of("prd_a"), 4);
}

/// Defect (found by the money simulation, seed 1217): the order was stored but its answer
/// lost, and its payment ended meanwhile (the settlement failed); the repeat found the
/// authorization over, took the key for free and bought a second time.
#[tokio::test]
async fn a_repeat_that_finds_its_payment_over_answers_the_order_it_made() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 1).await;
    fake.order_answers_lost.store(1, Ordering::SeqCst);
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 503);
    // Settlement failed in the background: the payment is over.
    let payment_id = fake.payments.lock().unwrap().values().next().unwrap().clone();
    fake.voided.lock().unwrap().insert(payment_id);
    let again = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(again.status(), 201, "the order it made");
    assert!(fake.orders.lock().unwrap().contains_key(body(&again)["order_id"].as_str().unwrap()));
    let once_more = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(body(&once_more)["order_id"], body(&again)["order_id"]);
    assert_eq!(fake.orders.lock().unwrap().len(), 1, "one order");
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "one authorization");
    assert_eq!(fake.stock_of("prd_a"), 4);
}

/// Defect (issue 14.5): two checkouts of the same cart without a key (a double click) made
/// two orders and two charges.
#[tokio::test]
async fn a_double_click_without_a_key_places_one_order_charged_once() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 1).await;
    fake.slow_payment.store(true, Ordering::SeqCst);
    let (first, second) = tokio::join!(checkout_with(&store, &fake, "tok_visa", None), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        checkout_with(&store, &fake, "tok_visa", None).await
    });
    assert_eq!((first.status(), second.status()), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(body(&first), body(&second), "the same order");
    // Once the first has emptied the cart, a repeat is still that checkout.
    let third = checkout_with(&store, &fake, "tok_visa", None).await;
    assert_eq!(third.status(), 201);
    assert_eq!(body(&third), body(&first));
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1, "charged once");
    assert_eq!(fake.stock_of("prd_a"), 4, "one unit taken");
    assert_eq!(fake.orders.lock().unwrap().len(), 1);

    // A new cart is a new checkout.
    put(&store, &fake, "prd_a", 2).await;
    let next = checkout_with(&store, &fake, "tok_visa", None).await;
    assert_eq!(next.status(), 201);
    assert_ne!(body(&next)["order_id"], body(&first)["order_id"]);
    assert_eq!(fake.stock_of("prd_a"), 2);
}

/// Defect (issue 14.6): checkout charged the catalogue's price of the moment.
#[tokio::test]
async fn a_changed_price_is_409_updates_the_cart_and_charges_nothing() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5), ("prd_b", 500, 5)]));
    put(&store, &fake, "prd_a", 2).await;
    put(&store, &fake, "prd_b", 1).await;
    fake.set_price("prd_a", 1499);
    assert_eq!(cart_of(&store, &fake).await["total_cents"], 3098, "the cart keeps the prices it was filled at");
    let changed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(changed.status(), 409);
    let problem = body(&changed);
    assert!(problem["type"].as_str().unwrap().ends_with("/price-changed"), "{problem}");
    assert_eq!(
        problem["changes"],
        json!([{"product_id": "prd_a", "old_unit_price_cents": 1299, "new_unit_price_cents": 1499}])
    );
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 0, "nothing charged");
    assert_eq!(fake.stock_of("prd_a"), 5, "nothing reserved");
    assert_eq!(cart_of(&store, &fake).await["total_cents"], 3498, "the cart shows the new prices");
    let placed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(placed.status(), 201, "the same key, now at the new prices");
    assert_eq!(body(&placed)["total_cents"], 3498);
}

/// Defect (issue 14.8): a key reused with another request replayed the old answer.
#[tokio::test]
async fn a_key_reused_for_another_request_is_422() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 1).await;
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 201);
    let reused = checkout_with(&store, &fake, "tok_mastercard", Some("k")).await;
    assert_eq!(reused.status(), 422);
    assert!(body(&reused)["type"].as_str().unwrap().ends_with("/idempotency-key-reused"));
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_repeat_while_the_first_runs_waits_for_its_answer() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 1).await;
    fake.slow_payment.store(true, Ordering::SeqCst);
    let (first, second) = tokio::join!(checkout_with(&store, &fake, "tok_visa", Some("k")), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        checkout_with(&store, &fake, "tok_visa", Some("k")).await
    });
    assert_eq!((first.status(), second.status()), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(body(&first), body(&second));
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1);
    assert_eq!(fake.stock_of("prd_a"), 4);
}

/// Defect (issue 14.6): an empty cart was a 400, though the request is valid.
#[tokio::test]
async fn an_empty_cart_is_409_cart_empty_and_a_bad_key_400() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 100, 5)]));
    for key in [None, Some("k")] {
        let empty = checkout_with(&store, &fake, "tok_visa", key).await;
        assert_eq!(empty.status(), 409);
        assert!(body(&empty)["type"].as_str().unwrap().ends_with("/cart-empty"));
    }
    put(&store, &fake, "prd_a", 1).await;
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 201, "the key was not used up");
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some(&"k".repeat(65))).await.status(), 400);
}

#[tokio::test]
async fn removing_an_item() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 100, 5), ("prd_b", 200, 5)]));
    put(&store, &fake, "prd_a", 1).await;
    put(&store, &fake, "prd_b", 1).await;
    let request =
        as_caller(with_path(sample("http-delete-cart-item.json"), "product_id", "prd_a"), USER, Role::Customer);
    let cart = body(&call(&|r, c| handlers::remove_item(&store, &fake, r, c), request).await);
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart["total_cents"], 200);
}

#[tokio::test]
async fn an_attempt_that_died_half_way_is_resumed_with_what_it_priced() {
    use crate::domain::{Checkout, OrderLine};
    use crate::store::CartStore;
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5), ("prd_b", 500, 5)]));
    // An attempt priced 1 x prd_a, then its function died (its lease has run out).
    let then = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut died = Checkout::start(USER, "key:k", "tok_visa", 1, then, chrono::Duration::seconds(40));
    died.snapshot = Some(vec![OrderLine {
        product_id: "prd_a".into(),
        seller_id: "usr_seller".into(),
        name: "PRD_A".into(),
        unit_price_cents: 1299,
        quantity: 1,
    }]);
    assert!(store.save_checkout(&died, None).await.unwrap());
    // Meanwhile the cart changed.
    put(&store, &fake, "prd_b", 3).await;

    let resumed = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(resumed.status(), 201);
    let order = body(&resumed);
    assert_eq!(order["order_id"], died.order_id.as_str(), "the same order id");
    assert_eq!(order["total_cents"], 1299, "what the attempt priced, not the cart now");
    assert_eq!((fake.stock_of("prd_a"), fake.stock_of("prd_b")), (4, 5));
}

/// The reconciler, run as if `later` had passed, with the default 15 minutes' grace.
async fn reconcile_after(store: &MemoryStore, fake: &Fake, later: chrono::Duration) -> crate::reconcile::Report {
    crate::reconcile::reconcile(store, fake, chrono::Utc::now() + later, chrono::Duration::minutes(15)).await.unwrap()
}

/// Defect (issue 14.4): nothing ever gave back what a checkout left behind holds.
#[tokio::test]
async fn a_checkout_left_behind_is_undone_by_the_reconciler_and_its_key_starts_afresh() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 2).await;
    fake.order_down.store(true, Ordering::SeqCst);
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 503);
    fake.order_down.store(false, Ordering::SeqCst);
    assert_eq!(fake.stock_of("prd_a"), 3, "held while the customer may come back");

    assert_eq!(reconcile_after(&store, &fake, chrono::Duration::minutes(1)).await.abandoned, 0, "not yet");
    let report = reconcile_after(&store, &fake, chrono::Duration::hours(1)).await;
    assert_eq!((report.abandoned, report.finished, report.left), (1, 0, 0));
    assert_eq!(fake.stock_of("prd_a"), 5, "the reservation released");
    assert_eq!(fake.voids.load(Ordering::SeqCst), 1, "the authorization voided");
    assert_eq!(fake.abandoned.lock().unwrap().len(), 1, "its order id given up first");
    assert_eq!(reconcile_after(&store, &fake, chrono::Duration::hours(1)).await, Default::default(), "once");

    let again = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(again.status(), 201, "the key may buy again, as a new attempt");
    assert!(!fake.abandoned.lock().unwrap().contains(body(&again)["order_id"].as_str().unwrap()));
    assert_eq!(fake.stock_of("prd_a"), 3);
    assert_eq!(fake.orders.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_checkout_left_behind_that_made_its_order_is_finished_not_undone() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 1).await;
    fake.order_answers_lost.store(1, Ordering::SeqCst);
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 503);
    let report = reconcile_after(&store, &fake, chrono::Duration::hours(1)).await;
    assert_eq!((report.abandoned, report.finished), (0, 1));
    assert_eq!(fake.voids.load(Ordering::SeqCst), 0);
    assert_eq!(fake.stock_of("prd_a"), 4, "the order keeps its stock");
    assert_eq!(cart_of(&store, &fake).await["items"], json!([]), "the cart emptied of what it bought");
    let answer = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(answer.status(), 201);
    assert!(fake.orders.lock().unwrap().contains_key(body(&answer)["order_id"].as_str().unwrap()));
    assert_eq!(fake.authorizations.load(Ordering::SeqCst), 1);
}

/// Defect (issue 14, faults.rs): a shortage whose void was lost left the authorization held
/// for ever, as a checkout undone while the emulator was away did (2 of 10 payments stayed
/// authorized).
#[tokio::test]
async fn a_shortage_whose_void_is_lost_stays_open_until_a_repeat_or_the_reconciler_voids_it() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 1)]));
    put(&store, &fake, "prd_a", 3).await;
    fake.void_down.store(true, Ordering::SeqCst);
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 503, "not done yet");
    fake.void_down.store(false, Ordering::SeqCst);
    let short = checkout_with(&store, &fake, "tok_visa", Some("k")).await;
    assert_eq!(short.status(), 409, "the repeat voids it and answers the shortage");
    assert_eq!((fake.authorizations.load(Ordering::SeqCst), fake.voids.load(Ordering::SeqCst)), (1, 1));

    put(&store, &fake, "prd_a", 2).await;
    fake.void_down.store(true, Ordering::SeqCst);
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k2")).await.status(), 503);
    fake.void_down.store(false, Ordering::SeqCst);
    assert_eq!(reconcile_after(&store, &fake, chrono::Duration::hours(1)).await.abandoned, 1);
    assert_eq!(
        (fake.authorizations.load(Ordering::SeqCst), fake.voids.load(Ordering::SeqCst)),
        (2, 2),
        "no repeat: the reconciler"
    );
    assert_eq!(fake.stock_of("prd_a"), 1);
}

#[tokio::test]
async fn the_reconciler_leaves_an_answered_or_recent_checkout_alone() {
    let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 1299, 5)]));
    put(&store, &fake, "prd_a", 1).await;
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k")).await.status(), 201);
    put(&store, &fake, "prd_a", 1).await;
    fake.payment_down.store(true, Ordering::SeqCst);
    assert_eq!(checkout_with(&store, &fake, "tok_visa", Some("k2")).await.status(), 503);
    assert_eq!(reconcile_after(&store, &fake, chrono::Duration::minutes(5)).await, Default::default());
    assert_eq!(fake.stock_of("prd_a"), 4);
}

mod fuzz;

//! The services a cart depends on, as one port: the catalogue (Seller), payments, stock
//! (Seller) and orders. [`HttpDownstream`] calls their internal routes through
//! `shared::internal` (SigV4, timeouts, retries, circuit breakers); tests use the scripted
//! `fakes::Fake`.

use std::future::Future;

use lambda_http::http::{Method, StatusCode};
use serde_json::Value;
use shared::contracts::{self, AuthorizeRequest, Authorized, NewOrder, Product, ReservationRequest};
use shared::internal::{CallError, InternalClient};
use shared::{CorrelationId, Problem};

/// What the payment service said.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    Authorized {
        payment_id: String,
    },
    /// Declined (402) or not a valid token (400): the customer's answer, as the service gave it.
    Refused(Problem),
    /// Authorized under this key before, and voided, failed or refunded since: nothing held.
    Over,
}

/// What giving an order id up found.
#[derive(Debug, Clone, PartialEq)]
pub enum Abandoned {
    /// No order has the id, and none ever will.
    Abandoned,
    /// The order exists (as the API shows orders): its checkout went through.
    Exists(Value),
}

/// What the stock said.
#[derive(Debug, Clone, PartialEq)]
pub enum Stock {
    Reserved,
    /// Not enough: the 409 with `shortages`, as the service gave it.
    Short(Problem),
}

pub trait Downstream: Send + Sync {
    fn lookup(
        &self,
        ids: &[String],
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Vec<Product>, CallError>> + Send;
    fn authorize(
        &self,
        request: &AuthorizeRequest,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Authorization, CallError>> + Send;
    fn void(
        &self,
        payment_id: &str,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<(), CallError>> + Send;
    fn reserve(
        &self,
        reservation: &ReservationRequest,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Stock, CallError>> + Send;
    fn release(
        &self,
        reservation_id: &str,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<(), CallError>> + Send;
    /// Creates the order (idempotent on its id) and answers it as the API shows orders: a
    /// `Value`, as checkout hands it to the customer untouched.
    fn create_order(
        &self,
        order: &NewOrder,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Value, CallError>> + Send;
    /// Gives an order id up for good, unless its order exists.
    fn abandon_order(
        &self,
        order_id: &str,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Abandoned, CallError>> + Send;
}

pub struct HttpDownstream {
    pub client: InternalClient,
}

/// A 4xx answer that is the customer's to see, kept as the problem it is.
fn problem(service: &str, answer: &shared::internal::Answer) -> Result<Problem, CallError> {
    let body: Value = answer.json(service)?;
    Problem::from_json(&body).ok_or_else(|| answer.unexpected(service))
}

impl Downstream for HttpDownstream {
    async fn lookup(&self, ids: &[String], correlation_id: &CorrelationId) -> Result<Vec<Product>, CallError> {
        contracts::lookup_products(&self.client, correlation_id, ids).await
    }

    async fn authorize(
        &self,
        request: &AuthorizeRequest,
        correlation_id: &CorrelationId,
    ) -> Result<Authorization, CallError> {
        // Idempotent on its key, so it may be retried.
        let answer = self
            .client
            .call("payment", Method::POST, contracts::AUTHORIZE_PAYMENT, Some(request), true, correlation_id)
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => {
                let Authorized { payment_id } = answer.json("payment")?;
                Ok(Authorization::Authorized { payment_id })
            }
            StatusCode::PAYMENT_REQUIRED | StatusCode::BAD_REQUEST => {
                Ok(Authorization::Refused(problem("payment", &answer)?))
            }
            StatusCode::CONFLICT if problem("payment", &answer)?.kind.ends_with("payment-not-live") => {
                Ok(Authorization::Over)
            }
            // Another 409: an authorization with this key is still in progress elsewhere.
            _ => Err(answer.unexpected("payment")),
        }
    }

    async fn void(&self, payment_id: &str, correlation_id: &CorrelationId) -> Result<(), CallError> {
        let path = contracts::void_path(payment_id);
        let answer = self.client.call("payment", Method::POST, &path, None::<&()>, true, correlation_id).await?;
        if answer.is_success() { Ok(()) } else { Err(answer.unexpected("payment")) }
    }

    async fn reserve(
        &self,
        reservation: &ReservationRequest,
        correlation_id: &CorrelationId,
    ) -> Result<Stock, CallError> {
        let answer = self
            .client
            .call("seller", Method::POST, contracts::RESERVATIONS, Some(reservation), true, correlation_id)
            .await?;
        match answer.status {
            StatusCode::CREATED | StatusCode::OK => Ok(Stock::Reserved),
            StatusCode::CONFLICT => {
                let short = problem("seller", &answer)?;
                if short.extensions.contains_key("shortages") {
                    Ok(Stock::Short(short))
                } else {
                    Err(answer.unexpected("seller"))
                }
            }
            _ => Err(answer.unexpected("seller")),
        }
    }

    async fn release(&self, reservation_id: &str, correlation_id: &CorrelationId) -> Result<(), CallError> {
        let path = contracts::reservation_path(reservation_id);
        let answer = self.client.call("seller", Method::DELETE, &path, None::<&()>, true, correlation_id).await?;
        // 404: never made, so nothing to give back.
        if answer.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(answer.unexpected("seller"))
        }
    }

    async fn create_order(&self, order: &NewOrder, correlation_id: &CorrelationId) -> Result<Value, CallError> {
        let answer =
            self.client.call("order", Method::POST, contracts::ORDERS, Some(order), true, correlation_id).await?;
        if answer.is_success() { answer.json("order") } else { Err(answer.unexpected("order")) }
    }

    async fn abandon_order(&self, order_id: &str, correlation_id: &CorrelationId) -> Result<Abandoned, CallError> {
        let path = contracts::abandon_path(order_id);
        let answer = self.client.call("order", Method::POST, &path, None::<&()>, true, correlation_id).await?;
        match answer.status {
            StatusCode::OK => {
                let _: contracts::Abandoned = answer.json("order")?;
                Ok(Abandoned::Abandoned)
            }
            StatusCode::CONFLICT => {
                let exists = problem("order", &answer)?;
                match exists.extensions.get("order") {
                    Some(order) if exists.kind.ends_with("order-exists") => Ok(Abandoned::Exists(order.clone())),
                    _ => Err(answer.unexpected("order")),
                }
            }
            _ => Err(answer.unexpected("order")),
        }
    }
}

/// The other services, scripted, for the handler and reconciler tests and the properties.
#[cfg(test)]
pub(crate) mod fakes {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::time::Duration;

    use lambda_http::http::StatusCode;
    use serde_json::{Value, json};
    use shared::contracts::{AuthorizeRequest, NewOrder, Product, ReservationLine, ReservationRequest};
    use shared::internal::CallError;
    use shared::{CorrelationId, Problem};

    use super::{Abandoned, Authorization, Downstream, Stock};

    /// The other services, scripted: a catalogue with stock, the sandbox tokens, outages.
    #[derive(Default)]
    pub(crate) struct Fake {
        stock: Mutex<HashMap<String, (u64, u32)>>,
        reservations: Mutex<HashMap<String, Vec<ReservationLine>>>,
        pub(crate) payments: Mutex<HashMap<String, String>>,
        pub(crate) authorizations: AtomicU32,
        pub(crate) voids: AtomicU32,
        pub(crate) orders: Mutex<HashMap<String, Value>>,
        pub(crate) abandoned: Mutex<HashSet<String>>,
        /// Payments voided, by id.
        pub(crate) voided: Mutex<HashSet<String>>,
        pub(crate) payment_down: AtomicBool,
        pub(crate) void_down: AtomicBool,
        pub(crate) order_down: AtomicBool,
        /// Orders stored whose answer is then lost (a timeout after the write), this many times.
        pub(crate) order_answers_lost: AtomicU32,
        pub(crate) slow_payment: AtomicBool,
        /// The token each payment key was first asked with: the payment service refuses a key
        /// asked again with another request (422).
        tokens: Mutex<HashMap<String, String>>,
    }

    fn down(service: &str) -> CallError {
        CallError::Unavailable { service: service.into(), reason: "down".into() }
    }

    impl Fake {
        pub(crate) fn with(products: &[(&str, u64, u32)]) -> Self {
            let fake = Fake::default();
            for (id, price, stock) in products {
                fake.stock.lock().unwrap().insert(id.to_string(), (*price, *stock));
            }
            fake
        }

        pub(crate) fn stock_of(&self, id: &str) -> u32 {
            self.stock.lock().unwrap()[id].1
        }

        pub(crate) fn set_price(&self, id: &str, price: u64) {
            self.stock.lock().unwrap().get_mut(id).unwrap().0 = price;
        }

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

    impl Downstream for Fake {
        async fn abandon_order(&self, order_id: &str, _: &CorrelationId) -> Result<Abandoned, CallError> {
            if self.order_down.load(Ordering::SeqCst) {
                return Err(down("order"));
            }
            Ok(self.abandon(order_id).await)
        }

        async fn lookup(&self, ids: &[String], _: &CorrelationId) -> Result<Vec<Product>, CallError> {
            let stock = self.stock.lock().unwrap();
            Ok(ids
                .iter()
                .filter_map(|id| {
                    let (price, units) = stock.get(id)?;
                    Some(Product {
                        product_id: id.clone(),
                        seller_id: "usr_seller".into(),
                        name: id.to_uppercase(),
                        description: String::new(),
                        category: "books".into(),
                        price_cents: *price,
                        currency: shared::CURRENCY.into(),
                        stock: *units,
                        stock_shards: 1,
                        created_at: chrono::DateTime::UNIX_EPOCH,
                        updated_at: chrono::DateTime::UNIX_EPOCH,
                    })
                })
                .collect())
        }

        async fn authorize(&self, request: &AuthorizeRequest, _: &CorrelationId) -> Result<Authorization, CallError> {
            if self.payment_down.load(Ordering::SeqCst) {
                return Err(down("payment"));
            }
            if self.slow_payment.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            let mut tokens = self.tokens.lock().unwrap();
            let first = tokens.entry(request.idempotency_key.clone()).or_insert_with(|| request.payment_token.clone());
            if *first != request.payment_token {
                let body = "this idempotency_key was used for another request".to_owned();
                return Err(CallError::Unexpected { service: "payment".into(), status: 422, body });
            }
            drop(tokens);
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

        async fn reserve(&self, reservation: &ReservationRequest, _: &CorrelationId) -> Result<Stock, CallError> {
            let (reservation_id, lines) = (&reservation.reservation_id, &reservation.items);
            let mut reservations = self.reservations.lock().unwrap();
            match reservations.get(reservation_id) {
                Some(lines) if lines.is_empty() => {
                    return Err(CallError::Unexpected {
                        service: "seller".into(),
                        status: 409,
                        body: "released".into(),
                    });
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
            reservations.insert(reservation_id.clone(), lines.clone());
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

        async fn create_order(&self, order: &NewOrder, _: &CorrelationId) -> Result<Value, CallError> {
            if self.order_down.load(Ordering::SeqCst) {
                return Err(down("order"));
            }
            let id = order.order_id.clone();
            if self.abandoned.lock().unwrap().contains(&id) {
                return Err(CallError::Unexpected { service: "order".into(), status: 409, body: "abandoned".into() });
            }
            let mut shown = serde_json::to_value(order).unwrap();
            shown["status"] = "placed".into();
            let order = self.orders.lock().unwrap().entry(id).or_insert(shown).clone();
            let lost = self.order_answers_lost.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if lost.is_ok() {
                return Err(CallError::Unavailable { service: "order".into(), reason: "timed out".into() });
            }
            Ok(order)
        }
    }
}

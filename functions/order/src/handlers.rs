//! The Lambda edge of the Order service: `POST /internal/orders` and
//! `POST /internal/orders/{order_id}/abandon` (IAM), `GET /orders`, `GET /orders/{order_id}`,
//! `POST /orders/{order_id}/cancel` (the owner's).

use lambda_http::Request;
use lambda_http::http::{StatusCode, header};
use shared::api::path_parameter;
use shared::caller::caller;
use shared::metrics::{self, Metric};
use shared::outbox::deliver;
use shared::pagination::page_request;
use shared::problem::json_body;
use shared::publisher::Publish;
use shared::{CorrelationId, Problem, Reply};

use crate::domain::NewOrder;
use crate::store::{Abandon, OrderStore, StoreError, StoredOrder};

fn store_failure(error: StoreError) -> Problem {
    match error {
        StoreError::Abandoned => Problem::new(
            StatusCode::CONFLICT,
            "order-abandoned",
            "The order was abandoned",
            "the checkout that chose this order id gave it up; no order is made with it",
        ),
        StoreError::Conflict => Problem::conflict("the order changed at the same time; read it again"),
        StoreError::BadCursor => shared::pagination::bad_cursor(),
        StoreError::Unavailable(detail) => {
            tracing::error!(%detail, "order store unavailable");
            Problem::unavailable("orders are unavailable; try again shortly")
        }
    }
}

/// The caller's order, or 404 (another user's order is not found, not forbidden).
async fn own_order<S: OrderStore>(store: &S, request: &Request) -> Result<StoredOrder, Problem> {
    let who = caller(request)?;
    let id = path_parameter(request, "order_id")?;
    match store.get(&id).await.map_err(store_failure)? {
        Some(order) if order.order.user_id == who.user_id => Ok(order),
        _ => Err(Problem::not_found(format!("no order {id}"))),
    }
}

pub async fn create<S: OrderStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: Request,
    correlation_id: CorrelationId,
) -> Result<Reply, Problem> {
    let new: NewOrder = json_body(&request)?;
    let (order, reservation_id) = new.into_order(chrono::Utc::now()).map_err(|e| Problem::bad_request(e.0))?;
    let event = order.created(&reservation_id, &correlation_id);
    let stored = StoredOrder { order, reservation_id };
    let (status, order) = match store.create(&stored, &event).await.map_err(store_failure)? {
        None => {
            deliver(store.outbox(), publisher, &[event]).await;
            tracing::info!(order_id = %stored.order.order_id, total_cents = stored.order.total_cents, "order placed");
            metrics::count(Metric::OrdersPlaced, ("Service", "order"), 1);
            (StatusCode::CREATED, stored.order)
        }
        // The same checkout again: the order it made, unchanged.
        Some(existing) => (StatusCode::OK, existing.order),
    };
    Ok(Reply::json(status, &order).header(header::LOCATION, format!("/orders/{}", order.order_id)))
}

/// `POST /internal/orders/{order_id}/abandon`: the checkout reconciler gives an order id up
/// before it undoes the checkout, so an order creation still under way cannot land after
/// the undo. 200 `{"abandoned": true}`, or 409 with the order (`order`) if it exists.
pub async fn abandon<S: OrderStore>(store: &S, request: Request, _: CorrelationId) -> Result<Reply, Problem> {
    let order_id = path_parameter(&request, "order_id")?;
    if order_id.len() > crate::domain::MAX_ORDER_ID {
        return Err(Problem::bad_request("order_id is too long"));
    }
    match store.abandon(&order_id).await.map_err(store_failure)? {
        Abandon::Abandoned => {
            tracing::warn!(%order_id, "order id abandoned by its checkout");
            Ok(Reply::ok(&serde_json::json!({"order_id": order_id, "abandoned": true})))
        }
        Abandon::Exists(stored) => Err(Problem::new(
            StatusCode::CONFLICT,
            "order-exists",
            "The order exists",
            "an order was made with this id; it is not abandoned",
        )
        .with("order", serde_json::to_value(&stored.order).unwrap_or_default())),
    }
}

pub async fn get<S: OrderStore>(store: &S, request: Request, _: CorrelationId) -> Result<Reply, Problem> {
    Ok(Reply::ok(&own_order(store, &request).await?.order))
}

pub async fn list<S: OrderStore>(store: &S, request: Request, _: CorrelationId) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let page = page_request(&request)?;
    Ok(Reply::ok(&store.list(&who.user_id, &page).await.map_err(store_failure)?))
}

pub async fn cancel<S: OrderStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: Request,
    correlation_id: CorrelationId,
) -> Result<Reply, Problem> {
    // Settlement may change the order between our read and our write (placed -> paid, right
    // after checkout): read it again and decide again, so a 409 only ever means "not
    // cancellable" (docs/api.md, Orders).
    for _ in 0..3 {
        let current = own_order(store, &request).await?;
        let cancelled = current.order.cancel(chrono::Utc::now()).map_err(|e| Problem::conflict(e.0))?;
        let event = cancelled.cancelled("cancelled_by_customer", &current.reservation_id, &correlation_id);
        let stored = StoredOrder { order: cancelled, reservation_id: current.reservation_id };
        match store.replace(&stored, current.order.status, &event).await {
            Ok(()) => {
                deliver(store.outbox(), publisher, &[event]).await;
                tracing::info!(order_id = %stored.order.order_id, "order cancelled");
                return Ok(Reply::ok(&stored.order));
            }
            Err(StoreError::Conflict) => continue,
            Err(error) => return Err(store_failure(error)),
        }
    }
    Err(store_failure(StoreError::Conflict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use shared::events::Role;
    use shared::outbox::Outbox;
    use shared::publisher::MemoryPublisher;
    use testkit::requests::{as_caller, body, call, sample, with_path};

    use crate::domain::{Order, OrderStatus};
    use shared::pagination::{Page, PageRequest};

    const CUSTOMER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";

    #[tokio::test]
    async fn creating_twice_is_one_order_and_one_event() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let first = call(&|r, c| create(&store, &publisher, r, c), sample("http-post-internal-order.json")).await;
        assert_eq!(first.status(), 201);
        let again = call(&|r, c| create(&store, &publisher, r, c), sample("http-post-internal-order.json")).await;
        assert_eq!(again.status(), 200);
        assert_eq!(body(&first), body(&again));
        let events = publisher.published();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type(), "order.created");
        assert!(store.outbox.pending(10).await.unwrap().is_empty(), "delivered, so out of the outbox");
    }

    /// Defect (issue 14.1): nothing stopped an order creation still under way from landing
    /// after its checkout was undone. An abandoned id makes no order; an existing order is
    /// not abandoned.
    #[tokio::test]
    async fn an_abandoned_order_id_makes_no_order_and_an_existing_order_is_not_abandoned() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let id = body(&call(&|r, c| create(&store, &publisher, r, c), sample("http-post-internal-order.json")).await)
            ["order_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let abandon_it = |id: &str| with_path(sample("http-post-internal-abandon-order.json"), "order_id", id);
        let exists = call(&|r, c| abandon(&store, r, c), abandon_it(&id)).await;
        assert_eq!(exists.status(), 409);
        assert_eq!(body(&exists)["order"]["order_id"], id.as_str());

        let late = MemoryStore::default();
        assert_eq!(call(&|r, c| abandon(&late, r, c), abandon_it(&id)).await.status(), 200);
        let created = call(&|r, c| create(&late, &publisher, r, c), sample("http-post-internal-order.json")).await;
        assert_eq!(created.status(), 409);
        assert_eq!(body(&created)["type"], "/problems/order-abandoned");
        assert!(late.get(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn owners_read_and_cancel_their_orders_once() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let order =
            body(&call(&|r, c| create(&store, &publisher, r, c), sample("http-post-internal-order.json")).await);
        let id = order["order_id"].as_str().unwrap();
        let as_user = |name: &str, user: &str| as_caller(with_path(sample(name), "order_id", id), user, Role::Customer);
        assert_eq!(call(&|r, c| get(&store, r, c), as_user("http-get-order.json", CUSTOMER)).await.status(), 200);
        assert_eq!(call(&|r, c| get(&store, r, c), as_user("http-get-order.json", "usr_other")).await.status(), 404);
        assert_eq!(
            call(&|r, c| cancel(&store, &publisher, r, c), as_user("http-post-cancel-order.json", "usr_other"))
                .await
                .status(),
            404
        );

        let cancelled =
            call(&|r, c| cancel(&store, &publisher, r, c), as_user("http-post-cancel-order.json", CUSTOMER)).await;
        assert_eq!(cancelled.status(), 200);
        let cancelled = body(&cancelled);
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(cancelled["history"].as_array().unwrap().len(), 2);
        assert_eq!(publisher.published().last().unwrap().event_type(), "order.cancelled");
        let again =
            call(&|r, c| cancel(&store, &publisher, r, c), as_user("http-post-cancel-order.json", CUSTOMER)).await;
        assert_eq!(again.status(), 409);

        let mine = body(
            &call(&|r, c| list(&store, r, c), as_caller(sample("http-get-orders.json"), CUSTOMER, Role::Customer))
                .await,
        );
        assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    }

    /// An order store where settlement (placed -> paid) lands right after the first read.
    struct SettledMeanwhile {
        inner: MemoryStore,
        settled: std::sync::atomic::AtomicBool,
    }

    impl OrderStore for SettledMeanwhile {
        type Outbox = shared::outbox::MemoryOutbox;

        fn outbox(&self) -> &Self::Outbox {
            self.inner.outbox()
        }

        async fn create(
            &self,
            order: &StoredOrder,
            event: &shared::Envelope,
        ) -> Result<Option<StoredOrder>, StoreError> {
            self.inner.create(order, event).await
        }

        async fn get(&self, order_id: &str) -> Result<Option<StoredOrder>, StoreError> {
            let read = self.inner.get(order_id).await?;
            if let Some(placed) = &read
                && !self.settled.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                let mut paid = placed.clone();
                paid.order.status = OrderStatus::Paid;
                let event = testkit::requests::sqs_envelope("sqs-order-completed.json");
                self.inner.replace(&paid, OrderStatus::Placed, &event).await?;
            }
            Ok(read)
        }

        async fn abandon(&self, order_id: &str) -> Result<crate::store::Abandon, StoreError> {
            self.inner.abandon(order_id).await
        }

        async fn list(&self, user_id: &str, page: &PageRequest) -> Result<Page<Order>, StoreError> {
            self.inner.list(user_id, page).await
        }

        async fn replace(
            &self,
            order: &StoredOrder,
            expected: OrderStatus,
            event: &shared::Envelope,
        ) -> Result<(), StoreError> {
            self.inner.replace(order, expected, event).await
        }
    }

    #[tokio::test]
    async fn a_cancel_that_races_the_settlement_decides_again_instead_of_a_409() {
        let store = SettledMeanwhile { inner: MemoryStore::default(), settled: true.into() };
        let publisher = MemoryPublisher::default();
        let order =
            body(&call(&|r, c| create(&store, &publisher, r, c), sample("http-post-internal-order.json")).await);
        store.settled.store(false, std::sync::atomic::Ordering::SeqCst);
        let request = as_caller(
            with_path(sample("http-post-cancel-order.json"), "order_id", order["order_id"].as_str().unwrap()),
            CUSTOMER,
            Role::Customer,
        );
        let cancelled = call(&|r, c| cancel(&store, &publisher, r, c), request).await;
        assert_eq!(cancelled.status(), 200, "{}", body(&cancelled));
        let history: Vec<String> =
            body(&cancelled)["history"].as_array().unwrap().iter().map(|h| h["status"].to_string()).collect();
        assert_eq!(history.last().map(String::as_str), Some("\"cancelled\""));
        assert!(store.settled.load(std::sync::atomic::Ordering::SeqCst), "the race happened");
    }

    #[tokio::test]
    async fn a_stored_order_whose_event_failed_is_relayed() {
        struct Down;
        impl Publish for Down {
            async fn publish(&self, _: &shared::Envelope) -> Result<(), shared::publisher::PublishError> {
                Err(shared::publisher::PublishError::Sns("down".into()))
            }
        }
        let store = MemoryStore::default();
        assert_eq!(
            call(&|r, c| create(&store, &Down, r, c), sample("http-post-internal-order.json")).await.status(),
            201
        );
        assert_eq!(store.outbox.pending(10).await.unwrap().len(), 1, "order.created is owed");
        let publisher = MemoryPublisher::default();
        assert_eq!(shared::outbox::relay(&store.outbox, &publisher).await.unwrap().published, 1);
        assert_eq!(publisher.published()[0].event_type(), "order.created");
    }
}

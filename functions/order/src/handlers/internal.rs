//! The routes checkout calls (IAM): `POST /internal/orders` and
//! `POST /internal/orders/{order_id}/abandon`.

use lambda_http::Request;
use lambda_http::http::{StatusCode, header};
use shared::contracts::{Abandoned, NewOrder};
use shared::http::{correlation_id, json_body, path_parameter};
use shared::metrics::{self, Metric};
use shared::outbox::deliver;
use shared::publisher::Publish;
use shared::{Problem, Reply};

use crate::domain::into_order;
use crate::store::{Abandon, OrderStore, StoredOrder};

pub async fn create<S: OrderStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: Request,
) -> Result<Reply, Problem> {
    let new: NewOrder = json_body(&request)?;
    let (order, reservation_id) = into_order(new, chrono::Utc::now())?;
    let event = order.created(&reservation_id, &correlation_id(&request));
    let stored = StoredOrder { order, reservation_id, version: 0 };
    let (status, order) = match store.create(&stored, &event).await? {
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
pub async fn abandon<S: OrderStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let order_id = path_parameter(&request, "order_id")?;
    if order_id.len() > crate::domain::MAX_ORDER_ID {
        return Err(Problem::bad_request("order_id is too long"));
    }
    match store.abandon(&order_id).await? {
        Abandon::Abandoned => {
            tracing::warn!(%order_id, "order id abandoned by its checkout");
            Ok(Reply::ok(&Abandoned { order_id, abandoned: true }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use shared::outbox::Outbox;
    use shared::publisher::MemoryPublisher;
    use testkit::requests::{body, call, sample, with_path};

    #[tokio::test]
    async fn creating_twice_is_one_order_and_one_event() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let first = call(&|r| create(&store, &publisher, r), sample("http-post-internal-order.json")).await;
        assert_eq!(first.status(), 201);
        let again = call(&|r| create(&store, &publisher, r), sample("http-post-internal-order.json")).await;
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
        let id =
            body(&call(&|r| create(&store, &publisher, r), sample("http-post-internal-order.json")).await)["order_id"]
                .as_str()
                .unwrap()
                .to_owned();
        let abandon_it = |id: &str| with_path(sample("http-post-internal-abandon-order.json"), "order_id", id);
        let exists = call(&|r| abandon(&store, r), abandon_it(&id)).await;
        assert_eq!(exists.status(), 409);
        assert_eq!(body(&exists)["order"]["order_id"], id.as_str());

        let late = MemoryStore::default();
        assert_eq!(call(&|r| abandon(&late, r), abandon_it(&id)).await.status(), 200);
        let created = call(&|r| create(&late, &publisher, r), sample("http-post-internal-order.json")).await;
        assert_eq!(created.status(), 409);
        assert_eq!(body(&created)["type"], "/problems/order-abandoned");
        assert!(late.get(&id).await.unwrap().is_none());
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
        assert_eq!(call(&|r| create(&store, &Down, r), sample("http-post-internal-order.json")).await.status(), 201);
        assert_eq!(store.outbox.pending(10).await.unwrap().len(), 1, "order.created is owed");
        let publisher = MemoryPublisher::default();
        assert_eq!(shared::outbox::relay(&store.outbox, &publisher).await.unwrap().published, 1);
        assert_eq!(publisher.published()[0].event_type(), "order.created");
    }
}

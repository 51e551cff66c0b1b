//! The owner's routes: `GET /orders`, `GET /orders/{order_id}` and
//! `POST /orders/{order_id}/cancel`.

use lambda_http::Request;
use shared::caller::caller;
use shared::http::{correlation_id, path_parameter};
use shared::pagination::page_request;
use shared::publisher::Publish;
use shared::{Problem, Reply};

use crate::store::{OrderStore, StoreError, StoredOrder, record};

/// The caller's order, or 404 (another user's order is not found, not forbidden).
async fn own_order<S: OrderStore>(store: &S, request: &Request) -> Result<StoredOrder, Problem> {
    let who = caller(request)?;
    let id = path_parameter(request, "order_id")?;
    match store.get(&id).await? {
        Some(order) if order.order.user_id == who.user_id => Ok(order),
        _ => Err(Problem::not_found(format!("no order {id}"))),
    }
}

pub async fn get<S: OrderStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    Ok(Reply::ok(&own_order(store, &request).await?.order))
}

pub async fn list<S: OrderStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let page = page_request(&request)?;
    Ok(Reply::ok(&store.list(&who.user_id, &page).await?))
}

pub async fn cancel<S: OrderStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: Request,
) -> Result<Reply, Problem> {
    let correlation_id = correlation_id(&request);
    // Settlement may change the order between our read and our write (placed -> paid, right
    // after checkout): read it again and decide again, so a 409 only ever means "not
    // cancellable" (docs/api.md, Orders).
    for _ in 0..3 {
        let current = own_order(store, &request).await?;
        // Not a bad request: the order is in a state that cannot be cancelled.
        let cancelled = current.order.cancel(chrono::Utc::now()).map_err(|e| Problem::conflict(e.0))?;
        let event = cancelled.cancelled("cancelled_by_customer", &current.reservation_id, &correlation_id);
        if let Some(stored) = record(store, publisher, &current, cancelled, event).await? {
            tracing::info!(order_id = %stored.order.order_id, "order cancelled");
            return Ok(Reply::ok(&stored.order));
        }
    }
    Err(StoreError::Conflict.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderStatus;
    use crate::handlers::internal::create;
    use crate::store::memory::{Meanwhile, MemoryStore};
    use shared::events::Role;
    use shared::publisher::MemoryPublisher;
    use testkit::requests::{as_caller, body, call, sample, with_path};

    const CUSTOMER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";

    #[tokio::test]
    async fn owners_read_and_cancel_their_orders_once() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let order = body(&call(&|r| create(&store, &publisher, r), sample("http-post-internal-order.json")).await);
        let id = order["order_id"].as_str().unwrap();
        let as_user = |name: &str, user: &str| as_caller(with_path(sample(name), "order_id", id), user, Role::Customer);
        assert_eq!(call(&|r| get(&store, r), as_user("http-get-order.json", CUSTOMER)).await.status(), 200);
        assert_eq!(call(&|r| get(&store, r), as_user("http-get-order.json", "usr_other")).await.status(), 404);
        assert_eq!(
            call(&|r| cancel(&store, &publisher, r), as_user("http-post-cancel-order.json", "usr_other"))
                .await
                .status(),
            404
        );

        let cancelled =
            call(&|r| cancel(&store, &publisher, r), as_user("http-post-cancel-order.json", CUSTOMER)).await;
        assert_eq!(cancelled.status(), 200);
        let cancelled = body(&cancelled);
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(cancelled["history"].as_array().unwrap().len(), 2);
        assert_eq!(publisher.published().last().unwrap().event_type(), "order.cancelled");
        let again = call(&|r| cancel(&store, &publisher, r), as_user("http-post-cancel-order.json", CUSTOMER)).await;
        assert_eq!(again.status(), 409);

        let mine = body(
            &call(&|r| list(&store, r), as_caller(sample("http-get-orders.json"), CUSTOMER, Role::Customer)).await,
        );
        assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_cancel_that_races_the_settlement_decides_again_instead_of_a_409() {
        let store = Meanwhile::around(MemoryStore::default());
        let publisher = MemoryPublisher::default();
        let order = body(&call(&|r| create(&store, &publisher, r), sample("http-post-internal-order.json")).await);
        // Settlement (placed -> paid) lands right after the cancel's first read.
        let placed = store.inner.get(order["order_id"].as_str().unwrap()).await.unwrap().unwrap();
        let paid = placed.order.after_payment(OrderStatus::Paid, chrono::Utc::now()).unwrap();
        *store.meanwhile.lock().unwrap() = Some(paid);
        let request = as_caller(
            with_path(sample("http-post-cancel-order.json"), "order_id", order["order_id"].as_str().unwrap()),
            CUSTOMER,
            Role::Customer,
        );
        let cancelled = call(&|r| cancel(&store, &publisher, r), request).await;
        assert_eq!(cancelled.status(), 200, "{}", body(&cancelled));
        let history: Vec<String> =
            body(&cancelled)["history"].as_array().unwrap().iter().map(|h| h["status"].to_string()).collect();
        assert_eq!(history.last().map(String::as_str), Some("\"cancelled\""));
        assert!(store.meanwhile.lock().unwrap().is_none(), "the race happened");
        assert!(history.iter().any(|h| h == "\"paid\""), "cancelled after it was paid: {history:?}");
    }
}

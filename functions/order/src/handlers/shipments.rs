//! The sellers' routes (docs/api.md, Fulfilment): `GET /seller/shipments?status=`,
//! `POST /seller/shipments/{shipment_id}/ship` and `POST /seller/shipments/{shipment_id}/deliver`.
//!
//! A move is decided on the order as read and written on condition that the order has not
//! changed since (its `version`), with its event, in one transaction: a cancel and a ship of
//! the same order never both land, and of two sellers shipping an order's last two shipments
//! at once, one write fails, reads again and is then the one that makes the order `shipped`.

use lambda_http::{Request, RequestExt};
use shared::caller::caller;
use shared::events::Role;
use shared::http::{correlation_id, json_body, path_parameter};
use shared::pagination::page_request;
use shared::publisher::Publish;
use shared::{CorrelationId, Envelope, Problem, Reply};

use crate::domain::{MAX_ORDER_ID, Order, Refused, ShipRequest, ShipmentStatus};
use crate::store::{OrderStore, StoreError, record};

/// How often a move decided on an order that changed meanwhile is decided again: each retry
/// follows another writer's success, so only as many sellers as the order has can crowd it.
const TRIES: usize = 8;

pub async fn list<S: OrderStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    who.require(Role::Seller)?;
    let page = page_request(&request)?;
    let status = match request.query_string_parameters_ref().and_then(|q| q.first("status")) {
        None | Some("") => ShipmentStatus::Pending,
        Some(text) => ShipmentStatus::parse(text)
            .ok_or_else(|| Problem::bad_request("status must be pending, shipped or delivered"))?,
    };
    Ok(Reply::ok(&store.shipments(&who.user_id, status, &page).await?))
}

pub async fn ship<S: OrderStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: Request,
) -> Result<Reply, Problem> {
    let how = json_body::<ShipRequest>(&request)?.checked()?;
    let now = chrono::Utc::now();
    let moved = move_shipment(store, publisher, &request, |order, shipment_id, seller_id, correlation_id| {
        let moved = order.ship(shipment_id, seller_id, &how, now)?;
        let event = moved.shipment(shipment_id).map(|s| moved.shipped(s, correlation_id));
        Ok((moved, event))
    })
    .await?;
    tracing::info!(order_id = %moved.0.order_id, shipment_id = %moved.1, status = ?moved.0.status, "shipment shipped");
    shipment_reply(&moved.0, &moved.1)
}

pub async fn deliver_shipment<S: OrderStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: Request,
) -> Result<Reply, Problem> {
    let now = chrono::Utc::now();
    let moved = move_shipment(store, publisher, &request, |order, shipment_id, seller_id, correlation_id| {
        let moved = order.deliver(shipment_id, seller_id, now)?;
        let event = moved.shipment(shipment_id).map(|s| moved.delivered(s, correlation_id));
        Ok((moved, event))
    })
    .await?;
    tracing::info!(order_id = %moved.0.order_id, shipment_id = %moved.1, status = ?moved.0.status, "shipment delivered");
    shipment_reply(&moved.0, &moved.1)
}

fn shipment_reply(order: &Order, shipment_id: &str) -> Result<Reply, Problem> {
    order.shipment(shipment_id).map(Reply::ok).ok_or_else(Problem::internal)
}

/// The caller's shipment of the request's path moved by `decide` (the order after the move,
/// and its event), written on condition that the order is as read; the order and the
/// shipment's id.
async fn move_shipment<S, P, F>(
    store: &S,
    publisher: &P,
    request: &Request,
    decide: F,
) -> Result<(Order, String), Problem>
where
    S: OrderStore,
    P: Publish + Sync,
    F: Fn(&Order, &str, &str, &CorrelationId) -> Result<(Order, Option<Envelope>), Refused>,
{
    let who = caller(request)?;
    let shipment_id = path_parameter(request, "shipment_id")?;
    let not_found = || Problem::not_found(format!("no shipment {shipment_id}"));
    // Another seller's shipment, or a customer asking: not found (no existence leak).
    if who.role != Role::Seller || shipment_id.len() > MAX_ORDER_ID {
        return Err(not_found());
    }
    let Some(found) = store.shipment(&shipment_id).await? else { return Err(not_found()) };
    if found.seller_id != who.user_id {
        return Err(not_found());
    }
    let correlation_id = correlation_id(request);
    for _ in 0..TRIES {
        let Some(current) = store.get(&found.order_id).await? else { return Err(not_found()) };
        let (moved, event) = match decide(&current.order, &shipment_id, &who.user_id, &correlation_id) {
            Ok((moved, Some(event))) => (moved, event),
            Ok((_, None)) | Err(Refused::NotFound) => return Err(not_found()),
            Err(Refused::Conflict(why)) => return Err(Problem::conflict(why)),
        };
        // `None`: the order moved meanwhile (a cancel, another seller's shipment): decide again.
        if let Some(stored) = record(store, publisher, &current, moved, event).await? {
            return Ok((stored.order, shipment_id));
        }
    }
    Err(StoreError::Conflict.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer;
    use crate::handlers::internal::create;
    use crate::handlers::orders::{cancel, get};
    use crate::store::memory::{Meanwhile, MemoryStore};
    use serde_json::{Value, json};
    use shared::publisher::MemoryPublisher;
    use testkit::requests::{as_caller, body, call, sample, sqs_envelope, with_body, with_path};

    const CUSTOMER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";
    const ORDER: &str = "ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E";
    const SELLER: &str = "usr_01JD4RY9K8J7H6G5F4E3D2C1B0";
    const OTHER_SELLER: &str = "usr_seller_two";

    /// The sample order (with its address) with its second line sold by another seller.
    async fn two_seller_order(store: &MemoryStore, publisher: &MemoryPublisher) -> Value {
        let mut order = testkit::props::json_of(&sample("http-post-internal-order.json"));
        order["items"][1]["seller_id"] = json!(OTHER_SELLER);
        let request = with_body(sample("http-post-internal-order.json"), &order.to_string());
        let created = call(&|r| create(store, publisher, r), request).await;
        assert_eq!(created.status(), 201, "{}", body(&created));
        body(&created)
    }

    async fn paid(store: &MemoryStore, publisher: &MemoryPublisher) {
        consumer::handle(store, publisher, sqs_envelope("sqs-payment-completed.json")).await.unwrap();
    }

    fn shipment_of(order: &Value, seller: &str) -> String {
        let shipments = order["shipments"].as_array().unwrap();
        let shipment = shipments.iter().find(|s| s["seller_id"] == seller).unwrap();
        shipment["shipment_id"].as_str().unwrap().to_owned()
    }

    async fn ship_as(store: &MemoryStore, publisher: &MemoryPublisher, seller: &str, id: &str) -> (u16, Value) {
        let request = with_path(sample("http-post-ship-shipment.json"), "shipment_id", id);
        let response = call(&|r| ship(store, publisher, r), as_caller(request, seller, Role::Seller)).await;
        (response.status().as_u16(), body(&response))
    }

    async fn deliver_as(store: &MemoryStore, publisher: &MemoryPublisher, seller: &str, id: &str) -> (u16, Value) {
        let request = with_path(sample("http-post-deliver-shipment.json"), "shipment_id", id);
        let response = call(&|r| deliver_shipment(store, publisher, r), as_caller(request, seller, Role::Seller)).await;
        (response.status().as_u16(), body(&response))
    }

    async fn listed(store: &MemoryStore, seller: &str, status: &str) -> Vec<String> {
        let mut request = sample("http-get-seller-shipments.json");
        let query = lambda_http::aws_lambda_events::query_map::QueryMap::from(std::collections::HashMap::from([(
            "status".to_owned(),
            status.to_owned(),
        )]));
        request = lambda_http::RequestExt::with_query_string_parameters(request, query);
        let response = call(&|r| list(store, r), as_caller(request, seller, Role::Seller)).await;
        assert_eq!(response.status(), 200, "{}", body(&response));
        body(&response)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["shipment_id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn order_status(store: &MemoryStore) -> Value {
        let request = as_caller(with_path(sample("http-get-order.json"), "order_id", ORDER), CUSTOMER, Role::Customer);
        body(&call(&|r| get(store, r), request).await)
    }

    #[tokio::test]
    async fn each_seller_ships_and_delivers_their_own_shipment_and_the_order_follows() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let order = two_seller_order(&store, &publisher).await;
        assert_eq!(order["shipments"].as_array().unwrap().len(), 2, "one per seller");
        assert_eq!(order["shipments"][0]["ship_to"]["country"], "GB");
        let (mine, theirs) = (shipment_of(&order, SELLER), shipment_of(&order, OTHER_SELLER));

        // Not paid yet: nothing to list, and shipping is refused.
        assert!(listed(&store, SELLER, "pending").await.is_empty());
        assert_eq!(ship_as(&store, &publisher, SELLER, &mine).await.0, 409);
        paid(&store, &publisher).await;
        assert_eq!(listed(&store, SELLER, "pending").await, [mine.as_str()]);
        assert_eq!(listed(&store, OTHER_SELLER, "pending").await, [theirs.as_str()]);

        // Another seller's shipment is not found; a customer finds none either.
        assert_eq!(ship_as(&store, &publisher, OTHER_SELLER, &mine).await.0, 404);
        assert_eq!(ship_as(&store, &publisher, CUSTOMER, &mine).await.0, 404);
        assert_eq!(ship_as(&store, &publisher, SELLER, "shp_unknown").await.0, 404);
        assert_eq!(deliver_as(&store, &publisher, SELLER, &mine).await.0, 409, "not shipped yet");

        let (status, shipped) = ship_as(&store, &publisher, SELLER, &mine).await;
        assert_eq!(status, 200, "{shipped}");
        assert_eq!((&shipped["status"], &shipped["carrier"]), (&json!("shipped"), &json!("UPS")));
        assert!(shipped["shipped_at"].is_string());
        let events = publisher.published().len();
        assert_eq!(ship_as(&store, &publisher, SELLER, &mine).await.0, 409, "a second ship");
        assert_eq!(publisher.published().len(), events, "and no second event");
        assert_eq!(order_status(&store).await["status"], "paid", "one of two shipped");
        assert_eq!(listed(&store, SELLER, "shipped").await, [mine.as_str()]);
        assert!(listed(&store, SELLER, "pending").await.is_empty());

        // Cancel is refused once anything shipped.
        let request =
            as_caller(with_path(sample("http-post-cancel-order.json"), "order_id", ORDER), CUSTOMER, Role::Customer);
        assert_eq!(call(&|r| cancel(&store, &publisher, r), request).await.status(), 409);

        assert_eq!(ship_as(&store, &publisher, OTHER_SELLER, &theirs).await.0, 200);
        assert_eq!(order_status(&store).await["status"], "shipped");
        assert_eq!(deliver_as(&store, &publisher, SELLER, &mine).await.0, 200);
        assert_eq!(order_status(&store).await["status"], "shipped", "one of two delivered");
        assert_eq!(deliver_as(&store, &publisher, SELLER, &mine).await.0, 409, "a second deliver");
        let (status, delivered) = deliver_as(&store, &publisher, OTHER_SELLER, &theirs).await;
        assert_eq!((status, &delivered["status"]), (200, &json!("delivered")));
        let order = order_status(&store).await;
        let history: Vec<&str> =
            order["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
        assert_eq!(history, ["placed", "paid", "shipped", "delivered"]);
        let types: Vec<&str> = publisher.published().iter().map(|e| e.event_type()).collect();
        assert_eq!(
            types,
            [
                "order.created",
                "order.completed",
                "order.shipped",
                "order.shipped",
                "order.delivered",
                "order.delivered"
            ]
        );
    }

    #[tokio::test]
    async fn a_cancelled_order_is_shipped_by_nobody_and_a_bad_ship_body_is_400() {
        let (store, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let order = two_seller_order(&store, &publisher).await;
        paid(&store, &publisher).await;
        let request =
            as_caller(with_path(sample("http-post-cancel-order.json"), "order_id", ORDER), CUSTOMER, Role::Customer);
        assert_eq!(call(&|r| cancel(&store, &publisher, r), request).await.status(), 200);
        let mine = shipment_of(&order, SELLER);
        assert!(listed(&store, SELLER, "pending").await.is_empty(), "a cancelled order is nobody's to ship");
        assert_eq!(ship_as(&store, &publisher, SELLER, &mine).await.0, 409);
        for bad in [
            json!({"carrier": "", "tracking_number": "1Z"}),
            json!({"carrier": "UPS", "tracking_number": "x".repeat(65)}),
            json!({"carrier": "UPS"}),
        ] {
            let request =
                with_body(with_path(sample("http-post-ship-shipment.json"), "shipment_id", &mine), &bad.to_string());
            let response = call(&|r| ship(&store, &publisher, r), as_caller(request, SELLER, Role::Seller)).await;
            assert_eq!(response.status(), 400, "{bad}");
        }
    }

    async fn paid_two_seller_order() -> (Meanwhile, MemoryPublisher, Value) {
        let (inner, publisher) = (MemoryStore::default(), MemoryPublisher::default());
        let order = two_seller_order(&inner, &publisher).await;
        paid(&inner, &publisher).await;
        (Meanwhile::around(inner), publisher, order)
    }

    fn ship_request(seller: &str, id: &str) -> Request {
        as_caller(with_path(sample("http-post-ship-shipment.json"), "shipment_id", id), seller, Role::Seller)
    }

    /// Two sellers ship the order's last two shipments at once: each decided on an order
    /// where the other's was pending; the second write fails, decides again, and is the one
    /// that makes the order `shipped`, once.
    #[tokio::test]
    async fn two_sellers_shipping_the_last_two_shipments_at_once_ship_the_order_once() {
        let (store, publisher, order) = paid_two_seller_order().await;
        let (mine, theirs) = (shipment_of(&order, SELLER), shipment_of(&order, OTHER_SELLER));
        let current = store.inner.get(ORDER).await.unwrap().unwrap().order;
        let how = ShipRequest { carrier: "DHL".into(), tracking_number: "JD0001".into() };
        *store.meanwhile.lock().unwrap() = Some(current.ship(&theirs, OTHER_SELLER, &how, chrono::Utc::now()).unwrap());
        let response = call(&|r| ship(&store, &publisher, r), ship_request(SELLER, &mine)).await;
        assert_eq!(response.status(), 200, "{}", body(&response));
        let order = store.inner.get(ORDER).await.unwrap().unwrap().order;
        assert_eq!(order.status, crate::domain::OrderStatus::Shipped);
        let shipped_steps = order.history.iter().filter(|h| h.status == crate::domain::OrderStatus::Shipped).count();
        assert_eq!(shipped_steps, 1);
        assert!(order.shipments.iter().all(|s| s.status == ShipmentStatus::Shipped), "both moves landed");
    }

    /// A cancel decided on the paid order while a seller's ship lands: the cancel reads again
    /// and is refused; the shipment stays shipped.
    #[tokio::test]
    async fn a_cancel_racing_a_ship_is_refused_once_the_ship_landed() {
        let (store, publisher, order) = paid_two_seller_order().await;
        let mine = shipment_of(&order, SELLER);
        let current = store.inner.get(ORDER).await.unwrap().unwrap().order;
        let how = ShipRequest { carrier: "DHL".into(), tracking_number: "JD0001".into() };
        *store.meanwhile.lock().unwrap() = Some(current.ship(&mine, SELLER, &how, chrono::Utc::now()).unwrap());
        let request =
            as_caller(with_path(sample("http-post-cancel-order.json"), "order_id", ORDER), CUSTOMER, Role::Customer);
        let response = call(&|r| cancel(&store, &publisher, r), request).await;
        assert_eq!(response.status(), 409, "{}", body(&response));
        let order = store.inner.get(ORDER).await.unwrap().unwrap().order;
        assert_eq!(order.status, crate::domain::OrderStatus::Paid);
        assert!(publisher.published().iter().all(|e| e.event_type() != "order.cancelled"));

        // The other way round: the ship decided on the paid order while the cancel lands.
        let (store, publisher, order) = paid_two_seller_order().await;
        let mine = shipment_of(&order, SELLER);
        let current = store.inner.get(ORDER).await.unwrap().unwrap().order;
        *store.meanwhile.lock().unwrap() = Some(current.cancel(chrono::Utc::now()).unwrap());
        let response = call(&|r| ship(&store, &publisher, r), ship_request(SELLER, &mine)).await;
        assert_eq!(response.status(), 409, "{}", body(&response));
        let order = store.inner.get(ORDER).await.unwrap().unwrap().order;
        assert!(order.shipments.iter().all(|s| s.status == ShipmentStatus::Pending));
        assert!(publisher.published().iter().all(|e| e.event_type() != "order.shipped"));
    }
}

//! The internal (IAM) inventory routes the checkout chain calls:
//! `POST /internal/inventory/reservations`, `DELETE /internal/inventory/reservations/{id}`
//! and `POST /internal/products/lookup` (names and prices for carts, in one call).

use lambda_http::Request;
use lambda_http::http::StatusCode;
use shared::contracts::{ProductLookup, Products, ReservationRequest};
use shared::http::{json_body, path_parameter};
use shared::{Problem, Reply};

use crate::domain::reservation_lines;
use crate::store::CatalogueStore;

pub async fn reserve<S: CatalogueStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let reservation: ReservationRequest = json_body(&request)?;
    let lines = reservation_lines(&reservation)?;
    let held = store.reserve(&reservation.reservation_id, &lines).await?;
    tracing::info!(reservation_id = %held.reservation_id, lines = held.items.len(), "stock reserved");
    Ok(Reply::json(StatusCode::CREATED, &held))
}

pub async fn release<S: CatalogueStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let reservation_id = path_parameter(&request, "reservation_id")?;
    if reservation_id.len() > crate::domain::MAX_RESERVATION_ID {
        return Err(Problem::not_found(format!("no reservation {reservation_id}")));
    }
    match store.release(&reservation_id, false).await? {
        Some(reservation) if reservation.status == crate::domain::ReservationStatus::Committed => {
            Err(Problem::conflict("the reservation is committed: its order exists; cancel the order instead"))
        }
        Some(reservation) => Ok(Reply::ok(&reservation)),
        None => Err(Problem::not_found(format!("no reservation {reservation_id}"))),
    }
}

pub async fn lookup<S: CatalogueStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let wanted: ProductLookup = json_body(&request)?;
    if wanted.product_ids.len() > 100 {
        return Err(Problem::bad_request("at most 100 product ids per lookup"));
    }
    let items = store.lookup(&wanted.product_ids).await?;
    Ok(Reply::ok(&Products { items }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NewProduct;
    use crate::store::SellerStore;
    use crate::store::memory::MemoryStore;
    use serde_json::json;
    use testkit::requests::{body, call, sample, with_body, with_path};

    async fn store_with(stock: &[(&str, i64)]) -> MemoryStore {
        let store = MemoryStore::default();
        for (id, units) in stock {
            let new = NewProduct {
                name: id.to_string(),
                description: None,
                category: "c".into(),
                price_cents: 100,
                stock: *units,
                stock_shards: None,
            };
            let mut product = new.validate("usr_s", chrono::Utc::now()).unwrap();
            product.product_id = id.to_string();
            store.create(&product).await.unwrap();
        }
        store
    }

    async fn reserve_body(store: &MemoryStore, body_text: &str) -> lambda_http::Response<lambda_http::Body> {
        call(&|r| reserve(store, r), with_body(sample("http-post-internal-reservation.json"), body_text)).await
    }

    #[tokio::test]
    async fn a_reservation_takes_all_lines_or_none_and_reports_shortages() {
        let store = store_with(&[("prd_a", 5), ("prd_b", 1)]).await;
        let short = reserve_body(&store, r#"{"reservation_id":"r1","items":[{"product_id":"prd_a","quantity":2},{"product_id":"prd_b","quantity":3},{"product_id":"prd_x","quantity":1}]}"#).await;
        assert_eq!(short.status(), 409);
        let problem = body(&short);
        assert_eq!(problem["type"], "/problems/insufficient-stock");
        assert_eq!(
            problem["shortages"],
            json!([{"product_id":"prd_b","requested":3,"available":1},{"product_id":"prd_x","requested":1,"available":0}])
        );
        assert_eq!(store.get("prd_a").await.unwrap().unwrap().stock, 5, "nothing taken");

        let held = reserve_body(&store, r#"{"reservation_id":"r2","items":[{"product_id":"prd_a","quantity":2},{"product_id":"prd_a","quantity":1}]}"#).await;
        assert_eq!(held.status(), 201);
        assert_eq!(store.get("prd_a").await.unwrap().unwrap().stock, 2);
        let again =
            reserve_body(&store, r#"{"reservation_id":"r2","items":[{"product_id":"prd_a","quantity":3}]}"#).await;
        assert_eq!(again.status(), 201);
        assert_eq!(store.get("prd_a").await.unwrap().unwrap().stock, 2, "the same reservation is not taken twice");
    }

    #[tokio::test]
    async fn products_not_on_sale_have_nothing_to_reserve() {
        let store = store_with(&[("prd_a", 5), ("prd_b", 5)]).await;
        store.delete("prd_b", "usr_s").await.unwrap();
        let short = reserve_body(&store, r#"{"reservation_id":"r1","items":[{"product_id":"prd_a","quantity":1},{"product_id":"prd_b","quantity":1}]}"#).await;
        assert_eq!(short.status(), 409);
        assert_eq!(body(&short)["shortages"], json!([{"product_id":"prd_b","requested":1,"available":0}]));
        assert_eq!(store.get("prd_a").await.unwrap().unwrap().stock, 5, "nothing taken");
        let suspended = store_with(&[("prd_a", 5)]).await;
        suspended.create_seller(&seller("usr_s")).await.unwrap();
        suspended
            .move_seller("usr_s", crate::domain::SellerStatus::Suspended, Some("x"), &shared::CorrelationId::generate())
            .await
            .unwrap();
        let short =
            reserve_body(&suspended, r#"{"reservation_id":"r2","items":[{"product_id":"prd_a","quantity":1}]}"#).await;
        assert_eq!(body(&short)["shortages"], json!([{"product_id":"prd_a","requested":1,"available":0}]));
    }

    fn seller(seller_id: &str) -> crate::domain::Seller {
        let now = chrono::Utc::now();
        crate::domain::Seller {
            seller_id: seller_id.into(),
            name: "S".into(),
            email: "s@example.com".into(),
            status: crate::domain::SellerStatus::Approved,
            created_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn releasing_gives_units_back_once() {
        let store = store_with(&[("prd_a", 5)]).await;
        reserve_body(&store, r#"{"reservation_id":"r1","items":[{"product_id":"prd_a","quantity":4}]}"#).await;
        for _ in 0..2 {
            let released = call(
                &|r| release(&store, r),
                with_path(sample("http-delete-internal-reservation.json"), "reservation_id", "r1"),
            )
            .await;
            assert_eq!(released.status(), 200);
            assert_eq!(body(&released)["status"], "released");
        }
        assert_eq!(store.get("prd_a").await.unwrap().unwrap().stock, 5);
        let replayed =
            reserve_body(&store, r#"{"reservation_id":"r1","items":[{"product_id":"prd_a","quantity":4}]}"#).await;
        assert_eq!(replayed.status(), 409, "a released reservation is no success to replay");
        assert_eq!(body(&replayed)["type"], "/problems/reservation-released");
        assert_eq!(store.get("prd_a").await.unwrap().unwrap().stock, 5);
    }

    /// Defect (issue 14.4): releasing a reservation not written yet answered 404, and the late
    /// reserve then held its stock for ever.
    #[tokio::test]
    async fn a_release_before_its_reserve_leaves_a_tombstone_the_reserve_cannot_pass() {
        let store = store_with(&[("prd_a", 5)]).await;
        let early = call(
            &|r| release(&store, r),
            with_path(sample("http-delete-internal-reservation.json"), "reservation_id", "r-late"),
        )
        .await;
        assert_eq!(early.status(), 200);
        assert_eq!(body(&early)["status"], "released");
        let late =
            reserve_body(&store, r#"{"reservation_id":"r-late","items":[{"product_id":"prd_a","quantity":2}]}"#).await;
        assert_eq!(late.status(), 409);
        assert_eq!(store.get("prd_a").await.unwrap().unwrap().stock, 5, "nothing held");
    }

    #[tokio::test]
    async fn lookups_return_the_products_that_exist() {
        let store = store_with(&[("prd_a", 5)]).await;
        let found = call(
            &|r| lookup(&store, r),
            with_body(sample("http-post-internal-lookup.json"), r#"{"product_ids":["prd_a","prd_gone"]}"#),
        )
        .await;
        assert_eq!(found.status(), 200);
        let items = body(&found)["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["product_id"], "prd_a");
    }
}

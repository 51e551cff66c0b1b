//! `POST /products`, `PATCH /products/{product_id}`, `DELETE /products/{product_id}`,
//! `GET /products/{product_id}`, `GET /products?category=` (docs/api.md, Catalogue).

use lambda_http::http::{StatusCode, header};
use lambda_http::{Request, RequestExt};
use shared::caller::caller;
use shared::events::Role;
use shared::http::{json_body, path_parameter};
use shared::pagination::page_request;
use shared::{Problem, Reply};

use crate::domain::{NewProduct, ProductChanges, SellerStatus};
use crate::store::{CatalogueStore, SellerStore};

pub async fn create<S: CatalogueStore + SellerStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let seller = caller(&request)?;
    seller.require(Role::Seller)?;
    let status = store.seller(&seller.user_id).await?.map(|s| s.status);
    if status != Some(SellerStatus::Approved) {
        let status = status.map_or("not known yet (the profile is made a moment after registering)", |s| s.as_str());
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "seller-not-approved",
            "Seller not approved",
            format!("only approved sellers list products; this seller is {status}"),
        ));
    }
    let new: NewProduct = json_body(&request)?;
    let product = new.validate(&seller.user_id, chrono::Utc::now())?;
    store.create(&product).await?;
    tracing::info!(product_id = %product.product_id, "product created");
    let location = format!("/products/{}", product.product_id);
    Ok(Reply::json(StatusCode::CREATED, &product).header(header::LOCATION, location))
}

pub async fn update<S: CatalogueStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let seller = caller(&request)?;
    let product_id = path_parameter(&request, "product_id")?;
    let changes: ProductChanges = json_body(&request)?;
    // Someone else's product is "not found", never "forbidden" (no existence leak).
    let product = store.update(&product_id, &seller.user_id, &changes).await?;
    Ok(Reply::ok(&product))
}

pub async fn delete<S: CatalogueStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let seller = caller(&request)?;
    let product_id = path_parameter(&request, "product_id")?;
    // Someone else's product is "not found", as is one deleted already.
    store.delete(&product_id, &seller.user_id).await?;
    tracing::info!(%product_id, "product deleted");
    Ok(Reply::no_content())
}

pub async fn get<S: CatalogueStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let product_id = path_parameter(&request, "product_id")?;
    match store.get(&product_id).await? {
        Some(product) => Ok(Reply::ok(&product)),
        None => Err(Problem::not_found(format!("no product {product_id}"))),
    }
}

pub async fn list<S: CatalogueStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let page = page_request(&request)?;
    let category =
        request.query_string_parameters_ref().and_then(|q| q.first("category")).map(|c| c.trim().to_lowercase());
    let category = category.filter(|c| !c.is_empty());
    Ok(Reply::ok(&store.list(category.as_deref(), &page).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use serde_json::json;
    use testkit::requests::{as_caller, body, call, sample, with_body, with_path};

    fn store_with_seller(seller_id: &str, status: SellerStatus) -> MemoryStore {
        MemoryStore::with_seller(seller_id, status)
    }

    #[tokio::test]
    async fn only_approved_sellers_create_products() {
        for (status, expected) in
            [(SellerStatus::Pending, 403), (SellerStatus::Suspended, 403), (SellerStatus::Approved, 201)]
        {
            let store = store_with_seller("usr_seller", status);
            let created =
                call(&|r| create(&store, r), as_caller(sample("http-post-products.json"), "usr_seller", Role::Seller))
                    .await;
            assert_eq!(created.status(), expected, "{status:?}");
            if expected == 403 {
                assert_eq!(body(&created)["type"], "/problems/seller-not-approved");
            }
        }
        let unknown = MemoryStore::default();
        let created =
            call(&|r| create(&unknown, r), as_caller(sample("http-post-products.json"), "usr_new", Role::Seller)).await;
        assert_eq!(created.status(), 403, "no profile yet");
    }

    #[tokio::test]
    async fn sellers_create_and_owners_update_products() {
        let store = store_with_seller("usr_seller", SellerStatus::Approved);
        let created =
            call(&|r| create(&store, r), as_caller(sample("http-post-products.json"), "usr_seller", Role::Seller))
                .await;
        assert_eq!(created.status(), 201);
        let product = body(&created);
        assert_eq!(product["seller_id"], "usr_seller");
        assert_eq!(product["currency"], "USD");
        let id = product["product_id"].as_str().unwrap().to_owned();
        assert_eq!(created.headers()["location"], format!("/products/{id}").as_str());

        let patch = |who: &str, body_text: &str| {
            let request = with_path(sample("http-patch-product.json"), "product_id", &id);
            as_caller(with_body(request, body_text), who, Role::Seller)
        };
        let updated = call(&|r| update(&store, r), patch("usr_seller", r#"{"price_cents": 999, "stock": 7}"#)).await;
        assert_eq!(updated.status(), 200);
        assert_eq!((body(&updated)["price_cents"].clone(), body(&updated)["stock"].clone()), (json!(999), json!(7)));
        let stranger = call(&|r| update(&store, r), patch("usr_other", r#"{"price_cents": 1}"#)).await;
        assert_eq!(stranger.status(), 404, "another seller's product is not found");
        let invalid = call(&|r| update(&store, r), patch("usr_seller", r#"{"price_cents": 0}"#)).await;
        assert_eq!(invalid.status(), 400);
    }

    async fn created(store: &MemoryStore, seller_id: &str) -> String {
        let created =
            call(&|r| create(store, r), as_caller(sample("http-post-products.json"), seller_id, Role::Seller)).await;
        assert_eq!(created.status(), 201);
        body(&created)["product_id"].as_str().unwrap().to_owned()
    }

    async fn shown(store: &MemoryStore, id: &str) -> (u16, usize) {
        let got = call(&|r| get(store, r), with_path(sample("http-get-product.json"), "product_id", id)).await;
        let listed = body(&call(&|r| list(store, r), with_body(sample("http-get-products.json"), "")).await);
        let listed = listed["items"].as_array().unwrap().iter().filter(|p| p["product_id"] == id).count();
        (got.status().as_u16(), listed)
    }

    #[tokio::test]
    async fn an_owner_deletes_a_product_once_and_it_leaves_the_catalogue() {
        let store = store_with_seller("usr_seller", SellerStatus::Approved);
        let id = created(&store, "usr_seller").await;
        assert_eq!(shown(&store, &id).await, (200, 1));
        let delete_as =
            |who: &str| as_caller(with_path(sample("http-delete-product.json"), "product_id", &id), who, Role::Seller);
        assert_eq!(call(&|r| delete(&store, r), delete_as("usr_other")).await.status(), 404, "not theirs");
        assert_eq!(shown(&store, &id).await, (200, 1));
        let deleted = call(&|r| delete(&store, r), delete_as("usr_seller")).await;
        assert_eq!(deleted.status(), 204);
        assert!(deleted.body().is_empty() && !deleted.headers().contains_key("content-type"));
        assert_eq!(shown(&store, &id).await, (404, 0));
        assert_eq!(call(&|r| delete(&store, r), delete_as("usr_seller")).await.status(), 404, "gone already");
        let patch = as_caller(
            with_body(with_path(sample("http-patch-product.json"), "product_id", &id), r#"{"stock": 5}"#),
            "usr_seller",
            Role::Seller,
        );
        assert_eq!(call(&|r| update(&store, r), patch).await.status(), 404, "a deleted product is not changed");
        assert!(store.lookup(std::slice::from_ref(&id)).await.unwrap().is_empty(), "carts cannot find it");
    }

    #[tokio::test]
    async fn a_suspended_sellers_products_are_hidden_until_approval_and_deleted_ones_stay_deleted() {
        let store = store_with_seller("usr_seller", SellerStatus::Approved);
        let (kept, dropped) = (created(&store, "usr_seller").await, created(&store, "usr_seller").await);
        let request = as_caller(
            with_path(sample("http-delete-product.json"), "product_id", &dropped),
            "usr_seller",
            Role::Seller,
        );
        assert_eq!(call(&|r| delete(&store, r), request).await.status(), 204);
        store
            .move_seller("usr_seller", SellerStatus::Suspended, Some("test"), &shared::CorrelationId::generate())
            .await
            .unwrap();
        assert_eq!(shown(&store, &kept).await, (404, 0));
        assert!(store.lookup(std::slice::from_ref(&kept)).await.unwrap().is_empty());
        store
            .move_seller("usr_seller", SellerStatus::Approved, None, &shared::CorrelationId::generate())
            .await
            .unwrap();
        assert_eq!(shown(&store, &kept).await, (200, 1), "approval gives them back");
        assert_eq!(shown(&store, &dropped).await, (404, 0), "a deleted product stays deleted");
    }

    #[tokio::test]
    async fn customers_cannot_create_products_and_bad_bodies_are_400() {
        let store = store_with_seller("usr_s", SellerStatus::Approved);
        let customer =
            call(&|r| create(&store, r), as_caller(sample("http-post-products.json"), "usr_c", Role::Customer)).await;
        assert_eq!(customer.status(), 403);
        for bad in [
            r#"{"name":"","category":"x","price_cents":1,"stock":1}"#,
            r#"{"name":"x","category":"x","price_cents":0,"stock":1}"#,
            r#"{"name":"x","category":"x","price_cents":1,"stock":-1}"#,
            r#"{"name":"x"}"#,
        ] {
            let request = as_caller(with_body(sample("http-post-products.json"), bad), "usr_s", Role::Seller);
            assert_eq!(call(&|r| create(&store, r), request).await.status(), 400, "{bad}");
        }
    }

    #[tokio::test]
    async fn lists_page_newest_first_and_filter_by_category() {
        let store = store_with_seller("usr_s", SellerStatus::Approved);
        for (i, category) in ["books", "games", "books"].iter().enumerate() {
            let body_text =
                json!({"name": format!("p{i}"), "category": category, "price_cents": 100, "stock": 1}).to_string();
            let request = as_caller(with_body(sample("http-post-products.json"), &body_text), "usr_s", Role::Seller);
            call(&|r| create(&store, r), request).await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let listed = body(&call(&|r| list(&store, r), sample("http-get-products.json")).await);
        assert_eq!(listed["items"].as_array().unwrap().len(), 2, "the sample asks for books, limit 2");
        assert_eq!(listed["items"][0]["name"], "p2", "newest first");
        assert!(listed["next_cursor"].is_null());
    }
}

//! Fuzzing of the Seller routes that read a body or a path parameter: any JSON, sample
//! bodies edited at random, any ids, through the HTTP edge against the in-memory catalogue.

use lambda_http::{Body, Request, Response};
use proptest::prelude::*;
use shared::events::Role;
use testkit::requests::{as_caller, call, sample, with_body, with_path};

use crate::domain::NewProduct;
use crate::handlers::{inventory, products};
use crate::store::CatalogueStore;
use crate::store::memory::MemoryStore;

use testkit::props::{assert_contract, block_on, body, json_of, path_parameter, persisted};

const SELLER: &str = "usr_seller";
/// The caller's product: the one the samples name, so that edited samples often find it.
const MINE: &str = "prd_01JD4RZX0A1B2C3D4E5F6G7H8J";
const THEIRS: &str = "prd_theirs";

/// A catalogue of [`MINE`] (the caller's) and [`THEIRS`] (another seller's), 5 units each,
/// with `rsv_held` holding 2 of [`MINE`].
fn catalogue() -> MemoryStore {
    let store = MemoryStore::default();
    block_on(async {
        for (id, seller) in [(MINE, SELLER), (THEIRS, "usr_other")] {
            let new = NewProduct {
                name: id.into(),
                description: None,
                category: "c".into(),
                price_cents: 100,
                stock: 5,
                stock_shards: None,
            };
            let mut product = new.validate(seller, chrono::Utc::now()).unwrap();
            product.product_id = id.into();
            store.create(&product).await.unwrap();
        }
        let line = shared::contracts::ReservationLine { product_id: MINE.into(), quantity: 2 };
        store.reserve("rsv_held", &[line]).await.unwrap();
    });
    store
}

fn status(response: &Response<Body>) -> u16 {
    response.status().as_u16()
}

fn run<F, Fut>(handler: F, request: Request) -> Response<Body>
where
    F: Fn(Request) -> Fut + Send + Sync,
    Fut: Future<Output = Result<shared::Reply, shared::Problem>> + Send,
{
    block_on(call(&handler, request))
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![3 => Just(Role::Seller), 1 => Just(Role::Customer)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..persisted() })]
    /// `POST /products`: 403 for a customer; 201 or 400 for a seller.
    #[test]
    fn fuzz_create_product(body_text in body(json_of(&sample("http-post-products.json"))), role in role()) {
        let store = MemoryStore::with_seller(SELLER, crate::domain::SellerStatus::Approved);
        let request = as_caller(with_body(sample("http-post-products.json"), &body_text), SELLER, role);
        let response = run(|r| products::create(&store, r), request);
        assert_contract(&response)?;
        let allowed: &[u16] = if role == Role::Customer { &[403] } else { &[201, 400] };
        prop_assert!(allowed.contains(&status(&response)), "{}: {}", status(&response), body_text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..persisted() })]
    /// `PATCH /products/{product_id}`: 200 or 400 for the caller's product, 404 (or 400 for
    /// the body) for any other id; never a change to another seller's product.
    #[test]
    fn fuzz_patch_product(
        body_text in body(json_of(&sample("http-patch-product.json"))),
        product_id in path_parameter(&[MINE, THEIRS]),
    ) {
        let store = catalogue();
        let request = with_path(with_body(sample("http-patch-product.json"), &body_text), "product_id", &product_id);
        let response = run(|r| products::update(&store, r), as_caller(request, SELLER, Role::Seller));
        assert_contract(&response)?;
        let allowed: &[u16] = if product_id == MINE { &[200, 400] } else { &[400, 404] };
        prop_assert!(allowed.contains(&status(&response)), "{}: {} {}", status(&response), product_id, body_text);
        let theirs = block_on(store.get(THEIRS)).unwrap().unwrap();
        prop_assert_eq!(theirs.updated_at, theirs.created_at, "another seller's product changed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..persisted() })]
    /// `POST /internal/inventory/reservations`: 201, 400 or 409; stock never below 0 nor
    /// above what there was.
    #[test]
    fn fuzz_reserve(body_text in body(json_of(&sample("http-post-internal-reservation.json")))) {
        let store = catalogue();
        let request = with_body(sample("http-post-internal-reservation.json"), &body_text);
        let response = run(|r| inventory::reserve(&store, r), request);
        assert_contract(&response)?;
        prop_assert!([201, 400, 409].contains(&status(&response)), "{}: {}", status(&response), body_text);
        let stock = block_on(store.get(MINE)).unwrap().unwrap().stock;
        prop_assert!(stock <= 3, "{}", stock);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..persisted() })]
    /// `DELETE /internal/inventory/reservations/{reservation_id}`: 200 for any id a
    /// reservation can have (one not made is released as a tombstone), 404 for longer ones;
    /// the held units come back, and nothing else moves.
    #[test]
    fn fuzz_release(reservation_id in path_parameter(&["rsv_held"])) {
        let store = catalogue();
        let request = with_path(sample("http-delete-internal-reservation.json"), "reservation_id", &reservation_id);
        let response = run(|r| inventory::release(&store, r), request);
        assert_contract(&response)?;
        let expected = if reservation_id.len() <= crate::domain::MAX_RESERVATION_ID { 200 } else { 404 };
        prop_assert_eq!(status(&response), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..persisted() })]
    /// `POST /internal/products/lookup`: 200 or 400.
    #[test]
    fn fuzz_lookup(body_text in body(json_of(&sample("http-post-internal-lookup.json")))) {
        let store = catalogue();
        let request = with_body(sample("http-post-internal-lookup.json"), &body_text);
        let response = run(|r| inventory::lookup(&store, r), request);
        assert_contract(&response)?;
        prop_assert!([200, 400].contains(&status(&response)), "{}: {}", status(&response), body_text);
    }
}

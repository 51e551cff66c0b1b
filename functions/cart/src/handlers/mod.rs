//! What API Gateway calls: the cart routes (`cart.rs`) and the checkout saga behind
//! `POST /cart/checkout` (`checkout.rs`).

pub mod cart;
pub mod checkout;

use shared::Problem;

use crate::store::StoreError;

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "cart store unavailable");
        Problem::unavailable("carts are unavailable; try again shortly")
    }
}

/// The requests the handler tests (and the properties) make as the sample customer.
#[cfg(test)]
pub(crate) mod test_support {
    use lambda_http::{Body, Response};
    use serde_json::{Value, json};
    use shared::events::Role;
    use testkit::requests::{as_caller, body, call, sample, with_body, with_path};

    use crate::clients::fakes::Fake;
    use crate::store::memory::MemoryStore;

    pub(crate) const USER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";

    /// `PUT /cart/items/{product}` with `quantity`.
    pub(crate) async fn put(store: &MemoryStore, fake: &Fake, product: &str, quantity: i64) -> Response<Body> {
        let request = with_path(
            with_body(sample("http-put-cart-item.json"), &json!({"quantity": quantity}).to_string()),
            "product_id",
            product,
        );
        call(&|request| super::cart::set_item(store, fake, request), as_caller(request, USER, Role::Customer)).await
    }

    /// `POST /cart/checkout` with `token`, and `key` as its `Idempotency-Key` (if any).
    pub(crate) async fn checkout_with(
        store: &MemoryStore,
        fake: &Fake,
        token: &str,
        key: Option<&str>,
    ) -> Response<Body> {
        checkout_to(store, fake, json!({"payment_token": token}), key).await
    }

    /// `POST /cart/checkout` with `body`, and `key` as its `Idempotency-Key` (if any).
    pub(crate) async fn checkout_to(
        store: &MemoryStore,
        fake: &Fake,
        body: Value,
        key: Option<&str>,
    ) -> Response<Body> {
        let mut request = with_body(sample("http-post-checkout.json"), &body.to_string());
        request.headers_mut().remove("idempotency-key");
        if let Some(key) = key {
            request.headers_mut().insert("idempotency-key", key.parse().unwrap());
        }
        call(&|request| super::checkout::checkout(store, fake, request), as_caller(request, USER, Role::Customer)).await
    }

    /// `GET /cart`'s body.
    pub(crate) async fn cart_of(store: &MemoryStore, fake: &Fake) -> Value {
        let request = as_caller(sample("http-get-cart.json"), USER, Role::Customer);
        body(&call(&|request| super::cart::get(store, fake, request), request).await)
    }
}

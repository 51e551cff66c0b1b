//! The cart routes: `GET /cart`, `PUT /cart/items/{product_id}`,
//! `DELETE /cart/items/{product_id}` (checkout is in `checkout.rs`).

use lambda_http::Request;
use shared::caller::caller;
use shared::http::{correlation_id, json_body, path_parameter};
use shared::{CorrelationId, Problem, Reply};

use crate::clients::Downstream;
use crate::domain::{Cart, MAX_QUANTITY, SetQuantity, price};
use crate::store::CartStore;

/// The cart priced from the catalogue.
async fn priced<D: Downstream>(downstream: &D, cart: &Cart, correlation_id: &CorrelationId) -> Result<Reply, Problem> {
    let ids: Vec<String> = cart.items.iter().map(|l| l.product_id.clone()).collect();
    let catalogue = downstream.lookup(&ids, correlation_id).await?;
    Ok(Reply::ok(&price(cart, &catalogue)))
}

/// Reads, changes and saves the caller's cart, again if it changed meanwhile.
async fn change<S: CartStore>(
    store: &S,
    user_id: &str,
    edit: impl Fn(&mut Cart) -> Result<(), Problem>,
) -> Result<Cart, Problem> {
    for _ in 0..3 {
        let (mut cart, version) = store.cart(user_id).await?;
        edit(&mut cart)?;
        if store.save_cart(&cart, version).await? {
            return Ok(cart);
        }
    }
    Err(Problem::conflict("the cart changed at the same time; try again"))
}

pub async fn get<S: CartStore, D: Downstream>(store: &S, downstream: &D, request: Request) -> Result<Reply, Problem> {
    let customer = caller(&request)?;
    let (cart, _) = store.cart(&customer.user_id).await?;
    priced(downstream, &cart, &correlation_id(&request)).await
}

pub async fn set_item<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    request: Request,
) -> Result<Reply, Problem> {
    let customer = caller(&request)?;
    let correlation_id = correlation_id(&request);
    let product_id = path_parameter(&request, "product_id")?;
    let wanted: SetQuantity = json_body(&request)?;
    // 0 removes, with no lookup; so does a quantity out of range, which `set` refuses (400
    // whether or not the product exists).
    if !(1..=i64::from(MAX_QUANTITY)).contains(&wanted.quantity) {
        let cart = change(store, &customer.user_id, |cart| Ok(cart.set(&product_id, wanted.quantity, None)?)).await?;
        return priced(downstream, &cart, &correlation_id).await;
    }
    // One catalogue lookup both checks the product and prices the cart it joins.
    let (current, _) = store.cart(&customer.user_id).await?;
    let mut ids: Vec<String> = current.items.iter().map(|l| l.product_id.clone()).collect();
    ids.push(product_id.clone());
    let catalogue = downstream.lookup(&ids, &correlation_id).await?;
    let Some(product) = catalogue.iter().find(|p| p.product_id == product_id) else {
        return Err(Problem::not_found(format!("no product {product_id}")));
    };
    let cart = change(store, &customer.user_id, |cart| {
        Ok(cart.set(&product_id, wanted.quantity, Some(product.price_cents))?)
    })
    .await?;
    if cart.items.iter().all(|l| catalogue.iter().any(|p| p.product_id == l.product_id)) {
        Ok(Reply::ok(&price(&cart, &catalogue)))
    } else {
        // The cart gained other products meanwhile: price it afresh.
        priced(downstream, &cart, &correlation_id).await
    }
}

pub async fn remove_item<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    request: Request,
) -> Result<Reply, Problem> {
    let customer = caller(&request)?;
    let product_id = path_parameter(&request, "product_id")?;
    let cart = change(store, &customer.user_id, |cart| {
        cart.remove(&product_id);
        Ok(())
    })
    .await?;
    priced(downstream, &cart, &correlation_id(&request)).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::events::Role;
    use testkit::requests::{as_caller, body, call, sample, with_path};

    use super::*;
    use crate::clients::fakes::Fake;
    use crate::handlers::test_support::{USER, cart_of, put};
    use crate::store::memory::MemoryStore;

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
    async fn removing_an_item() {
        let (store, fake) = (MemoryStore::default(), Fake::with(&[("prd_a", 100, 5), ("prd_b", 200, 5)]));
        put(&store, &fake, "prd_a", 1).await;
        put(&store, &fake, "prd_b", 1).await;
        let request =
            as_caller(with_path(sample("http-delete-cart-item.json"), "product_id", "prd_a"), USER, Role::Customer);
        let cart = body(&call(&|request| remove_item(&store, &fake, request), request).await);
        assert_eq!(cart["items"].as_array().unwrap().len(), 1);
        assert_eq!(cart["total_cents"], 200);
    }
}

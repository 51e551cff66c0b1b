//! The cart routes: `GET /cart`, `PUT /cart/items/{product_id}`,
//! `DELETE /cart/items/{product_id}` (checkout is in `checkout.rs`).

use lambda_http::Request;
use shared::api::path_parameter;
use shared::caller::caller;
use shared::problem::json_body;
use shared::{CorrelationId, Problem, Reply};

use crate::domain::{Cart, MAX_QUANTITY, SetQuantity, price};
use crate::downstream::Downstream;
use crate::store::{CartStore, StoreError};

pub fn store_failure(error: StoreError) -> Problem {
    tracing::error!(%error, "cart store unavailable");
    Problem::unavailable("carts are unavailable; try again shortly")
}

/// The cart priced from the catalogue.
async fn priced<D: Downstream>(downstream: &D, cart: &Cart, cid: &CorrelationId) -> Result<Reply, Problem> {
    let ids: Vec<String> = cart.items.iter().map(|l| l.product_id.clone()).collect();
    let catalogue = downstream.lookup(&ids, cid).await?;
    Ok(Reply::ok(&price(cart, &catalogue)))
}

/// Reads, changes and saves the caller's cart, again if it changed meanwhile.
async fn change<S: CartStore>(
    store: &S,
    user_id: &str,
    edit: impl Fn(&mut Cart) -> Result<(), Problem>,
) -> Result<Cart, Problem> {
    for _ in 0..3 {
        let (mut cart, version) = store.cart(user_id).await.map_err(store_failure)?;
        edit(&mut cart)?;
        if store.save_cart(&cart, version).await.map_err(store_failure)? {
            return Ok(cart);
        }
    }
    Err(Problem::conflict("the cart changed at the same time; try again"))
}

pub async fn get<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    request: Request,
    cid: CorrelationId,
) -> Result<Reply, Problem> {
    let customer = caller(&request)?;
    let (cart, _) = store.cart(&customer.user_id).await.map_err(store_failure)?;
    priced(downstream, &cart, &cid).await
}

pub async fn set_item<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    request: Request,
    cid: CorrelationId,
) -> Result<Reply, Problem> {
    let customer = caller(&request)?;
    let product_id = path_parameter(&request, "product_id")?;
    let wanted: SetQuantity = json_body(&request)?;
    // 0 removes, with no lookup; so does a quantity out of range, which `set` refuses (400
    // whether or not the product exists).
    if !(1..=i64::from(MAX_QUANTITY)).contains(&wanted.quantity) {
        let cart = change(store, &customer.user_id, |cart| {
            cart.set(&product_id, wanted.quantity, None).map_err(|e| Problem::bad_request(e.0))
        })
        .await?;
        return priced(downstream, &cart, &cid).await;
    }
    // One catalogue lookup both checks the product and prices the cart it joins.
    let (current, _) = store.cart(&customer.user_id).await.map_err(store_failure)?;
    let mut ids: Vec<String> = current.items.iter().map(|l| l.product_id.clone()).collect();
    ids.push(product_id.clone());
    let catalogue = downstream.lookup(&ids, &cid).await?;
    let Some(product) = catalogue.iter().find(|p| p.product_id == product_id) else {
        return Err(Problem::not_found(format!("no product {product_id}")));
    };
    let cart = change(store, &customer.user_id, |cart| {
        cart.set(&product_id, wanted.quantity, Some(product.price_cents)).map_err(|e| Problem::bad_request(e.0))
    })
    .await?;
    if cart.items.iter().all(|l| catalogue.iter().any(|p| p.product_id == l.product_id)) {
        Ok(Reply::ok(&price(&cart, &catalogue)))
    } else {
        // The cart gained other products meanwhile: price it afresh.
        priced(downstream, &cart, &cid).await
    }
}

pub async fn remove_item<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    request: Request,
    cid: CorrelationId,
) -> Result<Reply, Problem> {
    let customer = caller(&request)?;
    let product_id = path_parameter(&request, "product_id")?;
    let cart = change(store, &customer.user_id, |cart| {
        cart.remove(&product_id);
        Ok(())
    })
    .await?;
    priced(downstream, &cart, &cid).await
}

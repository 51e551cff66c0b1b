//! `GET /analytics/summary`: a seller's sales and top products.

use std::collections::HashMap;

use lambda_http::Request;
use serde_json::json;
use shared::caller::caller;
use shared::events::Role;
use shared::{Problem, Reply};

use crate::store::AiStore;

pub async fn analytics<S: AiStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    who.require(Role::Seller)?;
    let summary = store.seller(&who.user_id).await?;
    let mut top: Vec<(String, u64)> = summary.units.clone().into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(5);
    let ids: Vec<String> = top.iter().map(|t| t.0.clone()).collect();
    let names: HashMap<String, String> = store.products(&ids).await?.into_iter().map(|(id, p)| (id, p.name)).collect();
    let top_products: Vec<_> = top.into_iter().map(|(id, units)| json!({"product_id": id, "name": names.get(&id).cloned().unwrap_or_default(), "units": units})).collect();
    Ok(Reply::ok(&json!({
        "orders": summary.orders,
        "units_sold": summary.units_sold,
        "revenue_cents": summary.revenue_cents,
        "top_products": top_products,
    })))
}

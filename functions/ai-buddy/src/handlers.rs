//! `GET /recommendations`, `POST /assistant/messages`, `GET /analytics/summary` (sellers).

use std::collections::HashMap;

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::caller::caller;
use shared::events::Role;
use shared::pagination::page_request;
use shared::problem::json_body;
use shared::{CorrelationId, Problem, Reply};

use crate::domain::{Intent, Recommendation, Signals, intent, recommend};
use crate::services::Services;
use crate::store::{AiStore, StoreError};

fn unavailable(error: StoreError) -> Problem {
    tracing::error!(%error, "AI Buddy store unavailable");
    Problem::unavailable("AI Buddy is unavailable; try again shortly")
}

/// The caller's recommendations: learned signals, or what the catalogue has for a shop
/// that has sold nothing yet.
async fn recommendations_for<S: AiStore, X: Services>(
    store: &S,
    services: &X,
    user_id: &str,
    limit: usize,
    cid: &CorrelationId,
) -> Result<Vec<Recommendation>, Problem> {
    let profile = store.profile(user_id).await.map_err(unavailable)?;
    let together = store.together(&profile.bought).await.map_err(unavailable)?;
    let popular = store.popular(100).await.map_err(unavailable)?;
    let mut ids: Vec<String> =
        together.iter().map(|t| t.1.clone()).chain(popular.iter().map(|p| p.0.clone())).collect();
    ids.sort();
    ids.dedup();
    let products = store.products(&ids).await.map_err(unavailable)?;
    let mut found =
        recommend(&Signals { profile: &profile, together: &together, popular: &popular, products: &products }, limit);
    if found.len() < limit {
        // Fill up with the newest products of the catalogue (nothing sold yet, or too little).
        for product in services.catalogue(cid).await? {
            if found.len() >= limit {
                break;
            }
            if !profile.bought.contains(&product.product_id)
                && !found.iter().any(|r| r.product_id == product.product_id)
            {
                found.push(Recommendation {
                    product_id: product.product_id,
                    name: product.name,
                    score: 0.0,
                    reason: "popular",
                });
            }
        }
    }
    Ok(found)
}

pub async fn recommendations<S: AiStore, X: Services>(
    store: &S,
    services: &X,
    request: Request,
    cid: CorrelationId,
) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let limit = page_request(&request)?.limit as usize;
    let items = recommendations_for(store, services, &who.user_id, limit, &cid).await?;
    Ok(Reply::ok(&json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub message: String,
}

#[derive(Debug, Serialize)]
struct Answer {
    reply: String,
    intent: Intent,
}

fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

pub async fn assistant<S: AiStore, X: Services>(
    store: &S,
    services: &X,
    request: Request,
    cid: CorrelationId,
) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let asked: Message = json_body(&request)?;
    let length = asked.message.chars().count();
    if !(1..=1000).contains(&length) {
        return Err(Problem::bad_request("message must be 1 to 1000 characters"));
    }
    let (intent, words) = intent(&asked.message);
    let reply = match intent {
        Intent::OrderStatus => {
            let profile = store.profile(&who.user_id).await.map_err(unavailable)?;
            let latest = match &profile.latest_order {
                Some(id) => store.order(id).await.map_err(unavailable)?,
                None => None,
            };
            match latest {
                Some(order) => format!(
                    "Your latest order {} ({}) is {}.",
                    order.order_id,
                    dollars(order.total_cents),
                    order.status.replace('_', " ")
                ),
                None => "I have not seen an order from you yet.".to_owned(),
            }
        }
        Intent::Recommend => {
            let found = recommendations_for(store, services, &who.user_id, 3, &cid).await?;
            if found.is_empty() {
                "There is nothing to recommend yet: the catalogue is empty.".to_owned()
            } else {
                format!("You might like: {}.", found.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "))
            }
        }
        Intent::Search => {
            let catalogue = services.catalogue(&cid).await?;
            let hits: Vec<String> = catalogue
                .iter()
                .filter(|p| {
                    let text = format!("{} {} {}", p.name, p.description, p.category).to_lowercase();
                    words.iter().any(|w| text.contains(w.trim_end_matches('s')))
                })
                .take(5)
                .map(|p| format!("{} ({})", p.name, dollars(p.price_cents)))
                .collect();
            if hits.is_empty() {
                format!("I found nothing for \"{}\".", words.join(" "))
            } else {
                format!("I found: {}.", hits.join(", "))
            }
        }
        Intent::Help => {
            let profile = store.profile(&who.user_id).await.map_err(unavailable)?;
            let name = if profile.name.is_empty() {
                services.user_name(&who.user_id, &cid).await.ok().flatten().unwrap_or_default()
            } else {
                profile.name
            };
            let greeting = if name.is_empty() { "Hello!".to_owned() } else { format!("Hello {name}!") };
            format!(
                "{greeting} I can tell you where your latest order is, recommend products, or search the catalogue (try \"find board games\")."
            )
        }
    };
    Ok(Reply::ok(&Answer { reply, intent }))
}

pub async fn analytics<S: AiStore>(store: &S, request: Request, _: CorrelationId) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    who.require(Role::Seller)?;
    let summary = store.seller(&who.user_id).await.map_err(unavailable)?;
    let mut top: Vec<(String, u64)> = summary.units.clone().into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(5);
    let ids: Vec<String> = top.iter().map(|t| t.0.clone()).collect();
    let names: HashMap<String, String> =
        store.products(&ids).await.map_err(unavailable)?.into_iter().map(|(id, p)| (id, p.name)).collect();
    let top_products: Vec<_> = top.into_iter().map(|(id, units)| json!({"product_id": id, "name": names.get(&id).cloned().unwrap_or_default(), "units": units})).collect();
    Ok(Reply::ok(&json!({
        "orders": summary.orders,
        "units_sold": summary.units_sold,
        "revenue_cents": summary.revenue_cents,
        "top_products": top_products,
    })))
}

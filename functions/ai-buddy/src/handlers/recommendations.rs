//! `GET /recommendations`: what the caller may like, from what AI Buddy learned.

use lambda_http::Request;
use serde_json::json;
use shared::caller::caller;
use shared::http::correlation_id;
use shared::pagination::page_request;
use shared::{CorrelationId, Problem, Reply};

use crate::clients::Services;
use crate::domain::{Recommendation, Signals, recommend};
use crate::store::AiStore;

/// The caller's recommendations (here and in the assistant): learned signals, or what the
/// catalogue has for a shop that has sold nothing yet.
pub(super) async fn recommendations_for<S: AiStore, X: Services>(
    store: &S,
    services: &X,
    user_id: &str,
    limit: usize,
    correlation_id: &CorrelationId,
) -> Result<Vec<Recommendation>, Problem> {
    let profile = store.profile(user_id).await?;
    let together = store.together(&profile.bought).await?;
    let popular = store.popular(100).await?;
    let mut ids: Vec<String> =
        together.iter().map(|t| t.1.clone()).chain(popular.iter().map(|p| p.0.clone())).collect();
    ids.sort();
    ids.dedup();
    let products = store.products(&ids).await?;
    let mut found =
        recommend(&Signals { profile: &profile, together: &together, popular: &popular, products: &products }, limit);
    if found.len() < limit {
        // Fill up with the newest products of the catalogue (nothing sold yet, or too little).
        for product in services.catalogue(correlation_id).await? {
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
) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let limit = page_request(&request)?.limit as usize;
    let items = recommendations_for(store, services, &who.user_id, limit, &correlation_id(&request)).await?;
    Ok(Reply::ok(&json!({ "items": items })))
}

#[cfg(test)]
mod tests {
    use shared::events::Role;
    use testkit::requests::{as_caller, body, call, sample};

    use super::*;
    use crate::clients::fakes::Catalogue;
    use crate::handlers::analytics;
    use crate::handlers::test_support::{CUSTOMER, SELLER, learned};

    #[tokio::test]
    async fn recommendations_skip_purchases_and_analytics_need_a_seller() {
        let store = learned(1).await;
        let as_customer = |name: &str| as_caller(sample(name), CUSTOMER, Role::Customer);
        let found = body(
            &call(
                &|request| recommendations(&store, &Catalogue, request),
                as_customer("http-get-recommendations.json"),
            )
            .await,
        );
        let ids: Vec<&str> =
            found["items"].as_array().unwrap().iter().map(|i| i["product_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["prd_catan"], "both books were bought: only the game is left");

        let analytics = |who: &str, role| as_caller(sample("http-get-analytics.json"), who, role);
        let summary =
            body(&call(&|request| analytics::analytics(&store, request), analytics(SELLER, Role::Seller)).await);
        assert_eq!(summary["units_sold"], 3);
        assert_eq!(summary["top_products"][0]["name"], "Dune");
        let customer =
            call(&|request| analytics::analytics(&store, request), analytics(CUSTOMER, Role::Customer)).await;
        assert_eq!(customer.status(), 403);
    }
}

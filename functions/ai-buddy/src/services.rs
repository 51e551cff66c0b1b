//! The other services AI Buddy asks: the catalogue (Seller) for names and categories, and
//! Auth for a user's profile. [`Http`] calls them through `shared::internal`.

use std::future::Future;

use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};
use shared::CorrelationId;
use shared::internal::{CallError, InternalClient};

use crate::domain::ProductInfo;

pub trait Services: Send + Sync {
    fn lookup(
        &self,
        ids: &[String],
        cid: &CorrelationId,
    ) -> impl Future<Output = Result<Vec<ProductInfo>, CallError>> + Send;
    /// Up to 100 products of the catalogue, newest first.
    fn catalogue(&self, cid: &CorrelationId) -> impl Future<Output = Result<Vec<ProductInfo>, CallError>> + Send;
    /// A user's name, from Auth.
    fn user_name(
        &self,
        user_id: &str,
        cid: &CorrelationId,
    ) -> impl Future<Output = Result<Option<String>, CallError>> + Send;
}

pub struct Http(pub InternalClient);

fn items(service: &str, answer: &shared::internal::Answer) -> Result<Vec<ProductInfo>, CallError> {
    let body: Value = answer.json(service)?;
    serde_json::from_value(body["items"].clone()).map_err(|e| CallError::Unexpected {
        service: service.into(),
        status: answer.status.as_u16(),
        body: e.to_string(),
    })
}

impl Services for Http {
    async fn lookup(&self, ids: &[String], cid: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
        let answer = self
            .0
            .call("seller", Method::POST, "/internal/products/lookup", Some(&json!({"product_ids": ids})), true, cid)
            .await?;
        items("seller", &answer)
    }

    async fn catalogue(&self, cid: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
        let answer = self.0.call("seller", Method::GET, "/products?limit=100", None::<&()>, true, cid).await?;
        items("seller", &answer)
    }

    async fn user_name(&self, user_id: &str, cid: &CorrelationId) -> Result<Option<String>, CallError> {
        let answer =
            self.0.call("auth", Method::GET, &format!("/internal/users/{user_id}"), None::<&()>, true, cid).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let user: Value = answer.json("auth")?;
        Ok(user["name"].as_str().map(str::to_owned))
    }
}

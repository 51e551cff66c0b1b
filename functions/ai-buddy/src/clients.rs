//! The other services AI Buddy asks: the catalogue (Seller) for names and categories, and
//! Auth for a user's profile. [`Http`] calls them through `shared::internal`; tests use the
//! scripted `fakes::Catalogue`.

use std::future::Future;

use lambda_http::http::Method;
use shared::CorrelationId;
use shared::contracts::{self, Products};
use shared::internal::{CallError, InternalClient};

use crate::domain::ProductInfo;

pub trait Services: Send + Sync {
    fn lookup(
        &self,
        ids: &[String],
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Vec<ProductInfo>, CallError>> + Send;
    /// Up to 100 products of the catalogue, newest first.
    fn catalogue(
        &self,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Vec<ProductInfo>, CallError>> + Send;
    /// A user's name, from Auth.
    fn user_name(
        &self,
        user_id: &str,
        correlation_id: &CorrelationId,
    ) -> impl Future<Output = Result<Option<String>, CallError>> + Send;
}

pub struct Http(pub InternalClient);

impl Services for Http {
    async fn lookup(&self, ids: &[String], correlation_id: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
        let found = contracts::lookup_products(&self.0, correlation_id, ids).await?;
        Ok(found.into_iter().map(ProductInfo::from).collect())
    }

    async fn catalogue(&self, correlation_id: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
        let answer =
            self.0.call("seller", Method::GET, "/products?limit=100", None::<&()>, true, correlation_id).await?;
        // A page of products: its `next_cursor` is of no use here.
        let page: Products = answer.json("seller")?;
        Ok(page.items.into_iter().map(ProductInfo::from).collect())
    }

    async fn user_name(&self, user_id: &str, correlation_id: &CorrelationId) -> Result<Option<String>, CallError> {
        Ok(contracts::user(&self.0, correlation_id, user_id).await?.map(|user| user.name))
    }
}

/// The catalogue and Auth, scripted: three products of the sample seller, and Ada.
#[cfg(test)]
pub(crate) mod fakes {
    use shared::CorrelationId;
    use shared::internal::CallError;

    use super::Services;
    use crate::domain::ProductInfo;
    use crate::handlers::test_support::SELLER;

    pub(crate) struct Catalogue;

    fn product(id: &str, name: &str, category: &str) -> ProductInfo {
        ProductInfo {
            product_id: id.into(),
            seller_id: SELLER.into(),
            name: name.into(),
            description: String::new(),
            category: category.into(),
            price_cents: 1299,
        }
    }

    impl Services for Catalogue {
        async fn lookup(&self, ids: &[String], _: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
            Ok(self
                .catalogue(&CorrelationId::generate())
                .await?
                .into_iter()
                .filter(|p| ids.contains(&p.product_id))
                .collect())
        }
        async fn catalogue(&self, _: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
            Ok(vec![
                product("prd_01JD4RZX0A1B2C3D4E5F6G7H8J", "Dune", "books"),
                product("prd_01JD4RZX9Z8Y7X6W5V4T3S2R1Q", "Foundation", "books"),
                product("prd_catan", "Catan board game", "games"),
            ])
        }
        async fn user_name(&self, _: &str, _: &CorrelationId) -> Result<Option<String>, CallError> {
            Ok(Some("Ada".into()))
        }
    }
}

//! The Lambda edge of the Seller service.

pub mod inventory;
pub mod products;

#[cfg(test)]
pub(crate) use shared::testing as test_support;

use shared::Problem;

use crate::domain::Invalid;
use crate::store::StoreError;

pub fn store_failure(error: StoreError) -> Problem {
    match error {
        StoreError::NotFound => Problem::not_found("no such product"),
        StoreError::Invalid(Invalid(detail)) => Problem::bad_request(detail),
        StoreError::Shortages(shortages) => Problem::new(
            lambda_http::http::StatusCode::CONFLICT,
            "insufficient-stock",
            "Not enough stock",
            "some products do not have enough stock",
        )
        .with("shortages", shortages),
        StoreError::Conflict => Problem::conflict("the product changed at the same time; try again"),
        StoreError::Unavailable(detail) => {
            tracing::error!(%detail, "catalogue unavailable");
            Problem::unavailable("the catalogue is unavailable; try again shortly")
        }
    }
}

/// A path parameter, or 404 (the route cannot match without it).
pub fn path_parameter(request: &lambda_http::Request, name: &str) -> Result<String, Problem> {
    use lambda_http::RequestExt;
    request
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| Problem::not_found(format!("missing {name}")))
}

//! The Lambda edge of the Order service: the internal (IAM) routes checkout calls
//! ([`internal`]), the owner's routes ([`orders`]) and the sellers' ([`shipments`]).

pub mod internal;
pub mod orders;
pub mod shipments;

use lambda_http::http::StatusCode;
use shared::Problem;

use crate::store::StoreError;

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Abandoned => Problem::new(
                StatusCode::CONFLICT,
                "order-abandoned",
                "The order was abandoned",
                "the checkout that chose this order id gave it up; no order is made with it",
            ),
            StoreError::Conflict => Problem::conflict("the order changed at the same time; read it again"),
            StoreError::BadCursor => shared::pagination::bad_cursor(),
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "order store unavailable");
                Problem::unavailable("orders are unavailable; try again shortly")
            }
        }
    }
}

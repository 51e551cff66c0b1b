//! The Lambda edge of the Seller service: the catalogue's routes ([`products`]), the
//! sellers' profiles and the admin's routes ([`sellers`]) and the internal (IAM) inventory
//! routes checkout calls ([`inventory`]).

pub mod inventory;
pub mod products;
pub mod sellers;

use shared::Problem;

use crate::store::StoreError;

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Problem::not_found("no such product"),
            StoreError::Invalid(invalid) => invalid.into(),
            StoreError::Shortages(shortages) => Problem::new(
                lambda_http::http::StatusCode::CONFLICT,
                "insufficient-stock",
                "Not enough stock",
                "some products do not have enough stock",
            )
            .with("shortages", shortages),
            StoreError::Conflict => Problem::conflict("the product changed at the same time; try again"),
            StoreError::Released => Problem::new(
                lambda_http::http::StatusCode::CONFLICT,
                "reservation-released",
                "The reservation was released",
                "this reservation id was released and holds nothing; reserve under a new id",
            ),
            StoreError::BadCursor => shared::pagination::bad_cursor(),
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "catalogue unavailable");
                Problem::unavailable("the catalogue is unavailable; try again shortly")
            }
        }
    }
}

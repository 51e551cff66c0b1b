//! What API Gateway calls: `GET /notifications` ([`notifications`]), the caller's channels
//! ([`preferences`]) and devices ([`devices`]).

pub mod devices;
pub mod notifications;
pub mod preferences;

use shared::Problem;

use crate::store::StoreError;

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::BadCursor => shared::pagination::bad_cursor(),
            StoreError::Unavailable(e) => {
                tracing::error!(%e, "notification store unavailable");
                Problem::unavailable("notifications are unavailable; try again shortly")
            }
        }
    }
}

//! The owner's route: `GET /payments/{payment_id}`.

use lambda_http::Request;
use shared::caller::caller;
use shared::http::path_parameter;
use shared::{Problem, Reply};

use super::shown;
use crate::store::PaymentStore;

pub async fn get<S: PaymentStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let payment_id = path_parameter(&request, "payment_id")?;
    match store.get(&payment_id).await? {
        Some(stored) if stored.payment.user_id == who.user_id => Ok(Reply::ok(&shown(&stored.payment))),
        // Another user's payment is not found, not forbidden.
        _ => Err(Problem::not_found(format!("no payment {payment_id}"))),
    }
}

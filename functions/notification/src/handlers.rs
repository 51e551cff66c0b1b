//! `GET /notifications` (auth): the caller's notifications, newest first.

use lambda_http::Request;
use shared::caller::caller;
use shared::pagination::page_request;
use shared::{CorrelationId, Problem, Reply};

use crate::store::{NotificationStore, StoreError};

pub async fn list<S: NotificationStore>(store: &S, request: Request, _: CorrelationId) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let page = page_request(&request)?;
    let found = store.list(&who.user_id, &page).await.map_err(|e| match e {
        StoreError::BadCursor => shared::pagination::bad_cursor(),
        e => {
            tracing::error!(%e, "notification store unavailable");
            Problem::unavailable("notifications are unavailable; try again shortly")
        }
    })?;
    Ok(Reply::ok(&found))
}

//! `GET /notifications` (auth): the caller's notifications, newest first.

use lambda_http::Request;
use shared::caller::caller;
use shared::pagination::page_request;
use shared::{Problem, Reply};

use crate::store::NotificationStore;

pub async fn list<S: NotificationStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let page = page_request(&request)?;
    Ok(Reply::ok(&store.list(&who.user_id, &page).await?))
}

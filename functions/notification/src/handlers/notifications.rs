//! `GET /notifications` (auth): the caller's notifications, newest first, each with the
//! outcome of its deliveries (one still being sent is not shown until it has one).

use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde::Serialize;
use shared::caller::caller;
use shared::pagination::{Page, page_request};
use shared::{Problem, Reply};

use crate::domain::{Channel, DeliveryStatus, Notification, Template};
use crate::store::NotificationStore;

/// A notification as docs/api.md shows it.
#[derive(Serialize)]
struct Shown<'a> {
    notification_id: &'a str,
    /// The first delivery's channel (email when none was chosen: the inbox is where it is).
    channel: Channel,
    template: Template,
    subject: &'a str,
    body: &'a str,
    event_id: &'a str,
    created_at: DateTime<Utc>,
    deliveries: Vec<ShownDelivery<'a>>,
}

#[derive(Serialize)]
struct ShownDelivery<'a> {
    channel: Channel,
    status: DeliveryStatus,
    provider_message_id: Option<&'a str>,
    at: DateTime<Utc>,
}

fn shown(n: &Notification) -> Shown<'_> {
    Shown {
        notification_id: &n.notification_id,
        channel: n.deliveries.keys().next().map_or(Channel::Email, |r| r.channel()),
        template: n.template,
        subject: &n.subject,
        body: &n.body,
        event_id: &n.event_id,
        created_at: n.created_at,
        deliveries: n
            .deliveries
            .iter()
            .filter(|(_, d)| d.is_settled())
            .map(|(route, d)| ShownDelivery {
                channel: route.channel(),
                status: d.status,
                provider_message_id: d.provider_message_id.as_deref(),
                at: d.at,
            })
            .collect(),
    }
}

pub async fn list<S: NotificationStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let page = page_request(&request)?;
    let found = store.list(&who.user_id, &page).await?;
    let items: Vec<Shown> = found.items.iter().map(shown).collect();
    Ok(Reply::ok(&Page { items, next_cursor: found.next_cursor }))
}

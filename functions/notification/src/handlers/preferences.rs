//! `GET /notifications/preferences` and `PUT /notifications/preferences` (auth): the channels
//! the caller gets notifications on, and their phone number for SMS.

use lambda_http::Request;
use serde::Deserialize;
use shared::caller::caller;
use shared::http::json_body;
use shared::{Problem, Reply};

use crate::domain::Preferences;
use crate::store::NotificationStore;

pub async fn get<S: NotificationStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    Ok(Reply::ok(&store.preferences(&who.user_id).await?.unwrap_or_default()))
}

/// The whole shape, every member given (`phone_number` may be null): a PUT replaces.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    email: bool,
    sms: bool,
    push: bool,
    #[serde(deserialize_with = "given")]
    phone_number: Option<String>,
}

/// A member that must be there, `null` or not (serde would take a missing `Option` as `None`).
fn given<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::deserialize(deserializer)
}

pub async fn put<S: NotificationStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let body: Body = json_body(&request)?;
    let preferences =
        Preferences { email: body.email, sms: body.sms, push: body.push, phone_number: body.phone_number };
    if let Some(problem) = preferences.problem() {
        return Err(Problem::bad_request(problem));
    }
    store.save_preferences(&who.user_id, &preferences).await?;
    Ok(Reply::ok(&preferences))
}

#[cfg(test)]
mod tests {
    use lambda_http::http::StatusCode;
    use lambda_http::{Body, Response};
    use serde_json::{Value, json};
    use shared::events::Role;
    use testkit::requests::{as_caller, body, call, sample, with_body};

    use crate::store::memory::MemoryStore;

    const USER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";

    async fn get(store: &MemoryStore) -> Value {
        let request = as_caller(sample("http-get-notifications-preferences.json"), USER, Role::Customer);
        body(&call(&|request| super::get(store, request), request).await)
    }

    async fn put(store: &MemoryStore, value: &Value) -> Response<Body> {
        let request = as_caller(sample("http-put-notifications-preferences.json"), USER, Role::Customer);
        call(&|request| super::put(store, request), with_body(request, &value.to_string())).await
    }

    #[tokio::test]
    async fn preferences_default_then_are_replaced_and_validated() {
        let store = MemoryStore::default();
        assert_eq!(get(&store).await, json!({"email": true, "sms": false, "push": false, "phone_number": null}));

        let chosen = json!({"email": false, "sms": true, "push": true, "phone_number": "+14155550123"});
        let answer = put(&store, &chosen).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(body(&answer), chosen);
        assert_eq!(get(&store).await, chosen);

        for bad in [
            json!({"email": true, "sms": true, "push": false, "phone_number": null}),
            json!({"email": true, "sms": false, "push": false, "phone_number": "0044 20 7946 0000"}),
            json!({"email": true, "sms": false, "push": false}),
            json!({"email": "yes", "sms": false, "push": false, "phone_number": null}),
            json!({"email": true, "sms": false, "push": false, "phone_number": null, "fax": true}),
        ] {
            assert_eq!(put(&store, &bad).await.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(get(&store).await, chosen, "nothing kept of a refused body");
    }
}

//! `POST /notifications/devices` and `DELETE /notifications/devices/{device_id}` (auth): the
//! caller's phones and tablets that push notifications go to, each an SNS platform endpoint.

use chrono::{DateTime, Utc};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::caller::caller;
use shared::http::{json_body, path_parameter};
use shared::{Problem, Reply};

use crate::clients::{EndpointError, Endpoints};
use crate::domain::{Device, MAX_DEVICES, MAX_TOKEN_CHARS, Platform, device_id};
use crate::store::{NotificationStore, StoreError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    platform: Platform,
    token: String,
}

/// A device as docs/api.md shows it.
#[derive(Serialize)]
struct Shown<'a> {
    device_id: &'a str,
    platform: Platform,
    created_at: DateTime<Utc>,
}

fn shown(device: &Device) -> Reply {
    let shown = Shown { device_id: &device.device_id, platform: device.platform, created_at: device.created_at };
    Reply::json(StatusCode::CREATED, &shown)
}

impl From<EndpointError> for Problem {
    fn from(error: EndpointError) -> Self {
        match error {
            EndpointError::Refused(reason) => {
                Problem::bad_request(format!("the push service refused the token: {reason}"))
            }
            EndpointError::NotSetUp(_) | EndpointError::Unavailable(_) => {
                tracing::error!(%error, "device not registered");
                Problem::unavailable(format!("{error}; try again later"))
            }
        }
    }
}

/// Registers a device: the token's endpoint (one per token, so registering again is the same
/// device), then the caller's record of it, taken from any other user who had it.
pub async fn register<S: NotificationStore, E: Endpoints>(
    store: &S,
    endpoints: &E,
    request: Request,
) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let body: Body = json_body(&request)?;
    let chars = body.token.chars().count();
    if !(1..=MAX_TOKEN_CHARS).contains(&chars) {
        return Err(Problem::bad_request(format!("token must be 1-{MAX_TOKEN_CHARS} characters")));
    }
    let devices = store.devices(&who.user_id).await?;
    // The endpoint first: SNS answers the same one for the same token, so a retry resumes.
    let endpoint_arn = endpoints.register(body.platform, &body.token).await?;
    if let Some(known) = devices.iter().find(|d| d.endpoint_arn == endpoint_arn) {
        return Ok(shown(known));
    }
    if devices.len() >= MAX_DEVICES {
        return Err(Problem::conflict(format!("at most {MAX_DEVICES} devices can be registered; remove one first")));
    }
    let device =
        Device { device_id: device_id(&endpoint_arn), platform: body.platform, endpoint_arn, created_at: Utc::now() };
    if !store.register_device(&who.user_id, &device).await? {
        return Err(Problem::conflict("the device was being registered at the same time; try again"));
    }
    Ok(shown(&device))
}

/// Removes one of the caller's devices ([`forget`]).
pub async fn remove<S: NotificationStore, E: Endpoints>(
    store: &S,
    endpoints: &E,
    request: Request,
) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let id = path_parameter(&request, "device_id")?;
    let not_found = || Problem::not_found(format!("no device {id}"));
    let devices = store.devices(&who.user_id).await?;
    let device = devices.into_iter().find(|d| d.device_id == id).ok_or_else(not_found)?;
    if !forget(store, endpoints, &who.user_id, &device).await? {
        return Err(not_found());
    }
    Ok(Reply::no_content())
}

/// The one removal of a device, for this route and for an endpoint SNS disabled
/// (crate::consumer): the record first (only while it is still the user's on that endpoint, so
/// a removal racing a move leaves the new owner's alone), then the endpoint. False if it was no
/// longer theirs.
pub async fn forget<S: NotificationStore, E: Endpoints>(
    store: &S,
    endpoints: &E,
    user_id: &str,
    device: &Device,
) -> Result<bool, StoreError> {
    if !store.remove_device(user_id, device).await? {
        return Ok(false);
    }
    if let Err(error) = endpoints.remove(&device.endpoint_arn).await {
        // No one has it now, so nothing publishes to it; it is only left over in SNS.
        tracing::warn!(device_id = %device.device_id, %error, "the removed device's endpoint stays in SNS");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use lambda_http::Response;
    use serde_json::{Value, json};
    use shared::events::Role;
    use testkit::requests::{as_caller, body, call, sample, with_body, with_path};

    use super::*;
    use crate::store::memory::MemoryStore;

    const USER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";
    const OTHER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1B";

    /// One endpoint per token, as SNS keeps them; records removals.
    #[derive(Default)]
    struct Sns {
        tokens: Mutex<Vec<String>>,
        removed: Mutex<Vec<String>>,
    }

    impl Endpoints for Sns {
        async fn register(&self, platform: Platform, token: &str) -> Result<String, EndpointError> {
            if token == "refused" {
                return Err(EndpointError::Refused("InvalidParameter".into()));
            }
            let mut tokens = self.tokens.lock().unwrap();
            let n = tokens.iter().position(|t| t == token).unwrap_or_else(|| {
                tokens.push(token.to_owned());
                tokens.len() - 1
            });
            Ok(format!("arn:aws:sns:us-east-1:000000000000:endpoint/{platform:?}/shop-push/{n:04}"))
        }

        async fn remove(&self, endpoint_arn: &str) -> Result<(), EndpointError> {
            self.removed.lock().unwrap().push(endpoint_arn.to_owned());
            Ok(())
        }
    }

    async fn post(store: &MemoryStore, sns: &Sns, user: &str, value: &Value) -> Response<lambda_http::Body> {
        let request = as_caller(sample("http-post-notifications-devices.json"), user, Role::Customer);
        call(&|request| register(store, sns, request), with_body(request, &value.to_string())).await
    }

    async fn delete(store: &MemoryStore, sns: &Sns, user: &str, device_id: &str) -> Response<lambda_http::Body> {
        let request = as_caller(sample("http-delete-notifications-device.json"), user, Role::Customer);
        let request = with_path(request, "device_id", device_id);
        call(&|request| remove(store, sns, request), request).await
    }

    #[tokio::test]
    async fn a_device_registers_once_and_moves_to_whoever_registers_its_token_last() {
        let (store, sns) = (MemoryStore::default(), Sns::default());
        let phone = json!({"platform": "GCM", "token": "token-1"});
        let first = post(&store, &sns, USER, &phone).await;
        assert_eq!(first.status(), StatusCode::CREATED);
        let first = body(&first);
        assert_eq!(first["platform"], "GCM");
        assert!(first["device_id"].as_str().unwrap().starts_with("dev_"));
        assert_eq!(body(&post(&store, &sns, USER, &phone).await), first, "the same device again");
        assert_eq!(store.devices(USER).await.unwrap().len(), 1);

        let taken = post(&store, &sns, OTHER, &phone).await;
        assert_eq!(taken.status(), StatusCode::CREATED);
        assert_eq!(body(&taken)["device_id"], first["device_id"]);
        assert!(store.devices(USER).await.unwrap().is_empty(), "no longer the first user's");
        let id = first["device_id"].as_str().unwrap();
        assert_eq!(delete(&store, &sns, USER, id).await.status(), StatusCode::NOT_FOUND, "not theirs now");
        assert!(sns.removed.lock().unwrap().is_empty());
        assert_eq!(delete(&store, &sns, OTHER, id).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(sns.removed.lock().unwrap().len(), 1, "its endpoint too");
        assert!(store.devices(OTHER).await.unwrap().is_empty());
        assert_eq!(delete(&store, &sns, OTHER, id).await.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn bad_devices_are_refused() {
        let (store, sns) = (MemoryStore::default(), Sns::default());
        for bad in [
            json!({"platform": "WNS", "token": "t"}),
            json!({"platform": "GCM", "token": ""}),
            json!({"platform": "GCM", "token": "t".repeat(MAX_TOKEN_CHARS + 1)}),
            json!({"platform": "GCM"}),
            json!({"platform": "GCM", "token": "t", "extra": 1}),
            json!({"platform": "APNS", "token": "refused"}),
        ] {
            assert_eq!(post(&store, &sns, USER, &bad).await.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(store.devices(USER).await.unwrap().is_empty());
        for n in 0..MAX_DEVICES {
            let device = json!({"platform": "APNS", "token": format!("token-{n}")});
            assert_eq!(post(&store, &sns, USER, &device).await.status(), StatusCode::CREATED);
        }
        let one_more = json!({"platform": "APNS", "token": "token-x"});
        assert_eq!(post(&store, &sns, USER, &one_more).await.status(), StatusCode::CONFLICT);
    }
}

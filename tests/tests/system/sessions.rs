//! Sessions through the local stack (docs/api.md, Auth): access tokens verified with the keys
//! `GET /.well-known/jwks.json` publishes, refresh rotation, reuse detection revoking a
//! login's family, two tabs refreshing at once, logout, and a key rotation, deploy by deploy,
//! without a single 401.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::{LocalApi, devstack_command, unique_stack_name};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

async fn post(api: &LocalApi, path: &str, bearer: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = client().post(format!("{}{path}", api.url)).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// A new customer's session (from an address of its own: registrations are throttled per address).
async fn register(api: &LocalApi) -> Value {
    let email = format!("session-{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
    let session =
        post(api, "/auth/register", None, json!({"email": email, "password": "correct horse", "name": "Ada"})).await;
    assert_eq!(session.status(), StatusCode::CREATED);
    let session: Value = session.json().await.unwrap();
    session
}

async fn refresh(api: &LocalApi, token: &str) -> reqwest::Response {
    post(api, "/auth/refresh", None, json!({"refresh_token": token})).await
}

async fn me(api: &LocalApi, access_token: &str) -> StatusCode {
    client().get(format!("{}/auth/me", api.url)).bearer_auth(access_token).send().await.unwrap().status()
}

fn text<'a>(session: &'a Value, field: &str) -> &'a str {
    session[field].as_str().unwrap_or_else(|| panic!("no {field} in {session}"))
}

async fn jwks(api: &LocalApi) -> (JwkSet, reqwest::header::HeaderMap) {
    let answer = client().get(format!("{}/.well-known/jwks.json", api.url)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers().clone();
    (answer.json().await.unwrap(), headers)
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.expect("a kid")
}

#[tokio::test]
async fn access_tokens_verify_with_the_published_keys_alone() {
    let api = LocalApi::start().await;
    let session = register(&api).await;
    let token = text(&session, "access_token");
    let (keys, headers) = jwks(&api).await;
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["content-type"], "application/json");
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = keys.find(header.kid.as_deref().unwrap()).expect("the token's key is published");
    let raw: Value = serde_json::to_value(jwk).unwrap();
    assert_eq!(
        (&raw["kty"], &raw["crv"], &raw["use"], &raw["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("sig"), &json!("EdDSA"))
    );
    assert!(raw.get("d").is_none(), "never a private part");
    // What any client can do with the JWKS alone: verify the token.
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[api.stack["parameters"]["JwtIssuer"].as_str().unwrap()]);
    validation.set_audience(&[api.stack["parameters"]["JwtAudience"].as_str().unwrap()]);
    let claims =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims;
    assert_eq!(claims["sub"], session["user"]["user_id"]);
    assert_eq!(claims["role"], "customer");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    assert_eq!(session["expires_in"], 900);
    assert_eq!(claims["jti"].as_str().map(str::len), Some(26), "a jti");
    assert_eq!(me(&api, token).await, StatusCode::OK);
    // The refresh token is opaque: nothing in it to read.
    let refresh_token = text(&session, "refresh_token");
    assert!(refresh_token.starts_with("rt_") && B64.decode(&refresh_token[3..]).unwrap().len() == 32);
}

#[tokio::test]
async fn a_refresh_rotates_and_a_spent_token_revokes_its_whole_login() {
    let api = LocalApi::start().await;
    let first = register(&api).await;
    let other_login = register(&api).await;
    let answer = refresh(&api, text(&first, "refresh_token")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let second: Value = answer.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["user"], first["user"]);
    assert_eq!(me(&api, text(&second, "access_token")).await, StatusCode::OK);
    let third: Value = refresh(&api, text(&second, "refresh_token")).await.json().await.unwrap();

    // The first token again: a copy in someone else's hands. Every token of the login dies.
    let reused = refresh(&api, text(&first, "refresh_token")).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reused.headers()["content-type"], "application/problem+json");
    assert_eq!(refresh(&api, text(&third, "refresh_token")).await.status(), StatusCode::UNAUTHORIZED, "the newest too");
    assert_eq!(
        refresh(&api, text(&other_login, "refresh_token")).await.status(),
        StatusCode::OK,
        "another login lives on"
    );

    for (case, body) in [
        ("unknown", json!({"refresh_token": format!("rt_{}", B64.encode([7u8; 32]))})),
        ("malformed", json!({"refresh_token": "not-a-refresh-token"})),
        ("an access token", json!({"refresh_token": text(&third, "access_token")})),
    ] {
        assert_eq!(post(&api, "/auth/refresh", None, body).await.status(), StatusCode::UNAUTHORIZED, "{case}");
    }
    for body in [json!({}), json!({"refresh_token": 1}), json!([])] {
        assert_eq!(post(&api, "/auth/refresh", None, body).await.status(), StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn of_two_tabs_refreshing_one_token_at_once_one_wins_and_its_token_lives() {
    let api = LocalApi::start().await;
    for round in 0..5 {
        let session = register(&api).await;
        let token = text(&session, "refresh_token");
        let (a, b) = tokio::join!(refresh(&api, token), refresh(&api, token));
        let mut answers =
            [(a.status(), a.json::<Value>().await.unwrap()), (b.status(), b.json::<Value>().await.unwrap())];
        answers.sort_by_key(|(status, _)| *status);
        assert_eq!([answers[0].0, answers[1].0], [StatusCode::OK, StatusCode::UNAUTHORIZED], "round {round}");
        // One live token from one: the winner's refreshes on.
        let winner = text(&answers[0].1, "refresh_token");
        assert_eq!(refresh(&api, winner).await.status(), StatusCode::OK, "round {round}");
    }
}

#[tokio::test]
async fn logout_revokes_the_login_and_only_the_callers_own() {
    let api = LocalApi::start().await;
    let ada = register(&api).await;
    let eve = register(&api).await;
    let (ada_access, ada_refresh) = (text(&ada, "access_token"), text(&ada, "refresh_token"));
    let logout = |bearer: Option<String>, body: Value| {
        let api = &api;
        async move { post(api, "/auth/logout", bearer.as_deref(), body).await.status() }
    };
    let body = json!({"refresh_token": ada_refresh});
    assert_eq!(logout(None, body.clone()).await, StatusCode::UNAUTHORIZED, "(auth)");
    assert_eq!(
        logout(Some(text(&eve, "access_token").into()), body.clone()).await,
        StatusCode::NO_CONTENT,
        "Eve learns nothing"
    );
    assert_eq!(logout(Some(ada_access.into()), json!({"refresh_token": "nope"})).await, StatusCode::BAD_REQUEST);
    assert_eq!(logout(Some(ada_access.into()), json!({})).await, StatusCode::BAD_REQUEST);
    let next: Value = refresh(&api, ada_refresh).await.json().await.unwrap();
    assert!(next["refresh_token"].is_string(), "Eve's logout revoked nothing: {next}");

    let ada_next = text(&next, "refresh_token");
    assert_eq!(logout(Some(ada_access.into()), json!({"refresh_token": ada_next})).await, StatusCode::NO_CONTENT);
    assert_eq!(refresh(&api, ada_next).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&api, text(&eve, "refresh_token")).await.status(), StatusCode::OK, "Eve is still in");
}

/// `devstack jwt-keys STEP...` on the stack: a step of docs/operations.md's rotation.
fn jwt_keys(stack_name: &str, step: &[&str]) -> String {
    let output = devstack_command().args(["--stack-name", stack_name, "jwt-keys"]).args(step).output().unwrap();
    assert!(output.status.success(), "jwt-keys {step:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Every token works on every instance serving: what a deploy that overlaps the instances
/// of two versions needs for no 401.
async fn all_accepted(instances: &[&LocalApi], tokens: &[&str], phase: &str) {
    for api in instances {
        for token in tokens {
            assert_eq!(me(api, token).await, StatusCode::OK, "{phase}: a {} token at {}", kid(token), api.url);
        }
    }
}

async fn published(api: &LocalApi) -> Vec<String> {
    jwks(api).await.0.keys.iter().map(|k| k.common.key_id.clone().unwrap()).collect()
}

#[tokio::test]
async fn signing_keys_rotate_deploy_by_deploy_without_a_single_401() {
    let stack = unique_stack_name();
    let first = LocalApi::start_named(&stack).await;
    let old = jwt_keys(&stack, &["show"]).trim_end_matches(" (signing)").to_owned();
    let ada = register(&first).await;
    assert_eq!(kid(text(&ada, "access_token")), old);

    // 1. A new key, published by a deploy before it signs.
    let new = jwt_keys(&stack, &["add"]);
    let second = LocalApi::start_named(&stack).await;
    assert_eq!(published(&second).await, [old.clone(), new.clone()]);
    let by_second = register(&second).await;
    assert_eq!(kid(text(&by_second, "access_token")), old, "published, not signing yet");
    all_accepted(&[&first, &second], &[text(&ada, "access_token"), text(&by_second, "access_token")], "publish").await;
    drop(first);

    // 2. The new key signs; the old one still verifies the tokens it signed.
    jwt_keys(&stack, &["sign", &new]);
    let third = LocalApi::start_named(&stack).await;
    let by_third = register(&third).await;
    assert_eq!(kid(text(&by_third, "access_token")), new);
    let tokens = [text(&ada, "access_token"), text(&by_second, "access_token"), text(&by_third, "access_token")];
    all_accepted(&[&second, &third], &tokens, "sign").await;
    // Ada's session carries over: her refresh token, from before any of it, gets a new-key token.
    let refreshed: Value = refresh(&third, text(&ada, "refresh_token")).await.json().await.unwrap();
    assert_eq!(kid(text(&refreshed, "access_token")), new);
    drop(second);

    // 3. Once the old key's last token expired (15 minutes after it stopped signing), it goes.
    assert!(jwt_keys(&stack, &["retire", &old]).contains(&old));
    let fourth = LocalApi::start_named(&stack).await;
    assert_eq!(published(&fourth).await, [new.as_str()]);
    all_accepted(&[&third, &fourth], &[text(&by_third, "access_token"), text(&refreshed, "access_token")], "retire")
        .await;
    assert_eq!(
        me(&fourth, text(&ada, "access_token")).await,
        StatusCode::UNAUTHORIZED,
        "a retired key verifies nothing"
    );
    let refused = devstack_command().args(["--stack-name", &stack, "jwt-keys", "retire", &new]).output().unwrap();
    assert!(!refused.status.success(), "the signing key cannot be retired");
}

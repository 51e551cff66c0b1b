//! Fuzzing of what the Auth service reads from outside: the `Authorization` header (token
//! parsing, for the authorizer of every (auth) route) and the register and login bodies.

use std::sync::OnceLock;

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey};
use lambda_http::http::HeaderValue;
use proptest::prelude::*;
use proptest::strategy::LazyJust;
use serde_json::{Value, json};
use shared::publisher::MemoryPublisher;
use testkit::requests::{call, sample, with_body};

use crate::domain::Role;
use crate::handlers::authorizer::authorize;
use crate::handlers::login::LogIn;
use crate::handlers::register::Register;
use crate::passwords::Passwords;
use crate::store::memory::MemoryStore;
use crate::tokens::tests::{KEY, tokens, user};
use crate::tokens::{Claims, Rejection, TOKEN_TTL_SECONDS};

use testkit::props::{any_json, assert_contract, block_on, body, json_of, mutated, persisted, text};

const ISSUER: &str = "https://auth.test";
const AUDIENCE: &str = "ecommerce";

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Customer), Just(Role::Seller)]
}

/// Base64url text that decodes to anything: bytes, arbitrary JSON, or a JWT header.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| B64.encode(b)),
        any_json().prop_map(|v| B64.encode(v.to_string())),
        mutated(json!({"alg": "HS256", "typ": "JWT"})).prop_map(|v| B64.encode(v.to_string())),
        "[A-Za-z0-9_=+/.-]{0,40}",
        text(),
    ]
}

/// `Authorization` header values: anything, and what is close to a bearer token.
fn authorization() -> impl Strategy<Value = Option<String>> {
    let scheme = prop::sample::select(vec!["Bearer ", "bearer ", "BEARER  ", "Bearer", "Basic ", " Bearer\t", ""]);
    prop::option::weighted(
        0.9,
        prop_oneof![text(), (scheme, forged_token()).prop_map(|(s, token)| format!("{s}{token}"))],
    )
}

fn authorizer_request() -> ApiGatewayV2CustomAuthorizerV2Request {
    let path = testkit::requests::events_dir().join("authorizer-request.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the sample")).expect("an authorizer request")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// No header that is not a token `issue` made gets through, in the verifier or in the
    /// authorizer, which always answers (with the rejection for the 401).
    #[test]
    fn fuzz_authorization_headers(header in authorization()) {
        let tokens = tokens();
        let verdict = tokens.verify_header(header.as_deref());
        prop_assert!(verdict.is_err(), "{:?}", verdict);
        if header.as_deref().is_none_or(|h| h.trim().is_empty()) {
            prop_assert_eq!(verdict, Err(Rejection::Missing));
        }

        let mut request = authorizer_request();
        request.headers.remove("authorization");
        if let Some(value) = header.as_deref().and_then(|h| HeaderValue::from_str(h).ok()) {
            request.headers.insert("authorization", value);
        }
        let answer = authorize(&tokens, &request);
        prop_assert!(answer.is_authorized, "refusals are the function's 401, not the gateway's");
        prop_assert_eq!((answer.context.user_id, answer.context.role), (None, None));
        prop_assert!(answer.context.rejection.is_some_and(|r| !r.is_empty()));
    }
}

/// A JWT of `header` and `claims`, HS256-signed with `key` whatever the header says.
fn signed(header: &Value, claims: &Value, key: &[u8]) -> String {
    let message = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(key), Algorithm::HS256)
        .expect("HMAC signs anything");
    format!("{message}.{signature}")
}

fn valid_claims() -> Value {
    let now = Utc::now().timestamp();
    json!({"sub": "usr_1", "role": "seller", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600})
}

/// Headers: HS256 as `issue` writes it, other and odd `alg`s, edited headers, any JSON.
fn jwt_header() -> impl Strategy<Value = Value> {
    let algs =
        vec!["HS256", "none", "None", "NONE", "", "HS384", "HS512", "RS256", "ES256", "EdDSA", "hs256", "HS256 "];
    prop_oneof![
        3 => Just(json!({"alg": "HS256", "typ": "JWT"})),
        2 => prop::sample::select(algs).prop_map(|alg| json!({"alg": alg, "typ": "JWT"})),
        2 => mutated(json!({"alg": "HS256", "typ": "JWT"})),
        1 => any_json(),
    ]
}

/// Claims: valid ones; with members set to times around now, near-miss issuers and
/// audiences, other roles or any JSON; edited anywhere; any JSON.
fn jwt_claims() -> impl Strategy<Value = Value> {
    let time = (-100_000i64..100_000).prop_map(|delta| json!(Utc::now().timestamp() + delta));
    let near = vec![json!(ISSUER), json!("https://auth.test/"), json!(AUDIENCE), json!([AUDIENCE]), json!("admin")];
    let change = prop_oneof![
        (prop::sample::select(vec!["iat", "exp", "nbf"]), time),
        (prop::sample::select(vec!["iss", "aud", "role"]), prop::sample::select(near)),
        (prop::sample::select(vec!["sub", "role", "iss", "aud", "iat", "exp", "nbf"]), any_json()),
    ];
    let set = prop::collection::vec(change, 1..3).prop_map(|changes| {
        let mut claims = valid_claims();
        for (member, value) in changes {
            claims[member] = value;
        }
        claims
    });
    prop_oneof![
        1 => LazyJust::new(valid_claims),
        3 => set,
        2 => LazyJust::new(valid_claims).prop_flat_map(mutated),
        1 => any_json(),
    ]
}

/// A token `issue` did not make: dotted base64url, or a well-formed JWT with another key.
fn forged_token() -> impl Strategy<Value = String> {
    let other_key = b"another-key-another-key-another-key";
    let signed = (jwt_header(), jwt_claims()).prop_map(move |(header, claims)| signed(&header, &claims, other_key));
    prop_oneof![prop::collection::vec(segment(), 0..5).prop_map(|parts| parts.join(".")), signed]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// Any dotted base64url: refused.
    #[test]
    fn fuzz_three_part_tokens(parts in prop::collection::vec(segment(), 3..=3)) {
        let token = parts.join(".");
        let verdict = tokens().verify(&token);
        prop_assert!(verdict.is_err(), "{}: {:?}", token, verdict);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// Well-formed JWTs: refused when signed with another key or not declared HS256 as
    /// `issue` declares it; with the right key, accepted only with claims every rule allows,
    /// and then read exactly as signed.
    #[test]
    fn fuzz_signed_tokens(
        header in jwt_header(),
        claims in jwt_claims(),
        other_key in prop::option::weighted(0.3, prop::collection::vec(any::<u8>(), 32..64)),
    ) {
        let key = other_key.filter(|k| k != KEY).unwrap_or_else(|| KEY.to_vec());
        let token = signed(&header, &claims, &key);
        // Around the verification, so that a second ticking over cannot fail the time checks.
        let before = Utc::now().timestamp();
        let verdict = tokens().verify(&token);
        let after = Utc::now().timestamp();
        let declared_hs256 = header["alg"] == "HS256";
        if key != KEY || !declared_hs256 {
            prop_assert!(verdict.is_err(), "{} {}: {:?}", header, claims, verdict);
        }
        if let Ok(read) = verdict {
            prop_assert_eq!(serde_json::to_value(&read).unwrap(), json!({
                "sub": claims["sub"], "role": claims["role"], "iss": ISSUER, "aud": AUDIENCE,
                "iat": claims["iat"], "exp": claims["exp"],
            }));
            // The validation's 5 s of leeway.
            prop_assert!(read.exp >= before - 5, "expired: {}", claims);
            prop_assert!(valid_yet(&claims, after), "not valid yet: {}", claims);
        }
    }
}

/// Whether `claims` may be used at `now` as to their `nbf`: none, or one no later than `now`
/// give or take the validation's 5 s of leeway. A number, whole or not: jsonwebtoken reads
/// `0.0` as well as `0`, rounded to the second.
fn valid_yet(claims: &Value, now: i64) -> bool {
    claims.get("nbf").is_none_or(|nbf| nbf.as_f64().is_some_and(|nbf| nbf.round() <= (now + 5) as f64))
}

/// Found by `fuzz_signed_tokens`: a `nbf` of `0.0` is a time long past, which jsonwebtoken
/// accepts (its own test `nbf_float_in_past_ok`), so the oracle must too.
#[test]
fn a_float_nbf_long_past_is_valid_yet() {
    let mut claims = valid_claims();
    claims["nbf"] = json!(0.0);
    let token = signed(&json!({"alg": "HS256", "typ": "JWT"}), &claims, KEY);
    assert!(tokens().verify(&token).is_ok(), "{claims}");
    assert!(valid_yet(&claims, Utc::now().timestamp()), "{claims}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..persisted() })]
    /// Whatever the user id and role, an issued token verifies to them.
    #[test]
    fn fuzz_issued_tokens_round_trip(user_id in text(), role in role()) {
        let tokens = tokens();
        let mut user = user(role);
        user.user_id = user_id.clone();
        let now = Utc::now();
        let token = tokens.issue(&user, now).expect("signs");
        let expected = Claims {
            sub: user_id, role, iss: ISSUER.into(), aud: AUDIENCE.into(),
            iat: now.timestamp(), exp: now.timestamp() + TOKEN_TTL_SECONDS,
        };
        prop_assert_eq!(tokens.verify(&token), Ok(expected.clone()));
        prop_assert_eq!(tokens.verify_header(Some(&format!("Bearer {token}"))), Ok(expected));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..persisted() })]
    /// Any registration body: 201, 400 or 409, as problem+json when refused.
    #[test]
    fn fuzz_register_bodies(body_text in body(json_of(&sample("http-post-auth-register.json")))) {
        let service = Register {
            store: MemoryStore::default(),
            publisher: MemoryPublisher::default(),
            passwords: Passwords::new().unwrap(),
            tokens: tokens(),
            registrations_per_address: crate::handlers::register::REGISTRATIONS_PER_ADDRESS,
        };
        let request = with_body(sample("http-post-auth-register.json"), &body_text);
        let response = block_on(call(&|request| service.handle(request), request));
        assert_contract(&response)?;
        prop_assert!([201, 400, 409].contains(&response.status().as_u16()), "{}", response.status());
    }
}

/// One login service for every case: each login costs an argon2 hash, and the state the
/// cases leave (failed attempts, then 429s) is more for the property to hold in.
fn login_service() -> &'static LogIn<MemoryStore> {
    static SERVICE: OnceLock<LogIn<MemoryStore>> = OnceLock::new();
    SERVICE.get_or_init(|| block_on(crate::handlers::login::tests::service_with_ada()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..persisted() })]
    /// Any login body: 200, 400, 401 or 429, as problem+json when refused.
    #[test]
    fn fuzz_login_bodies(body_text in body(json_of(&sample("http-post-auth-login.json")))) {
        let service = login_service();
        let request = with_body(sample("http-post-auth-login.json"), &body_text);
        let response = block_on(call(&|request| service.handle(request), request));
        assert_contract(&response)?;
        prop_assert!([200, 400, 401, 429].contains(&response.status().as_u16()), "{}", response.status());
    }
}

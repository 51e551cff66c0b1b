//! Fuzzing of what the Auth service reads from outside: the `Authorization` header (token
//! parsing, for the authorizer of every (auth) route) and the register and login bodies.

use std::sync::OnceLock;

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use jsonwebtoken::Algorithm;
use lambda_http::http::HeaderValue;
use proptest::prelude::*;
use proptest::strategy::LazyJust;
use serde_json::{Value, json};
use shared::publisher::MemoryPublisher;
use testkit::requests::{call, sample, with_body};

use crate::clients::SigningKey;
use crate::domain::Role;
use crate::handlers::authorizer::authorize;
use crate::handlers::login::LogIn;
use crate::handlers::register::Register;
use crate::passwords::Passwords;
use crate::store::memory::MemoryStore;
use crate::tokens::tests::{forge, keys, private_key, signer, user, verifier};
use crate::tokens::{Claims, KeySet, Rejection, TOKEN_TTL_SECONDS};

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
        LazyJust::new(our_header).prop_flat_map(mutated).prop_map(|v| B64.encode(v.to_string())),
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
        let tokens = verifier();
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

/// What signs a forged token, whatever its header says.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    /// The test key set's signing key.
    Ours,
    /// An Ed25519 key of another key set.
    Foreign,
    /// HMAC with these bytes (HS256).
    Hmac(Vec<u8>),
}

fn signed(header: &Value, claims: &Value, key: &Key) -> String {
    static FOREIGN: OnceLock<Vec<u8>> = OnceLock::new();
    match key {
        Key::Ours => forge(header, claims, Algorithm::EdDSA, &private_key()),
        Key::Foreign => {
            let foreign = FOREIGN.get_or_init(|| {
                let set = KeySet::generate().unwrap();
                B64.decode(&set.keys[&set.signing]).unwrap()
            });
            forge(header, claims, Algorithm::EdDSA, foreign)
        }
        Key::Hmac(secret) => forge(header, claims, Algorithm::HS256, secret),
    }
}

fn our_header() -> Value {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": keys().signing})
}

fn any_key() -> impl Strategy<Value = Key> {
    prop_oneof![
        6 => Just(Key::Ours),
        2 => Just(Key::Foreign),
        // HMAC keyed with the public key too: the classic algorithm-confusion forgery.
        1 => LazyJust::new(|| Key::Hmac(B64.decode(&keys().public_keys().unwrap()[0].x).unwrap())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Key::Hmac),
    ]
}

fn valid_claims() -> Value {
    let now = Utc::now().timestamp();
    json!({"sub": "usr_1", "role": "seller", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, "jti": "j-1"})
}

/// Headers: as `issue` writes them, other and odd `alg`s and `kid`s, edited headers, any JSON.
fn jwt_header() -> impl Strategy<Value = Value> {
    let algs =
        vec!["HS256", "none", "None", "NONE", "", "HS384", "HS512", "RS256", "ES256", "EdDSA", "eddsa", "EdDSA "];
    let kids = vec![json!(null), json!(""), json!("ed25519-other"), json!(keys().signing.to_uppercase()), json!(1)];
    prop_oneof![
        3 => LazyJust::new(our_header),
        2 => prop::sample::select(algs).prop_map(|alg| json!({"alg": alg, "typ": "JWT", "kid": keys().signing})),
        1 => prop::sample::select(kids).prop_map(|kid| json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})),
        2 => LazyJust::new(our_header).prop_flat_map(mutated),
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
        (prop::sample::select(vec!["sub", "role", "iss", "aud", "iat", "exp", "nbf", "jti"]), any_json()),
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
    let other = prop_oneof![Just(Key::Foreign), prop::collection::vec(any::<u8>(), 0..64).prop_map(Key::Hmac)];
    let signed = (jwt_header(), jwt_claims(), other).prop_map(|(header, claims, key)| signed(&header, &claims, &key));
    prop_oneof![prop::collection::vec(segment(), 0..5).prop_map(|parts| parts.join(".")), signed]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// Any dotted base64url: refused.
    #[test]
    fn fuzz_three_part_tokens(parts in prop::collection::vec(segment(), 3..=3)) {
        let token = parts.join(".");
        let verdict = verifier().verify(&token);
        prop_assert!(verdict.is_err(), "{}: {:?}", token, verdict);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..persisted() })]
    /// Well-formed JWTs: refused when signed with another key or not declared EdDSA with the
    /// published `kid` as `issue` declares it; with the right key, accepted only with claims
    /// every rule allows, and then read exactly as signed.
    #[test]
    fn fuzz_signed_tokens(header in jwt_header(), claims in jwt_claims(), key in any_key()) {
        let token = signed(&header, &claims, &key);
        // Around the verification, so that a second ticking over cannot fail the time checks.
        let before = Utc::now().timestamp();
        let verdict = verifier().verify(&token);
        let after = Utc::now().timestamp();
        let declared_ours = header["alg"] == "EdDSA" && header["kid"] == keys().signing.as_str();
        if key != Key::Ours || !declared_ours {
            prop_assert!(verdict.is_err(), "{} {}: {:?}", header, claims, verdict);
        }
        if let Ok(read) = verdict {
            prop_assert_eq!(serde_json::to_value(&read).unwrap(), json!({
                "sub": claims["sub"], "role": claims["role"], "iss": ISSUER, "aud": AUDIENCE,
                "iat": claims["iat"], "exp": claims["exp"], "jti": claims["jti"],
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
    let token = signed(&our_header(), &claims, &Key::Ours);
    assert!(verifier().verify(&token).is_ok(), "{claims}");
    assert!(valid_yet(&claims, Utc::now().timestamp()), "{claims}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..persisted() })]
    /// Whatever the user id and role, an issued token verifies to them.
    #[test]
    fn fuzz_issued_tokens_round_trip(user_id in text(), role in role()) {
        let tokens = verifier();
        let mut user = user(role);
        user.user_id = user_id.clone();
        let now = Utc::now();
        let token = signer().issue(&user, now).expect("signs");
        let jti = tokens.verify(&token).map(|c| c.jti).unwrap_or_default();
        prop_assert_eq!(jti.len(), 26, "a ULID");
        let expected = Claims {
            sub: user_id, role, iss: ISSUER.into(), aud: AUDIENCE.into(),
            iat: now.timestamp(), exp: now.timestamp() + TOKEN_TTL_SECONDS, jti,
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
            key: SigningKey::ready(signer()),
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

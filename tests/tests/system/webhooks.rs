//! Stripe's webhooks through the local stack (issue 16). devstack registers the stack's
//! `POST /webhooks/stripe` with localstripe, signed with the stack's webhook secret (in the
//! emulator's Secrets Manager), so localstripe's own events reach `StripeWebhookFunction`
//! through the gateway, as Stripe's reach it on AWS. A forged or a stale webhook is 400 and
//! changes nothing; a real event sent again, correctly signed, changes nothing twice, and no
//! payment event is ever published twice (a queue subscribed to the payment topic counts them).

use std::time::Duration;

use payment::handlers::webhooks::signature_header;
use reqwest::StatusCode;
use serde_json::{Value, json};
use system_tests::shop::{Shop, User};
use system_tests::{LocalApi, drain, emulator, eventually, wait_for_quiet};

const DEADLINE: Duration = Duration::from_secs(30);

fn stripe_base() -> String {
    std::env::var("STRIPE_API_BASE").unwrap_or_else(|_| "http://127.0.0.1:8420".into())
}

/// The stack's webhook secret, as devstack provisioned it for localstripe.
async fn webhook_secret(api: &LocalApi) -> String {
    let name = api.stack["parameters"]["StripeSecretName"].as_str().expect("the StripeSecretName parameter");
    let secrets = aws_sdk_secretsmanager::Client::new(&emulator().await);
    let value = secrets.get_secret_value().secret_id(name).send().await.unwrap_or_else(|e| {
        panic!("the stack's Stripe secret {name}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
    });
    let keys: Value = serde_json::from_str(value.secret_string().expect("a string secret")).expect("JSON");
    keys["webhook_secret"].as_str().expect("a webhook_secret").to_owned()
}

/// The events of `kind` localstripe made since `since` (unix seconds) whose object `is` ours.
async fn stripe_events(kind: &str, since: i64, is: impl Fn(&Value) -> bool) -> Vec<Value> {
    let since = (since - 1).to_string();
    let query = [("type", kind), ("created[gt]", since.as_str()), ("limit", "100")];
    let url = reqwest::Url::parse_with_params(&format!("{}/v1/events", stripe_base()), query).unwrap();
    let listed: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth("sk_test_local")
        .send()
        .await
        .expect("localstripe answers")
        .json()
        .await
        .expect("a list of events");
    listed["data"].as_array().into_iter().flatten().filter(|e| is(&e["data"]["object"])).cloned().collect()
}

/// POSTs `body` to the stack's webhook with `signature` (if any): status and JSON answer.
async fn post(api: &LocalApi, body: &str, signature: Option<&str>) -> (StatusCode, String, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", api.url))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (status, content_type, response.json().await.unwrap_or(Value::Null))
}

/// `event` sent twice more, newly signed each time as Stripe signs its retries: each changes
/// nothing.
async fn send_again_twice(api: &LocalApi, secret: &str, event: &Value) {
    let body = event.to_string();
    for _ in 0..2 {
        let signature = signature_header(secret, chrono::Utc::now().timestamp(), body.as_bytes());
        let (status, _, answer) = post(api, &body, Some(&signature)).await;
        assert_eq!((status, &answer), (StatusCode::OK, &json!({"received": true, "outcome": "unchanged"})));
    }
}

async fn payment_status(shop: &Shop, customer: &User, payment_id: &str) -> String {
    let payment: Value = shop.get(customer, &format!("/payments/{payment_id}")).await.json().await.unwrap();
    payment["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn forged_and_stale_webhooks_are_refused_and_real_ones_sent_again_change_nothing_twice() {
    let since = chrono::Utc::now().timestamp();
    let shop = Shop::open(&[]).await;
    let config = emulator().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let recorded = system_tests::recorder(&config, &shop.api, &["PaymentEventsTopic"]).await;
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 5).await;
    let customer = shop.register("customer").await;
    shop.put_in_cart(&customer, &product, 2).await;
    let placed = shop.checkout(&customer, "tok_visa", None).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    let (order_id, payment_id) = (order["order_id"].as_str().unwrap(), order["payment_id"].as_str().unwrap());
    let paid = shop.wait_for_order(&customer, order_id, DEADLINE, |o| o["status"] == "paid").await;
    assert_eq!(paid["status"], "paid");
    let secret = webhook_secret(&shop.api).await;

    // localstripe's own event for the capture reached the function, signed, and was taken.
    let ours = |object: &Value| object["metadata"]["payment_id"] == payment_id;
    let succeeded = eventually(DEADLINE, || async {
        stripe_events("payment_intent.succeeded", since, ours).await.into_iter().next()
    })
    .await
    .expect("localstripe made payment_intent.succeeded for the capture");
    let event_id = succeeded["id"].as_str().unwrap().to_owned();
    let intent = succeeded["data"]["object"]["id"].as_str().unwrap().to_owned();
    let delivered = eventually(DEADLINE, || async {
        shop.api.log_lines().into_iter().find(|l| l.contains("Stripe event received") && l.contains(&event_id))
    })
    .await;
    assert!(delivered.is_some(), "localstripe's signed delivery of {event_id} was verified and handled");

    // A refund of the payment nobody made: what a forger would want. Only Stripe can sign it.
    let refund = json!({
        "id": "evt_forged", "object": "event", "type": "charge.refunded", "created": since,
        "data": {"object": {"id": "ch_forged", "object": "charge", "payment_intent": intent,
            "metadata": {"payment_id": payment_id}, "amount": 2598, "amount_refunded": 2598, "refunded": true}},
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let refused = [
        ("unsigned", None),
        ("forged", Some(format!("t={now},v1={}", "0f".repeat(32)))),
        ("stale", Some(signature_header(&secret, now - 600, refund.as_bytes()))),
        ("from the future", Some(signature_header(&secret, now + 600, refund.as_bytes()))),
        ("another secret's", Some(signature_header("whsec_not_this_stacks", now, refund.as_bytes()))),
        ("another body's", Some(signature_header(&secret, now, b"{}"))),
    ];
    for (why, signature) in refused {
        let (status, content_type, answer) = post(&shop.api, &refund, signature.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {answer}");
        assert_eq!(content_type, "application/problem+json", "{why}");
        assert_eq!(answer["type"], "/problems/invalid-signature", "{why}: {answer}");
        assert!(answer["correlation_id"].is_string(), "{why}");
    }
    assert_eq!(payment_status(&shop, &customer, payment_id).await, "settled", "nothing was refunded");
    assert_eq!(shop.order(&customer, order_id).await["status"], "paid");

    // The real capture event, sent again as Stripe retries it (newly signed, as Stripe does).
    send_again_twice(&shop.api, &secret, &succeeded).await;
    assert_eq!(payment_status(&shop, &customer, payment_id).await, "settled");

    // A cancel refunds at localstripe, which reports it (charge.refunded); that event again, twice.
    assert_eq!(shop.cancel(&customer, order_id).await.status(), StatusCode::OK);
    let refunded = eventually(DEADLINE, || async {
        let refunded = payment_status(&shop, &customer, payment_id).await == "refunded";
        let of_intent = |charge: &Value| charge["payment_intent"] == intent.as_str();
        let events = stripe_events("charge.refunded", since, of_intent).await;
        events.into_iter().next().filter(|_| refunded)
    })
    .await
    .expect("the payment refunded, and localstripe's charge.refunded for it");
    send_again_twice(&shop.api, &secret, &refunded).await;
    assert_eq!(payment_status(&shop, &customer, payment_id).await, "refunded");

    // Settlement and the webhook each saw the capture and the refund: one event each went out.
    wait_for_quiet(&sqs, &shop.api, DEADLINE).await;
    let mut published = Vec::new();
    for message in drain(&sqs, &recorded).await.unwrap() {
        let envelope: Value = serde_json::from_str(message.body().unwrap_or_default()).unwrap();
        if envelope["data"]["payment_id"] == payment_id {
            published.push(envelope["type"].as_str().unwrap().to_owned());
        }
    }
    published.sort();
    assert_eq!(published, ["payment.completed", "payment.refunded"], "each published once");
}

//! Notifications delivered for real, read back from the emulator's records of what it sent
//! (LocalStack: `/_aws/ses` for mail, `/_aws/sns/sms-messages` for SMS,
//! `/_aws/sns/platform-endpoint-messages` for push): one per channel (and device) the customer
//! chose, however often the event is delivered, and nothing on a channel turned off.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::Envelope;
use shared::publisher::Publish;
use system_tests::shop::{Shop, User};
use system_tests::{emulator, eventually};

const DEADLINE: Duration = Duration::from_secs(60);

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// A number no other test uses (the emulator records every stack's SMS together).
fn phone_number() -> String {
    let n = ulid::Ulid::generate().random() % 10_000_000;
    format!("+1415{n:07}")
}

/// The order confirmations the emulator mailed to `to` for `order_id`.
async fn mails(to: &str, order_id: &str) -> Vec<Value> {
    let all: Value = reqwest::get(format!("{}/_aws/ses", endpoint())).await.unwrap().json().await.unwrap();
    let to_them = |m: &&Value| m["Destination"]["ToAddresses"].as_array().is_some_and(|a| a.iter().any(|a| a == to));
    let about = |m: &&Value| m["Subject"].as_str() == Some(&format!("Order {order_id} confirmed"));
    all["messages"].as_array().unwrap().iter().filter(to_them).filter(about).cloned().collect()
}

/// The order confirmations the emulator texted to `phone` for `order_id`.
async fn texts(phone: &str, order_id: &str) -> Vec<Value> {
    let url = format!("{}/_aws/sns/sms-messages?phoneNumber={}", endpoint(), phone.replace('+', "%2B"));
    let all: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let about =
        |m: &&Value| m["Message"].as_str().is_some_and(|s| s.starts_with(&format!("Order {order_id} confirmed")));
    all["sms_messages"][phone].as_array().into_iter().flatten().filter(about).cloned().collect()
}

/// The order confirmations the emulator pushed to `endpoint_arn` for `order_id`, each the
/// platform's own payload.
async fn pushes(endpoint_arn: &str, order_id: &str) -> Vec<Value> {
    let url = format!("{}/_aws/sns/platform-endpoint-messages?endpointArn={endpoint_arn}", endpoint());
    let all: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    // LocalStack keeps the platform's entry JSON-encoded once more than the device gets it.
    let native = |m: &Value| {
        let entry: Value = serde_json::from_str(m["Message"].as_str()?).ok()?;
        serde_json::from_str::<Value>(entry.as_str()?).ok()
    };
    let about = |m: &Value| m.to_string().contains(&format!("Order {order_id} confirmed"));
    all["platform_endpoint_messages"][endpoint_arn]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(native)
        .filter(about)
        .collect()
}

/// A device token no other test uses.
fn token() -> String {
    format!("token-{}", ulid::Ulid::generate())
}

async fn choose(shop: &Shop, who: &User, preferences: &Value) {
    let put = shop.http.put(shop.url("/notifications/preferences")).bearer_auth(&who.token).json(preferences);
    let answer = put.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(&answer.json::<Value>().await.unwrap(), preferences);
}

async fn customer(shop: &Shop) -> (User, String) {
    let email = format!("notified.{}@example.com", ulid::Ulid::generate().to_string().to_lowercase());
    (shop.sign_up(&email, "correct horse", "customer").await, email)
}

#[tokio::test]
async fn each_chosen_channel_gets_one_confirmation_however_often_the_event_comes_and_none_when_off() {
    let shop = Shop::open(&[]).await;
    let config = emulator().await;
    let recorded = system_tests::recorder(&config, &shop.api, &["OrderEventsTopic"]).await;
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 10).await;

    let (all_on, all_on_email) = customer(&shop).await;
    let all_on_phone = phone_number();
    choose(&shop, &all_on, &json!({"email": true, "sms": true, "push": true, "phone_number": all_on_phone})).await;
    let (_, android) = shop.register_device(&all_on, "GCM", &token()).await;
    let (_, iphone) = shop.register_device(&all_on, "APNS", &token()).await;
    let (email_off, email_off_email) = customer(&shop).await;
    let email_off_phone = phone_number();
    choose(&shop, &email_off, &json!({"email": false, "sms": true, "push": false, "phone_number": email_off_phone}))
        .await;
    let (sms_off, sms_off_email) = customer(&shop).await;
    let sms_off_phone = phone_number();
    // A number but SMS off: nothing goes to it; a device but push off: nothing to it.
    choose(&shop, &sms_off, &json!({"email": true, "sms": false, "push": false, "phone_number": sms_off_phone})).await;
    let (_, sms_off_device) = shop.register_device(&sms_off, "GCM", &token()).await;

    let mut orders = Vec::new();
    for who in [&all_on, &email_off, &sms_off] {
        shop.put_in_cart(who, &product, 1).await;
        let placed = shop.checkout(who, "tok_visa", None).await;
        assert_eq!(placed.status(), StatusCode::CREATED);
        let order: Value = placed.json().await.unwrap();
        orders.push(order["order_id"].as_str().unwrap().to_owned());
    }
    for who in [&all_on, &email_off, &sms_off] {
        shop.wait_for_notifications(who, &["order_confirmation"], DEADLINE).await;
    }

    // Every order.created again, three more times.
    let sqs = aws_sdk_sqs::Client::new(&config);
    let created: Vec<Envelope> = system_tests::drain(&sqs, &recorded)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str::<Envelope>(m.body().unwrap()).unwrap())
        .filter(|e| e.event_type() == "order.created")
        .collect();
    assert_eq!(created.len(), 3);
    let publisher = system_tests::publisher(&config, |id| shop.api.reference(id));
    for _ in 0..3 {
        for envelope in &created {
            publisher.publish(envelope).await.unwrap();
        }
    }
    system_tests::wait_for_quiet(&sqs, &shop.api, DEADLINE).await;

    let [all_on_order, email_off_order, sms_off_order] = &orders[..] else { unreachable!() };
    let sent = eventually(DEADLINE, || async {
        let (mail, text) = (mails(&all_on_email, all_on_order).await, texts(&all_on_phone, all_on_order).await);
        let (gcm, apns) = (pushes(&android, all_on_order).await, pushes(&iphone, all_on_order).await);
        (!mail.is_empty() && !text.is_empty() && !gcm.is_empty() && !apns.is_empty()).then_some((mail, text, gcm, apns))
    })
    .await
    .expect("an email, an SMS and a push to each device for the order");
    assert_eq!(sent.0.len(), 1, "one email: {:?}", sent.0);
    assert_eq!(sent.1.len(), 1, "one SMS: {:?}", sent.1);
    assert_eq!(sent.2.len(), 1, "one push to the Android phone: {:?}", sent.2);
    assert_eq!(sent.3.len(), 1, "one push to the iPhone: {:?}", sent.3);
    assert_eq!(sent.2[0]["notification"]["title"], format!("Order {all_on_order} confirmed"), "FCM's shape");
    assert!(sent.3[0]["aps"]["alert"]["body"].as_str().unwrap().contains(all_on_order.as_str()), "APNS's shape");
    let mail = &sent.0[0];
    assert!(mail["Body"]["html_part"].as_str().unwrap().contains("$12.99"), "{mail}");
    assert!(mail["Body"]["text_part"].as_str().unwrap().contains(all_on_order.as_str()), "{mail}");

    // What GET /notifications says went out is what the emulator received.
    let listed: Value = shop.get(&all_on, "/notifications").await.json().await.unwrap();
    let confirmation =
        listed["items"].as_array().unwrap().iter().find(|n| n["template"] == "order_confirmation").unwrap().clone();
    let deliveries = confirmation["deliveries"].as_array().unwrap();
    let channels: Vec<&str> = deliveries.iter().map(|d| d["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["email", "sms", "push", "push"], "{confirmation}");
    assert!(deliveries.iter().all(|d| d["status"] == "sent"), "{confirmation}");
    assert_eq!(deliveries[0]["provider_message_id"], mail["Id"], "{confirmation}");

    // Email off: the SMS only. SMS off: the email only, nothing to the number.
    assert_eq!(texts(&email_off_phone, email_off_order).await.len(), 1);
    assert!(mails(&email_off_email, email_off_order).await.is_empty());
    assert_eq!(mails(&sms_off_email, sms_off_order).await.len(), 1);
    assert!(texts(&sms_off_phone, sms_off_order).await.is_empty());
    assert!(pushes(&sms_off_device, sms_off_order).await.is_empty());
    let dead = system_tests::dead_letters(&sqs, &shop.api).await;
    assert!(dead.values().all(|n| *n == 0), "{dead:?}");
}

/// The welcome mails the emulator sent to `to`.
async fn welcomes(to: &str) -> usize {
    let all: Value = reqwest::get(format!("{}/_aws/ses", endpoint())).await.unwrap().json().await.unwrap();
    let to_them = |m: &&Value| m["Destination"]["ToAddresses"].as_array().is_some_and(|a| a.iter().any(|a| a == to));
    all["messages"].as_array().unwrap().iter().filter(to_them).filter(|m| m["Subject"] == "Welcome to the shop").count()
}

#[tokio::test]
async fn a_bounce_suppresses_the_address_and_no_more_mail_goes_to_it() {
    let shop = Shop::open(&[]).await;
    let config = emulator().await;
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 10).await;
    let (customer, email) = customer(&shop).await;
    assert_eq!(eventually(DEADLINE, || async { (welcomes(&email).await > 0).then_some(()) }).await, Some(()));
    assert_eq!(welcomes(&email).await, 1);

    // What SES publishes to the configuration set's topic when the mailbox does not exist.
    let bounce = json!({
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "NoEmail",
            "bouncedRecipients": [{"emailAddress": email, "action": "failed", "status": "5.1.1"}],
            "timestamp": "2026-12-02T10:00:00.000Z",
            "feedbackId": "0100018c-bounce"
        },
        "mail": {"messageId": "0100018c-mail", "destination": [email], "source": "no-reply@example.com"}
    });
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = shop.api.reference("EmailFeedbackTopic");
    sns.publish().topic_arn(topic).message(bounce.to_string()).send().await.unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let table = shop.api.reference("NotificationTable");
    let suppressed = eventually(DEADLINE, || async {
        let key = shared::dynamo::key(format!("EMAIL#{email}"), "SUPPRESSED");
        let found = dynamo.get_item().table_name(&table).set_key(Some(key)).send().await.unwrap();
        found.item.map(|item| item["reason"].as_s().unwrap().clone())
    })
    .await;
    assert_eq!(suppressed.as_deref(), Some("bounce"));

    shop.put_in_cart(&customer, &product, 1).await;
    let placed: Value = shop.checkout(&customer, "tok_visa", None).await.json().await.unwrap();
    let order_id = placed["order_id"].as_str().unwrap().to_owned();
    shop.wait_for_notifications(&customer, &["order_confirmation"], DEADLINE).await;
    let listed: Value = shop.get(&customer, "/notifications").await.json().await.unwrap();
    let confirmation =
        listed["items"].as_array().unwrap().iter().find(|n| n["template"] == "order_confirmation").cloned();
    let confirmation = confirmation.unwrap();
    assert_eq!(
        confirmation["deliveries"],
        json!([{"channel": "email", "status": "failed", "provider_message_id": null, "at": confirmation["deliveries"][0]["at"]}])
    );
    assert!(mails(&email, &order_id).await.is_empty(), "no mail to a bounced address");
}

#[tokio::test]
async fn a_device_gets_push_until_sns_disables_it_then_it_is_removed() {
    let shop = Shop::open(&[]).await;
    let config = emulator().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let seller = shop.register("seller").await;
    let product = shop.product(&seller, 1299, 10).await;
    let (customer, _) = customer(&shop).await;
    choose(&shop, &customer, &json!({"email": false, "sms": false, "push": true, "phone_number": null})).await;
    let phone_token = token();
    let (device_id, endpoint_arn) = shop.register_device(&customer, "GCM", &phone_token).await;
    let disable = || async {
        sns.set_endpoint_attributes().endpoint_arn(&endpoint_arn).attributes("Enabled", "false").send().await.unwrap();
    };
    let order = |n: u32| {
        let (shop, customer, product) = (&shop, &customer, &product);
        async move {
            shop.put_in_cart(customer, product, n).await;
            let placed: Value = shop.checkout(customer, "tok_visa", None).await.json().await.unwrap();
            placed["order_id"].as_str().unwrap().to_owned()
        }
    };
    // The order's `template` notification, once its delivery has an outcome.
    let settled = |template: &'static str, order_id: String| {
        let (shop, customer) = (&shop, &customer);
        async move {
            eventually(DEADLINE, || async {
                let listed: Value = shop.get(customer, "/notifications").await.json().await.unwrap();
                let about = |n: &&Value| n["template"] == template && n["body"].to_string().contains(&order_id);
                let found = listed["items"].as_array().unwrap().iter().find(about).cloned()?;
                (!found["deliveries"].as_array().unwrap().is_empty()).then_some(found)
            })
            .await
            .expect("the order's notification with its delivery")
        }
    };

    // Disabled (the app was removed from the phone), then registered again from the phone:
    // the same device, enabled again, and it gets the next confirmation.
    disable().await;
    assert_eq!(shop.register_device(&customer, "GCM", &phone_token).await, (device_id.clone(), endpoint_arn.clone()));
    let first = order(1).await;
    assert_eq!(settled("order_confirmation", first.clone()).await["deliveries"][0]["status"], "sent");
    assert_eq!(pushes(&endpoint_arn, &first).await.len(), 1);
    // Its receipt too, before the endpoint is disabled again: that is the next order's push.
    assert_eq!(settled("payment_receipt", first.clone()).await["deliveries"][0]["status"], "sent");

    // Disabled for good: the next push fails, is not retried, and the device is removed.
    disable().await;
    let second = order(2).await;
    assert_eq!(settled("order_confirmation", second.clone()).await["deliveries"][0]["status"], "failed");
    assert!(pushes(&endpoint_arn, &second).await.is_empty());
    let gone = eventually(DEADLINE, || async {
        sns.get_endpoint_attributes().endpoint_arn(&endpoint_arn).send().await.is_err().then_some(())
    })
    .await;
    assert_eq!(gone, Some(()), "its endpoint is deleted");
    let delete =
        shop.http.delete(shop.url(&format!("/notifications/devices/{device_id}"))).bearer_auth(&customer.token);
    assert_eq!(delete.send().await.unwrap().status(), StatusCode::NOT_FOUND, "the device is gone");

    // A device removed by its owner: 204, its endpoint gone; then 404.
    let (other_id, other_arn) = shop.register_device(&customer, "APNS", &token()).await;
    let delete =
        || shop.http.delete(shop.url(&format!("/notifications/devices/{other_id}"))).bearer_auth(&customer.token);
    assert_eq!(delete().send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(sns.get_endpoint_attributes().endpoint_arn(&other_arn).send().await.is_err());
    assert_eq!(delete().send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // An endpoint deleted behind the shop's back (in the SNS console): no endpoint is as gone
    // as a disabled one, so the device is removed too.
    let (lost_id, lost_arn) = shop.register_device(&customer, "GCM", &token()).await;
    sns.delete_endpoint().endpoint_arn(&lost_arn).send().await.unwrap();
    let third = order(1).await;
    assert_eq!(settled("order_confirmation", third).await["deliveries"][0]["status"], "failed");
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let table = shop.api.reference("NotificationTable");
    let removed = eventually(DEADLINE, || async {
        let key = shared::dynamo::key(format!("USER#{}", customer.id), format!("DEVICE#{lost_id}"));
        let found = dynamo.get_item().table_name(&table).set_key(Some(key)).send().await.unwrap();
        found.item.is_none().then_some(())
    })
    .await;
    assert_eq!(removed, Some(()), "the device whose endpoint is gone is removed");
    let dead = system_tests::dead_letters(&aws_sdk_sqs::Client::new(&config), &shop.api).await;
    assert!(dead.values().all(|n| *n == 0), "{dead:?}");
}

//! AI Buddy against in-memory stores and a scripted catalogue.

use shared::CorrelationId;
use shared::events::Role;
use shared::idempotency::MemoryIdempotency;
use shared::internal::CallError;
use testkit::requests::{as_caller, body, call, sample, with_body};

use crate::domain::ProductInfo;
use crate::learn::handle;
use crate::services::Services;
use crate::store::{AiStore, MemoryStore};

const CUSTOMER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";
const SELLER: &str = "usr_01JD4RY9K8J7H6G5F4E3D2C1B0";

struct Catalogue;

fn product(id: &str, name: &str, category: &str) -> ProductInfo {
    ProductInfo {
        product_id: id.into(),
        seller_id: SELLER.into(),
        name: name.into(),
        description: String::new(),
        category: category.into(),
        price_cents: 1299,
    }
}

impl Services for Catalogue {
    async fn lookup(&self, ids: &[String], _: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
        Ok(self
            .catalogue(&CorrelationId::generate())
            .await?
            .into_iter()
            .filter(|p| ids.contains(&p.product_id))
            .collect())
    }
    async fn catalogue(&self, _: &CorrelationId) -> Result<Vec<ProductInfo>, CallError> {
        Ok(vec![
            product("prd_01JD4RZX0A1B2C3D4E5F6G7H8J", "Dune", "books"),
            product("prd_01JD4RZX9Z8Y7X6W5V4T3S2R1Q", "Foundation", "books"),
            product("prd_catan", "Catan board game", "games"),
        ])
    }
    async fn user_name(&self, _: &str, _: &CorrelationId) -> Result<Option<String>, CallError> {
        Ok(Some("Ada".into()))
    }
}

const SAMPLES: [&str; 5] = [
    "sqs-user-registered.json",
    "sqs-order-created.json",
    "sqs-payment-completed.json",
    "sqs-order-completed.json",
    "sqs-inventory-updated.json",
];

async fn learned(times: usize) -> MemoryStore {
    let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
    for _ in 0..times {
        for name in SAMPLES {
            handle(&store, &claims, &Catalogue, testkit::requests::sqs_envelope(name)).await.unwrap();
        }
    }
    store
}

#[tokio::test]
async fn replaying_every_sample_twice_learns_the_same_as_once() {
    let (once, twice) = (learned(1).await, learned(2).await);
    assert_eq!(once.profile(CUSTOMER).await.unwrap(), twice.profile(CUSTOMER).await.unwrap());
    assert_eq!(once.popular(10).await.unwrap(), twice.popular(10).await.unwrap());
    assert_eq!(once.seller(SELLER).await.unwrap(), twice.seller(SELLER).await.unwrap());
    let summary = twice.seller(SELLER).await.unwrap();
    assert_eq!((summary.orders, summary.units_sold, summary.revenue_cents), (1, 3, 7098));
}

#[tokio::test]
async fn an_order_completed_before_it_was_seen_is_retried() {
    let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
    assert!(
        handle(&store, &claims, &Catalogue, testkit::requests::sqs_envelope("sqs-order-completed.json")).await.is_err()
    );
}

#[tokio::test]
async fn recommendations_skip_purchases_and_analytics_need_a_seller() {
    let store = learned(1).await;
    let as_customer = |name: &str| as_caller(sample(name), CUSTOMER, Role::Customer);
    let found = body(
        &call(
            &|r, c| crate::handlers::recommendations(&store, &Catalogue, r, c),
            as_customer("http-get-recommendations.json"),
        )
        .await,
    );
    let ids: Vec<&str> = found["items"].as_array().unwrap().iter().map(|i| i["product_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["prd_catan"], "both books were bought: only the game is left");

    let analytics = |who: &str, role| as_caller(sample("http-get-analytics.json"), who, role);
    let summary = body(&call(&|r, c| crate::handlers::analytics(&store, r, c), analytics(SELLER, Role::Seller)).await);
    assert_eq!(summary["units_sold"], 3);
    assert_eq!(summary["top_products"][0]["name"], "Dune");
    let customer = call(&|r, c| crate::handlers::analytics(&store, r, c), analytics(CUSTOMER, Role::Customer)).await;
    assert_eq!(customer.status(), 403);
}

#[tokio::test]
async fn the_assistant_answers_by_intent() {
    let store = learned(1).await;
    let ask = |message: &str| {
        with_body(
            as_caller(sample("http-post-assistant.json"), CUSTOMER, Role::Customer),
            &serde_json::json!({"message": message}).to_string(),
        )
    };
    let answer = |text: &str| {
        let request = ask(text);
        let store = &store;
        async move { body(&call(&|r, c| crate::handlers::assistant(store, &Catalogue, r, c), request).await) }
    };
    let status = answer("where is my order?").await;
    assert_eq!(status["intent"], "order_status");
    assert!(status["reply"].as_str().unwrap().contains("is paid"), "{status}");
    assert_eq!(answer("recommend me something").await["intent"], "recommend");
    let search = answer("do you sell board games?").await;
    assert!(search["reply"].as_str().unwrap().contains("Catan"), "{search}");
    let help = answer("hi").await;
    assert_eq!(help["intent"], "help");
    assert!(help["reply"].as_str().unwrap().starts_with("Hello Ada"), "{help}");
    // 1 to 1000 characters, whatever they are (the contract and the schema say no more): a
    // blank message is a valid one with no intent in it.
    assert_eq!(answer("\n").await["intent"], "help");
    let empty = call(&|r, c| crate::handlers::assistant(&store, &Catalogue, r, c), ask("")).await;
    assert_eq!(empty.status(), 400);
}

/// Every order of arrival of one order's story (registered, created, completed, cancelled,
/// refunded) learns what the in-order run learns. An event that fails (its order not seen
/// yet) goes to the back of the queue, as SQS brings it back later.
#[tokio::test]
async fn every_arrival_order_learns_the_same() {
    const STORY: [&str; 5] = [
        "sqs-user-registered.json",
        "sqs-order-created.json",
        "sqs-order-completed.json",
        "sqs-order-cancelled.json",
        "sqs-payment-refunded.json",
    ];
    async fn run(order: &[usize]) -> (crate::domain::Profile, Option<crate::domain::OrderSeen>, String) {
        let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
        let mut queue: std::collections::VecDeque<usize> = order.iter().copied().collect();
        let mut deliveries = 0;
        while let Some(next) = queue.pop_front() {
            deliveries += 1;
            assert!(deliveries < 50, "never settles: {order:?}");
            let envelope = testkit::requests::sqs_envelope(STORY[next]);
            if handle(&store, &claims, &Catalogue, envelope).await.is_err() {
                queue.push_back(next);
            }
        }
        let seller = store.seller(SELLER).await.unwrap();
        let summary = format!(
            "{} {} {} {:?}",
            seller.orders,
            seller.units_sold,
            seller.revenue_cents,
            store.popular(10).await.unwrap()
        );
        (store.profile(CUSTOMER).await.unwrap(), store.order("ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E").await.unwrap(), summary)
    }
    let in_order = run(&[0, 1, 2, 3, 4]).await;
    assert_eq!(in_order.1.as_ref().map(|o| o.status.as_str()), Some("refunded"));
    let mut permutations: Vec<Vec<usize>> = vec![vec![]];
    for _ in 0..STORY.len() {
        let mut longer = Vec::new();
        for prefix in &permutations {
            for next in (0..STORY.len()).filter(|i| !prefix.contains(i)) {
                longer.push([prefix.as_slice(), &[next]].concat());
            }
        }
        permutations = longer;
    }
    assert_eq!(permutations.len(), 120);
    for order in permutations {
        assert_eq!(run(&order).await, in_order, "arrival order {order:?}");
    }
}

/// Two batches completing two orders of one user at once: both read the profile before
/// either writes it, and neither purchase may be lost (or recommended again).
#[tokio::test]
async fn concurrent_completions_keep_every_purchase() {
    use shared::events::{Event, OrderCompleted};
    let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
    let order = |order_id: &str, product_id: &str| crate::domain::OrderSeen {
        order_id: order_id.into(),
        user_id: CUSTOMER.into(),
        items: vec![shared::events::OrderItem {
            product_id: product_id.into(),
            seller_id: SELLER.into(),
            quantity: 1,
            unit_price_cents: 1299,
        }],
        total_cents: 1299,
        status: "placed".into(),
        completed: false,
    };
    store.save_order(&order("ord_a", "prd_catan")).await.unwrap();
    store.save_order(&order("ord_b", "prd_01JD4RZX0A1B2C3D4E5F6G7H8J")).await.unwrap();
    let completed = |order_id: &str| {
        let done = OrderCompleted { order_id: order_id.into(), user_id: CUSTOMER.into(), total_cents: 1299 };
        shared::Envelope::new(Event::OrderCompleted(done), &CorrelationId::generate())
    };
    let (a, b) = tokio::join!(
        handle(&store, &claims, &Catalogue, completed("ord_a")),
        handle(&store, &claims, &Catalogue, completed("ord_b"))
    );
    a.unwrap();
    b.unwrap();
    let mut bought = store.profile(CUSTOMER).await.unwrap().bought;
    bought.sort();
    assert_eq!(bought, ["prd_01JD4RZX0A1B2C3D4E5F6G7H8J", "prd_catan"]);
}

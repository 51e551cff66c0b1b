//! The consumers' idempotency helper against a real (emulated) service table: a duplicate
//! delivery is skipped, a failed attempt is retried, a live claim blocks a second worker, an
//! expired one is taken over and its former holder can no longer complete it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shared::idempotency::{Claim, DynamoIdempotency, IdempotencyError, IdempotencyStore, key, once};
use system_tests::{emulator, provision, unique_stack_name};

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn conditional_writes_make_consumers_idempotent() {
    let config = emulator().await;
    let stack = provision(&config, &unique_stack_name()).await.expect("provisioned");
    let store =
        DynamoIdempotency::new(aws_sdk_dynamodb::Client::new(&config), stack.reference("NotificationTable").unwrap());

    let runs = AtomicU32::new(0);
    let event = key("welcome", "01JD4T0A000000000000000001");
    for _ in 0..3 {
        once(&store, &event, LEASE, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(())
        })
        .await
        .unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "duplicates are skipped");

    let flaky = key("welcome", "01JD4T0A000000000000000002");
    assert!(once(&store, &flaky, LEASE, || async { Err::<(), _>("smtp down") }).await.is_err());
    assert!(once(&store, &flaky, LEASE, || async { Ok::<_, String>(()) }).await.unwrap(), "retried after a failure");

    let busy = key("welcome", "01JD4T0A000000000000000003");
    assert!(matches!(store.claim(&busy, LEASE).await.unwrap(), Claim::Acquired(_)));
    assert!(matches!(store.claim(&busy, LEASE).await, Err(IdempotencyError::InProgress(_))));

    let crashed = key("welcome", "01JD4T0A000000000000000004");
    let Claim::Acquired(stale) = store.claim(&crashed, Duration::ZERO).await.unwrap() else { panic!("not acquired") };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let Claim::Acquired(fresh) = store.claim(&crashed, LEASE).await.unwrap() else {
        panic!("an expired lease is taken over")
    };
    assert!(
        matches!(store.complete(&crashed, &stale).await, Err(IdempotencyError::Lost(_))),
        "the old holder cannot finish"
    );
    assert!(matches!(store.release(&crashed, &stale).await, Err(IdempotencyError::Lost(_))), "nor drop the new claim");
    store.complete(&crashed, &fresh).await.unwrap();
    assert_eq!(store.claim(&crashed, LEASE).await.unwrap(), Claim::AlreadyDone);

    let other_consumer = key("receipt", "01JD4T0A000000000000000001");
    assert!(matches!(store.claim(&other_consumer, LEASE).await.unwrap(), Claim::Acquired(_)), "scopes are separate");
}

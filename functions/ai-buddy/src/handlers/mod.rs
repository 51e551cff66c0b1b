//! What API Gateway calls: `GET /recommendations` (`recommendations.rs`),
//! `POST /assistant/messages` (`assistant.rs`), `GET /analytics/summary` (`analytics.rs`).

pub mod analytics;
pub mod assistant;
pub mod recommendations;

use shared::Problem;

use crate::store::StoreError;

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "AI Buddy store unavailable");
        Problem::unavailable("AI Buddy is unavailable; try again shortly")
    }
}

/// What the handler and consumer tests share: the samples' users, and a store that has
/// learned from the sample events.
#[cfg(test)]
pub(crate) mod test_support {
    use shared::idempotency::MemoryIdempotency;

    use crate::clients::fakes::Catalogue;
    use crate::consumer::handle;
    use crate::store::memory::MemoryStore;

    pub(crate) const CUSTOMER: &str = "usr_01JD4S3ZKQ7X9V2M8N5P6R4T1A";
    pub(crate) const SELLER: &str = "usr_01JD4RY9K8J7H6G5F4E3D2C1B0";

    const SAMPLES: [&str; 5] = [
        "sqs-user-registered.json",
        "sqs-order-created.json",
        "sqs-payment-completed.json",
        "sqs-order-completed.json",
        "sqs-inventory-updated.json",
    ];

    /// A store that has learned every sample `times` times.
    pub(crate) async fn learned(times: usize) -> MemoryStore {
        let (store, claims) = (MemoryStore::default(), MemoryIdempotency::default());
        for _ in 0..times {
            for name in SAMPLES {
                handle(&store, &claims, &Catalogue, testkit::requests::sqs_envelope(name)).await.unwrap();
            }
        }
        store
    }
}

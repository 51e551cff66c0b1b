//! cart-events-queue: an empty cart on `user.registered`, the purchase on `order.completed`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = shared::config::start().await;
    let store = cart::store::dynamo::DynamoStore::from_env(&sdk)?;
    shared::batch::run(|envelope| cart::consumer::handle(&store, envelope)).await
}

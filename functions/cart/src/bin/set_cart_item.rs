//! `PUT /cart/items/{product_id}`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let sdk = shared::config::aws().await;
    let store = cart::store::dynamo::DynamoStore::from_env(&sdk)?;
    let downstream = cart::downstream::HttpDownstream { client: shared::internal::InternalClient::from_env(&sdk)? };
    shared::api::run(|request, correlation_id| cart::handlers::set_item(&store, &downstream, request, correlation_id))
        .await
}

//! `GET /health` answers from the function alone: it proves the API, the route and the
//! runtime work, without making a dependency's outage look like ours.

use lambda_http::Request;
use shared::{Problem, Reply};

pub async fn health(_request: Request) -> Result<Reply, Problem> {
    Ok(Reply::ok(&serde_json::json!({"status": "ok"})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    #[tokio::test]
    async fn health_is_ok_with_json() {
        let response = testkit::requests::call(&health, Request::new(Body::Empty)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body, serde_json::json!({"status": "ok"}));
    }
}

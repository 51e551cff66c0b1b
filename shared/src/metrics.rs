//! Business metrics in CloudWatch Embedded Metric Format: one JSON line on stdout, which
//! CloudWatch Logs turns into a metric. No API call, nothing added to a request's latency.
//! The namespace is `METRICS_NAMESPACE` (the stack's name, set in template.yaml); the
//! dashboard in template.yaml charts every metric here.

use serde_json::{Value, json};

/// What the shop counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// An order created (not a repeat of an idempotent request).
    OrdersPlaced,
    /// A payment declined at checkout or failed at settlement.
    PaymentFailures,
    /// A notification handed to its channel.
    NotificationsSent,
    /// A message failed for the last time: SQS moves it to its dead-letter queue.
    DlqRedrives,
    /// An outbox item that is no event, moved aside by the relay (dimension `Service=outbox`).
    OutboxParked,
    /// A checkout left behind (lease long over, never resumed) that the reconciler undid or
    /// found to have gone through (dimension `Service=cart`).
    CheckoutsReconciled,
    /// A dispute (chargeback) opened on one of our payments, from Stripe's webhook
    /// (dimension `Service=payment`): each needs an answer in Stripe's dashboard.
    PaymentDisputes,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::OrdersPlaced => "OrdersPlaced",
            Metric::PaymentFailures => "PaymentFailures",
            Metric::NotificationsSent => "NotificationsSent",
            Metric::DlqRedrives => "DlqRedrives",
            Metric::OutboxParked => "OutboxParked",
            Metric::CheckoutsReconciled => "CheckoutsReconciled",
            Metric::PaymentDisputes => "PaymentDisputes",
        }
    }
}

/// Counts `n` of `metric` for `dimension` (`("Service", "order")`, `("Queue", name)`).
pub fn count(metric: Metric, dimension: (&str, &str), n: u64) {
    let namespace = crate::config::optional("METRICS_NAMESPACE", "ecommerce");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    println!("{}", emf_line(&namespace, metric, dimension, n, now.as_millis() as u64));
}

/// The EMF document for one count.
pub fn emf_line(namespace: &str, metric: Metric, (key, value): (&str, &str), n: u64, timestamp_ms: u64) -> Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[key]],
                "Metrics": [{"Name": metric.name(), "Unit": "Count"}],
            }],
        },
        key: value,
        metric.name(): n,
        "function": crate::logging::function_name(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_an_emf_document_with_its_dimension_and_value() {
        let line = emf_line("shop", Metric::OrdersPlaced, ("Service", "order"), 1, 1_795_687_200_000);
        let metrics = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Namespace"], "shop");
        assert_eq!(metrics["Dimensions"], json!([["Service"]]));
        assert_eq!(metrics["Metrics"][0], json!({"Name": "OrdersPlaced", "Unit": "Count"}));
        assert_eq!(line["_aws"]["Timestamp"], 1_795_687_200_000u64);
        assert_eq!(line["Service"], "order");
        assert_eq!(line["OrdersPlaced"], 1);
    }
}

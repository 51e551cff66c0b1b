//! What 1,000 orders cost on AWS, from what one order was measured to make happen
//! ([`crate::system::OrderCounts`]) and how long each function ran.
//!
//! The prices, all in one place: us-east-1 list prices, on-demand, without free tiers or
//! volume discounts, as AWS published them (Lambda arm64 since its 2021 launch, tiered in
//! 2022; DynamoDB on-demand after its 2024-11-01 cut). Not re-read from aws.amazon.com on
//! this offline machine: check them before you quote the table.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::system::OrderCounts;

pub const PRICES_AS_OF: &str = "us-east-1 list prices as published in 2025 (on-demand, no free tier)";

/// USD per unit.
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
/// arm64, first tier (7.5 billion GB-s a month).
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// HTTP API, first 300 million a month.
const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
/// Standard topics, per 64 KB published; deliveries to SQS are free.
const SNS_PUBLISH: f64 = 0.50 / 1e6;
/// Standard queues, per 64 KB request.
const SQS_REQUEST: f64 = 0.40 / 1e6;
const SECRETS_MANAGER_CALL: f64 = 0.05 / 1e4;
const SES_EMAIL: f64 = 0.10 / 1e3;

const ORDERS: f64 = 1000.0;

/// How long one function ran per invocation and at what memory size.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Billed {
    pub memory_mb: u32,
    pub duration_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Line {
    pub item: String,
    pub quantity: f64,
    pub unit: String,
    pub usd: f64,
}

#[derive(Debug, Serialize)]
pub struct OrderCost {
    pub prices: &'static str,
    /// Where the durations come from.
    pub durations: String,
    pub per_1000_orders: Vec<Line>,
    pub total_usd: f64,
    /// What one order was measured to make happen.
    pub one_order: OrderCounts,
    /// Per function: invocations per order, memory and billed duration.
    pub functions: BTreeMap<String, (u64, Billed)>,
    /// What the table leaves out.
    pub not_counted: &'static str,
}

/// The cost of 1,000 orders like the one counted, each function billed for `billed` of its
/// invocations (rounded up to the millisecond, as Lambda bills).
pub fn per_thousand(one_order: OrderCounts, billed: &BTreeMap<String, Billed>, durations: String) -> OrderCost {
    let calls = |prefixes: &[&str]| -> f64 {
        let matches = |op: &String| prefixes.iter().any(|p| op == p);
        // A fold from +0.0: an empty f64 sum is -0.0.
        one_order.aws_calls.iter().filter(|(op, _)| matches(op)).fold(0.0, |sum, (_, n)| sum + *n as f64)
    };
    let invocations: f64 = one_order.invocations.values().map(|n| *n as f64).sum();
    let mut functions = BTreeMap::new();
    let mut gb_seconds = 0.0;
    for (name, n) in &one_order.invocations {
        let Some(b) = billed.get(name) else { continue };
        gb_seconds += *n as f64 * b.duration_ms.ceil() / 1000.0 * f64::from(b.memory_mb) / 1024.0;
        functions.insert(name.clone(), (*n, *b));
    }
    let sqs_requests = 2.0 * one_order.queue_batches as f64 + calls(&["sqs.SendMessage", "sqs.SendMessageBatch"]);
    let line = |item: &str, per_order: f64, unit: &str, price: f64| Line {
        item: item.into(),
        quantity: round(per_order * ORDERS),
        unit: unit.into(),
        usd: per_order * ORDERS * price,
    };
    let lines = vec![
        line("Lambda requests", invocations, "requests", LAMBDA_REQUEST),
        line("Lambda duration (arm64)", gb_seconds, "GB-s", LAMBDA_GB_SECOND),
        line("API Gateway (HTTP API)", one_order.api_requests as f64, "requests", HTTP_API_REQUEST),
        line("DynamoDB writes (on-demand)", one_order.dynamodb_units.write, "write request units", DYNAMODB_WRITE_UNIT),
        line("DynamoDB reads (on-demand)", one_order.dynamodb_units.read, "read request units", DYNAMODB_READ_UNIT),
        line("SNS publishes", calls(&["sns.Publish"]), "publishes", SNS_PUBLISH),
        line("SQS requests (event source mappings: receive + delete per batch)", sqs_requests, "requests", SQS_REQUEST),
        line("Secrets Manager", calls(&["secretsmanager.GetSecretValue"]), "calls", SECRETS_MANAGER_CALL),
        line("SES email", calls(&["ses.SendEmail", "ses.SendRawEmail"]), "emails", SES_EMAIL),
    ];
    let total_usd = lines.iter().map(|l| l.usd).sum();
    OrderCost {
        prices: PRICES_AS_OF,
        durations,
        per_1000_orders: lines,
        total_usd,
        one_order,
        functions,
        not_counted: "cold starts' init (rare at steady traffic), scheduled functions (per minute, not per order), \
                      empty SQS polls, SMS and push delivery fees, CloudWatch Logs and X-Ray, data transfer, storage, \
                      the CloudFront web app, Stripe's fees",
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl OrderCost {
    pub fn table(&self, out: &mut String) {
        use std::fmt::Write;
        let _ =
            writeln!(out, "\n### Cost per 1,000 orders on AWS\n\n{}; durations: {}.\n", self.prices, self.durations);
        out.push_str("| item | quantity | unit | USD |\n|---|---:|---|---:|\n");
        for l in &self.per_1000_orders {
            let _ = writeln!(out, "| {} | {} | {} | {:.4} |", l.item, l.quantity, l.unit, l.usd);
        }
        let _ = writeln!(out, "| **total** | | | **{:.4}** |", self.total_usd);
        let _ = writeln!(out, "\nNot counted: {}.", self.not_counted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_is_billed_per_rounded_millisecond_and_gigabyte() {
        let one_order = OrderCounts {
            invocations: BTreeMap::from([("A".to_owned(), 2), ("B".to_owned(), 1)]),
            api_requests: 2,
            queue_batches: 1,
            ..OrderCounts::default()
        };
        let billed = BTreeMap::from([
            ("A".to_owned(), Billed { memory_mb: 128, duration_ms: 9.2 }),
            ("B".to_owned(), Billed { memory_mb: 1024, duration_ms: 1.0 }),
        ]);
        let cost = per_thousand(one_order, &billed, "test".into());
        let item = |name: &str| cost.per_1000_orders.iter().find(|l| l.item.starts_with(name)).unwrap();
        // 1,000 × (2 × 10 ms × 0.125 GB + 1 ms × 1 GB) = 3.5 GB-s.
        assert_eq!(item("Lambda duration").quantity, 3.5);
        assert_eq!(item("Lambda requests").quantity, 3000.0);
        assert!((item("Lambda requests").usd - 0.0006).abs() < 1e-12);
        assert_eq!(item("SQS").quantity, 2000.0);
        assert!((cost.total_usd - cost.per_1000_orders.iter().map(|l| l.usd).sum::<f64>()).abs() < 1e-12);
    }
}

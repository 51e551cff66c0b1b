//! The checkout reconciler (scheduled): a checkout whose lease ran out long ago without an
//! answer (its function crashed, or it was interrupted and the customer never came back)
//! may still hold an authorization and a reservation. This undoes it, in an order that a
//! step still under way cannot beat:
//!
//! 1. claim it: running -> abandoning (a conditional write; a customer's retry that resumed
//!    it first wins, and then nothing is undone);
//! 2. give its order id up at the Order service (a tombstone, so an order creation still
//!    under way fails). If the order exists, the checkout went through: it is finished
//!    instead (answer recorded, cart emptied), and nothing is undone;
//! 3. release its reservation id (a tombstone too, so a late reserve takes nothing);
//! 4. ask the payment service again under the attempt's key (the same request, so the same
//!    answer) and void what it authorized;
//! 5. record the checkout retryable: the customer's key may start a new attempt.
//!
//! A step that fails leaves the checkout abandoning; the next run takes it up again.

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use serde::Serialize;
use shared::CorrelationId;
use shared::internal::CallError;
use shared::metrics::{self, Metric};

use crate::checkout::{LEASE, empty_cart, payment_request};
use crate::domain::{Checkout, CheckoutStatus, cart_lines};
use crate::downstream::{Abandoned, Authorization, Downstream};
use crate::store::{CartStore, StoreError};

/// Checkouts looked at per run (the next run takes the rest).
const BATCH: i32 = 50;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Undone: order id given up, stock released, authorization voided.
    pub abandoned: u32,
    /// Found to have gone through after all: recorded as the order they made.
    pub finished: u32,
    /// Left for the next run (a service did not answer, or a customer resumed it meanwhile).
    pub left: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Call(#[from] CallError),
}

/// How one stale checkout ended.
enum Settled {
    Abandoned,
    Finished,
    /// Someone changed the record first (a customer resumed it): theirs now.
    Skipped,
}

/// Reconciles the checkouts whose lease ran out more than `abandon_after` before `now`.
pub async fn reconcile<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    now: DateTime<Utc>,
    abandon_after: chrono::Duration,
) -> Result<Report, ReconcileError> {
    let mut report = Report::default();
    for stale in store.stale_checkouts(now - abandon_after, BATCH).await? {
        let cid = CorrelationId::generate();
        match settle(store, downstream, stale.clone(), now, &cid).await {
            Ok(Settled::Abandoned) => report.abandoned += 1,
            Ok(Settled::Finished) => report.finished += 1,
            Ok(Settled::Skipped) => report.left += 1,
            Err(error) => {
                tracing::warn!(%error, order_id = %stale.order_id, "could not reconcile a checkout; next run");
                report.left += 1;
            }
        }
    }
    if report.abandoned + report.finished > 0 {
        tracing::warn!(?report, "stale checkouts reconciled");
        metrics::count(Metric::CheckoutsReconciled, ("Service", "cart"), u64::from(report.abandoned + report.finished));
    }
    Ok(report)
}

async fn settle<S: CartStore, D: Downstream>(
    store: &S,
    downstream: &D,
    stale: Checkout,
    now: DateTime<Utc>,
    cid: &CorrelationId,
) -> Result<Settled, ReconcileError> {
    // 1. Claim it.
    let claimed = Checkout { status: CheckoutStatus::Abandoning, lease_until: now + LEASE, ..stale.clone() };
    if !store.save_checkout(&claimed, Some(&stale)).await? {
        return Ok(Settled::Skipped);
    }
    // 2. Its order id, for good; or the order it made.
    if let Abandoned::Exists(order) = downstream.abandon_order(&claimed.order_id, cid).await? {
        let bought = cart_lines(claimed.snapshot.as_deref().unwrap_or_default());
        empty_cart(store, &claimed.user_id, &bought, &claimed.key).await;
        let done = Checkout {
            status: CheckoutStatus::Done,
            answer: Some((StatusCode::CREATED.as_u16(), order)),
            ..claimed.clone()
        };
        store.save_checkout(&done, Some(&claimed)).await?;
        tracing::info!(order_id = %claimed.order_id, "stale checkout had gone through: finished");
        return Ok(Settled::Finished);
    }
    // 3 and 4. Nothing is asked of stock or payment before the snapshot is recorded.
    if let Some(lines) = &claimed.snapshot {
        downstream.release(&claimed.reservation_id(), cid).await?;
        match downstream.authorize(&payment_request(&claimed, lines, &claimed.payment_token), cid).await? {
            Authorization::Authorized { payment_id } => downstream.void(&payment_id, cid).await?,
            Authorization::Refused(_) | Authorization::Over => {}
        }
    }
    // 5. The key is free again.
    let undone = Checkout { status: CheckoutStatus::Retryable, ..claimed.clone() };
    store.save_checkout(&undone, Some(&claimed)).await?;
    tracing::warn!(order_id = %claimed.order_id, key = %claimed.key, "stale checkout abandoned and undone");
    Ok(Settled::Abandoned)
}

/// The scheduled function: reconciles on every tick.
pub async fn run<S: CartStore, D: Downstream>(store: S, downstream: D) -> Result<(), lambda_runtime::Error> {
    // How long after its lease a checkout is left to its customer to resume.
    let seconds: i64 = shared::config::parsed("CHECKOUT_ABANDON_SECONDS", 900)?;
    let (store, downstream) = (&store, &downstream);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let report = reconcile(store, downstream, Utc::now(), chrono::Duration::seconds(seconds)).await?;
            Ok::<_, lambda_runtime::Error>(report)
        },
    ))
    .await
}

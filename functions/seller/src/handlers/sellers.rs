//! `GET /sellers/me`, `GET /admin/sellers?status=`, `POST /admin/sellers/{seller_id}/approve`
//! and `POST /admin/sellers/{seller_id}/suspend` (docs/api.md, Sellers).

use lambda_http::{Request, RequestExt};
use shared::caller::caller;
use shared::events::Role;
use shared::http::{correlation_id, json_body, path_parameter};
use shared::outbox::deliver;
use shared::pagination::page_request;
use shared::publisher::Publish;
use shared::{Problem, Reply};

use crate::domain::{SellerStatus, Suspension};
use crate::store::{Moved, SellerStore};

pub async fn me<S: SellerStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    let seller = caller(&request)?;
    seller.require(Role::Seller)?;
    match store.seller(&seller.user_id).await? {
        Some(profile) => Ok(Reply::ok(&profile)),
        None => Err(Problem::not_found("no seller profile yet: it is made a moment after registering")),
    }
}

pub async fn list<S: SellerStore>(store: &S, request: Request) -> Result<Reply, Problem> {
    caller(&request)?.require(Role::Admin)?;
    let page = page_request(&request)?;
    let status = request.query_string_parameters_ref().and_then(|q| q.first("status")).map(SellerStatus::parse);
    let status = status.transpose()?;
    Ok(Reply::ok(&store.sellers(status, &page).await?))
}

pub async fn approve<S: SellerStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: Request,
) -> Result<Reply, Problem> {
    caller(&request)?.require(Role::Admin)?;
    let seller_id = path_parameter(&request, "seller_id")?;
    move_seller(store, publisher, &request, &seller_id, SellerStatus::Approved, None).await
}

pub async fn suspend<S: SellerStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: Request,
) -> Result<Reply, Problem> {
    caller(&request)?.require(Role::Admin)?;
    let seller_id = path_parameter(&request, "seller_id")?;
    let reason = json_body::<Suspension>(&request)?.reason()?;
    move_seller(store, publisher, &request, &seller_id, SellerStatus::Suspended, Some(&reason)).await
}

/// Moves the seller; a change's event, in the outbox with it, is published at once (the
/// outbox relay publishes it later if that fails). A move to where the seller is already
/// changes and publishes nothing.
async fn move_seller<S: SellerStore, P: Publish + Sync>(
    store: &S,
    publisher: &P,
    request: &Request,
    seller_id: &str,
    to: SellerStatus,
    reason: Option<&str>,
) -> Result<Reply, Problem> {
    match store.move_seller(seller_id, to, reason, &correlation_id(request)).await? {
        Moved::Unknown => Err(Problem::not_found(format!("no seller {seller_id}"))),
        Moved::Unchanged(seller) => Ok(Reply::ok(&seller)),
        Moved::Changed(seller, events) => {
            tracing::info!(seller_id, status = seller.status.as_str(), "seller moved");
            deliver(store.outbox(), publisher, &events).await;
            Ok(Reply::ok(&seller))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Seller;
    use crate::store::memory::MemoryStore;
    use shared::events::{Event, SellerApproved, SellerSuspended, UserRegistered};
    use shared::outbox::Outbox;
    use shared::publisher::MemoryPublisher;
    use testkit::requests::{as_caller, body, call, sample, with_body, with_path, with_query};

    async fn store_with_pending(seller_id: &str) -> MemoryStore {
        let store = MemoryStore::default();
        let registered = UserRegistered {
            user_id: seller_id.into(),
            email: "s@example.com".into(),
            name: "S".into(),
            role: Role::Seller,
        };
        store.create_seller(&Seller::pending(&registered, chrono::Utc::now()).unwrap()).await.unwrap();
        store
    }

    fn admin_call(file: &str, seller_id: &str, role: Role) -> Request {
        as_caller(with_path(sample(file), "seller_id", seller_id), "usr_admin", role)
    }

    #[tokio::test]
    async fn the_admin_approves_and_suspends_and_a_second_approve_changes_nothing() {
        let store = store_with_pending("usr_s").await;
        let publisher = MemoryPublisher::default();
        let me = call(&|r| me(&store, r), as_caller(sample("http-get-seller-me.json"), "usr_s", Role::Seller)).await;
        assert_eq!((me.status().as_u16(), body(&me)["status"].clone()), (200, "pending".into()));
        for _ in 0..2 {
            let approved = call(
                &|r| approve(&store, &publisher, r),
                admin_call("http-post-admin-approve-seller.json", "usr_s", Role::Admin),
            )
            .await;
            assert_eq!(approved.status(), 200);
            assert_eq!(body(&approved)["status"], "approved");
        }
        let request = with_body(
            admin_call("http-post-admin-suspend-seller.json", "usr_s", Role::Admin),
            r#"{"reason":"counterfeits"}"#,
        );
        let suspended = call(&|r| suspend(&store, &publisher, r), request).await;
        assert_eq!((suspended.status().as_u16(), body(&suspended)["status"].clone()), (200, "suspended".into()));
        // One event per change, published at once, none for the approve that changed nothing;
        // the outbox is empty again.
        let published: Vec<Event> = publisher.published().into_iter().map(|e| e.event).collect();
        assert_eq!(
            published,
            [
                Event::SellerApproved(SellerApproved {
                    seller_id: "usr_s".into(),
                    name: "S".into(),
                    email: "s@example.com".into()
                }),
                Event::SellerSuspended(SellerSuspended {
                    seller_id: "usr_s".into(),
                    name: "S".into(),
                    email: "s@example.com".into(),
                    reason: "counterfeits".into()
                }),
            ]
        );
        assert!(store.outbox.pending(10).await.unwrap().is_empty());
        let listed = call(
            &|r| list(&store, r),
            as_caller(with_query(sample("http-get-admin-sellers.json"), "status", "suspended"), "usr_a", Role::Admin),
        )
        .await;
        assert_eq!(body(&listed)["items"][0]["seller_id"], "usr_s");
        let none = call(
            &|r| list(&store, r),
            as_caller(with_query(sample("http-get-admin-sellers.json"), "status", "pending"), "usr_a", Role::Admin),
        )
        .await;
        assert_eq!(body(&none)["items"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn customers_and_sellers_are_refused_unknown_sellers_are_404_and_bad_bodies_400() {
        let store = store_with_pending("usr_s").await;
        let publisher = MemoryPublisher::default();
        for role in [Role::Customer, Role::Seller] {
            let refused = call(
                &|r| approve(&store, &publisher, r),
                admin_call("http-post-admin-approve-seller.json", "usr_s", role),
            )
            .await;
            assert_eq!(refused.status(), 403, "{role:?}");
            assert_eq!(refused.headers()["content-type"], "application/problem+json");
            let listed =
                call(&|r| list(&store, r), as_caller(sample("http-get-admin-sellers.json"), "usr_x", role)).await;
            assert_eq!(listed.status(), 403, "{role:?}");
        }
        assert_eq!(store.seller("usr_s").await.unwrap().unwrap().status, SellerStatus::Pending, "nothing changed");
        assert!(publisher.published().is_empty() && store.outbox.pending(10).await.unwrap().is_empty());
        let unknown = call(
            &|r| approve(&store, &publisher, r),
            admin_call("http-post-admin-approve-seller.json", "usr_nobody", Role::Admin),
        )
        .await;
        assert_eq!(unknown.status(), 404);
        for bad in ["{}", r#"{"reason":""}"#, r#"{"reason":"   "}"#, &format!(r#"{{"reason":"{}"}}"#, "x".repeat(501))]
        {
            let request = with_body(admin_call("http-post-admin-suspend-seller.json", "usr_s", Role::Admin), bad);
            assert_eq!(call(&|r| suspend(&store, &publisher, r), request).await.status(), 400, "{bad}");
        }
        let bad_status = call(
            &|r| list(&store, r),
            as_caller(with_query(sample("http-get-admin-sellers.json"), "status", "gone"), "usr_a", Role::Admin),
        )
        .await;
        assert_eq!(bad_status.status(), 400);
        let no_profile =
            call(&|r| me(&store, r), as_caller(sample("http-get-seller-me.json"), "usr_new", Role::Seller)).await;
        assert_eq!(no_profile.status(), 404);
        let customer =
            call(&|r| me(&store, r), as_caller(sample("http-get-seller-me.json"), "usr_c", Role::Customer)).await;
        assert_eq!(customer.status(), 403);
    }
}

//! Demo data for `make dev`, made through the public API as a user would: a seller (approved
//! by the stack's admin through the admin routes) with a handful of products, and a customer
//! to shop with. Running it again adds nothing.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Seeds the stack at `api_url` from the JSON file at `path`; returns what it did, for people.
pub async fn seed(api_url: &str, path: &Path) -> Result<String> {
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)?;
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
    let seller = session(&http, api_url, &plan["seller"]).await?;
    let customer = session(&http, api_url, &plan["customer"]).await?;
    let seller_id = seller["user"]["user_id"].as_str().unwrap_or_default().to_owned();
    let token = seller["access_token"].as_str().unwrap_or_default();
    let admin = auth::admin::AdminAccount::from_env();
    approve(&http, api_url, &admin, &seller_id).await?;

    let listed: Value = http.get(format!("{api_url}/products?limit=100")).send().await?.json().await?;
    let existing: Vec<&str> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["seller_id"] == seller_id.as_str())
        .filter_map(|p| p["name"].as_str())
        .collect();
    let mut created = 0;
    for product in plan["products"].as_array().into_iter().flatten() {
        if existing.contains(&product["name"].as_str().unwrap_or_default()) {
            continue;
        }
        let answer = http.post(format!("{api_url}/products")).bearer_auth(token).json(product).send().await?;
        if !answer.status().is_success() {
            bail!("creating {}: {} {}", product["name"], answer.status(), answer.text().await.unwrap_or_default());
        }
        created += 1;
    }
    Ok(format!(
        "Demo data: seller {} ({} new products), customer {} / {}, {}",
        plan["seller"]["email"].as_str().unwrap_or_default(),
        created,
        plan["customer"]["email"].as_str().unwrap_or_default(),
        customer["user"]["email"]
            .as_str()
            .map(|_| plan["customer"]["password"].as_str().unwrap_or_default())
            .unwrap_or_default(),
        crate::admin::credentials_line(&admin),
    ))
}

/// The admin approves the seller, once their profile exists (it is made from `user.registered`
/// a moment after registering); approving an approved seller changes nothing.
pub async fn approve(
    http: &reqwest::Client,
    api_url: &str,
    admin: &auth::admin::AdminAccount,
    seller_id: &str,
) -> Result<()> {
    let login = json!({"email": admin.email, "password": admin.password});
    let session = http.post(format!("{api_url}/auth/login")).json(&login).send().await?;
    if !session.status().is_success() {
        bail!("the admin {} cannot log in: {}", admin.email, session.text().await.unwrap_or_default());
    }
    let session: Value = session.json().await?;
    let token = session["access_token"].as_str().unwrap_or_default();
    let url = format!("{api_url}/admin/sellers/{seller_id}/approve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let answer = http.post(&url).bearer_auth(token).send().await?;
        match answer.status() {
            status if status.is_success() => return Ok(()),
            reqwest::StatusCode::NOT_FOUND if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            status => bail!("approving seller {seller_id}: {status} {}", answer.text().await.unwrap_or_default()),
        }
    }
}

/// Registers the account, or logs in if it exists.
async fn session(http: &reqwest::Client, api_url: &str, account: &Value) -> Result<Value> {
    let registered = http.post(format!("{api_url}/auth/register")).json(account).send().await?;
    if registered.status().is_success() {
        return Ok(registered.json().await?);
    }
    let login = json!({"email": account["email"], "password": account["password"]});
    let logged_in = http.post(format!("{api_url}/auth/login")).json(&login).send().await?;
    if !logged_in.status().is_success() {
        bail!("cannot register or log in {}: {}", account["email"], logged_in.text().await.unwrap_or_default());
    }
    Ok(logged_in.json().await?)
}

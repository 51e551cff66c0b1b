//! `POST /assistant/messages`: a rule-based assistant (no model), by the message's intent.

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use shared::caller::caller;
use shared::http::{correlation_id, json_body};
use shared::{Problem, Reply};

use super::recommendations::recommendations_for;
use crate::clients::Services;
use crate::domain::{Intent, intent};
use crate::store::AiStore;

#[derive(Debug, Deserialize)]
pub struct Message {
    pub message: String,
}

#[derive(Debug, Serialize)]
struct Answer {
    reply: String,
    intent: Intent,
}

fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

pub async fn assistant<S: AiStore, X: Services>(store: &S, services: &X, request: Request) -> Result<Reply, Problem> {
    let who = caller(&request)?;
    let correlation_id = correlation_id(&request);
    let asked: Message = json_body(&request)?;
    let length = asked.message.chars().count();
    if !(1..=1000).contains(&length) {
        return Err(Problem::bad_request("message must be 1 to 1000 characters"));
    }
    let (intent, words) = intent(&asked.message);
    let reply = match intent {
        Intent::OrderStatus => {
            let profile = store.profile(&who.user_id).await?;
            let latest = match &profile.latest_order {
                Some(id) => store.order(id).await?,
                None => None,
            };
            match latest {
                Some(order) => format!(
                    "Your latest order {} ({}) is {}.",
                    order.order_id,
                    dollars(order.total_cents),
                    order.status.replace('_', " ")
                ),
                None => "I have not seen an order from you yet.".to_owned(),
            }
        }
        Intent::Recommend => {
            let found = recommendations_for(store, services, &who.user_id, 3, &correlation_id).await?;
            if found.is_empty() {
                "There is nothing to recommend yet: the catalogue is empty.".to_owned()
            } else {
                format!("You might like: {}.", found.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "))
            }
        }
        Intent::Search => {
            let catalogue = services.catalogue(&correlation_id).await?;
            let hits: Vec<String> = catalogue
                .iter()
                .filter(|p| {
                    let text = format!("{} {} {}", p.name, p.description, p.category).to_lowercase();
                    words.iter().any(|w| text.contains(w.trim_end_matches('s')))
                })
                .take(5)
                .map(|p| format!("{} ({})", p.name, dollars(p.price_cents)))
                .collect();
            if hits.is_empty() {
                format!("I found nothing for \"{}\".", words.join(" "))
            } else {
                format!("I found: {}.", hits.join(", "))
            }
        }
        Intent::Help => {
            let profile = store.profile(&who.user_id).await?;
            let name = if profile.name.is_empty() {
                services.user_name(&who.user_id, &correlation_id).await.ok().flatten().unwrap_or_default()
            } else {
                profile.name
            };
            let greeting = if name.is_empty() { "Hello!".to_owned() } else { format!("Hello {name}!") };
            format!(
                "{greeting} I can tell you where your latest order is, recommend products, or search the catalogue (try \"find board games\")."
            )
        }
    };
    Ok(Reply::ok(&Answer { reply, intent }))
}

#[cfg(test)]
mod tests {
    use shared::events::Role;
    use testkit::requests::{as_caller, body, call, sample, with_body};

    use super::*;
    use crate::clients::fakes::Catalogue;
    use crate::handlers::test_support::{CUSTOMER, learned};

    #[tokio::test]
    async fn the_assistant_answers_by_intent() {
        let store = learned(1).await;
        let ask = |message: &str| {
            with_body(
                as_caller(sample("http-post-assistant.json"), CUSTOMER, Role::Customer),
                &serde_json::json!({"message": message}).to_string(),
            )
        };
        let answer = |text: &str| {
            let request = ask(text);
            let store = &store;
            async move { body(&call(&|request| assistant(store, &Catalogue, request), request).await) }
        };
        let status = answer("where is my order?").await;
        assert_eq!(status["intent"], "order_status");
        assert!(status["reply"].as_str().unwrap().contains("is paid"), "{status}");
        assert_eq!(answer("recommend me something").await["intent"], "recommend");
        let search = answer("do you sell board games?").await;
        assert!(search["reply"].as_str().unwrap().contains("Catan"), "{search}");
        let help = answer("hi").await;
        assert_eq!(help["intent"], "help");
        assert!(help["reply"].as_str().unwrap().starts_with("Hello Ada"), "{help}");
        // 1 to 1000 characters, whatever they are (the contract and the schema say no more): a
        // blank message is a valid one with no intent in it.
        assert_eq!(answer("\n").await["intent"], "help");
        let empty = call(&|request| assistant(&store, &Catalogue, request), ask("")).await;
        assert_eq!(empty.status(), 400);
    }
}

//! What AI Buddy learns from events and how it recommends and answers. Pure rules.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer, Serialize};
use shared::contracts::Product;
use shared::events::OrderItem;

/// A product as AI Buddy knows it (from the catalogue, when an order mentions it). Stored
/// in its table, so its own type: what a row holds stays readable whatever the catalogue adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub product_id: String,
    pub seller_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    pub price_cents: u64,
}

impl From<Product> for ProductInfo {
    fn from(product: Product) -> Self {
        Self {
            product_id: product.product_id,
            seller_id: product.seller_id,
            name: product.name,
            description: product.description,
            category: product.category,
            price_cents: product.price_cents,
        }
    }
}

/// An order as seen in `order.created`, and where it went since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderSeen {
    pub order_id: String,
    pub user_id: String,
    /// As in `order.created`.
    #[serde(deserialize_with = "order_items")]
    pub items: Vec<OrderItem>,
    pub total_cents: u64,
    pub status: String,
    /// Counted as a sale (`order.completed` seen). Apart from `status`, so a cancel that
    /// overtakes the completion does not stop the sale from counting, as in order it would.
    #[serde(default)]
    pub completed: bool,
}

/// An order line as stored: an [`OrderItem`], or the (product_id, seller_id, quantity, unit
/// price) tuple orders were stored with before, which tables still hold.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredItem {
    Item(OrderItem),
    Tuple(String, String, u32, u64),
}

fn order_items<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<OrderItem>, D::Error> {
    let stored = Vec::<StoredItem>::deserialize(deserializer)?;
    Ok(stored
        .into_iter()
        .map(|item| match item {
            StoredItem::Item(item) => item,
            StoredItem::Tuple(product_id, seller_id, quantity, unit_price_cents) => {
                OrderItem { product_id, seller_id, quantity, unit_price_cents }
            }
        })
        .collect())
}

/// What AI Buddy knows of a user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub user_id: String,
    #[serde(default)]
    pub name: String,
    /// Products bought (orders completed).
    #[serde(default)]
    pub bought: Vec<String>,
    /// Units bought per category.
    #[serde(default)]
    pub categories: BTreeMap<String, u64>,
    #[serde(default)]
    pub latest_order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    pub product_id: String,
    pub name: String,
    pub score: f64,
    pub reason: &'static str,
}

/// What the recommender weighs.
pub struct Signals<'a> {
    pub profile: &'a Profile,
    /// Co-purchase counts: (bought product, other product) -> orders with both.
    pub together: &'a [(String, String, u64)],
    /// Units sold per product, most first.
    pub popular: &'a [(String, u64)],
    pub products: &'a HashMap<String, ProductInfo>,
}

/// Personal recommendations: bought together with what the user bought, then products of
/// the user's categories, then what sells; never something the user bought.
pub fn recommend(signals: &Signals, limit: usize) -> Vec<Recommendation> {
    let rank = |reason: &str| match reason {
        "bought_together" => 3,
        "category_affinity" => 2,
        _ => 1,
    };
    let mut scores: HashMap<String, (f64, &'static str)> = HashMap::new();
    let mut add = |id: &str, score: f64, reason: &'static str| {
        let entry = scores.entry(id.to_owned()).or_insert((0.0, reason));
        entry.0 += score;
        if rank(reason) > rank(entry.1) {
            entry.1 = reason;
        }
    };
    for (bought, other, count) in signals.together {
        if signals.profile.bought.contains(bought) {
            add(other, 10.0 * *count as f64, "bought_together");
        }
    }
    let total_units: u64 = signals.profile.categories.values().sum::<u64>().max(1);
    for (id, units) in signals.popular {
        let Some(product) = signals.products.get(id) else { continue };
        if let Some(affinity) = signals.profile.categories.get(&product.category) {
            add(id, 5.0 * *affinity as f64 / total_units as f64 + 0.01 * *units as f64, "category_affinity");
        } else {
            add(id, 0.01 * *units as f64, "popular");
        }
    }
    let mut ranked: Vec<Recommendation> = scores
        .into_iter()
        .filter(|(id, _)| !signals.profile.bought.contains(id))
        .filter_map(|(id, (score, reason))| {
            let product = signals.products.get(&id)?;
            Some(Recommendation {
                name: product.name.clone(),
                product_id: id,
                score: (score * 100.0).round() / 100.0,
                reason,
            })
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.product_id.cmp(&b.product_id)));
    ranked.truncate(limit);
    ranked
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    OrderStatus,
    Recommend,
    Search,
    Help,
}

/// The intent of a message, by its words (no model: deterministic and explainable).
pub fn intent(message: &str) -> (Intent, Vec<String>) {
    let lower = message.to_lowercase();
    let words: Vec<String> =
        lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    if has(&["order", "orders", "status", "delivery", "shipped", "where", "track"]) {
        (Intent::OrderStatus, words)
    } else if has(&["recommend", "recommendation", "recommendations", "suggest", "suggestion", "ideas", "gift"]) {
        (Intent::Recommend, words)
    } else if has(&["search", "find", "looking", "have", "sell", "want", "buy"]) {
        const FILLER: [&str; 16] = [
            "search", "find", "looking", "for", "have", "you", "do", "sell", "want", "buy", "i", "a", "an", "the",
            "any", "some",
        ];
        (Intent::Search, words.into_iter().filter(|w| !FILLER.contains(&w.as_str())).collect())
    } else {
        (Intent::Help, words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, category: &str) -> (String, ProductInfo) {
        (
            id.into(),
            ProductInfo {
                product_id: id.into(),
                seller_id: "s".into(),
                name: id.to_uppercase(),
                description: String::new(),
                category: category.into(),
                price_cents: 100,
            },
        )
    }

    #[test]
    fn recommendations_never_repeat_a_purchase_and_say_why() {
        let products: HashMap<_, _> = [
            product("dune", "books"),
            product("foundation", "books"),
            product("catan", "games"),
            product("lamp", "home"),
        ]
        .into();
        let profile = Profile {
            user_id: "u".into(),
            bought: vec!["dune".into()],
            categories: [("books".into(), 1)].into(),
            ..Profile::default()
        };
        let together = vec![("dune".to_owned(), "catan".to_owned(), 3)];
        let popular = vec![("lamp".to_owned(), 50), ("foundation".to_owned(), 2), ("dune".to_owned(), 9)];
        let found =
            recommend(&Signals { profile: &profile, together: &together, popular: &popular, products: &products }, 10);
        let reasons: Vec<(&str, &str)> = found.iter().map(|r| (r.product_id.as_str(), r.reason)).collect();
        assert_eq!(reasons, [("catan", "bought_together"), ("foundation", "category_affinity"), ("lamp", "popular")]);

        let newcomer = Profile::default();
        let found =
            recommend(&Signals { profile: &newcomer, together: &together, popular: &popular, products: &products }, 2);
        assert_eq!(found.iter().map(|r| r.reason).collect::<Vec<_>>(), ["popular", "popular"]);
        assert_eq!(found[0].product_id, "lamp");
    }

    #[test]
    fn orders_stored_with_tuple_lines_still_read() {
        let line = OrderItem { product_id: "p".into(), seller_id: "s".into(), quantity: 2, unit_price_cents: 150 };
        let order = OrderSeen {
            order_id: "o".into(),
            user_id: "u".into(),
            items: vec![line],
            total_cents: 300,
            status: "placed".into(),
            completed: false,
        };
        let mut old: shared::dynamo::Item = serde_dynamo::to_item(&order).unwrap();
        let tuples: Vec<(&str, &str, u32, u64)> = vec![("p", "s", 2, 150)];
        old.insert("items".into(), serde_dynamo::to_attribute_value(tuples).unwrap());
        assert_eq!(serde_dynamo::from_item::<_, OrderSeen>(old).unwrap(), order);
        let new: shared::dynamo::Item = serde_dynamo::to_item(&order).unwrap();
        assert_eq!(serde_dynamo::from_item::<_, OrderSeen>(new).unwrap(), order);
    }

    #[test]
    fn intents_come_from_words() {
        assert_eq!(intent("Where is my order?").0, Intent::OrderStatus);
        assert_eq!(intent("Can you recommend something?").0, Intent::Recommend);
        let (search, words) = intent("Do you sell board games?");
        assert_eq!((search, words), (Intent::Search, vec!["board".to_owned(), "games".to_owned()]));
        assert_eq!(intent("hello").0, Intent::Help);
    }
}

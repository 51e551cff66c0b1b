//! What a message says, from the templates in `templates/` (minijinja): each message has a
//! `{name}.txt` with the blocks `subject`, `sms` (also the push text) and `text`, and a
//! `{name}.html` that extends `layout.html`. HTML templates escape every value (auto-escape
//! by extension); values are what `domain::message_for` gives, user-provided text already cut
//! to length there.

use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::domain::Message;

/// A message ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub short: String,
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [("layout.html", include_str!("../templates/layout.html")),
         $((concat!($name, ".txt"), include_str!(concat!("../templates/", $name, ".txt"))),
           (concat!($name, ".html"), include_str!(concat!("../templates/", $name, ".html")))),*]
    };
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A value a template names but the message lacks is a bug, not an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let sources = templates![
        "welcome",
        "order_confirmation",
        "payment_receipt",
        "payment_failed",
        "order_cancelled",
        "order_shipped",
        "order_delivered",
        "seller_approved",
        "seller_suspended",
    ];
    for (name, source) in sources {
        env.add_template(name, source).expect("templates/ parse (checked by the tests)");
    }
    env
});

/// `message` in words, `name` being who it is for.
pub fn render(message: &Message, name: &str) -> Result<Rendered, minijinja::Error> {
    let mut values = message.values.clone();
    if let Some(map) = values.as_object_mut() {
        map.entry("name").or_insert_with(|| crate::domain::quoted(name).into());
    }
    let values = Value::from(minijinja::value::Serde(&values));
    let template = message.template.name();
    let html = TEMPLATES.get_template(&format!("{template}.html"))?.render(&values)?;
    let mut text = TEMPLATES.get_template(&format!("{template}.txt"))?.render_captured(&values)?;
    let mut block = |name: &str| text.with_state_mut(|state| state.render_block(name)).map(|s| s.trim().to_owned());
    Ok(Rendered { subject: block("subject")?, short: block("sms")?, text: block("text")?, html })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message_for;

    fn rendered(sample: &str, name: &str) -> Rendered {
        render(&message_for(&testkit::requests::sqs_envelope(sample)).unwrap(), name).unwrap()
    }

    #[test]
    fn every_template_renders_with_its_values() {
        for sample in [
            "sqs-user-registered.json",
            "sqs-order-created.json",
            "sqs-payment-completed.json",
            "sqs-payment-failed.json",
            "sqs-order-cancelled.json",
            "sqs-order-shipped.json",
            "sqs-order-delivered.json",
            "sqs-seller-approved.json",
            "sqs-seller-suspended.json",
        ] {
            let message = rendered(sample, "Ada");
            assert!(!message.subject.is_empty() && !message.short.is_empty(), "{sample}: {message:?}");
            assert!(message.text.len() > message.short.len(), "{sample}: {message:?}");
            assert!(message.html.starts_with("<!doctype html>"), "{sample}");
        }
    }

    #[test]
    fn an_order_message_names_the_order_its_lines_and_its_total() {
        let message = rendered("sqs-order-created.json", "Ada");
        let order = "ord_01JD4S6B1W2X3Y4Z5A6B7C8D9E";
        assert!(message.subject.contains(order) && message.short.contains(order), "{message:?}");
        assert!(message.text.contains("$70.98") && message.html.contains("$70.98"), "{message:?}");
        assert!(message.text.contains("Hello Ada,"), "{}", message.text);
        let shipped = rendered("sqs-order-shipped.json", "Ada");
        assert!(shipped.short.contains("UPS") && shipped.short.contains("1Z999AA10123456784"), "{shipped:?}");
        assert!(shipped.html.contains("1Z999AA10123456784"), "{}", shipped.html);
    }

    #[test]
    fn a_name_is_escaped_in_html_and_cut_to_length() {
        let message = rendered("sqs-order-created.json", "<script>alert(1)</script> & Co");
        assert!(!message.html.contains("<script>"), "{}", message.html);
        assert!(message.html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; Co"), "{}", message.html);
        assert!(message.text.contains("<script>alert(1)</script> & Co"), "plain text is not HTML: {}", message.text);
        let long = rendered("sqs-order-created.json", &"x".repeat(500));
        assert!(!long.text.contains(&"x".repeat(crate::domain::MAX_QUOTED_CHARS + 1)), "{}", long.text);
    }
}

//! SES feedback: the bounces and complaints SES publishes (through the configuration set's
//! SNS destination, `EmailFeedbackTopic`, to `EmailFeedbackQueue`). A permanent bounce or a
//! complaint suppresses the address: no email goes to it again (SES requires senders to stop
//! mailing such addresses). A transient bounce, and every other event type (send, delivery,
//! ...), changes nothing.

use chrono::Utc;
use serde_json::Value;
use shared::Retry;

use crate::domain::Suppression;
use crate::store::NotificationStore;

/// What SES publishes to a topic when an event destination is made on it (AWS and LocalStack
/// alike): plain text, no event.
const VALIDATION_NOTICE: &str = "Successfully validated SNS topic for Amazon SES event publishing.";

/// What one feedback message says.
#[derive(Debug, PartialEq)]
pub struct Feedback {
    /// The addresses it suppresses, with why.
    pub suppressed: Vec<(String, &'static str)>,
    /// The SNS message's id, when it came wrapped in one (no raw delivery).
    pub id: Option<String>,
}

/// What a feedback message says; an error if it is no SES event.
pub fn feedback(body: &str) -> Result<Feedback, String> {
    if body.trim() == VALIDATION_NOTICE {
        return Ok(Feedback { suppressed: Vec::new(), id: None });
    }
    let mut event: Value = serde_json::from_str(body).map_err(|e| format!("feedback is not JSON: {e}"))?;
    let id = event["MessageId"].as_str().map(str::to_owned);
    // Delivered without SNS's raw delivery: the SES event is the notification's Message.
    if event["Type"] == "Notification"
        && let Some(message) = event["Message"].as_str()
    {
        event = serde_json::from_str(message).map_err(|e| format!("the SNS message is not JSON: {e}"))?;
    }
    // Event publishing says `eventType`; identity notifications say `notificationType`.
    let kind = event.get("eventType").or_else(|| event.get("notificationType")).and_then(Value::as_str);
    let kind = kind.ok_or("no eventType or notificationType: not an SES event")?;
    let recipients = |list: &Value| -> Vec<String> {
        let addresses = list.as_array().into_iter().flatten().filter_map(|r| r["emailAddress"].as_str());
        addresses.map(canonical).collect()
    };
    let suppressed = match kind {
        "Bounce" if event["bounce"]["bounceType"] == "Permanent" => {
            recipients(&event["bounce"]["bouncedRecipients"]).into_iter().map(|a| (a, "bounce")).collect()
        }
        "Complaint" => {
            recipients(&event["complaint"]["complainedRecipients"]).into_iter().map(|a| (a, "complaint")).collect()
        }
        _ => Vec::new(),
    };
    Ok(Feedback { suppressed, id })
}

/// An address as suppressions are kept and looked up.
pub fn canonical(address: &str) -> String {
    address.trim().to_lowercase()
}

pub async fn handle<S: NotificationStore>(store: &S, body: String) -> Result<(), Retry> {
    let Feedback { suppressed, id } = feedback(&body).map_err(Retry::because)?;
    for (address, reason) in suppressed {
        tracing::info!(%reason, "address suppressed: no more email to it");
        let suppression = Suppression { address, reason: reason.into(), feedback_id: id.clone(), at: Utc::now() };
        store.suppress(&suppression).await.map_err(Retry::because)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bounce(kind: &str) -> Value {
        json!({
            "eventType": "Bounce",
            "bounce": {"bounceType": kind, "bouncedRecipients": [{"emailAddress": "Gone@Example.com"}]},
            "mail": {"messageId": "m-1"}
        })
    }

    #[test]
    fn permanent_bounces_and_complaints_suppress_and_nothing_else_does() {
        let suppressions = |body: &str| feedback(body).map(|f| f.suppressed);
        assert_eq!(suppressions(&bounce("Permanent").to_string()).unwrap(), [("gone@example.com".into(), "bounce")]);
        assert_eq!(suppressions(&bounce("Transient").to_string()).unwrap(), []);
        let complaint = json!({"notificationType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": "a@b.c"}]}});
        assert_eq!(suppressions(&complaint.to_string()).unwrap(), [("a@b.c".into(), "complaint")]);
        assert_eq!(suppressions(&json!({"eventType": "Delivery"}).to_string()).unwrap(), []);
        // Through SNS without raw delivery.
        let wrapped = json!({"Type": "Notification", "MessageId": "n-1", "Message": bounce("Permanent").to_string()});
        let unwrapped = feedback(&wrapped.to_string()).unwrap();
        assert_eq!((unwrapped.suppressed.len(), unwrapped.id.as_deref()), (1, Some("n-1")));
        assert_eq!(suppressions(VALIDATION_NOTICE).unwrap(), [], "SES's notice when the destination is made");
        for poison in ["not json", "{}", "[1]"] {
            assert!(suppressions(poison).is_err(), "{poison}");
        }
    }
}

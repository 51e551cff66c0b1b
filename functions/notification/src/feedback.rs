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

/// The addresses a feedback message suppresses, with why; an error if it is no SES event.
pub fn suppressions(body: &str) -> Result<Vec<(String, &'static str)>, String> {
    if body.trim() == VALIDATION_NOTICE {
        return Ok(Vec::new());
    }
    let mut event: Value = serde_json::from_str(body).map_err(|e| format!("feedback is not JSON: {e}"))?;
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
    Ok(match kind {
        "Bounce" if event["bounce"]["bounceType"] == "Permanent" => {
            recipients(&event["bounce"]["bouncedRecipients"]).into_iter().map(|a| (a, "bounce")).collect()
        }
        "Complaint" => {
            recipients(&event["complaint"]["complainedRecipients"]).into_iter().map(|a| (a, "complaint")).collect()
        }
        _ => Vec::new(),
    })
}

/// An address as suppressions are kept and looked up.
pub fn canonical(address: &str) -> String {
    address.trim().to_lowercase()
}

pub async fn handle<S: NotificationStore>(store: &S, body: String) -> Result<(), Retry> {
    let found = suppressions(&body).map_err(Retry::because)?;
    let feedback_id =
        serde_json::from_str::<Value>(&body).ok().and_then(|v| v["MessageId"].as_str().map(str::to_owned));
    for (address, reason) in found {
        tracing::info!(%reason, "address suppressed: no more email to it");
        let suppression =
            Suppression { address, reason: reason.into(), feedback_id: feedback_id.clone(), at: Utc::now() };
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
        assert_eq!(suppressions(&bounce("Permanent").to_string()).unwrap(), [("gone@example.com".into(), "bounce")]);
        assert_eq!(suppressions(&bounce("Transient").to_string()).unwrap(), []);
        let complaint = json!({"notificationType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": "a@b.c"}]}});
        assert_eq!(suppressions(&complaint.to_string()).unwrap(), [("a@b.c".into(), "complaint")]);
        assert_eq!(suppressions(&json!({"eventType": "Delivery"}).to_string()).unwrap(), []);
        // Through SNS without raw delivery.
        let wrapped = json!({"Type": "Notification", "MessageId": "n-1", "Message": bounce("Permanent").to_string()});
        assert_eq!(suppressions(&wrapped.to_string()).unwrap().len(), 1);
        assert_eq!(suppressions(VALIDATION_NOTICE).unwrap(), [], "SES's notice when the destination is made");
        for poison in ["not json", "{}", "[1]"] {
            assert!(suppressions(poison).is_err(), "{poison}");
        }
    }
}

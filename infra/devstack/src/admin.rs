//! The one admin account of a stack (docs/api.md, Auth): written through the SDK to the Auth
//! table with the Auth service's own store and password hashing (`auth::admin::ensure`), from
//! `ADMIN_EMAIL` / `ADMIN_PASSWORD` (the contract's defaults when unset). The local stack makes
//! it when it starts; `devstack create-admin` makes it on a deployed stack. Idempotent: an
//! admin that exists is left as it is.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use auth::admin::{AdminAccount, Ensured};

use crate::template::{Resolver, Template};

/// The Auth table's logical id in template.yaml.
pub const AUTH_TABLE: &str = "AuthTable";

/// Makes the admin of `account` in the Auth table `table` unless it exists; what it did, for
/// people. Its `user.registered` is published to `user_events` (the topic's ARN) at once, as
/// registering publishes, when that is given; else the Auth outbox relay publishes it.
pub async fn ensure(
    config: &aws_config::SdkConfig,
    table: &str,
    user_events: Option<&str>,
    account: &AdminAccount,
) -> Result<String> {
    let table = shared::dynamo::Table::new(aws_sdk_dynamodb::Client::new(config), table.to_owned());
    let store = auth::store::dynamo::DynamoStore::new(table);
    let passwords = auth::passwords::Passwords::new().context("password hashing")?;
    let ensured = auth::admin::ensure(&store, &passwords, account).await.context("the admin account")?;
    Ok(match ensured {
        Ensured::Created(user, event) => {
            if let Some(arn) = user_events {
                let topics = HashMap::from([(shared::events::Topic::UserEvents, arn.to_owned())]);
                let publisher = shared::publisher::SnsPublisher::new(aws_sdk_sns::Client::new(config), topics);
                use auth::store::UserStore;
                shared::outbox::deliver(store.outbox(), &publisher, &[*event]).await;
            }
            format!("Admin account {} created ({})", account.email, user.user_id)
        }
        Ensured::Existed { user_id } => format!("Admin account {} exists already ({user_id})", account.email),
    })
}

/// The Auth table's name in the deployed stack `stack_name`: its `TableName` in the template,
/// resolved as CloudFormation resolves it.
pub fn auth_table_name(template: &Template, stack_name: &str) -> Result<String> {
    let resource = template.resources.get(AUTH_TABLE).context("template.yaml has no AuthTable")?;
    let parameters = HashMap::from([("AWS::StackName".to_owned(), stack_name.to_owned())]);
    let resources = BTreeMap::new();
    let name =
        Resolver { parameters: &parameters, resources: &resources }.resolve(&resource.properties["TableName"])?;
    name.as_str().map(str::to_owned).context("AuthTable's TableName is no string")
}

/// One line for people: how to log in as the admin.
pub fn credentials_line(account: &AdminAccount) -> String {
    format!("admin {} / {}", account.email, account.password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_table_is_named_after_the_stack() {
        let template = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        assert_eq!(auth_table_name(&template, "shop-prod").unwrap(), "shop-prod-auth");
    }
}

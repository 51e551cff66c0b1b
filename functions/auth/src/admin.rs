//! The one `admin` account of a stack (docs/api.md, Auth): never registered through the API,
//! made by an operator's tool with this crate's own store and password hashing — devstack
//! makes it when the local stack starts, and `devstack create-admin` on AWS. Making it again
//! changes nothing.

use chrono::Utc;
use shared::{CorrelationId, Envelope, Invalid};

use crate::domain::{Email, Registration, Role, User};
use crate::passwords::{HashError, Passwords};
use crate::store::{StoreError, UserStore};

/// The contract's defaults, for a local stack.
pub const DEFAULT_EMAIL: &str = "admin@example.com";
pub const DEFAULT_PASSWORD: &str = "admin-password-change-me";
/// Where an operator gives the admin's email and password.
pub const EMAIL_VAR: &str = "ADMIN_EMAIL";
pub const PASSWORD_VAR: &str = "ADMIN_PASSWORD";

/// The admin's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub email: String,
    pub password: String,
}

impl AdminAccount {
    /// `ADMIN_EMAIL` / `ADMIN_PASSWORD`, or the contract's defaults for those not set (or empty).
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
        };
        Self { email: var(EMAIL_VAR, DEFAULT_EMAIL), password: var(PASSWORD_VAR, DEFAULT_PASSWORD) }
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Ensured {
    /// The account is new; its `user.registered` (role admin) waits in the outbox, for the
    /// caller to deliver (`shared::outbox::deliver`) or the relay to publish.
    Created(User, Box<Envelope>),
    /// An admin with this email existed; nothing was changed (its password neither).
    Existed { user_id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin's credentials are not valid: {0}")]
    Invalid(#[from] Invalid),
    #[error("{0} belongs to a {1:?} account, not an admin: choose another ADMIN_EMAIL")]
    TakenByUser(String, Role),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// Makes the admin account of `account` unless it exists: the same email and password rules
/// as a registration, the same write (account, credentials and event in one transaction).
pub async fn ensure<S: UserStore>(
    store: &S,
    passwords: &Passwords,
    account: &AdminAccount,
) -> Result<Ensured, AdminError> {
    let registration = Registration {
        email: account.email.clone(),
        password: account.password.clone(),
        name: "Admin".into(),
        role: None,
    };
    let mut new = registration.validate()?;
    new.role = Role::Admin;
    if let Some(existing) = existing(store, &new.email).await? {
        return existing;
    }
    let hash = passwords.hash(&new.password)?;
    let user = User::new(&new, Utc::now());
    let correlation_id = CorrelationId::parse("admin-account").unwrap_or_else(CorrelationId::generate);
    let event = user.registered(&correlation_id);
    match store.create(&user, &hash, &event).await {
        Ok(()) => Ok(Ensured::Created(user, Box::new(event))),
        // Made meanwhile (two stacks starting at once): that one.
        Err(StoreError::EmailTaken) => existing(store, &new.email).await?.unwrap_or(Err(StoreError::EmailTaken.into())),
        Err(error) => Err(error.into()),
    }
}

/// The answer for an email that has an account already, if it has.
async fn existing<S: UserStore>(store: &S, email: &Email) -> Result<Option<Result<Ensured, AdminError>>, AdminError> {
    let Some(credentials) = store.credentials(email).await? else { return Ok(None) };
    let role = store.user(&credentials.user_id).await?.map(|u| u.role);
    Ok(Some(match role {
        Some(Role::Admin) => Ok(Ensured::Existed { user_id: credentials.user_id }),
        Some(role) => Err(AdminError::TakenByUser(email.as_str().to_owned(), role)),
        // Credentials without a profile cannot happen (one transaction writes both).
        None => Err(AdminError::Store(StoreError::EmailTaken)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use shared::outbox::Outbox;

    fn account(email: &str, password: &str) -> AdminAccount {
        AdminAccount { email: email.into(), password: password.into() }
    }

    #[tokio::test]
    async fn the_admin_is_made_once_and_can_log_in() {
        let (store, passwords) = (MemoryStore::default(), Passwords::new().unwrap());
        let admin = account("Admin@Example.com", DEFAULT_PASSWORD);
        let Ensured::Created(user, event) = ensure(&store, &passwords, &admin).await.unwrap() else {
            panic!("not created")
        };
        assert_eq!(event.event_type(), "user.registered");
        assert_eq!((user.role, user.email.as_str()), (Role::Admin, "admin@example.com"));
        let again = ensure(&store, &passwords, &admin).await.unwrap();
        assert_eq!(again, Ensured::Existed { user_id: user.user_id.clone() });
        let events = store.outbox.pending(10).await.unwrap();
        assert_eq!(events.len(), 1, "one account, one user.registered");
        let credentials = store.credentials(&Email::parse("admin@example.com").unwrap()).await.unwrap().unwrap();
        assert!(passwords.verify(DEFAULT_PASSWORD, Some(&credentials.password_hash)));
    }

    #[tokio::test]
    async fn bad_credentials_or_a_customers_email_are_refused() {
        let (store, passwords) = (MemoryStore::default(), Passwords::new().unwrap());
        assert!(matches!(
            ensure(&store, &passwords, &account("nope", DEFAULT_PASSWORD)).await,
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            ensure(&store, &passwords, &account("a@example.com", "short")).await,
            Err(AdminError::Invalid(_))
        ));
        let customer = Registration {
            email: "taken@example.com".into(),
            password: "12345678".into(),
            name: "C".into(),
            role: None,
        };
        let user = User::new(&customer.validate().unwrap(), Utc::now());
        store.create(&user, "hash", &user.registered(&CorrelationId::generate())).await.unwrap();
        let refused = ensure(&store, &passwords, &account("taken@example.com", DEFAULT_PASSWORD)).await;
        assert!(matches!(refused, Err(AdminError::TakenByUser(_, Role::Customer))), "{refused:?}");
    }

    #[test]
    fn the_defaults_are_the_contracts() {
        // Only the defaults: the variables of this process are not ours to set.
        if std::env::var(EMAIL_VAR).is_err() && std::env::var(PASSWORD_VAR).is_err() {
            assert_eq!(AdminAccount::from_env(), account(DEFAULT_EMAIL, DEFAULT_PASSWORD));
        }
    }
}

//! Password hashing: argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane),
//! which fit comfortably in a 128 MB function.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

pub struct Passwords {
    argon2: Argon2<'static>,
    /// A hash of a random password with the same parameters: verifying against it makes an
    /// unknown email cost the same time as a wrong password. Made on first need, not at init.
    decoy: std::sync::OnceLock<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Passwords {
    pub fn new() -> Result<Self, HashError> {
        let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| HashError(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        Ok(Self { argon2, decoy: std::sync::OnceLock::new() })
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with a random salt.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        Ok(self.argon2.hash_password(password.as_bytes()).map_err(|e| HashError(e.to_string()))?.to_string())
    }

    /// Whether `password` matches `hash`; `None` (no such account) takes the same time.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let known = hash.is_some();
        let decoy = || self.hash(&ulid::Ulid::generate().to_string()).unwrap_or_default();
        let Ok(parsed) = PasswordHash::new(hash.unwrap_or_else(|| self.decoy.get_or_init(decoy))) else {
            return false;
        };
        self.argon2.verify_password(password.as_bytes(), &parsed).is_ok() && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let passwords = Passwords::new().unwrap();
        let first = passwords.hash("correct horse").unwrap();
        assert!(first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{first}");
        assert_ne!(first, passwords.hash("correct horse").unwrap(), "a fresh salt each time");
        assert!(passwords.verify("correct horse", Some(&first)));
        assert!(!passwords.verify("wrong horse", Some(&first)));
        assert!(!passwords.verify("correct horse", None), "no account never verifies");
        assert!(!passwords.verify("x", Some("not a phc string")));
    }
}

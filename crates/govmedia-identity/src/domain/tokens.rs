//! Refresh tokens: 32 random bytes, given to the client once, stored only as a SHA-256
//! hash. A refresh token is single-use; presenting a spent one again is a theft signal
//! that revokes the whole session family.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A new refresh token (43 url-safe characters).
pub fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a refresh token or client secret.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new client secret for a service principal.
pub fn new_client_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("gms_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A new client secret and the hash kept of it.
pub fn new_client_secret_hashed() -> (String, String) {
    let secret = new_client_secret();
    let hash = token_hash(&secret);
    (secret, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        assert_ne!(a, new_refresh_token());
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_eq!(token_hash(&a).len(), 64);
        assert!(!token_hash(&a).contains(&a));
    }
}

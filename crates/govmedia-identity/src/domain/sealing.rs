//! Secrets at rest (R2.3.2): AES-256-GCM with a key ring. Every sealed value records the
//! id of the key that sealed it, so keys can rotate: new values use the current key, old
//! ones open with theirs. The associated data binds a sealed value to its owner (an
//! account and its login name, a key id), so a sealed blob copied to another row, or a
//! login name changed beside it, does not open.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use govmedia_domain::Error;

/// A key ring: the current sealing key and older ones still needed to open values.
#[derive(Clone)]
pub struct Sealer {
    current: String,
    keys: HashMap<String, Key<Aes256Gcm>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("current", &self.current).field("key_ids", &self.keys.keys()).finish()
    }
}

/// Why a key ring setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyRingError(String);

impl Sealer {
    /// Parses `id:base64key[,id:base64key...]`; the first key is current. Keys are 32
    /// random bytes (`openssl rand -base64 32`).
    pub fn parse(ring: &str) -> Result<Self, KeyRingError> {
        let mut current = None;
        let mut keys = HashMap::new();
        for entry in ring.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, material) = entry
                .split_once(':')
                .ok_or_else(|| KeyRingError("each key must be written id:base64 (for example k1:...)".into()))?;
            let bytes =
                STANDARD.decode(material.trim()).map_err(|_| KeyRingError(format!("key {id:?} is not base64")))?;
            let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyRingError(format!("key {id:?} is not 32 bytes")))?;
            if current.is_none() {
                current = Some(id.to_owned());
            }
            keys.insert(id.to_owned(), Key::<Aes256Gcm>::from(bytes));
        }
        let current = current.ok_or_else(|| KeyRingError("the key ring is empty".into()))?;
        Ok(Self { current, keys })
    }

    /// A ring with one fresh random key (for first starts and tests).
    pub fn generate(id: &str) -> (Self, String) {
        let bytes: [u8; 32] = rand::random();
        let text = format!("{id}:{}", STANDARD.encode(bytes));
        let mut keys = HashMap::new();
        keys.insert(id.to_owned(), Key::<Aes256Gcm>::from(bytes));
        (Self { current: id.to_owned(), keys }, text)
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext` bound to `owner`; returns (key id, nonce || ciphertext).
    pub fn seal(&self, plaintext: &[u8], owner: &str) -> Result<(String, Vec<u8>), Error> {
        let key = self.keys.get(&self.current).ok_or_else(|| Error::internal("current sealing key missing"))?;
        let nonce_bytes: [u8; 12] = rand::random();
        let sealed = Aes256Gcm::new(key)
            .encrypt(&Nonce::from(nonce_bytes), Payload { msg: plaintext, aad: owner.as_bytes() })
            .map_err(|_| Error::internal("sealing failed"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        Ok((self.current.clone(), out))
    }

    /// Opens a value sealed by [`Sealer::seal`] for `owner`.
    pub fn open(&self, key_id: &str, sealed: &[u8], owner: &str) -> Result<Vec<u8>, Error> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| Error::internal(format!("sealing key {key_id:?} is not in the key ring")))?;
        if sealed.len() < 12 {
            return Err(Error::internal("sealed value is truncated"));
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| Error::internal("sealed value is truncated"))?;
        Aes256Gcm::new(key)
            .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: owner.as_bytes() })
            .map_err(|_| Error::internal(format!("sealed value for {owner} does not open with key {key_id:?}")))
    }
}

/// What a platform account's sealed credential is bound to (the associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialBinding {
    /// The account only: credentials sealed before the login name was bound (stored as
    /// 1); identity re-seals them at start and never seals a new one so.
    AccountOnly,
    /// The account and the login name (stored as 2).
    AccountAndLoginName,
}

impl CredentialBinding {
    /// The stored number.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::AccountOnly => 1,
            Self::AccountAndLoginName => 2,
        }
    }

    /// From the stored number.
    pub fn from_i64(value: i64) -> Option<Self> {
        match value {
            1 => Some(Self::AccountOnly),
            2 => Some(Self::AccountAndLoginName),
            _ => None,
        }
    }

    /// The associated data for `account`'s credential named `login_name`.
    pub fn owner(self, account: &str, login_name: &str) -> String {
        match self {
            Self::AccountOnly => format!("platform_account/{account}"),
            // The length prefix keeps ("a", "b/c") and ("a/b", "c") apart.
            Self::AccountAndLoginName => {
                format!("platform_account/{account}/login/{}:{login_name}", login_name.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_owner_and_across_rotation() {
        let (old, old_text) = Sealer::generate("k1");
        let (id, sealed) = old.seal(b"wechat-app-secret", "account-1").expect("seals");
        assert_eq!(id, "k1");
        assert_eq!(old.open(&id, &sealed, "account-1").expect("opens"), b"wechat-app-secret");
        assert!(old.open(&id, &sealed, "account-2").is_err(), "bound to its owner");

        let (_, new_text) = Sealer::generate("k2");
        let rotated = Sealer::parse(&format!("{new_text},{old_text}")).expect("ring parses");
        assert_eq!(rotated.current_key_id(), "k2");
        assert_eq!(rotated.open("k1", &sealed, "account-1").expect("old values still open"), b"wechat-app-secret");
        assert!(!format!("{rotated:?}").contains(old_text.split(':').nth(1).expect("material")));
    }

    #[test]
    fn malformed_rings_are_refused() {
        assert!(Sealer::parse("").is_err());
        assert!(Sealer::parse("k1").is_err());
        assert!(Sealer::parse("k1:notbase64!").is_err());
        assert!(Sealer::parse("k1:c2hvcnQ=").is_err());
    }
}

//! Pagination: `page_size` with a default and a maximum (AIP-158: larger values are
//! lowered to the maximum, negative ones refused), and opaque keyset page tokens (the
//! last row's sort key, never an OFFSET).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The page size to use for a request's `page_size`.
pub fn page_size(value: i32, default: u32, max: u32) -> Result<u32> {
    match value {
        v if v < 0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(default),
        // `v` is positive here, so the cast cannot lose the sign.
        v => Ok((v.unsigned_abs()).min(max)),
    }
}

/// Encodes a keyset cursor as an opaque page token.
pub fn encode_page_token<C: Serialize>(cursor: &C) -> String {
    // Serialising plain cursor structs cannot fail; an empty token would end paging.
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a page token; empty means the first page (`None`).
pub fn decode_page_token<C: DeserializeOwned>(token: &str) -> Result<Option<C>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| Error::invalid("page_token", "is not a token returned by this list method"))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| Error::invalid("page_token", "is not a token returned by this list method"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_and_clamps() {
        assert_eq!(page_size(0, 50, 500).ok(), Some(50));
        assert_eq!(page_size(20, 50, 500).ok(), Some(20));
        assert_eq!(page_size(10_000, 50, 500).ok(), Some(500));
        assert!(page_size(-1, 50, 500).is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let token = encode_page_token(&("2026-11-27T01:00:00Z", 42_u64));
        let cursor: Option<(String, u64)> = decode_page_token(&token).expect("decodes");
        assert_eq!(cursor, Some(("2026-11-27T01:00:00Z".to_owned(), 42)));
        assert!(decode_page_token::<(String, u64)>("!!!").is_err());
        assert_eq!(decode_page_token::<(String, u64)>("").ok(), Some(None));
    }
}

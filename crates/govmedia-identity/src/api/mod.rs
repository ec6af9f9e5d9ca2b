//! The gRPC edge of identity: one module per service of `govmedia.identity.v1`. A
//! handler takes the verified principal, parses the request (all field violations at
//! once), checks the permission, runs the rule, calls the store inside one
//! [`Mutation`](govmedia_kit::mutation::Mutation) and converts the answer. Rules live in
//! `domain`, SQL in `store`.

pub mod access;
pub mod authentication;
pub mod credential_vault;
pub mod directory;
pub mod platform_account;

use govmedia_domain::Error;
use govmedia_domain::page;
use govmedia_kit::auth::Principal;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Default and maximum page sizes of identity's list methods.
pub(crate) const PAGE_DEFAULT: u32 = 50;
pub(crate) const PAGE_MAX: u32 = 500;

pub(crate) use govmedia_kit::wire::{check_etag, etag, from_ts, opt_ts, ts};

/// A page size from the request.
pub(crate) fn page_size(value: i32) -> Result<u32, Error> {
    page::page_size(value, PAGE_DEFAULT, PAGE_MAX)
}

/// Decodes a page token.
pub(crate) fn cursor<C: DeserializeOwned>(token: &str) -> Result<Option<C>, Error> {
    page::decode_page_token(token)
}

/// The next page token: set when the page is full.
pub(crate) fn next_token<T, C: Serialize>(items: &[T], limit: u32, key: impl Fn(&T) -> C) -> String {
    govmedia_kit::wire::next_page_token(items, limit, key)
}

/// The client's network address (no port), for security events and audit.
pub(crate) fn client_address<T>(request: &tonic::Request<T>) -> String {
    govmedia_kit::auth::client_address(request)
}

/// The caller of a request that passed the auth layer.
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Result<Principal, Error> {
    govmedia_kit::auth::principal(request)
}

/// The method path of a handler, for idempotency keys.
macro_rules! method {
    ($service:literal, $method:literal) => {
        concat!("/govmedia.identity.v1.", $service, "/", $method)
    };
}
pub(crate) use method;

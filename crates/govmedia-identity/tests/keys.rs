//! Token-signing keys rotate; tokens signed by the old key keep verifying until they
//! expire, and every service can fetch both keys (ListSigningKeys).

mod common;

use chrono::Duration;
use common::{Identity, authed};
use govmedia_kit::auth::{KeySource, TokenVerifier};
use govmedia_proto::identity::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests};

async fn old_tokens_verify_after_a_key_rotation(db: TestDatabase) {
    let id = Identity::start(db).await;
    let otp = id.bootstrap.one_time_password.clone().expect("otp");
    id.clock.advance(Duration::days(30) - Duration::minutes(1));
    let before = id
        .auth()
        .login(pb::LoginRequest { username: "admin".into(), password: otp.clone() })
        .await
        .expect("login")
        .into_inner();
    let old_token = before.tokens.expect("tokens").access_token;

    id.clock.advance(Duration::minutes(2));
    assert!(id.core.rotate_signing_key_if_due().await.expect("rotation"), "the key is 30 days old");
    assert!(!id.core.rotate_signing_key_if_due().await.expect("rotation"), "and the new one is fresh");

    // The old token still works against the service, and against a verifier that
    // fetches keys from identity as every other service does.
    id.auth()
        .get_current_principal(authed(pb::GetCurrentPrincipalRequest {}, &old_token))
        .await
        .expect("old token verifies");
    let keys = id.auth().list_signing_keys(pb::ListSigningKeysRequest {}).await.expect("keys").into_inner().keys;
    assert_eq!(keys.len(), 2);
    assert!(keys[0].retire_time.is_none() && keys[1].retire_time.is_some(), "current key first");
    let remote = TokenVerifier::from_identity(id.server.channel()).with_clock(std::sync::Arc::new(id.clock.clone()));
    remote.verify(&old_token).await.expect("a remote verifier accepts the old key's token");

    let after = id
        .auth()
        .login(pb::LoginRequest { username: "admin".into(), password: otp })
        .await
        .expect("login")
        .into_inner();
    let new_token = after.tokens.expect("tokens").access_token;
    remote.verify(&new_token).await.expect("and the new key's");

    // Once the old key's tokens have all expired it is no longer published.
    id.clock.advance(Duration::hours(1));
    assert!(!id.core.rotate_signing_key_if_due().await.expect("reload"));
    let keys = id.auth().list_signing_keys(pb::ListSigningKeysRequest {}).await.expect("keys").into_inner().keys;
    assert_eq!(keys.len(), 1, "the retired key is gone");
    let static_only = TokenVerifier::new(KeySource::Static(vec![]));
    assert!(static_only.verify(&new_token).await.is_err(), "a verifier without keys accepts nothing");
}

/// Issue 18 (low): a verifier cached identity's keys for ever, so a key identity stopped
/// publishing (retired early after a compromise) stayed trusted by every other service
/// until it restarted. Now the list is trusted for the `cache_seconds` identity sends.
async fn signing_keys_cached_by_a_verifier_expire_with_the_lifetime_identity_sends(db: TestDatabase) {
    let id = Identity::start(db).await;
    let otp = id.bootstrap.one_time_password.clone().expect("otp");
    id.clock.advance(Duration::days(30) - Duration::minutes(1));
    let old_token = id
        .auth()
        .login(pb::LoginRequest { username: "admin".into(), password: otp })
        .await
        .expect("login")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    id.clock.advance(Duration::minutes(2));
    assert!(id.core.rotate_signing_key_if_due().await.expect("rotation"));
    let listed = id.auth().list_signing_keys(pb::ListSigningKeysRequest {}).await.expect("keys").into_inner();
    assert_eq!(listed.cache_seconds, 300);
    let old_key = listed.keys[1].key_id.clone();

    let remote = TokenVerifier::from_identity(id.server.channel()).with_clock(std::sync::Arc::new(id.clock.clone()));
    remote.verify(&old_token).await.expect("the retired key still verifies its tokens");

    // An operator withdraws the old key (it leaked): identity stops publishing it at once.
    let withdraw = "DELETE FROM signing_keys WHERE key_id = $1";
    match &id.db {
        govmedia_kit::db::Database::Postgres(pool) => {
            sqlx::query(withdraw).bind(&old_key).execute(pool).await.expect("withdraw");
        }
        govmedia_kit::db::Database::Sqlite(pool) => {
            sqlx::query(withdraw).bind(&old_key).execute(pool).await.expect("withdraw");
        }
    }
    id.core.rotate_signing_key_if_due().await.expect("reload");
    assert_eq!(
        id.auth().list_signing_keys(pb::ListSigningKeysRequest {}).await.expect("keys").into_inner().keys.len(),
        1
    );

    // Within the cache lifetime the remote verifier may still hold it ...
    id.clock.advance(Duration::minutes(4));
    remote.verify(&old_token).await.expect("cached for at most cache_seconds");
    // ... and not a moment longer, although the token itself has minutes left.
    id.clock.advance(Duration::minutes(2));
    assert!(remote.verify(&old_token).await.is_err(), "a withdrawn key is not trusted after the cache lifetime");
    // The current key's tokens are unaffected by the refresh.
    let fresh = id.admin_token().await;
    remote.verify(&fresh).await.expect("the current key verifies");
}

storage_tests!(
    old_tokens_verify_after_a_key_rotation,
    signing_keys_cached_by_a_verifier_expire_with_the_lifetime_identity_sends
);

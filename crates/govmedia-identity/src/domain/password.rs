//! Passwords (R2.3.1): the strength policy, argon2id hashing with at least OWASP's
//! parameters, history, and one-time passwords.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use govmedia_domain::Error;
use govmedia_domain::error::RuleViolation;
use rand::Rng;

/// The rule every password rule cites.
pub const RULE: &str = "R2.3.1";
/// Shortest password accepted, in characters.
pub const MIN_LENGTH: usize = 12;
/// How many previous passwords may not be reused.
pub const HISTORY: usize = 5;

/// argon2id with OWASP's minimum: 19 MiB memory, 2 iterations, 1 lane.
fn hasher() -> Argon2<'static> {
    // The constants are valid argon2 parameters; `Params::DEFAULT` is the fallback that
    // can never be reached.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the strength rules of R2.3.1, naming every one that fails.
pub fn check_strength(username: &str, password: &str) -> Result<(), Error> {
    let mut failures = Vec::new();
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        failures.push(format!("must be at least {MIN_LENGTH} characters (has {chars})"));
    }
    if !password.chars().any(char::is_alphabetic) {
        failures.push("must contain a letter".to_owned());
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        failures.push("must contain a digit".to_owned());
    }
    if !password.chars().any(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        failures.push("must contain a special character".to_owned());
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        failures.push("must not contain the username".to_owned());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::RuleViolated(
            failures
                .into_iter()
                .map(|f| RuleViolation::new(RULE, "new_password", format!("the password {f}")))
                .collect(),
        ))
    }
}

/// The error for a password equal to one of the last [`HISTORY`].
pub fn reused() -> Error {
    Error::rule(RULE, "new_password", format!("the password must not be one of the last {HISTORY}"))
}

/// Hashes a password (PHC string). CPU-heavy: call from a blocking task.
pub fn hash(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// True when `password` matches `hash`. CPU-heavy: call from a blocking task.
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of a random password, verified against when the username is unknown so a
/// wrong username costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&generate_one_time()).unwrap_or_default())
}

/// A random 16-character password meeting the policy, for one-time and first-start use.
pub fn generate_one_time() -> String {
    const LETTERS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    const SPECIALS: &[u8] = b"!@#%^&*-_=+?";
    let mut rng = rand::rng();
    let mut pick = |set: &[u8]| char::from(set[rng.random_range(0..set.len())]);
    let mut out: Vec<char> = vec![pick(LETTERS), pick(DIGITS), pick(SPECIALS)];
    let all: Vec<u8> = [LETTERS, DIGITS, SPECIALS].concat();
    while out.len() < 16 {
        out.push(pick(&all));
    }
    // Shuffle so the classes are not always in front.
    for i in (1..out.len()).rev() {
        let j = rand::rng().random_range(0..=i);
        out.swap(i, j);
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(result: Result<(), Error>) -> Vec<String> {
        match result {
            Ok(()) => vec![],
            Err(Error::RuleViolated(v)) => v.into_iter().map(|v| format!("{}: {}", v.rule_id, v.description)).collect(),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn strong_passwords_pass_r2_3_1() {
        assert!(rules(check_strength("liwei", "Spring#Harbour2026")).is_empty());
        assert!(rules(check_strength("liwei", "政务新媒体平台账号安全#2026")).is_empty());
    }

    #[test]
    fn each_weakness_is_named_r2_3_1() {
        let r = rules(check_strength("liwei", "short1!"));
        assert!(r.iter().any(|r| r.contains("at least 12")), "{r:?}");
        let r = rules(check_strength("liwei", "NoDigitsHere!!!"));
        assert!(r.iter().any(|r| r.contains("digit")), "{r:?}");
        let r = rules(check_strength("liwei", "NoSpecials12345"));
        assert!(r.iter().any(|r| r.contains("special")), "{r:?}");
        let r = rules(check_strength("liwei", "1234567890!@#"));
        assert!(r.iter().any(|r| r.contains("letter")), "{r:?}");
        let r = rules(check_strength("liwei", "LiWei#20262026"));
        assert!(r.iter().any(|r| r.contains("username")), "{r:?}");
        assert!(r.iter().all(|r| r.starts_with("R2.3.1")), "{r:?}");
    }

    #[test]
    fn hashes_verify_and_use_argon2id_with_owasp_parameters() {
        let h = hash("Spring#Harbour2026").expect("hashes");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&h, "Spring#Harbour2026"));
        assert!(!verify(&h, "Spring#Harbour2027"));
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn one_time_passwords_meet_the_policy() {
        for _ in 0..50 {
            let p = generate_one_time();
            assert_eq!(rules(check_strength("admin", &p)), Vec::<String>::new(), "{p}");
        }
    }
}

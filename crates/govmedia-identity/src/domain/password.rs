//! Passwords (R2.3.1): the strength policy, argon2id hashing with at least OWASP's
//! parameters, history, and one-time passwords.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use govmedia_domain::Error;
use govmedia_domain::error::FieldViolation;
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

/// Passwords common among Chinese users, ranked for the strength estimate beside
/// zxcvbn's own English lists.
const COMMON_ZH: &str = include_str!("../../data/common-passwords-zh.txt");

/// The least zxcvbn score accepted: more than 10^8 guesses.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

fn common_zh() -> &'static [&'static str] {
    static WORDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| COMMON_ZH.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect())
}

/// What a password must not be built from: the person's login and names, and the names of
/// their department and the departments above it up to the bureau, also as pinyin.
#[derive(Debug, Clone, Default)]
pub struct PersonalWords {
    words: Vec<String>,
}

impl PersonalWords {
    /// The words of `names` (a username, a display name, department names).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        use pinyin::ToPinyin;
        let mut words = Vec::new();
        for name in names {
            let name = name.trim().to_lowercase();
            let chinese = name.chars().any(|c| c.to_pinyin().is_some());
            // A two-character Chinese name is a whole name; two Latin letters are not.
            if name.chars().count() >= if chinese { 2 } else { 3 } {
                words.push(name.clone());
            }
            if chinese {
                let syllables: Vec<_> = name.as_str().to_pinyin().flatten().collect();
                let full: String = syllables.iter().map(|p| p.plain()).collect();
                let initials: String = syllables.iter().map(|p| p.first_letter()).collect();
                if full.len() >= 4 {
                    words.push(full);
                }
                if initials.len() >= 4 {
                    words.push(initials);
                }
            }
        }
        words.sort();
        words.dedup();
        PersonalWords { words }
    }

    /// The first personal word the password is built from, ignoring case and l33t.
    fn found_in(&self, password: &str) -> Option<&str> {
        let lower = password.to_lowercase();
        let unleet = |one: char| -> String {
            lower
                .chars()
                .map(|c| match c {
                    '@' | '4' => 'a',
                    '0' => 'o',
                    '1' | '!' => one,
                    '3' => 'e',
                    '$' | '5' => 's',
                    '7' => 't',
                    other => other,
                })
                .collect()
        };
        let variants = [lower.clone(), unleet('i'), unleet('l')];
        self.words.iter().map(String::as_str).find(|w| variants.iter().any(|v| v.contains(w)))
    }
}

/// Checks the strength rules of R2.3.1 on the password in `field`, naming every one that
/// fails (one field violation each): length and character classes, nothing built from
/// the person's or their organisation's names, and not common or easily guessed (zxcvbn
/// with its English lists and the shipped Chinese list).
pub fn check_strength(field: &str, password: &str, personal: &PersonalWords) -> Result<(), Error> {
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
    if let Some(word) = personal.found_in(password) {
        failures.push(format!(
            "must not be built from the username, the person's name or their department's or bureau's name ({word:?})"
        ));
    }
    if chars >= MIN_LENGTH {
        let mut inputs: Vec<&str> = common_zh().to_vec();
        inputs.extend(personal.words.iter().map(String::as_str));
        let estimate = zxcvbn::zxcvbn(password, &inputs);
        if estimate.score() < MIN_SCORE {
            let why = estimate.feedback().and_then(|f| f.warning()).map(|w| format!(": {w}")).unwrap_or_default();
            failures.push(format!("is a common or easily guessed password{why}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            failures.into_iter().map(|f| FieldViolation::new(field, format!("the password {f} ({RULE})"))).collect(),
        ))
    }
}

/// The error for a password equal to one of the last [`HISTORY`].
pub fn reused() -> Error {
    Error::invalid("new_password", format!("the password must not be one of the last {HISTORY} ({RULE})"))
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
            Err(Error::InvalidArgument(v)) => {
                assert!(v.iter().all(|v| v.field == "new_password"), "{v:?}");
                v.into_iter().map(|v| v.description).collect()
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn liwei() -> PersonalWords {
        PersonalWords::new(["liwei", "李伟", "宣传科", "海港市公安局"])
    }

    fn check(password: &str) -> Vec<String> {
        rules(check_strength("new_password", password, &liwei()))
    }

    #[test]
    fn strong_passwords_pass_r2_3_1() {
        assert_eq!(check("Spring#Harbour2026"), Vec::<String>::new());
        assert_eq!(check("政务新媒体平台账号安全#2026"), Vec::<String>::new());
        assert_eq!(check("vX7#qk2!Lm9@pR4z"), Vec::<String>::new());
    }

    #[test]
    fn each_weakness_is_named_as_a_field_violation_r2_3_1() {
        let r = check("short1!");
        assert!(r.iter().any(|r| r.contains("at least 12")), "{r:?}");
        let r = check("NoDigitsHere!!!");
        assert!(r.iter().any(|r| r.contains("digit")), "{r:?}");
        let r = check("NoSpecials12345");
        assert!(r.iter().any(|r| r.contains("special")), "{r:?}");
        let r = check("1234567890!@#");
        assert!(r.iter().any(|r| r.contains("letter")), "{r:?}");
        assert!(r.iter().all(|r| r.ends_with("(R2.3.1)")), "{r:?}");
    }

    #[test]
    fn common_passwords_are_refused_english_and_chinese_r2_3_1() {
        for common in ["Password123!", "P@ssw0rd1234", "Qwer1234!@#$", "1qaz@WSX3edc", "Woaini1314!!", "Admin@123456"] {
            let r = check(common);
            assert!(r.iter().any(|r| r.contains("common or easily guessed")), "{common}: {r:?}");
        }
    }

    #[test]
    fn passwords_built_from_the_person_or_the_organisation_are_refused_r2_3_1() {
        // The username, also in l33t; the department and bureau in Chinese and in pinyin.
        for built in ["LiWei#20262026", "L1We1#Zq8!mv02", "宣传科#Harbour2026", "Xuanchuanke#7q2!", "HGSGAJ@2026xyz!"]
        {
            let r = check(built);
            assert!(r.iter().any(|r| r.contains("must not be built from")), "{built}: {r:?}");
        }
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
        let admin = PersonalWords::new(["admin"]);
        for _ in 0..50 {
            let p = generate_one_time();
            assert_eq!(rules(check_strength("new_password", &p, &admin)), Vec::<String>::new(), "{p}");
        }
    }
}

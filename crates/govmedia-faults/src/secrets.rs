//! What a run must never write: the secrets it used, looked for in its log files and in
//! every telemetry item it exported (issue 16, "secrets in logs"). Used by the compose
//! story and by the process scenarios.

use std::path::Path;

/// The secrets kept in files under `dir`: every line of every file (keys, passwords,
/// database URLs), and in JSON files (sessions) every string under a key naming a token
/// or secret.
pub fn in_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(in_files(&path));
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(fields)) => {
                for (key, value) in fields {
                    if (key.contains("token") || key.contains("secret"))
                        && let Some(value) = value.as_str()
                    {
                        found.push(value.to_owned());
                    }
                }
            }
            _ => found.extend(text.lines().map(str::trim).map(str::to_owned)),
        }
    }
    found
}

/// Where in `haystack` (named `what`) any of `secrets` appears: one line per find, the
/// secret shown by its first characters only. Secrets shorter than 8 characters are
/// not looked for (they would match ordinary text).
pub fn finds(secrets: &[String], what: &str, haystack: &str) -> Vec<String> {
    secrets
        .iter()
        .filter(|s| s.chars().count() >= 8)
        .filter(|s| haystack.contains(s.as_str()) || haystack.contains(escaped(s).as_str()))
        .map(|s| format!("{what} holds the secret {}…", s.chars().take(4).collect::<String>()))
        .collect()
}

/// `s` as Rust's `Debug` writes it inside a string (how telemetry items are dumped).
fn escaped(s: &str) -> String {
    let quoted = format!("{s:?}");
    quoted[1..quoted.len() - 1].to_owned()
}

/// Looks for `used` in every component's log of `deployment`: the finds, and how many
/// lines were read. The one line allowed by design is identity's announcement of the
/// administrator's one-time password at its first start (stdout only, for the operator to
/// sign in with); it must be there exactly once, and the password nowhere else.
pub fn in_logs(
    deployment: &crate::deployment::Deployment,
    used: &[String],
    first_password: &str,
) -> (Vec<String>, usize) {
    let mut finds = Vec::new();
    let mut lines = 0;
    let announced = format!("one-time password: {first_password}");
    for name in crate::deployment::COMPONENTS {
        let log = deployment.log(name);
        if name == "identity" && log.matches(&announced).count() != 1 {
            finds.push(format!(
                "identity.log announces the first password {} times, not once",
                log.matches(&announced).count()
            ));
        }
        let log = log.replace(&announced, "one-time password: (announced)");
        lines += log.lines().count();
        finds.extend(self::finds(used, &format!("{name}.log"), &log));
    }
    (finds, lines)
}

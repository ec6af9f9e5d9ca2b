//! Configuration: typed settings from defaults, a TOML file, `GOVMEDIA_*` environment
//! variables and the command line, in rising precedence.
//!
//! A service describes its settings once, as a `clap` struct: the doc comment of each
//! field is its `--help` text, `env = "GOVMEDIA_..."` is its deployment interface, and
//! the field name is its key in the TOML file (`listen_address = "0.0.0.0:50051"`, or
//! sectioned: `[database]` + `url = ...` for `database_url`). [`load`] reads all sources
//! through an explicit [`Environment`] map, so tests never touch the process
//! environment, and reports a bad value naming the setting and where it came from.
//!
//! Secrets ([`Secret`]) print as `[redacted]` in `Debug`; a database URL prints without
//! its password.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, FromArgMatches};
use secrecy::{ExposeSecret, SecretString};

/// The environment variable naming the configuration file.
pub const CONFIG_FILE_ENV: &str = "GOVMEDIA_CONFIG";

/// The environment a configuration is read from: a map of variables. Production code
/// takes the process environment; tests pass a map.
#[derive(Debug, Clone, Default)]
pub struct Environment(BTreeMap<String, String>);

impl Environment {
    /// The process environment (variables that are not valid Unicode are skipped).
    pub fn from_process() -> Self {
        Self(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect())
    }

    /// An environment holding exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// One variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// A setting that must not be printed: a password, a client secret, a key.
#[derive(Clone)]
pub struct Secret(std::sync::Arc<SecretString>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(std::sync::Arc::new(SecretString::from(value.into())))
    }

    /// The value. Call this only where the secret is used, never to log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (`postgres://` or `postgresql://`): the production store.
    Postgres,
    /// SQLite (`sqlite:`): the embedded store of `govmedia up`.
    Sqlite,
}

/// A database URL; the scheme picks the backend. May hold a password, so `Debug` and
/// `Display` show it with the password replaced.
#[derive(Clone)]
pub struct DatabaseUrl {
    backend: Backend,
    url: Secret,
}

impl DatabaseUrl {
    /// The backend the scheme selects.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The full URL, password included. Only for connecting.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }

    /// The URL with any password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        let url = self.url.expose();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let credentials = &url[scheme_end + 3..at];
                match credentials.find(':') {
                    Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &credentials[..colon], &url[at..]),
                    None => url.to_owned(),
                }
            }
            _ => url.to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why a database URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    /// The scheme is neither PostgreSQL nor SQLite.
    #[error("unknown database scheme {0:?}: use postgres://user@host/db or sqlite:path/to/file.db")]
    UnknownScheme(String),
    /// There is no scheme at all.
    #[error("not a database URL: use postgres://user@host/db or sqlite:path/to/file.db")]
    NoScheme,
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let scheme = s.split_once(':').map(|(scheme, _)| scheme).ok_or(DatabaseUrlError::NoScheme)?;
        let backend = match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Backend::Postgres,
            "sqlite" => Backend::Sqlite,
            other => return Err(DatabaseUrlError::UnknownScheme(other.to_owned())),
        };
        Ok(Self { backend, url: Secret::new(s) })
    }
}

/// Parses a duration written as `30s`, `5m`, `2h`, `500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = number.parse().map_err(|_| format!("{s:?} is not a duration such as 30s, 5m, 2h or 500ms"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        "d" => Ok(Duration::from_secs(n * 86_400)),
        _ => Err(format!("{s:?} has an unknown unit; use ms, s, m, h or d")),
    }
}

/// The `--config` option every service accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigFileSettings {
    /// A TOML file of settings; keys are the option names with '_' for '-'. Environment
    /// variables and command-line options override it.
    #[arg(long = "config", env = CONFIG_FILE_ENV, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A setting the service refused at start: a value that parsed but cannot be used (a
/// missing database, an unreadable key). `govmedia serve` exits with code 2 for it, as
/// for a malformed value ([`is_invalid_setting`]).
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct InvalidSetting {
    /// The setting, as its environment variable or option.
    pub setting: String,
    /// What is wrong.
    pub message: String,
}

impl InvalidSetting {
    /// `setting` is unusable, because `message`.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self { setting: setting.into(), message: message.into() }
    }
}

/// True when `error`, or an error that caused it, is an [`InvalidSetting`].
pub fn is_invalid_setting(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<InvalidSetting>())
}

/// Where the gRPC server listens and the limits it enforces.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerSettings {
    /// Address the gRPC server listens on (host:port; port 0 picks a free one).
    #[arg(long, env = "GOVMEDIA_LISTEN_ADDRESS", default_value = "127.0.0.1:50051", value_name = "HOST:PORT")]
    pub listen_address: SocketAddr,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "GOVMEDIA_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024, value_name = "BYTES")]
    pub max_message_bytes: usize,
    /// Requests handled at once; beyond this, new requests are refused with UNAVAILABLE
    /// at once instead of queueing.
    #[arg(long, env = "GOVMEDIA_MAX_CONCURRENT_REQUESTS", default_value_t = 256, value_name = "N")]
    pub max_concurrent_requests: usize,
    /// Longest time one request may take (a caller's shorter grpc-timeout wins).
    #[arg(long, env = "GOVMEDIA_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests to finish.
    #[arg(long, env = "GOVMEDIA_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_grace: Duration,
    /// PEM certificate chain to serve TLS with (with --tls-key); plaintext without.
    #[arg(long, env = "GOVMEDIA_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS certificate.
    #[arg(long, env = "GOVMEDIA_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates that sign client certificates: a client (a service principal)
    /// may then authenticate the connection with its certificate (mutual TLS); clients
    /// without one still connect and present tokens.
    #[arg(long, env = "GOVMEDIA_TLS_CLIENT_CA", value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Service principals must call with a client certificate (signed by the client CA)
    /// whose subject common name or DNS name is their client id; their tokens alone are
    /// refused. Users are not affected. Set it where service principals connect directly
    /// (the gateway); services behind the gateway see the gateway's connection.
    #[arg(
        long,
        env = "GOVMEDIA_TLS_REQUIRE_SERVICE_CERTIFICATES",
        default_value_t = false,
        requires = "tls_client_ca"
    )]
    pub tls_require_service_certificates: bool,
    /// Addresses of proxies (the gateway) whose `x-govmedia-client-address` header is
    /// believed: behind them the caller is the address they name, not theirs. An address
    /// (`172.28.0.10`) or a range (`10.244.0.0/16`, where the gateway's pods get their
    /// addresses; then let only the gateway reach the services, as the shipped
    /// NetworkPolicy does). Empty, the header is ignored and the connection's own address
    /// counts.
    #[arg(long = "trusted-proxy", env = "GOVMEDIA_TRUSTED_PROXIES", value_delimiter = ',', value_name = "IP|CIDR", value_parser = parse_proxy_range)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A socket bound already, served instead of binding `listen_address`: what
    /// `govmedia up` hands each service it binds for it, so no other process can take
    /// the port between choosing and serving it. Not a setting.
    #[arg(skip)]
    pub listener: PreBound,
}

/// A trusted proxy's address or address range: `172.28.0.10` or `10.244.0.0/16`.
pub fn parse_proxy_range(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(range) = text.parse::<ipnet::IpNet>() {
        if range.prefix_len() == 0 {
            return Err(format!("{text:?} trusts every address; name the proxies' range"));
        }
        return Ok(range.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("{text:?} is neither an address nor a range (10.244.0.0/16)"))
}

/// A listening socket handed to a server before it starts; taken once, by the server.
#[derive(Clone, Default)]
pub struct PreBound(std::sync::Arc<std::sync::Mutex<Option<std::net::TcpListener>>>);

impl PreBound {
    /// Hands over `listener`.
    pub fn new(listener: std::net::TcpListener) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(Some(listener))))
    }

    /// The socket, if one was handed over and not taken yet.
    pub fn take(&self) -> Option<std::net::TcpListener> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

impl fmt::Debug for PreBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.0.lock().ok().and_then(|slot| slot.as_ref().and_then(|l| l.local_addr().ok()));
        f.debug_tuple("PreBound").field(&held).finish()
    }
}

impl ServerSettings {
    /// Settings for tests: loopback, a free port, default limits.
    pub fn loopback() -> Self {
        Self {
            listen_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 256,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_require_service_certificates: false,
            trusted_proxies: Vec::new(),
            listener: PreBound::default(),
        }
    }
}

/// The service's database.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseSettings {
    /// The database: postgres://user:password@host:5432/name or sqlite:path/to/file.db.
    #[arg(long, env = "GOVMEDIA_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// The role that owns the service's tables, for migrations only (PostgreSQL). The
    /// service then runs as GOVMEDIA_DATABASE_URL's role, which cannot drop, alter or
    /// un-trigger what it does not own (the audit log's append-only guard, R1.3.5).
    /// Unset: GOVMEDIA_DATABASE_URL's role migrates too.
    #[arg(long, env = "GOVMEDIA_DATABASE_OWNER_URL", value_name = "URL")]
    pub database_owner_url: Option<DatabaseUrl>,
    /// Most connections the pool opens.
    #[arg(long, env = "GOVMEDIA_DATABASE_MAX_CONNECTIONS", default_value_t = 10, value_name = "N")]
    pub database_max_connections: u32,
    /// How long a starting service keeps trying to reach its database (a container
    /// started beside PostgreSQL, a database restarting), each failure logged, before it
    /// gives up and exits.
    #[arg(long, env = "GOVMEDIA_DATABASE_CONNECT_PATIENCE", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub database_connect_patience: Duration,
}

/// Logs, traces and metrics.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetrySettings {
    /// Which logs to print, as a tracing filter (for example "info,govmedia_kit=debug").
    #[arg(long, env = "GOVMEDIA_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,
    /// Log line format on stdout.
    #[arg(long, env = "GOVMEDIA_LOG_FORMAT", default_value = "text", value_enum)]
    pub log_format: LogFormat,
    /// OTLP/gRPC collector to export traces and metrics to (for example
    /// http://otel-collector:4317); nothing is exported when unset or empty.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// How often metrics are exported.
    #[arg(long, env = "GOVMEDIA_METRICS_INTERVAL", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub metrics_interval: Duration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            metrics_interval: Duration::from_secs(30),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// How a service reaches the others and proves who it is to them.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerSettings {
    /// The identity service (token keys, permission checks, client credentials).
    #[arg(long, env = "GOVMEDIA_IDENTITY_ENDPOINT", value_name = "URL")]
    pub identity_endpoint: Option<String>,
    /// The audit service (the outbox relay ships audit events there).
    #[arg(long, env = "GOVMEDIA_AUDIT_ENDPOINT", value_name = "URL")]
    pub audit_endpoint: Option<String>,
    /// The content service (the audit service retracts publications through it when
    /// containing a security incident).
    #[arg(long, env = "GOVMEDIA_CONTENT_ENDPOINT", value_name = "URL")]
    pub content_endpoint: Option<String>,
    /// This service's client id at the identity service.
    #[arg(long, env = "GOVMEDIA_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// This service's client secret at the identity service.
    #[arg(long, env = "GOVMEDIA_CLIENT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub client_secret: Option<Secret>,
}

/// A setting's value could not be used; names the setting and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--help` or `--version` was asked for; print the text and exit successfully.
    #[error("{0}")]
    Help(String),
    /// A value is malformed.
    #[error("invalid setting {setting} (from {origin}): {message}")]
    Invalid {
        /// The setting, as its environment variable and option.
        setting: String,
        /// The command line, the environment, or the file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration file has a key no setting knows.
    #[error("unknown setting {key:?} in {file}; known settings: {known}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        file: String,
        /// The keys that exist.
        known: String,
    },
    /// The configuration file cannot be read or is not TOML.
    #[error("cannot read the configuration file {file}: {message}")]
    File {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// The command line is malformed.
    #[error("{0}")]
    CommandLine(String),
}

#[derive(Debug, Clone)]
struct Setting {
    id: String,
    long: String,
    env: Option<String>,
    flag: bool,
    /// Its value is a secret or may hold one (`hide_env_values`): never quoted in an error.
    secret: bool,
}

#[derive(Debug, Clone)]
enum Origin {
    CommandLine,
    Environment,
    File(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::CommandLine => f.write_str("the command line"),
            Origin::Environment => f.write_str("the environment"),
            Origin::File(file) => write!(f, "the configuration file {file}"),
        }
    }
}

fn settings_of(command: &Command) -> Vec<Setting> {
    command
        .get_arguments()
        .filter(|a| !a.is_positional())
        .filter_map(|a| {
            let long = a.get_long()?.to_owned();
            if long == "help" || long == "version" || long == "config" {
                return None;
            }
            Some(Setting {
                id: a.get_id().as_str().to_owned(),
                long,
                env: a.get_env().and_then(|e| e.to_str()).map(str::to_owned),
                flag: matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse),
                secret: a.is_hide_env_values_set(),
            })
        })
        .collect()
}

fn strip_env(command: Command) -> Command {
    command.mut_args(|a: Arg| a.env(None))
}

/// Loads settings of type `T` from `args` (the first item is the program name), the
/// environment `env`, and the TOML file named by `--config` or `GOVMEDIA_CONFIG`.
pub fn load<T: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString>>,
    env: &Environment,
) -> Result<T, ConfigError> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    load_for_command::<T>(T::command(), &args, env)
}

/// As [`load`], for settings nested in a larger command (a subcommand's arguments).
pub fn load_for_command<T: FromArgMatches>(
    command: Command,
    args: &[OsString],
    env: &Environment,
) -> Result<T, ConfigError> {
    let help_command = command.clone();
    let settings = settings_of(&command);
    let stripped = strip_env(command);

    // First pass: which settings the command line gives explicitly, and --config.
    let explicit = match stripped.clone().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let mut help_command = help_command;
            return Err(ConfigError::Help(help_command.render_long_help().to_string()));
        }
        Err(e) => {
            let all_cli: Vec<_> = settings.iter().map(|s| (s.long.clone(), Origin::CommandLine)).collect();
            return Err(attribute(e, &settings, &all_cli));
        }
    };
    let on_command_line = |id: &str| {
        explicit.try_contains_id(id).unwrap_or(false) && explicit.value_source(id) == Some(ValueSource::CommandLine)
    };

    let config_file = explicit
        .try_get_one::<PathBuf>("config")
        .ok()
        .flatten()
        .cloned()
        .or_else(|| env.get(CONFIG_FILE_ENV).map(PathBuf::from));
    let file_values = match &config_file {
        Some(path) => read_config_file(path, &settings)?,
        None => BTreeMap::new(),
    };

    // Second pass: environment and file values become options, below the command line.
    let mut synthetic: Vec<OsString> = args.first().cloned().into_iter().collect();
    let mut origins: Vec<(String, Origin)> = Vec::new();
    for setting in &settings {
        if on_command_line(&setting.id) {
            origins.push((setting.long.clone(), Origin::CommandLine));
            continue;
        }
        let (value, origin) = if let Some((v, origin)) = from_environment(setting, env)? {
            (v, origin)
        } else if let Some(v) = file_values.get(&setting.id) {
            (
                v.clone(),
                Origin::File(config_file.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default()),
            )
        } else {
            continue;
        };
        if setting.flag {
            match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => synthetic.push(format!("--{}", setting.long).into()),
                "false" | "0" | "no" | "off" | "" => {}
                other => {
                    return Err(ConfigError::Invalid {
                        setting: describe(setting),
                        origin: origin.to_string(),
                        message: format!("{other:?} is not true or false"),
                    });
                }
            }
        } else {
            synthetic.push(format!("--{}={}", setting.long, value).into());
        }
        origins.push((setting.long.clone(), origin));
    }
    synthetic.extend(args.iter().skip(1).cloned());

    let matches = stripped.try_get_matches_from(&synthetic).map_err(|e| attribute(e, &settings, &origins))?;
    T::from_arg_matches(&matches).map_err(|e| attribute(e, &settings, &origins))
}

/// A setting's value from the environment: `GOVMEDIA_X`, or the contents of the file
/// `GOVMEDIA_X_FILE` names (how container platforms hand over secrets: a mounted file, not
/// a variable every process listing shows), without its final line break.
fn from_environment(setting: &Setting, env: &Environment) -> Result<Option<(String, Origin)>, ConfigError> {
    let Some(name) = setting.env.as_deref() else { return Ok(None) };
    let file_variable = format!("{name}_FILE");
    match (env.get(name), env.get(&file_variable)) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            setting: describe(setting),
            origin: Origin::Environment.to_string(),
            message: format!("set {name} or {file_variable}, not both"),
        }),
        (Some(value), None) => Ok(Some((value.to_owned(), Origin::Environment))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                setting: describe(setting),
                origin: format!("{file_variable}={path}"),
                message: format!("cannot read the file: {e}"),
            })?;
            let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
            Ok(Some((value.to_owned(), Origin::File(path.to_owned()))))
        }
        (None, None) => Ok(None),
    }
}

fn describe(setting: &Setting) -> String {
    match &setting.env {
        Some(env) => format!("{env} (--{})", setting.long),
        None => format!("--{}", setting.long),
    }
}

fn attribute(error: clap::Error, settings: &[Setting], origins: &[(String, Origin)]) -> ConfigError {
    let invalid_arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let long =
        invalid_arg.as_deref().and_then(|a| a.strip_prefix("--")).map(|a| a.split([' ', '=']).next().unwrap_or(a));
    let rendered = error.render().to_string();
    let mut message = rendered.trim().trim_start_matches("error: ").lines().next().unwrap_or_default().to_owned();
    match long.and_then(|l| settings.iter().find(|s| s.long == l)) {
        Some(setting) => {
            // A database URL with its password, a client secret: the error goes to logs
            // and terminals, the value must not.
            if setting.secret
                && let Some(ContextValue::String(value)) = error.get(ContextKind::InvalidValue)
                && !value.is_empty()
            {
                message = message.replace(value.as_str(), "[hidden]");
            }
            let origin = origins
                .iter()
                .find(|(l, _)| *l == setting.long)
                .map_or_else(|| "the defaults".to_owned(), |(_, o)| o.to_string());
            ConfigError::Invalid { setting: describe(setting), origin, message }
        }
        None => ConfigError::CommandLine(rendered),
    }
}

fn read_config_file(path: &Path, settings: &[Setting]) -> Result<BTreeMap<String, String>, ConfigError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError::File { file: file.clone(), message: e.to_string() })?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError::File { file: file.clone(), message: e.to_string() })?;
    let mut flat = BTreeMap::new();
    flatten("", &table, &mut flat);
    for key in flat.keys() {
        if !settings.iter().any(|s| &s.id == key) {
            let known = settings.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(ConfigError::UnknownKey { key: key.clone(), file, known });
        }
    }
    Ok(flat)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (key, value) in table {
        let key = key.replace('-', "_");
        let full = if prefix.is_empty() { key } else { format!("{prefix}_{key}") };
        match value {
            toml::Value::Table(inner) => flatten(&full, inner, out),
            toml::Value::String(s) => {
                out.insert(full, s.clone());
            }
            other => {
                out.insert(full, other.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct TestSettings {
        #[command(flatten)]
        config: ConfigFileSettings,
        #[command(flatten)]
        server: ServerSettings,
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(flatten)]
        peers: PeerSettings,
    }

    fn load_test(args: &[&str], env: &[(&str, &str)]) -> Result<TestSettings, ConfigError> {
        let mut argv = vec!["govmedia-test"];
        argv.extend_from_slice(args);
        load(argv, &Environment::from_pairs(env.iter().copied()))
    }

    #[test]
    fn defaults_environment_and_command_line_in_rising_precedence() {
        let s = load_test(&[], &[]).expect("defaults load");
        assert_eq!(s.server.listen_address.port(), 50051);
        let s = load_test(&[], &[("GOVMEDIA_LISTEN_ADDRESS", "0.0.0.0:7000")]).expect("env loads");
        assert_eq!(s.server.listen_address.port(), 7000);
        let s = load_test(&["--listen-address", "0.0.0.0:7001"], &[("GOVMEDIA_LISTEN_ADDRESS", "0.0.0.0:7000")])
            .expect("cli loads");
        assert_eq!(s.server.listen_address.port(), 7001);
    }

    #[test]
    fn file_values_sit_below_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("govmedia.toml");
        std::fs::write(&path, "listen_address = \"0.0.0.0:8000\"\n[database]\nmax_connections = 3\n").expect("write");
        let path_str = path.to_str().expect("utf-8 path");
        let s = load_test(&["--config", path_str], &[]).expect("file loads");
        assert_eq!(s.server.listen_address.port(), 8000);
        assert_eq!(s.database.database_max_connections, 3);
        let s = load_test(&[], &[("GOVMEDIA_CONFIG", path_str), ("GOVMEDIA_LISTEN_ADDRESS", "0.0.0.0:9000")])
            .expect("env over file");
        assert_eq!(s.server.listen_address.port(), 9000);
        assert_eq!(s.database.database_max_connections, 3);
    }

    #[test]
    fn a_setting_is_read_from_the_file_its_file_variable_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("client-secret");
        std::fs::write(&path, "from-a-mounted-file\n").expect("write");
        let path_str = path.to_str().expect("utf-8 path");
        let s = load_test(&[], &[("GOVMEDIA_CLIENT_SECRET_FILE", path_str)]).expect("file variable loads");
        assert_eq!(s.peers.client_secret.expect("secret").expose(), "from-a-mounted-file");
        let both = [("GOVMEDIA_CLIENT_SECRET_FILE", path_str), ("GOVMEDIA_CLIENT_SECRET", "inline")];
        let err = load_test(&[], &both).expect_err("both refused");
        assert!(err.to_string().contains("not both"), "{err}");
        let missing = dir.path().join("missing");
        let err = load_test(&[], &[("GOVMEDIA_CLIENT_SECRET_FILE", missing.to_str().expect("utf-8"))])
            .expect_err("a missing file");
        assert!(
            err.to_string().contains("GOVMEDIA_CLIENT_SECRET_FILE") && err.to_string().contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn an_unparseable_port_names_the_setting() {
        let err = load_test(&[], &[("GOVMEDIA_LISTEN_ADDRESS", "0.0.0.0:http")]).expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("GOVMEDIA_LISTEN_ADDRESS"), "{text}");
        assert!(text.contains("environment"), "{text}");
    }

    #[test]
    fn an_unknown_database_scheme_names_the_setting() {
        let err = load_test(&["--database-url", "mysql://root@localhost/govmedia"], &[]).expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("GOVMEDIA_DATABASE_URL"), "{text}");
        assert!(text.contains("unknown database scheme"), "{text}");
    }

    #[test]
    fn a_refused_database_url_is_not_quoted_with_its_password() {
        // Found by the `config` fuzz target: the error quoted the whole URL.
        let url = "postgress://govmedia:Pa55-word-in-url@db:5432/govmedia";
        let err = load_test(&[], &[("GOVMEDIA_DATABASE_URL", url)]).expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("GOVMEDIA_DATABASE_URL") && text.contains("unknown database scheme"), "{text}");
        assert!(!text.contains("Pa55-word-in-url"), "the password is shown: {text}");
    }

    #[test]
    fn an_unknown_file_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("govmedia.toml");
        std::fs::write(&path, "listen_adress = \"0.0.0.0:8000\"\n").expect("write");
        let err = load_test(&["--config", path.to_str().expect("utf-8")], &[]).expect_err("must fail");
        assert!(err.to_string().contains("listen_adress"), "{err}");
    }

    #[test]
    fn secrets_and_database_passwords_never_print() {
        let s = load_test(
            &[],
            &[
                ("GOVMEDIA_CLIENT_SECRET", "s3cr3t-value"),
                ("GOVMEDIA_DATABASE_URL", "postgres://govmedia:hunter2@db:5432/identity"),
            ],
        )
        .expect("loads");
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("postgres://govmedia:***@db:5432/identity"), "{debug}");
        assert_eq!(s.peers.client_secret.as_ref().map(Secret::expose), Some("s3cr3t-value"));
    }

    #[test]
    fn help_documents_every_setting_with_its_variable() {
        let err = load_test(&["--help"], &[]).expect_err("help is an early exit");
        let ConfigError::Help(text) = err else { panic!("expected help") };
        for name in ["GOVMEDIA_LISTEN_ADDRESS", "GOVMEDIA_DATABASE_URL", "GOVMEDIA_CLIENT_SECRET", "GOVMEDIA_CONFIG"] {
            assert!(text.contains(name), "--help lacks {name}");
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
    }
}

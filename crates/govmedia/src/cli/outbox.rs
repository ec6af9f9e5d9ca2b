//! `govmedia outbox`: the audit outbox of one service, read and repaired on its database
//! (not through the gateway: it is an operator's tool, run where the database is
//! reachable). A record the audit service keeps refusing becomes a dead letter so that the
//! records behind it flow on; once its cause is fixed (an audit service upgraded to know a
//! new action, say), `redrive` puts it back at the end of the outbox and the service's
//! relay delivers it. The audit log appends by event id, so re-driving twice appends once.

use govmedia_kit::config::DatabaseUrl;
use govmedia_kit::db::Database;
use govmedia_kit::outbox;

use super::BoxError;
use super::output::Table;

/// Where the service's database is.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The service's database (as its GOVMEDIA_DATABASE_URL).
    #[arg(long, env = "GOVMEDIA_DATABASE_URL", hide_env_values = true, conflicts_with = "data_dir")]
    pub database_url: Option<DatabaseUrl>,
    /// Or: the data folder of `govmedia up` on SQLite (the service's file in it).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// The service whose outbox it is: identity, audit, content or interaction.
    #[arg(long, value_parser = ["identity", "audit", "content", "interaction"])]
    pub service: String,
}

impl Target {
    async fn open(&self) -> Result<Database, BoxError> {
        let url: DatabaseUrl = match (&self.database_url, &self.data_dir) {
            (Some(url), _) => url.clone(),
            (None, Some(dir)) => {
                let file = dir.join(format!("{}.db", self.service));
                if !file.exists() {
                    return Err(format!("{} does not exist", file.display()).into());
                }
                format!("sqlite://{}", file.display()).parse()?
            }
            (None, None) => return Err("name the database: --database-url URL, or --data-dir DIR".into()),
        };
        let db = Database::connect(&url, 1).await?;
        // Refuse a database that is not a service's (or one no service of this version
        // has started on): nothing here creates or migrates tables.
        outbox::dead_letters(&db).await.map_err(|_| {
            format!("{} has no audit outbox with dead letters: is it the {} service's database, started once by this version?", url.redacted(), self.service)
        })?;
        Ok(db)
    }
}

/// The audit outbox.
#[derive(Debug, clap::Subcommand)]
pub enum Outbox {
    /// How many records wait, and the dead letters.
    DeadLetters {
        /// The service's database.
        #[command(flatten)]
        target: Target,
    },
    /// Puts dead letters back into the outbox to be delivered again.
    Redrive {
        /// The service's database.
        #[command(flatten)]
        target: Target,
        /// The event ids to re-drive (repeatable).
        #[arg(long = "event-id", value_name = "ID", required_unless_present = "all")]
        event_ids: Vec<uuid::Uuid>,
        /// Re-drive every dead letter.
        #[arg(long, conflicts_with = "event_ids")]
        all: bool,
    },
}

impl Outbox {
    /// Runs the command.
    pub async fn run(self, json: bool) -> Result<(), BoxError> {
        match self {
            Outbox::DeadLetters { target } => {
                let db = target.open().await?;
                let pending = outbox::pending(&db).await?;
                let dead = outbox::dead_letters(&db).await?;
                let mut table = Table::new(&["event_id", "action", "attempts", "written", "dead_since", "last_error"]);
                for d in &dead {
                    table.row(vec![
                        d.event_id.clone(),
                        d.action.clone().unwrap_or_else(|| "(does not decode)".into()),
                        d.attempts.to_string(),
                        d.created_at.to_rfc3339(),
                        d.buried_at.to_rfc3339(),
                        d.last_error.clone(),
                    ]);
                }
                table.print(json)?;
                if !json {
                    eprintln!("{pending} records waiting in the outbox, {} dead letters", dead.len());
                }
                Ok(())
            }
            Outbox::Redrive { target, event_ids, all } => {
                let db = target.open().await?;
                let ids: Vec<String> =
                    if all { Vec::new() } else { event_ids.iter().map(ToString::to_string).collect() };
                let operator = format!("operator {}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
                let moved = outbox::redrive(&db, &ids, &target.service, &operator).await?;
                if !all && moved < ids.len() as u64 {
                    eprintln!("{} of the named event ids are not dead letters", ids.len() as u64 - moved);
                }
                eprintln!("{moved} records put back into the outbox; the service's relay delivers them");
                Ok(())
            }
        }
    }
}

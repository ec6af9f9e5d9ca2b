//! What a deployment of separate containers needs from the binary itself: a health probe
//! (`govmedia health`, the image has no shell or curl) and the secrets every container
//! reads from a mounted file (`govmedia secrets`), made once and never committed.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::BoxError;
use super::output::print_record;
use crate::up::{PRINCIPALS, random_key};

/// `govmedia health`: asks a service's grpc.health.v1 whether it serves. Exit 0 when it
/// does, 1 otherwise (a container health check).
#[derive(Debug, clap::Args)]
pub struct Health {
    /// The service's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    address: String,
    /// The service name to ask about (empty: the server as a whole).
    #[arg(long, default_value = "")]
    service: String,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = govmedia_kit::config::parse_duration)]
    timeout: std::time::Duration,
}

impl Health {
    pub(super) async fn run(self, json: bool) -> Result<(), BoxError> {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let endpoint = tonic::transport::Endpoint::from_shared(self.address.clone())
            .map_err(|e| format!("{:?} is not an address: {e}", self.address))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout);
        let channel = endpoint.connect().await.map_err(|e| format!("cannot reach {}: {e}", self.address))?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest { service: self.service.clone() })
            .await
            .map_err(|s| format!("{} answered {:?}: {}", self.address, s.code(), s.message()))?
            .into_inner();
        let status = ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown);
        print_record(&[("address", self.address.clone()), ("status", status.as_str_name().to_owned())], json)?;
        if status == ServingStatus::Serving { Ok(()) } else { Err(format!("{} is not serving", self.address).into()) }
    }
}

/// `govmedia secrets`: makes every secret a docker-compose or Kubernetes deployment
/// mounts, one file each, in `--dir`. A secret already there is kept (the installation's
/// data depends on it: the sealing keys open the vault, the checkpoint key signed the
/// log), so running it again only fills in what is missing.
#[derive(Debug, clap::Args)]
pub struct Secrets {
    /// The folder to make them in (made owner-only).
    #[arg(long, default_value = "deploy/secrets")]
    dir: PathBuf,
    /// PostgreSQL's host:port as the services reach it.
    #[arg(long, default_value = "postgres:5432")]
    database_host: String,
    /// The PostgreSQL database holding one schema per service.
    #[arg(long, default_value = "govmedia")]
    database_name: String,
    /// Database roles are named `<prefix>_<service>` and `<prefix>_<service>_owner`, as
    /// deploy/postgres/init.sh creates them.
    #[arg(long, default_value = "govmedia")]
    role_prefix: String,
}

/// The services with a database of their own.
const DATABASE_SERVICES: [&str; 4] = ["identity", "audit", "content", "interaction"];

/// 32 random bytes in hex: safe inside a URL.
fn random_password() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Makes one secret's value, given the folder (a URL reads the password made before it).
type Make = Box<dyn Fn(&Path) -> Result<String, BoxError>>;

impl Secrets {
    /// Every secret: its file name and how to make it when missing, in order.
    fn plan(&self) -> Vec<(String, Make)> {
        let mut plan: Vec<(String, Make)> = vec![
            ("postgres-password".into(), Box::new(|_| Ok(random_password()))),
            ("identity-sealing-keys".into(), Box::new(|_| Ok(format!("k1:{}", random_key())))),
            ("audit-checkpoint-key".into(), Box::new(|_| Ok(random_key()))),
            ("grafana-admin-password".into(), Box::new(|_| Ok(random_password()))),
        ];
        for principal in PRINCIPALS {
            plan.push((principal.to_owned(), Box::new(|_| Ok(random_key()))));
        }
        for service in DATABASE_SERVICES {
            for (role, suffix) in [("owner", "-owner"), ("app", "")] {
                plan.push((format!("{service}-database{suffix}-password"), Box::new(|_| Ok(random_password()))));
                let host = self.database_host.clone();
                let name = self.database_name.clone();
                let login = format!("{}_{service}{}", self.role_prefix, if role == "owner" { "_owner" } else { "" });
                let password_file = format!("{service}-database{suffix}-password");
                plan.push((
                    format!("{service}-database{suffix}-url"),
                    Box::new(move |dir| {
                        let password = read(&dir.join(&password_file))?;
                        Ok(format!(
                            "postgres://{login}:{password}@{host}/{name}?options=-c%20search_path%3Dgovmedia_{service}"
                        ))
                    }),
                ));
            }
        }
        plan
    }

    pub(super) fn run(self, json: bool) -> Result<(), BoxError> {
        use std::os::unix::fs::PermissionsExt;
        govmedia_kit::private_files::private_dir(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let (mut made, mut kept) = (0usize, 0usize);
        for (name, make) in self.plan() {
            let path = self.dir.join(&name);
            if path.exists() {
                kept += 1;
                continue;
            }
            let value = make(&self.dir)?;
            govmedia_kit::private_files::create_file(&path, format!("{value}\n").as_bytes())
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            // Readable inside the containers, whose users are not the host user who made
            // them; on the host the owner-only folder keeps everyone else out.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
            made += 1;
        }
        if !json {
            writeln!(
                std::io::stderr().lock(),
                "govmedia: keep {} out of version control and back it up with the database: \
                 without identity-sealing-keys the vault does not open",
                self.dir.display()
            )?;
        }
        print_record(
            &[("folder", self.dir.display().to_string()), ("made", made.to_string()), ("kept", kept.to_string())],
            json,
        )
    }
}

fn read(path: &Path) -> Result<String, BoxError> {
    Ok(std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.trim().to_owned())
}

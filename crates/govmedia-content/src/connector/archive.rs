//! The archive connector: each publication becomes a JSON file in a folder, one
//! subfolder per platform account. It is the default of a local install, where
//! nothing may leave the machine, and the record an office keeps of what went out.
//!
//! Files are written to a temporary name and renamed into place, so a reader never
//! sees half a publication and a crash leaves either the whole file or none. A second
//! publish of the same id finds the file and answers with the same receipt.

use std::path::{Path, PathBuf};

use super::{Connector, ConnectorError, Outgoing, Receipt};

/// Writes publications to `<root>/<platform_account_id>/<publication_id>.json`.
#[derive(Debug, Clone)]
pub struct ArchiveConnector {
    root: PathBuf,
}

impl ArchiveConnector {
    /// An archive under `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where a publication's file lives.
    pub fn path_of(&self, platform_account_id: &str, publication_id: &str) -> Result<PathBuf, ConnectorError> {
        Ok(self
            .root
            .join(file_component(platform_account_id)?)
            .join(format!("{}.json", file_component(publication_id)?)))
    }

    fn receipt(&self, path: &Path, publication_id: &str) -> Receipt {
        Receipt { platform_post_id: publication_id.to_owned(), url: format!("file://{}", path.display()) }
    }
}

/// Ids become file names; anything that could climb out of the archive is refused.
fn file_component(id: &str) -> Result<&str, ConnectorError> {
    let safe = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if safe { Ok(id) } else { Err(ConnectorError::Permanent(format!("id {id:?} is not a safe file name"))) }
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename).
async fn write_atomically(path: PathBuf, bytes: Vec<u8>) -> Result<(), ConnectorError> {
    tokio::task::spawn_blocking(move || {
        let dir = path.parent().ok_or_else(|| ConnectorError::Permanent("archive path has no folder".into()))?;
        // Owner-only: the folder 0700, each file 0600 (tempfile's mode, kept by the rename).
        govmedia_kit::private_files::private_dir(dir).map_err(io_error)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io_error)?;
        std::io::Write::write_all(&mut file, &bytes).map_err(io_error)?;
        file.as_file().sync_all().map_err(io_error)?;
        file.persist(&path).map_err(|e| io_error(e.error))?;
        Ok(())
    })
    .await
    .map_err(|e| ConnectorError::Transient(format!("archive writer stopped: {e}")))?
}

/// A full disk or a permission problem may be fixed by an operator, so it is retried.
fn io_error(e: std::io::Error) -> ConnectorError {
    ConnectorError::Transient(format!("archive write failed: {e}"))
}

#[async_trait::async_trait]
impl Connector for ArchiveConnector {
    fn name(&self) -> &'static str {
        "archive"
    }

    async fn publish(&self, item: &Outgoing) -> Result<Receipt, ConnectorError> {
        let path = self.path_of(&item.platform_account_id, &item.publication_id)?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(self.receipt(&path, &item.publication_id));
        }
        let bytes = serde_json::to_vec_pretty(item).map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        write_atomically(path.clone(), bytes).await?;
        Ok(self.receipt(&path, &item.publication_id))
    }

    async fn retract(
        &self,
        publication_id: &str,
        platform_account_id: &str,
        reason: &str,
    ) -> Result<(), ConnectorError> {
        let published = self.path_of(platform_account_id, publication_id)?;
        if !tokio::fs::try_exists(&published).await.unwrap_or(false) {
            return Err(ConnectorError::Permanent(format!("publication {publication_id} is not in the archive")));
        }
        // The published file stays: an archive keeps what went out. The retraction is a
        // second file beside it.
        let retraction = published.with_extension("retracted.json");
        let bytes = serde_json::to_vec_pretty(&serde_json::json!({
            "publication_id": publication_id,
            "platform_account_id": platform_account_id,
            "reason": reason,
        }))
        .map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        write_atomically(retraction, bytes).await
    }
}

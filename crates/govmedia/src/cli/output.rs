//! What the commands print: a table for people (comfy-table, sized to the terminal), or
//! with `--json` the same rows as JSON objects keyed by column for scripts; and a refusal
//! explained with the rule it violated.

use std::io::Write;

use super::BoxError;

/// Rows under named columns. Column names are snake_case: they are the JSON keys.
#[derive(Debug, Default)]
pub struct Table {
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[&'static str]) -> Self {
        Self { columns: columns.to_vec(), rows: Vec::new() }
    }

    /// Adds a row, one cell per column.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows as JSON objects.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        self.columns
                            .iter()
                            .zip(row)
                            .map(|(c, v)| ((*c).to_owned(), serde_json::Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    /// Prints the table, or its JSON with `json`.
    pub fn print(&self, json: bool) -> Result<(), BoxError> {
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&self.to_json())?)?;
            return Ok(());
        }
        if self.rows.is_empty() {
            writeln!(out, "(none)")?;
            return Ok(());
        }
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::UTF8_HORIZONTAL_ONLY)
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_header(self.columns.iter().map(|c| c.replace('_', " ")));
        for row in &self.rows {
            table.add_row(row);
        }
        writeln!(out, "{table}")?;
        Ok(())
    }
}

/// One record as `field: value` lines, or a JSON object with `json`.
pub fn print_record(fields: &[(&'static str, String)], json: bool) -> Result<(), BoxError> {
    let mut out = std::io::stdout().lock();
    if json {
        let object: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone()))).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&object)?)?;
        return Ok(());
    }
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        writeln!(out, "{:<width$}  {v}", k.replace('_', " "))?;
    }
    Ok(())
}

/// A refusal as an operator reads it: the code, the message, and each violated rule or
/// malformed field.
pub fn explain(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(p) = status.get_details_precondition_failure() {
        for v in p.violations {
            text.push_str(&format!("\n  rule {} ({}): {}", v.r#type, v.subject, v.description));
        }
    }
    if let Some(b) = status.get_details_bad_request() {
        for v in b.field_violations {
            text.push_str(&format!("\n  field {}: {}", v.field, v.description));
        }
    }
    text
}

/// An enum value's proto name without its prefix, lower case: `DRAFT_STATE_IN_REVIEW`
/// -> `in_review`.
pub fn label(name: Option<&str>, prefix: &str) -> String {
    name.map(|n| n.strip_prefix(prefix).unwrap_or(n).to_lowercase()).unwrap_or_else(|| "unknown".into())
}

/// A timestamp as RFC 3339 (UTC), or empty.
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// An RFC 3339 time given on the command line.
pub fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-12-01T09:00:00+08:00: {e}"))?;
    Ok(prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) })
}

/// Whether a command's error is a refusal for lack of permission (as [`explain`] words it).
pub fn is_denied(error: &BoxError) -> bool {
    error.to_string().starts_with("PermissionDenied")
}

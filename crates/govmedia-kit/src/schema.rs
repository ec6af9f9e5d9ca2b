//! Schema parity: the PostgreSQL and SQLite migrations of a service must build the same
//! tables. Migration numbering alone (`db::check_migration_parity`) does not show a column
//! forgotten on one side, a `NOT NULL` on one only, or a unique key that SQLite lacks;
//! comparing the migrated catalogues does.
//!
//! What is compared, table by table: the column names; each column's type family (text,
//! integer, real, blob: what both stores agree on, since SQLite stores by affinity);
//! whether it may be null; the primary key; every unique key; every foreign key.
//! Indexes that are not unique are a store's own tuning and are not compared.

use std::collections::{BTreeMap, BTreeSet};

use govmedia_domain::Error;

use crate::db::{Database, db_error};

/// The type families both stores agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// Text (also UUIDs, JSON, times and dates, which SQLite keeps as text).
    Text,
    /// Integers and booleans.
    Integer,
    /// Floating point and decimals.
    Real,
    /// Bytes.
    Blob,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    /// The type family.
    pub family: Family,
    /// Whether it may hold NULL.
    pub nullable: bool,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Columns by name.
    pub columns: BTreeMap<String, Column>,
    /// The primary key's columns, in order.
    pub primary_key: Vec<String>,
    /// Unique keys (other than the primary key), each as its sorted columns.
    pub unique: BTreeSet<Vec<String>>,
    /// Foreign keys: (column, referenced table, referenced column).
    pub foreign: BTreeSet<(String, String, String)>,
}

/// A migrated schema: its tables by name (the migrator's own bookkeeping left out).
pub type Schema = BTreeMap<String, Table>;

fn pg_family(data_type: &str) -> Result<Family, Error> {
    Ok(match data_type {
        "text"
        | "character varying"
        | "character"
        | "uuid"
        | "jsonb"
        | "json"
        | "timestamp with time zone"
        | "timestamp without time zone"
        | "date" => Family::Text,
        "bigint" | "integer" | "smallint" | "boolean" => Family::Integer,
        "double precision" | "real" | "numeric" => Family::Real,
        "bytea" => Family::Blob,
        other => return Err(Error::internal(format!("schema parity: unknown PostgreSQL type {other:?}"))),
    })
}

/// SQLite's affinity rules (section 3.1 of its datatype page), with booleans as integers.
fn sqlite_family(declared: &str) -> Family {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") || t.contains("BOOL") {
        Family::Integer
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Family::Text
    } else if t.contains("BLOB") || t.is_empty() {
        Family::Blob
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Family::Real
    } else {
        // NUMERIC affinity: what SQLite gives DATE, TIMESTAMP and the like.
        Family::Text
    }
}

fn skip(table: &str) -> bool {
    table.starts_with("_sqlx") || table.starts_with("sqlite_")
}

/// The schema of a migrated database (PostgreSQL: the connection's current schema).
pub async fn read(db: &Database) -> Result<Schema, Error> {
    match db {
        Database::Postgres(pool) => read_postgres(pool).await,
        Database::Sqlite(pool) => read_sqlite(pool).await,
    }
}

async fn read_postgres(pool: &sqlx::PgPool) -> Result<Schema, Error> {
    let mut schema = Schema::new();
    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns c WHERE table_schema = current_schema() \
         AND EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = c.table_schema \
                     AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE')",
    )
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    for (table, column, data_type, nullable) in columns {
        if skip(&table) {
            continue;
        }
        let column_of = Column { family: pg_family(&data_type)?, nullable: nullable == "YES" };
        schema.entry(table).or_default().columns.insert(column, column_of);
    }
    // Keys from the catalogue: primary (contype p), unique (u, and unique indexes).
    let keys: Vec<(String, String, bool, Vec<String>)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, x.indisprimary, \
                ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n) \
                      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n) \
         FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_namespace s ON s.oid = t.relnamespace \
         WHERE s.nspname = current_schema() AND x.indisunique",
    )
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    for (table, _index, primary, columns) in keys {
        if skip(&table) {
            continue;
        }
        let t = schema.entry(table).or_default();
        if primary {
            t.primary_key = columns;
        } else {
            let mut sorted = columns;
            sorted.sort();
            t.unique.insert(sorted);
        }
    }
    let foreign: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT t.relname::text, a.attname::text, r.relname::text, ra.attname::text \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid \
         JOIN pg_namespace s ON s.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(col, refcol) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.col \
         JOIN pg_attribute ra ON ra.attrelid = r.oid AND ra.attnum = k.refcol \
         WHERE c.contype = 'f' AND s.nspname = current_schema()",
    )
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    for (table, column, referenced, referenced_column) in foreign {
        schema.entry(table).or_default().foreign.insert((column, referenced, referenced_column));
    }
    Ok(schema)
}

async fn read_sqlite(pool: &sqlx::SqlitePool) -> Result<Schema, Error> {
    let mut schema = Schema::new();
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(pool)
        .await
        .map_err(db_error)?;
    for table in tables.into_iter().filter(|t| !skip(t)) {
        let mut t = Table::default();
        let columns: Vec<(String, String, bool, i64)> =
            sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")
                .bind(&table)
                .fetch_all(pool)
                .await
                .map_err(db_error)?;
        let mut primary: Vec<(i64, String)> = Vec::new();
        for (name, declared, not_null, pk) in columns {
            if pk > 0 {
                primary.push((pk, name.clone()));
            }
            // A primary key column is never null in PostgreSQL; in SQLite only if declared so
            // (or an INTEGER PRIMARY KEY): compare what the data can hold.
            let column = Column { family: sqlite_family(&declared), nullable: !not_null && pk == 0 };
            t.columns.insert(name, column);
        }
        primary.sort();
        t.primary_key = primary.into_iter().map(|(_, n)| n).collect();
        let indexes: Vec<(String, bool, String)> =
            sqlx::query_as("SELECT name, \"unique\", origin FROM pragma_index_list(?1)")
                .bind(&table)
                .fetch_all(pool)
                .await
                .map_err(db_error)?;
        for (index, unique, origin) in indexes {
            if !unique || origin == "pk" {
                continue;
            }
            let mut columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_info(?1)")
                .bind(&index)
                .fetch_all(pool)
                .await
                .map_err(db_error)?;
            columns.sort();
            t.unique.insert(columns);
        }
        let foreign: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list(?1)")
                .bind(&table)
                .fetch_all(pool)
                .await
                .map_err(db_error)?;
        for (column, referenced, to) in foreign {
            // `to` is empty when the key names the referenced table's primary key implicitly.
            let to = match to {
                Some(to) if !to.is_empty() => to,
                _ => "id".to_owned(),
            };
            t.foreign.insert((column, referenced, to));
        }
        schema.insert(table, t);
    }
    Ok(schema)
}

/// Every difference between two schemas, one line each (empty when they are the same).
pub fn differences(postgres: &Schema, sqlite: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for name in postgres.keys().chain(sqlite.keys()).collect::<BTreeSet<_>>() {
        let (Some(p), Some(s)) = (postgres.get(name), sqlite.get(name)) else {
            let only = if postgres.contains_key(name) { "PostgreSQL" } else { "SQLite" };
            out.push(format!("table {name}: only in {only}"));
            continue;
        };
        for column in p.columns.keys().chain(s.columns.keys()).collect::<BTreeSet<_>>() {
            match (p.columns.get(column), s.columns.get(column)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => out.push(format!("{name}.{column}: PostgreSQL {a:?}, SQLite {b:?}")),
                (Some(_), None) => out.push(format!("{name}.{column}: only in PostgreSQL")),
                (None, _) => out.push(format!("{name}.{column}: only in SQLite")),
            }
        }
        if p.primary_key != s.primary_key {
            out.push(format!("{name}: primary key PostgreSQL {:?}, SQLite {:?}", p.primary_key, s.primary_key));
        }
        for key in p.unique.symmetric_difference(&s.unique) {
            let only = if p.unique.contains(key) { "PostgreSQL" } else { "SQLite" };
            out.push(format!("{name}: unique key {key:?} only in {only}"));
        }
        for key in p.foreign.symmetric_difference(&s.foreign) {
            let only = if p.foreign.contains(key) { "PostgreSQL" } else { "SQLite" };
            out.push(format!("{name}: foreign key {key:?} only in {only}"));
        }
    }
    out
}

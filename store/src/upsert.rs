//! Rows gathered in memory for one transaction and written with multi-row
//! upserts: one statement per table per [`MAX_ROWS_PER_STATEMENT`] rows
//! instead of one per record (the round trip per statement, not the data,
//! bounds a writer). Rows of the same key within a batch are merged first
//! (a statement may not touch a row twice), the later record winning except
//! for the columns the table keeps from the first (start and creation
//! times).
//!
//! On PostgreSQL the rows of a table travel instead as one JSON array bound
//! to one parameter, `INSERT ... SELECT ... FROM json_populate_recordset(NULL::<table>,
//! $1::json)` (the table's own row type converts the values): the
//! statement text is the same for every batch, so it is parsed and planned
//! once per connection, and the server does not build an expression per
//! value. A statement of [`MAX_ROWS_PER_STATEMENT`] rows of ten columns, as
//! `VALUES` with 10,000 parameters, was prepared again for every new row
//! count and cost the server more than the rows themselves.

use std::collections::HashMap;

use sqlx::AnyConnection;

/// Parameters per statement stay below SQLite's limit (32766).
const MAX_PARAMETERS: usize = 30_000;
/// Rows per statement at most.
pub const MAX_ROWS_PER_STATEMENT: usize = 1_000;
/// Rows per JSON statement at most (PostgreSQL).
pub const MAX_JSON_ROWS_PER_STATEMENT: usize = 10_000;

/// A column value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Val {
    /// BIGINT or INTEGER, maybe NULL.
    Int(Option<i64>),
    /// TEXT, maybe NULL.
    Text(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(Some(v))
    }
}

impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::Int(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(Some(v.to_string()))
    }
}

impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        Val::Text(v)
    }
}

/// How a table takes upserts.
#[derive(Debug)]
pub struct Table {
    /// Its name.
    pub name: &'static str,
    /// Every column written, the key columns first.
    pub columns: &'static [&'static str],
    /// How many leading columns form the key.
    pub key_columns: usize,
    /// Columns a later record of the same key does not overwrite in memory.
    pub keep_first: &'static [&'static str],
    /// What follows `ON CONFLICT (key)`: `DO NOTHING` or `DO UPDATE SET ...
    /// WHERE excluded.position > <table>.position`.
    pub on_conflict: &'static str,
}

/// The rows of one table waiting for the flush.
#[derive(Debug)]
pub struct Pending {
    table: &'static Table,
    rows: Vec<Vec<Val>>,
    by_key: HashMap<Vec<Val>, usize>,
    keep: Vec<usize>,
}

impl Pending {
    /// Nothing yet for `table`.
    pub fn new(table: &'static Table) -> Pending {
        let keep = table
            .keep_first
            .iter()
            .map(|c| {
                table
                    .columns
                    .iter()
                    .position(|x| x == c)
                    .expect("a kept column is a column")
            })
            .collect();
        Pending {
            table,
            rows: Vec::new(),
            by_key: HashMap::new(),
            keep,
        }
    }

    /// Adds a row (values in column order), merging it into an earlier row
    /// of the same key.
    pub fn push(&mut self, row: Vec<Val>) {
        assert_eq!(
            row.len(),
            self.table.columns.len(),
            "a value per column of {}",
            self.table.name
        );
        let key = row[..self.table.key_columns].to_vec();
        match self.by_key.get(&key) {
            Some(&i) => {
                let old = std::mem::replace(&mut self.rows[i], row);
                for &k in &self.keep {
                    self.rows[i][k] = old[k].clone();
                }
            }
            None => {
                self.by_key.insert(key, self.rows.len());
                self.rows.push(row);
            }
        }
    }

    /// Forgets the row of `key` (it is deleted in this batch).
    pub fn remove(&mut self, key: &[Val]) {
        if let Some(i) = self.by_key.remove(key) {
            self.rows.swap_remove(i);
            if let Some(moved) = self.rows.get(i) {
                let moved_key = moved[..self.table.key_columns].to_vec();
                self.by_key.insert(moved_key, i);
            }
        }
    }

    /// Writes the rows, a few statements at most; on PostgreSQL
    /// (`postgres`) as JSON.
    pub async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        postgres: bool,
    ) -> Result<(), sqlx::Error> {
        if postgres {
            return self.flush_json(conn).await;
        }
        let t = self.table;
        let width = t.columns.len();
        let per_statement = (MAX_PARAMETERS / width).min(MAX_ROWS_PER_STATEMENT);
        let key = t.columns[..t.key_columns].join(", ");
        for chunk in self.rows.chunks(per_statement) {
            let mut sql = format!("INSERT INTO {} ({}) VALUES ", t.name, t.columns.join(", "));
            let mut n = 0;
            for (r, _) in chunk.iter().enumerate() {
                if r > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 0..width {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    n += 1;
                    sql.push_str(&format!("${n}"));
                }
                sql.push(')');
            }
            sql.push_str(&format!(" ON CONFLICT ({key}) {}", t.on_conflict));
            let mut query = sqlx::query(&sql);
            for row in chunk {
                for v in row {
                    query = match v {
                        Val::Int(i) => query.bind(*i),
                        Val::Text(s) => query.bind(s.clone()),
                    };
                }
            }
            query.execute(&mut *conn).await?;
        }
        self.rows.clear();
        self.by_key.clear();
        Ok(())
    }

    /// PostgreSQL: each chunk of rows as one JSON array of objects, one
    /// statement whose text never changes.
    async fn flush_json(&mut self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let t = self.table;
        if self.rows.is_empty() {
            return Ok(());
        }
        let columns = t.columns.join(", ");
        let sql = format!(
            "INSERT INTO {name} ({columns}) SELECT {columns} FROM \
             json_populate_recordset(NULL::{name}, $1::json) ON CONFLICT ({key}) {conflict}",
            name = t.name,
            key = t.columns[..t.key_columns].join(", "),
            conflict = t.on_conflict
        );
        // `"column":` of each column, escaped once.
        let names: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{}:", json_string(c)))
            .collect();
        for chunk in self.rows.chunks(MAX_JSON_ROWS_PER_STATEMENT) {
            let mut json = String::with_capacity(chunk.len() * 64 * t.columns.len());
            json.push('[');
            for (r, row) in chunk.iter().enumerate() {
                if r > 0 {
                    json.push(',');
                }
                json.push('{');
                for (c, v) in row.iter().enumerate() {
                    if c > 0 {
                        json.push(',');
                    }
                    json.push_str(&names[c]);
                    match v {
                        Val::Int(Some(i)) => json.push_str(&i.to_string()),
                        Val::Text(Some(text)) => json.push_str(&json_string(text)),
                        Val::Int(None) | Val::Text(None) => json.push_str("null"),
                    }
                }
                json.push('}');
            }
            json.push(']');
            sqlx::query(&sql).bind(json).execute(&mut *conn).await?;
        }
        self.rows.clear();
        self.by_key.clear();
        Ok(())
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

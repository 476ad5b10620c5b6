//! Read-only connections for the readers (query CLI, `render`, the HTTP API): never migrating,
//! refusing files of another schema by name, and reading a database in a folder this user
//! cannot write (where SQLite cannot create a WAL file's `-shm`) as an immutable file.
//!
//! Input: a database path. Output: a read-only [`Connection`], or a [`StoreError`] naming the
//! file and what is wrong with it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, StoreError, runs, schema};

/// Opens `path` read-only for queries. In a folder this user cannot write (a copy on read-only
/// media, another user's folder), where SQLite cannot create the `-shm` file a WAL database
/// needs, the file is opened immutable instead, provided no service writes it.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open = |target: &str, flags| {
        Connection::open_with_flags(target, flags).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })
    };
    let conn = open(&path.to_string_lossy(), flags)?;
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    let found = match schema::version(&conn) {
        Err(e) if cannot_create_shm(&e) => {
            if runs::writer_alive(path) {
                return Err(StoreError::ReadOnlyFolder {
                    path: path.to_path_buf(),
                });
            }
            let conn = open(&immutable_uri(path)?, flags | OpenFlags::SQLITE_OPEN_URI)?;
            let found = schema::version(&conn).map_err(|e| read_error(path, e))?;
            return checked_version(path, conn, found);
        }
        other => other.map_err(|e| read_error(path, e))?,
    };
    checked_version(path, conn, found)
}

/// Whether a failed first read means SQLite could not create or open the `-shm` file.
fn cannot_create_shm(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
    )
}

/// `file:` URI of `path` with `immutable=1` (SQLite reads it without locks or `-shm`).
fn immutable_uri(path: &Path) -> Result<String, StoreError> {
    let abs = std::fs::canonicalize(path).map_err(|_| StoreError::Missing {
        path: path.to_path_buf(),
    })?;
    let url = url::Url::from_file_path(&abs).map_err(|()| StoreError::Missing {
        path: path.to_path_buf(),
    })?;
    Ok(format!("{url}?immutable=1"))
}

fn read_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
            path: path.to_path_buf(),
        },
        _ => StoreError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Readers never migrate: a file the service has not brought up to date yet, or one written
/// by a newer storetrack, is named as such rather than failing later on a missing table.
fn checked_version(path: &Path, conn: Connection, found: i64) -> Result<Connection, StoreError> {
    let path = path.to_path_buf();
    match found {
        0 => Err(StoreError::NotStoretrack { path }),
        v if v < schema::CURRENT_VERSION => Err(StoreError::Outdated { path, found }),
        v if v > schema::CURRENT_VERSION => Err(StoreError::TooNew { path, found }),
        _ => Ok(conn),
    }
}

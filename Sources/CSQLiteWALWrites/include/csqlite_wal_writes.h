#ifndef CSQLITE_WAL_WRITES_H
#define CSQLITE_WAL_WRITES_H

/// The name of a VFS that wraps the process's default one and gathers the writes SQLite makes to
/// a WAL file into one system call per run of adjacent writes, made before the WAL is synced
/// (see csqlite_wal_writes.c for why and when it is safe). Registered on the first call, not as
/// the default VFS; NULL if it could not be. Pass the name to sqlite3_open_v2.
const char *csqlite_wal_write_gathering_vfs(void);

/// Calls (writes to a WAL file) and system calls (pwrite) the VFS has made since the process began,
/// for tests.
void csqlite_wal_write_counts(long long *writes, long long *system_calls);

#endif

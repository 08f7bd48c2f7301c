// A VFS shim that gathers a WAL file's writes.
//
// Why: SQLite writes each WAL frame as two writes, its 24-byte header and its page, so a
// transaction that touches five B-tree pages makes ten pwrite system calls before its fsync. On a
// virtual machine each system call costs microseconds; the writes are adjacent, so one pwrite of
// the whole run does the same work.
//
// How: for a file SQLite opens as a WAL (SQLITE_OPEN_WAL), a write that continues the buffered
// run is copied into the buffer; anything else on that file (a read, a sync, a size query, a
// truncate, a lock, a write elsewhere, a close) first writes the buffer out with the default
// VFS's write. Every other file passes through untouched.
//
// When it is safe: other connections read a WAL's frames only after the writer published them in
// the WAL index, which the writer does after its commit's xSync on the WAL when synchronous is
// FULL or EXTRA, so the frames are in the file by then. With synchronous=NORMAL or OFF a commit
// does not sync the WAL and its frames could still be in the buffer when another connection reads
// them: use this VFS only for connections with synchronous=FULL or EXTRA (SQLiteConnection checks).
// A failed write of the buffer is returned by the call that caused it (for a commit, its xSync),
// so the commit fails and is not published, as a failed write would have failed it before.

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "csqlite_wal_writes.h"

// Under 128 KiB: the unix VFS writes at most 0x1ffff bytes per call (it masks the length to 17
// bits and takes a longer write for a short one, SQLITE_FULL). 96 KiB is 23 frames of 4 KiB pages.
#define GATHER_BYTES (96 * 1024)

typedef struct GatheringFile {
    sqlite3_file base;           // our methods
    sqlite3_file *real;          // the default VFS's file, allocated right after this struct
    int isWAL;
    unsigned char *buffer;       // WAL files only
    sqlite3_int64 bufferOffset;  // file offset of buffer[0]
    int bufferUsed;
} GatheringFile;

static sqlite3_vfs *defaultVFS;
static sqlite3_vfs gatheringVFS;
static sqlite3_io_methods gatheringMethods;
static _Atomic long long walWrites;
static _Atomic long long walSystemCalls;

static int flushBuffer(GatheringFile *file) {
    if (file->bufferUsed == 0) return SQLITE_OK;
    int used = file->bufferUsed;
    file->bufferUsed = 0;
    atomic_fetch_add_explicit(&walSystemCalls, 1, memory_order_relaxed);
    return file->real->pMethods->xWrite(file->real, file->buffer, used, file->bufferOffset);
}

static int gClose(sqlite3_file *f) {
    GatheringFile *file = (GatheringFile *)f;
    int flushed = flushBuffer(file);
    int closed = file->real->pMethods ? file->real->pMethods->xClose(file->real) : SQLITE_OK;
    free(file->buffer);
    file->buffer = NULL;
    return flushed != SQLITE_OK ? flushed : closed;
}

#define FLUSH_FIRST(file) do { int rc_ = flushBuffer(file); if (rc_ != SQLITE_OK) return rc_; } while (0)

static int gRead(sqlite3_file *f, void *out, int amount, sqlite3_int64 offset) {
    GatheringFile *file = (GatheringFile *)f;
    FLUSH_FIRST(file);
    return file->real->pMethods->xRead(file->real, out, amount, offset);
}

static int gWrite(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
    GatheringFile *file = (GatheringFile *)f;
    if (!file->isWAL) return file->real->pMethods->xWrite(file->real, data, amount, offset);
    atomic_fetch_add_explicit(&walWrites, 1, memory_order_relaxed);
    int continues = file->bufferUsed > 0 && offset == file->bufferOffset + file->bufferUsed;
    if (!continues || file->bufferUsed + amount > GATHER_BYTES) FLUSH_FIRST(file);
    if (amount > GATHER_BYTES) {
        atomic_fetch_add_explicit(&walSystemCalls, 1, memory_order_relaxed);
        return file->real->pMethods->xWrite(file->real, data, amount, offset);
    }
    if (file->bufferUsed == 0) file->bufferOffset = offset;
    memcpy(file->buffer + file->bufferUsed, data, (size_t)amount);
    file->bufferUsed += amount;
    return SQLITE_OK;
}

static int gTruncate(sqlite3_file *f, sqlite3_int64 size) {
    GatheringFile *file = (GatheringFile *)f;
    FLUSH_FIRST(file);
    return file->real->pMethods->xTruncate(file->real, size);
}

static int gSync(sqlite3_file *f, int flags) {
    GatheringFile *file = (GatheringFile *)f;
    FLUSH_FIRST(file);
    return file->real->pMethods->xSync(file->real, flags);
}

static int gFileSize(sqlite3_file *f, sqlite3_int64 *size) {
    GatheringFile *file = (GatheringFile *)f;
    FLUSH_FIRST(file);
    return file->real->pMethods->xFileSize(file->real, size);
}

static int gLock(sqlite3_file *f, int level) {
    GatheringFile *file = (GatheringFile *)f;
    FLUSH_FIRST(file);
    return file->real->pMethods->xLock(file->real, level);
}

static int gUnlock(sqlite3_file *f, int level) {
    GatheringFile *file = (GatheringFile *)f;
    FLUSH_FIRST(file);
    return file->real->pMethods->xUnlock(file->real, level);
}

static int gCheckReservedLock(sqlite3_file *f, int *out) {
    GatheringFile *file = (GatheringFile *)f;
    return file->real->pMethods->xCheckReservedLock(file->real, out);
}

static int gFileControl(sqlite3_file *f, int op, void *arg) {
    GatheringFile *file = (GatheringFile *)f;
    FLUSH_FIRST(file);
    return file->real->pMethods->xFileControl(file->real, op, arg);
}

static int gSectorSize(sqlite3_file *f) {
    GatheringFile *file = (GatheringFile *)f;
    return file->real->pMethods->xSectorSize(file->real);
}

static int gDeviceCharacteristics(sqlite3_file *f) {
    GatheringFile *file = (GatheringFile *)f;
    return file->real->pMethods->xDeviceCharacteristics(file->real);
}

static int gShmMap(sqlite3_file *f, int region, int size, int extend, void volatile **out) {
    GatheringFile *file = (GatheringFile *)f;
    return file->real->pMethods->xShmMap(file->real, region, size, extend, out);
}

static int gShmLock(sqlite3_file *f, int offset, int n, int flags) {
    GatheringFile *file = (GatheringFile *)f;
    return file->real->pMethods->xShmLock(file->real, offset, n, flags);
}

static void gShmBarrier(sqlite3_file *f) {
    GatheringFile *file = (GatheringFile *)f;
    file->real->pMethods->xShmBarrier(file->real);
}

static int gShmUnmap(sqlite3_file *f, int deleteFlag) {
    GatheringFile *file = (GatheringFile *)f;
    return file->real->pMethods->xShmUnmap(file->real, deleteFlag);
}

static int gFetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) {
    GatheringFile *file = (GatheringFile *)f;
    FLUSH_FIRST(file);
    return file->real->pMethods->xFetch(file->real, offset, amount, out);
}

static int gUnfetch(sqlite3_file *f, sqlite3_int64 offset, void *page) {
    GatheringFile *file = (GatheringFile *)f;
    return file->real->pMethods->xUnfetch(file->real, offset, page);
}

static int gOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *outFlags) {
    (void)vfs;
    GatheringFile *file = (GatheringFile *)f;
    memset(file, 0, sizeof(*file));
    file->real = (sqlite3_file *)(file + 1);
    int isWAL = (flags & SQLITE_OPEN_WAL) != 0;
    if (isWAL) {
        file->buffer = malloc(GATHER_BYTES);
        if (!file->buffer) return SQLITE_NOMEM;
    }
    int rc = defaultVFS->xOpen(defaultVFS, name, file->real, flags, outFlags);
    if (rc != SQLITE_OK) {
        free(file->buffer);
        file->buffer = NULL;
        // SQLite calls xClose only when pMethods is set: leave it unset, as the real file did.
        return rc;
    }
    file->isWAL = isWAL;
    file->base.pMethods = &gatheringMethods;
    return SQLITE_OK;
}

static int gDelete(sqlite3_vfs *v, const char *name, int syncDir) { (void)v; return defaultVFS->xDelete(defaultVFS, name, syncDir); }
static int gAccess(sqlite3_vfs *v, const char *name, int flags, int *out) { (void)v; return defaultVFS->xAccess(defaultVFS, name, flags, out); }
static int gFullPathname(sqlite3_vfs *v, const char *name, int n, char *out) { (void)v; return defaultVFS->xFullPathname(defaultVFS, name, n, out); }
static void *gDlOpen(sqlite3_vfs *v, const char *name) { (void)v; return defaultVFS->xDlOpen(defaultVFS, name); }
static void gDlError(sqlite3_vfs *v, int n, char *out) { (void)v; defaultVFS->xDlError(defaultVFS, n, out); }
static void (*gDlSym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return defaultVFS->xDlSym(defaultVFS, h, s); }
static void gDlClose(sqlite3_vfs *v, void *h) { (void)v; defaultVFS->xDlClose(defaultVFS, h); }
static int gRandomness(sqlite3_vfs *v, int n, char *out) { (void)v; return defaultVFS->xRandomness(defaultVFS, n, out); }
static int gSleep(sqlite3_vfs *v, int us) { (void)v; return defaultVFS->xSleep(defaultVFS, us); }
static int gCurrentTime(sqlite3_vfs *v, double *out) { (void)v; return defaultVFS->xCurrentTime(defaultVFS, out); }
static int gGetLastError(sqlite3_vfs *v, int n, char *out) { (void)v; return defaultVFS->xGetLastError(defaultVFS, n, out); }
static int gCurrentTimeInt64(sqlite3_vfs *v, sqlite3_int64 *out) { (void)v; return defaultVFS->xCurrentTimeInt64(defaultVFS, out); }

static const char *registered;

static void registerOnce(void) {
    defaultVFS = sqlite3_vfs_find(NULL);
    // The unix VFS: version 3 files (memory-mapped fetches) and version 2 or later VFS methods.
    if (!defaultVFS || defaultVFS->iVersion < 2) return;
    gatheringMethods = (sqlite3_io_methods){
        .iVersion = 3, .xClose = gClose, .xRead = gRead, .xWrite = gWrite, .xTruncate = gTruncate, .xSync = gSync,
        .xFileSize = gFileSize, .xLock = gLock, .xUnlock = gUnlock, .xCheckReservedLock = gCheckReservedLock,
        .xFileControl = gFileControl, .xSectorSize = gSectorSize, .xDeviceCharacteristics = gDeviceCharacteristics,
        .xShmMap = gShmMap, .xShmLock = gShmLock, .xShmBarrier = gShmBarrier, .xShmUnmap = gShmUnmap,
        .xFetch = gFetch, .xUnfetch = gUnfetch,
    };
    gatheringVFS = (sqlite3_vfs){
        .iVersion = 2, .szOsFile = (int)sizeof(GatheringFile) + defaultVFS->szOsFile, .mxPathname = defaultVFS->mxPathname,
        .zName = "jframe-wal-write-gathering", .xOpen = gOpen, .xDelete = gDelete, .xAccess = gAccess,
        .xFullPathname = gFullPathname, .xDlOpen = gDlOpen, .xDlError = gDlError, .xDlSym = gDlSym, .xDlClose = gDlClose,
        .xRandomness = gRandomness, .xSleep = gSleep, .xCurrentTime = gCurrentTime, .xGetLastError = gGetLastError,
        .xCurrentTimeInt64 = gCurrentTimeInt64,
    };
    if (sqlite3_vfs_register(&gatheringVFS, 0) == SQLITE_OK) registered = gatheringVFS.zName;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

const char *csqlite_wal_write_gathering_vfs(void) {
    pthread_once(&once, registerOnce);
    return registered;
}

void csqlite_wal_write_counts(long long *writes, long long *system_calls) {
    *writes = atomic_load_explicit(&walWrites, memory_order_relaxed);
    *system_calls = atomic_load_explicit(&walSystemCalls, memory_order_relaxed);
}

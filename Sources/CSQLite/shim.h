#include <sqlite3.h>

/// Turns off SQLite's memory-use statistics, which take a global mutex on every allocation
/// (SQLITE_CONFIG_MEMSTATUS; nothing here reads them). sqlite3_config is variadic, so Swift
/// cannot call it directly. Only takes effect before SQLite initialises (the first connection):
/// later it returns SQLITE_MISUSE and changes nothing.
static inline int csqlite_disable_memory_statistics(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

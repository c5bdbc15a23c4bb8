#ifndef RELANCE_CSQLITEPROCESS_SHIM_H
#define RELANCE_CSQLITEPROCESS_SHIM_H

#include <sqlite3.h>

/// sqlite3_config is variadic, which Swift cannot call. No memory statistics: with them on (the
/// default), every allocation and free inside SQLite takes one process-wide mutex, which the
/// writer and the readers contend for. Effective only before SQLite initialises; a later call
/// returns SQLITE_MISUSE and changes nothing.
static inline int RelanceSQLite_disableMemoryStatistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

#endif

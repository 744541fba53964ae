/**
 * The SQLite import connection's page cache (negative: KiB) while it runs a large sort (index
 * builds, a rebuild of the rollups): SQLite sorts in memory up to the cache's size before spilling
 * to temporary files, so with a smaller cache meanwhile, sort and cache together keep an import
 * within its memory bound, at no measurable cost in speed.
 */
export const SORTING_CACHE_KIB = -16 * 1024;

/** Bytes per CSV row assumed when estimating a file's rows from its size (real exports: 30–45). */
export const ASSUMED_ROW_BYTES = 40;

/**
 * When SQLite builds the secondary indexes after the load instead of during it: the file has at
 * least `minRows` rows (estimated) and at least `tableShare` times the rows already stored. Tests
 * set 0 and 0 to take that way with small files.
 */
export const bulkLoadTuning = { minRows: 50_000, tableShare: 0.5 };

import type { TableNames } from './schema';

/**
 * Every statement the SQL store runs against its entries table, written once for both engines.
 * Each is one atomic step as the database runs it; `:now` is the caller's clock in epoch
 * milliseconds, and `expires_at > :now` is in every read, so an expired row is invisible before
 * the cleanup job removes it. A write over an expired row starts afresh, as over no row.
 */
export function statements(names: TableNames) {
  const t = names.entries;
  /** Columns a plain write resets, so a value written over a verification is none any more. */
  const plain = 'attempts = NULL, bound_attempts = NULL, binding = NULL';
  const upsertValue = `INSERT INTO ${t} AS e (key, value, expires_at, written_at)
    VALUES (:key, :value, :expires, :now)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
      written_at = excluded.written_at, ${plain}`;
  /** Whether the row as it was before this statement is still live. */
  const live = 'e.expires_at > :now';

  return {
    get: `SELECT value FROM ${t} WHERE key = :key AND expires_at > :now`,

    set: upsertValue,

    /** Resolves a row when this call wrote: no row, or only an expired one, was there. */
    setIfAbsent: `${upsertValue} WHERE e.expires_at <= :now RETURNING 1 AS written`,

    /** Resolves `live` 1 when the row removed had not yet expired. */
    delete: `DELETE FROM ${t} WHERE key = :key
      RETURNING CASE WHEN expires_at > :now THEN 1 ELSE 0 END AS live`,

    /**
     * Fixed-window counters, any number at once (:key0, :expires0, …): a live counter counts up and
     * keeps its window; a missing or expired one starts at 1 with a window ending at its :expiresN.
     * Several rows in one statement, so a wrong guess counts on all its failure counters together.
     */
    increment(count: number) {
      const rows = Array.from(
        { length: count },
        (_, i) => `(:key${i}, '1', :expires${i}, :now)`,
      ).join(', ');
      return `INSERT INTO ${t} AS e (key, value, expires_at, written_at) VALUES ${rows}
        ON CONFLICT (key) DO UPDATE SET
          value = CASE WHEN ${live} THEN CAST(CAST(e.value AS BIGINT) + 1 AS TEXT) ELSE '1' END,
          expires_at = CASE WHEN ${live} THEN e.expires_at ELSE excluded.expires_at END,
          written_at = CASE WHEN ${live} THEN e.written_at ELSE excluded.written_at END,
          ${plain}
        RETURNING key, value, expires_at`;
    },

    /** Never below 0, never on a missing, expired or secret row, and the window stays. */
    decrement: `UPDATE ${t} SET value = CASE WHEN CAST(value AS BIGINT) > 0
        THEN CAST(CAST(value AS BIGINT) - 1 AS TEXT) ELSE '0' END
      WHERE key = :key AND expires_at > :now AND attempts IS NULL`,

    /**
     * A new verification replaces whatever was at its key: its codes (JSON in `value`), its binding
     * and fresh attempt lanes.
     */
    startVerification: `INSERT INTO ${t} AS e
        (key, value, expires_at, written_at, attempts, bound_attempts, binding)
      VALUES (:key, :value, :expires, :now, 0, 0, :binding)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
        written_at = excluded.written_at, attempts = 0, bound_attempts = 0,
        binding = excluded.binding`,

    /** A code joins the live verification: new codes and lifetime, same binding and lanes. */
    joinVerification: `UPDATE ${t} SET value = :value, expires_at = :expires, written_at = :now
      WHERE key = :key AND expires_at > :now AND attempts IS NOT NULL`,

    /** The live rows among :k0 … :kN: an attempt's verification and failure counters, a send's limits. */
    readMany(count: number) {
      const keys = Array.from({ length: count }, (_, i) => `:k${i}`).join(', ');
      return `SELECT key, value, expires_at, attempts, bound_attempts, binding FROM ${t}
        WHERE key IN (${keys}) AND expires_at > :now`;
    },

    /** Counts one attempt in a lane of the live verification; resolves its codes and the count. */
    countOpen: `UPDATE ${t} SET attempts = attempts + 1
      WHERE key = :key AND expires_at > :now AND attempts IS NOT NULL
      RETURNING value, attempts AS counted`,
    countBound: `UPDATE ${t} SET bound_attempts = bound_attempts + 1
      WHERE key = :key AND expires_at > :now AND attempts IS NOT NULL
      RETURNING value, bound_attempts AS counted`,

    /**
     * Consumes the verification an attempt matched, with the keys its success clears (:k0 is the
     * verification's key; every key is locked by the transaction).
     */
    consume(count: number) {
      const keys = Array.from({ length: count }, (_, i) => `:k${i}`).join(', ');
      return `DELETE FROM ${t} WHERE key IN (${keys})`;
    },

    /**
     * One page of every row, live or expired, in key order from :after (exclusive; :first = 1 for
     * the first page, so that even an empty key is listed).
     */
    scanPage: `SELECT key, expires_at, written_at FROM ${t}
      WHERE (:first = 1 OR key > :after) ORDER BY key LIMIT :limit`,

    /**
     * Removes at most :limit expired rows, oldest first, found through the expiry index. The outer
     * test holds even if a row was written again since the inner query found it.
     */
    sweep: `DELETE FROM ${t} WHERE key IN (
        SELECT key FROM ${t} WHERE expires_at <= :now ORDER BY expires_at LIMIT :limit
      ) AND expires_at <= :now`,

    /** Removes at most :limit rows of any kind: `clear`, in batches that hold no long lock. */
    clearBatch: `DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} ORDER BY key LIMIT :limit)`,

    /** Rows in all, and those expired but not yet removed. */
    counts: `SELECT COUNT(*) AS total,
        COALESCE(SUM(CASE WHEN expires_at <= :now THEN 1 ELSE 0 END), 0) AS expired
      FROM ${t}`,

    ping: 'SELECT 1 AS ok',
  };
}

export type Statements = ReturnType<typeof statements>;

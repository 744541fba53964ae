import { sql } from 'kysely';
import { formatCents } from '../../../money.js';
import type { DB } from '../../database.js';
import { repeatError, type RowError, type SaleRow, type SalesWriter } from '../../sales-writer.js';
import { mostlyStored, textField } from '../shared.js';
import { CopyIn } from './copy.js';

/**
 * PostgreSQL: rows stream into `COPY … FROM STDIN`, straight into `sales` while they are new.
 * COPY refuses the whole statement at the first identity already stored; the writer then rolls
 * back to a savepoint taken before it, and the rows are replayed into a temporary staging table
 * (unlogged, dropped with the transaction) and settled with set-based SQL: repeats within the
 * file, history of the rows replaced, and one INSERT … ON CONFLICT DO UPDATE. A file whose first
 * rows are mostly stored already (a corrected export sent again) goes to staging at once.
 */
export class PostgresSalesWriter implements SalesWriter {
  readonly method = 'postgres-copy';
  readonly loadsData = true;
  stored = 0;
  replaced = 0;
  private sent = 0;
  private copy: CopyIn | undefined;
  private staging: CopyIn | undefined;
  /** The direct COPY met a stored identity: the rows go to staging instead. */
  private refused = false;
  private stagingFirst: boolean | undefined;

  constructor(
    private readonly trx: DB,
    private readonly importId: number,
  ) {}

  async write(rows: SaleRow[]): Promise<RowError[]> {
    if (rows.length === 0) return [];
    this.stagingFirst ??= await mostlyStored(this.trx, sql`sales`, rows);
    this.sent += rows.length;
    if (this.stagingFirst) {
      await this.replay(rows);
      return [];
    }
    if (this.refused) return [];
    if (!this.copy) {
      await sql`SAVEPOINT zinc_copy`.execute(this.trx);
      this.copy = await CopyIn.start(this.trx, 'COPY sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line) FROM STDIN');
    }
    let text = '';
    const id = this.importId;
    for (const r of rows) {
      text += `${r.date}\t${textField(r.orderId)}\t${textField(r.productId)}\t${formatCents(r.amountCents)}\t${id}\t${r.line}\n`;
    }
    try {
      await this.copy.write(text);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      await this.refuse();
    }
    return [];
  }

  /** The direct COPY met a stored identity: back to before it; the rows will be replayed. */
  private async refuse(): Promise<void> {
    this.refused = true;
    await this.copy?.settle();
    await sql`ROLLBACK TO SAVEPOINT zinc_copy`.execute(this.trx);
  }

  async end() {
    if (this.stagingFirst) return { needsReplay: false, needsReconcile: true };
    if (this.copy && !this.refused) {
      try {
        this.stored = await this.copy.finish();
        await sql`RELEASE SAVEPOINT zinc_copy`.execute(this.trx);
        return { needsReplay: false };
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        await this.refuse();
      }
    }
    return { needsReplay: this.refused };
  }

  async replay(rows: SaleRow[]): Promise<void> {
    if (rows.length === 0) return;
    if (!this.staging) {
      await sql`CREATE TEMPORARY TABLE IF NOT EXISTS zinc_staging (
          line integer NOT NULL, date date NOT NULL,
          order_id varchar(64) COLLATE "C" NOT NULL, product_id varchar(64) COLLATE "C" NOT NULL,
          amount_sgd numeric(14,2) NOT NULL
        ) ON COMMIT DROP`.execute(this.trx);
      this.staging = await CopyIn.start(this.trx, 'COPY zinc_staging (line, date, order_id, product_id, amount_sgd) FROM STDIN');
    }
    let text = '';
    for (const r of rows) {
      text += `${r.line}\t${r.date}\t${textField(r.orderId)}\t${textField(r.productId)}\t${formatCents(r.amountCents)}\n`;
    }
    await this.staging.write(text);
  }

  async abort(): Promise<void> {
    await this.copy?.settle();
    await this.staging?.settle();
  }

  /**
   * Settles the staged rows (nothing of the file is in `sales`): repeats within the file defer to
   * their first line; the stored rows they replace go to history, in file order; then every first
   * line is inserted or replaces its stored row.
   */
  async reconcile(keep: number): Promise<{ errors: RowError[]; count: number }> {
    if (!this.staging) return { errors: [], count: 0 };
    await this.staging.finish();
    const { trx } = this;
    const id = this.importId;
    await sql`CREATE INDEX ON zinc_staging (order_id, product_id, line)`.execute(trx);
    await sql`ANALYZE zinc_staging`.execute(trx);
    const later = sql`SELECT line, order_id, product_id, first FROM (
        SELECT line, order_id, product_id, MIN(line) OVER (PARTITION BY order_id, product_id) AS first FROM zinc_staging
      ) r WHERE line > first`;
    const counted = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM (${later}) l`.execute(trx);
    const count = Number(counted.rows[0]?.n ?? 0);
    const errors: RowError[] = [];
    if (count > 0) {
      const { rows } = await sql<{ line: number; first: number; order_id: string; product_id: string }>`
        ${later} ORDER BY line LIMIT ${keep}`.execute(trx);
      for (const r of rows) errors.push(repeatError({ line: r.line, orderId: r.order_id, productId: r.product_id }, r.first));
      await sql`DELETE FROM zinc_staging st USING (${later}) l WHERE st.line = l.line`.execute(trx);
    }
    const history = await sql`INSERT INTO sales_history (replaced_by_import_id, date, order_id, product_id, amount_sgd, imported_file_id, source_line)
      SELECT ${sql.lit(id)}, s.date, s.order_id, s.product_id, s.amount_sgd, s.imported_file_id, s.source_line
      FROM zinc_staging st JOIN sales s ON s.order_id = st.order_id AND s.product_id = st.product_id
      ORDER BY st.line`.execute(trx);
    this.replaced = Number(history.numAffectedRows ?? 0n);
    const stored = await sql`INSERT INTO sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line)
      SELECT date, order_id, product_id, amount_sgd, ${sql.lit(id)}, line FROM zinc_staging ORDER BY line
      ON CONFLICT (order_id, product_id) DO UPDATE SET date = EXCLUDED.date, amount_sgd = EXCLUDED.amount_sgd,
        imported_file_id = EXCLUDED.imported_file_id, source_line = EXCLUDED.source_line`.execute(trx);
    this.stored = Number(stored.numAffectedRows ?? 0n);
    await sql`DROP TABLE zinc_staging`.execute(trx);
    this.staging = undefined;
    return { errors, count };
  }
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505';
}

import { SingleBar } from 'cli-progress';
import type { ImportProgress } from './import-progress.js';

/** Files smaller than this import too fast for a progress display to help. */
const LARGE_FILE_BYTES = 8 * 2 ** 20;
const PLAIN_EVERY_MS = 5000;

/**
 * Shows import progress for the CLI: a bar on a terminal, a plain line every few seconds when
 * stderr is a log file or a pipe (cron). Small files show nothing.
 */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr) {
  let bar: SingleBar | undefined;
  let current = '';
  let started = 0;
  let lastLine = 0;
  const finish = () => {
    bar?.stop();
    bar = undefined;
  };
  const report = (p: ImportProgress & { filename: string }) => {
    if (p.bytesTotal < LARGE_FILE_BYTES) return;
    const now = Date.now();
    if (p.filename !== current) {
      finish();
      current = p.filename;
      started = now;
      lastLine = now;
      if (stream.isTTY) {
        bar = new SingleBar(
          { format: `${p.filename} [{bar}] {percentage}% | {rows} rows | {rate} rows/s | eta {eta}s`, stream, hideCursor: true },
        );
        bar.start(p.bytesTotal, 0, { rows: 0, rate: 0 });
      }
    }
    const seconds = Math.max((now - started) / 1000, 0.001);
    const rate = Math.round(p.rowsRead / seconds);
    if (bar) {
      bar.update(p.bytesRead, { rows: p.rowsRead.toLocaleString('en'), rate: rate.toLocaleString('en') });
      if (p.bytesRead >= p.bytesTotal) finish();
    } else if (now - lastLine >= PLAIN_EVERY_MS || p.bytesRead >= p.bytesTotal) {
      lastLine = now;
      const pct = Math.floor((p.bytesRead / p.bytesTotal) * 100);
      stream.write(`${p.filename}: ${pct}% read, ${p.rowsRead.toLocaleString('en')} rows, ${rate.toLocaleString('en')} rows/s\n`);
    }
  };
  return { report, finish };
}

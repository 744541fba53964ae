/**
 * Display formatting. Money arrives from the API as exact decimal strings ("12345.67"); it is
 * formatted as text, digit for digit, never through a floating-point number.
 */

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

function group(digits: string): string {
  return digits.replace(/^0+(?=\d)/, '').replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "-12345.6" → "-S$12,345.60"; null → "—". */
export function formatMoney(value: string | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const match = DECIMAL.exec(value.trim());
  if (!match) return value;
  const [, sign, whole = '0', fraction = ''] = match;
  const isZero = /^0*$/.test(whole + fraction);
  return `${sign && !isZero ? '-' : ''}S$${group(whole)}.${fraction.padEnd(2, '0')}`;
}

/** A signed amount for changes: "+S$1,200.00", "-S$35.10", "S$0.00". */
export function formatSignedMoney(value: string | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const text = formatMoney(value);
  return text.startsWith('-') || /^S\$0\.00$/.test(text) ? text : `+${text}`;
}

/** 1234567 → "1,234,567". */
export function formatInteger(value: number): string {
  const sign = value < 0 ? '-' : '';
  return sign + group(String(Math.abs(Math.trunc(value))));
}

/** A signed integer change: "+12", "-3", "0". */
export function formatSignedInteger(value: number): string {
  return value > 0 ? `+${formatInteger(value)}` : formatInteger(value);
}

/** "12.50" → "+12.50%", "-3.10" → "-3.10%", null → null. */
export function formatPercent(value: string | null): string | null {
  if (value === null) return null;
  return value.startsWith('-') || /^0*\.?0*$/.test(value) ? `${value}%` : `+${value}%`;
}

/** Chart axis labels only (approximate by nature): 1234567 → "S$1.2M". */
export function compactMoney(value: number): string {
  const size = Math.abs(value);
  const sign = value < 0 ? '-' : '';
  if (size >= 1e9) return `${sign}S$${trim(size / 1e9)}B`;
  if (size >= 1e6) return `${sign}S$${trim(size / 1e6)}M`;
  if (size >= 1e3) return `${sign}S$${trim(size / 1e3)}k`;
  return `${sign}S$${trim(size)}`;
}

function trim(value: number): string {
  return value >= 100 ? value.toFixed(0) : String(Number(value.toFixed(1)));
}

/** 8_400_000 → "8.0 MB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

/** Seconds left, roughly: "about 14 s", "about 3 min". */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '';
  if (seconds < 1) return 'less than a second left';
  if (seconds < 90) return `about ${Math.round(seconds)} s left`;
  return `about ${Math.round(seconds / 60)} min left`;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const dateTime = new Intl.DateTimeFormat('en-SG', { dateStyle: 'medium', timeStyle: 'short' });

/** An ISO timestamp in the browser's time zone: "12 Mar 2024, 3:04 pm". */
export function formatTimestamp(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

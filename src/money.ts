/**
 * The one place where money changes form. Amounts are integer cents in code (bigint for sums),
 * decimal strings with two fraction digits on the wire, and DECIMAL(14,2) or integer cents in
 * the database. No binary floating point is involved anywhere.
 */

// An amount is /^-?\d+(\.\d{1,2})?$/ (ASCII digits only), scanned by hand below.
/** Absolute amounts must stay below 10^12 SGD, i.e. 10^14 cents: exact as a JS number. */
const LIMIT_CENTS = 100_000_000_000_000;
const MAX_WHOLE_DIGITS = 12;

const MINUS = 45;
const DOT = 46;
const ZERO = 48;

/**
 * Parses a CSV amount such as `-12.5` into integer cents; returns an error sentence instead on bad input.
 * `start` and `end` let the CSV reader parse a field where it lies in the text, without a copy.
 *
 * The digits are read as they are scanned: at most 12 significant whole digits and 2 fraction
 * digits, so every step is exact integer arithmetic.
 */
export function parseAmountCents(text: string, start = 0, end = text.length): number | string {
  let i = start;
  const negative = i < end && text.charCodeAt(i) === MINUS;
  if (negative) i++;
  const wholeFrom = i;
  let whole = 0;
  let significant = 0;
  for (; i < end; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) break;
    if (significant > 0 || d !== 0) significant++;
    if (significant <= MAX_WHOLE_DIGITS) whole = whole * 10 + d;
  }
  if (i === wholeFrom) return amountError(text.slice(start, end));
  let fraction = 0;
  if (i < end) {
    if (text.charCodeAt(i) !== DOT || end - i > 3 || end - i < 2) return amountError(text.slice(start, end));
    const tens = text.charCodeAt(i + 1) - ZERO;
    const units = end - i === 3 ? text.charCodeAt(i + 2) - ZERO : 0;
    if (tens < 0 || tens > 9 || units < 0 || units > 9) return amountError(text.slice(start, end));
    fraction = tens * 10 + units;
  }
  if (significant > MAX_WHOLE_DIGITS) return tooLarge(text.slice(start, end));
  const cents = whole * 100 + fraction;
  if (cents >= LIMIT_CENTS) return tooLarge(text.slice(start, end));
  return negative && cents !== 0 ? -cents : cents;
}

const COMMA = 44;

/**
 * Parses an amount that may use a decimal comma (`12,5`, `-0,99`), as semicolon- and tab-separated
 * exports from European locales write them: parseAmountCents's rules with a comma for the point.
 * A text without a comma is parseAmountCents's; one with a comma and a point is refused, as are
 * more than 2 digits after the comma (`1,234` is a thousands separator or a typo, never guessed).
 */
export function parseDecimalCommaCents(text: string, start = 0, end = text.length): number | string {
  let comma = -1;
  for (let i = start; i < end; i++) {
    if (text.charCodeAt(i) === COMMA) {
      comma = i;
      break;
    }
  }
  if (comma === -1) return parseAmountCents(text, start, end);
  for (let i = start; i < comma; i++) if (text.charCodeAt(i) === DOT) return commaError(text.slice(start, end));
  const digits = end - comma - 1;
  for (let i = comma + 1; i < end; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return commaError(text.slice(start, end));
  }
  if (digits === 0) return commaError(text.slice(start, end));
  if (digits > 2) return `"${clip(text.slice(start, end))}" has more than 2 digits after the decimal comma (no thousands separators)`;
  const whole = parseAmountCents(text, start, comma);
  if (typeof whole === 'string') {
    return whole.includes('too large') ? tooLarge(text.slice(start, end)) : commaError(text.slice(start, end));
  }
  const fraction = (text.charCodeAt(comma + 1) - ZERO) * 10 + (digits === 2 ? text.charCodeAt(comma + 2) - ZERO : 0);
  const cents = Math.abs(whole) + fraction;
  return text.charCodeAt(start) === MINUS && cents !== 0 ? -cents : cents;
}

function commaError(text: string): string {
  return `"${clip(text)}" is not a plain decimal such as 12,34 or 12.34 or -5 (no thousands separators or spaces)`;
}

/** Why `text` is not an amount, most specific reason first. */
function amountError(text: string): string {
  if (text === '') return 'amount_sgd is empty';
  if (/[,\s]/.test(text)) return `"${clip(text)}" is not a plain decimal (no thousands separators or spaces)`;
  if (/^-?\d*\.\d{3,}$/.test(text)) return `"${clip(text)}" has more than 2 fraction digits`;
  return `"${clip(text)}" is not a plain decimal such as 12.34 or -5`;
}

function tooLarge(text: string): string {
  return `"${clip(text)}" is too large (absolute value must be below 10^12)`;
}

/** Formats cents as a decimal string with exactly two fraction digits: 12345n → "123.45", -5 → "-0.05". */
export function formatCents(cents: bigint | number): string {
  const value = BigInt(cents);
  const abs = value < 0n ? -value : value;
  const text = `${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
  return value < 0n ? `-${text}` : text;
}

/** Reads an exact decimal string (as MySQL returns DECIMAL and SUM) into cents. */
export function decimalToCents(text: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new Error(`not a decimal: ${text}`);
  const fraction = (m[3] ?? '').padEnd(2, '0');
  if (/[^0]/.test(fraction.slice(2))) throw new Error(`more than 2 fraction digits: ${text}`);
  const cents = BigInt(m[2]!) * 100n + BigInt(fraction.slice(0, 2));
  return m[1] === '-' ? -cents : cents;
}

/** Divides cents, rounding half away from zero: the average order value rule. */
export function divideRounded(cents: bigint, divisor: bigint): bigint {
  if (divisor <= 0n) throw new RangeError('divisor must be positive');
  const negative = cents < 0n;
  const abs = negative ? -cents : cents;
  const quotient = (abs * 2n + divisor) / (divisor * 2n);
  return negative ? -quotient : quotient;
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

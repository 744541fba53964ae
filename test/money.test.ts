import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decimalToCents,
  divideRounded,
  formatCents,
  parseAmountCents,
} from '../src/money.js';
import { dialectModule } from '../src/db/dialects/index.js';
import type { DialectName } from '../src/db/database.js';

/** Money through a database's columns, as its dialect converts it. */
const centsFromDb = (kind: DialectName, value: string | number | bigint | null) => dialectModule(kind).centsFromDb(value);
const centsToDb = (kind: DialectName, cents: number) => dialectModule(kind).centsToDb(cents);


describe('parseAmountCents', () => {
  it.each([
    ['0', 0],
    ['12', 1200],
    ['12.5', 1250],
    ['12.50', 1250],
    ['-3.07', -307],
    ['999999999999.99', 99_999_999_999_999],
    ['007.10', 710],
    ['0.01', 1],
    ['-0.5', -50],
  ])('when given %j, then it returns %d cents', (text, cents) => {
    expect(parseAmountCents(text)).toBe(cents);
  });

  it('when given a negative zero, then it returns plain 0 (not -0)', () => {
    expect(Object.is(parseAmountCents('-0'), 0)).toBe(true);
    expect(Object.is(parseAmountCents('-0.00'), 0)).toBe(true);
  });

  it.each([
    '',
    '1,000.00',
    '12.345',
    '$12',
    '1e3',
    '+5',
    '.5',
    '12.',
    ' 12',
    '12 ',
    '12\n',
    '1000000000000',
    '-1000000000000.00',
    '999999999999.999',
    'abc',
    '١٢', // Arabic-Indic digits are not ASCII digits
    '--5',
  ])('when given %j, then it returns an error sentence instead of a number', (text) => {
    const result = parseAmountCents(text);
    expect(typeof result).toBe('string');
    expect((result as string).length).toBeGreaterThan(0);
  });

  it('when the input is bad, then the message quotes it (except when empty)', () => {
    expect(parseAmountCents('')).toBe('amount_sgd is empty');
    expect(parseAmountCents('$12')).toContain('"$12"');
  });

  it('when the input has a thousands separator or a space, then the message says so', () => {
    expect(parseAmountCents('1,000.00')).toMatch(/thousands separators or spaces/);
    expect(parseAmountCents(' 12')).toMatch(/thousands separators or spaces/);
  });

  it('when the input has three fraction digits, then the message says so', () => {
    expect(parseAmountCents('12.345')).toMatch(/more than 2 fraction digits/);
  });

  it('when the amount reaches 10^12, then the message says it is too large', () => {
    expect(parseAmountCents('1000000000000')).toMatch(/too large/);
    expect(parseAmountCents('-1000000000000.00')).toMatch(/too large/);
  });

  it('when the input is very long, then the message clips it', () => {
    const result = parseAmountCents(`x${'9'.repeat(100)}`);
    expect(typeof result).toBe('string');
    expect((result as string).length).toBeLessThan(120);
    expect(result).toContain('…');
  });

  it('when given a range of a longer text, then it reads only that range, as if sliced', () => {
    const line = '2024-01-01,ORD-1,SKU-1,-12.5\n';
    expect(parseAmountCents(line, 23, 28)).toBe(-1250);
    expect(parseAmountCents(line, 23, 29)).toBe(parseAmountCents('-12.5\n'));
    expect(parseAmountCents(line, 0, 10)).toBe('"2024-01-01" is not a plain decimal such as 12.34 or -5');
    expect(parseAmountCents(line, 5, 5)).toBe('amount_sgd is empty');
  });

  it('when the whole part has leading zeros, then only the significant digits count toward 10^12', () => {
    expect(parseAmountCents('0000000000000999999999999.99')).toBe(99_999_999_999_999);
    expect(parseAmountCents('00000000000001000000000000')).toMatch(/too large/);
  });

  // The regular-expression version this function replaced, kept as the oracle for its every answer.
  function regexParse(text: string): number | string {
    const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(text);
    const clip = (t: string) => (t.length > 40 ? `${t.slice(0, 40)}…` : t);
    if (!m) {
      if (text === '') return 'amount_sgd is empty';
      if (/[,\s]/.test(text)) return `"${clip(text)}" is not a plain decimal (no thousands separators or spaces)`;
      if (/^-?\d*\.\d{3,}$/.test(text)) return `"${clip(text)}" has more than 2 fraction digits`;
      return `"${clip(text)}" is not a plain decimal such as 12.34 or -5`;
    }
    const whole = m[2]!.replace(/^0+(?=\d)/, '');
    if (whole.length > 12) return `"${clip(text)}" is too large (absolute value must be below 10^12)`;
    const cents = Number(whole) * 100 + Number((m[3] ?? '').padEnd(2, '0'));
    if (cents >= 100_000_000_000_000) return `"${clip(text)}" is too large (absolute value must be below 10^12)`;
    return m[1] === '-' && cents !== 0 ? -cents : cents;
  }

  it('answers exactly as the regular expression did, for any text and any range of it', () => {
    const pieces = ['0', '1', '5', '9', '00', '999999', '-', '.', ',', ' ', '\t', 'e', '+', '١', 'x', '\n'];
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom(...pieces), maxLength: 20 }),
      fc.string({ maxLength: 8 }),
      fc.tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 16n }), fc.nat(999)).map(([neg, whole, f]) => `${neg ? '-' : ''}${whole}.${f}`),
    );
    fc.assert(
      fc.property(text, fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), (amount, before, after) => {
        const expected = regexParse(amount);
        expect(Object.is(parseAmountCents(amount), expected)).toBe(true);
        const around = before + amount + after;
        expect(Object.is(parseAmountCents(around, before.length, before.length + amount.length), expected)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('formatCents', () => {
  it.each([
    [12345n, '123.45'],
    [12345, '123.45'],
    [0n, '0.00'],
    [0, '0.00'],
    [5, '0.05'],
    [-5, '-0.05'],
    [-5n, '-0.05'],
    [-99, '-0.99'],
    [-100, '-1.00'],
    [-10, '-0.10'],
    [100, '1.00'],
    [99_999_999_999_999, '999999999999.99'],
    [123_456_789_012_345_678_901n, '1234567890123456789.01'],
  ])('formats %s cents as %j', (cents, text) => {
    expect(formatCents(cents)).toBe(text);
  });

  it('when given a fractional number of cents, then it throws instead of rounding', () => {
    expect(() => formatCents(1.5)).toThrow(RangeError);
  });
});

describe('decimalToCents', () => {
  it.each([
    ['123.45', 12345n],
    ['-0.10', -10n],
    ['5', 500n],
    ['0', 0n],
    ['0.1', 10n],
    ['-7.5', -750n],
    ['1.2300', 123n],
    ['12345678901234567.89', 1234567890123456789n],
  ])('reads %j as %s cents', (text, cents) => {
    expect(decimalToCents(text)).toBe(cents);
  });

  it.each(['1.235', '0.001', 'abc', '', '1.', '.5', '-', '1e3', ' 1'])('when given %j, then it throws', (text) => {
    expect(() => decimalToCents(text)).toThrow();
  });

  it('round-trips with formatCents', () => {
    for (const cents of [0n, 1n, -1n, 99n, -100n, 12345n, -987654321n]) {
      expect(decimalToCents(formatCents(cents))).toBe(cents);
    }
  });
});

describe('divideRounded', () => {
  it.each([
    [1001n, 2n, 501n], // 500.5 rounds up
    [-1001n, 2n, -501n], // -500.5 rounds away from zero
    [999n, 2n, 500n], // 499.5
    [-999n, 2n, -500n],
    [5n, 2n, 3n], // 2.5: half away from zero, not half to even
    [-5n, 2n, -3n],
    [1000n, 3n, 333n], // 333.33…
    [2n, 3n, 1n], // 0.66…
    [-2n, 3n, -1n],
    [1n, 3n, 0n], // 0.33…
    [-1n, 3n, 0n],
    [10n, 5n, 2n],
    [0n, 7n, 0n],
    [7n, 1n, 7n],
  ])('%s / %s rounds to %s', (cents, divisor, expected) => {
    expect(divideRounded(cents, divisor)).toBe(expected);
  });

  it('when the divisor is zero or negative, then it throws a RangeError', () => {
    expect(() => divideRounded(10n, 0n)).toThrow(RangeError);
    expect(() => divideRounded(10n, -2n)).toThrow(RangeError);
  });
});

describe('centsToDb / centsFromDb', () => {
  it('on mysql, writes cents as a decimal string', () => {
    expect(centsToDb('mysql', 12345)).toBe('123.45');
    expect(centsToDb('mysql', -10)).toBe('-0.10');
    expect(centsToDb('mysql', 0)).toBe('0.00');
  });

  it('on sqlite, writes cents as the integer itself', () => {
    expect(centsToDb('sqlite', 12345)).toBe(12345);
    expect(centsToDb('sqlite', -10)).toBe(-10);
  });

  it.each([
    ['123.45', 12345n],
    ['-0.10', -10n],
    ['5', 500n],
    ['0.00', 0n],
  ])('on mysql, reads the decimal string %j as %s cents', (value, cents) => {
    expect(centsFromDb('mysql', value)).toBe(cents);
  });

  it('on mysql, reads a NULL sum as 0 cents', () => {
    expect(centsFromDb('mysql', null)).toBe(0n);
  });

  it('on mysql, rejects a decimal with more than two significant fraction digits', () => {
    expect(() => centsFromDb('mysql', '1.005')).toThrow();
  });

  it.each([
    [12345, 12345n],
    [-10, -10n],
    [0, 0n],
    [12345n, 12345n],
    [null, 0n],
  ])('on sqlite, reads %s as %s cents', (value, cents) => {
    expect(centsFromDb('sqlite', value)).toBe(cents);
  });

  it('on sqlite, rejects numbers that are not exact integer cents', () => {
    expect(() => centsFromDb('sqlite', 1.5)).toThrow(RangeError);
    expect(() => centsFromDb('sqlite', 2 ** 53)).toThrow(RangeError);
  });

  it('round-trips every amount on both databases', () => {
    for (const kind of ['mysql', 'sqlite'] as const) {
      for (const cents of [-99_999_999_999_999, -10, -1, 0, 5, 12345, 99_999_999_999_999]) {
        expect(centsFromDb(kind, centsToDb(kind, cents)), `${kind} ${cents}`).toBe(BigInt(cents));
      }
    }
  });
});

describe('summing amounts', () => {
  it('when 0.10 is added ten thousand times as cents, then the total is exactly 1000.00, unlike float addition', () => {
    const tenCents = parseAmountCents('0.10');
    expect(tenCents).toBe(10);

    let cents = 0n;
    let float = 0;
    for (let i = 0; i < 10_000; i++) {
      cents += BigInt(tenCents as number);
      float += 0.1;
    }
    expect(formatCents(cents)).toBe('1000.00');
    // Why cents: binary floating point drifts away from the decimal total.
    expect(float).not.toBe(1000);
  });
});

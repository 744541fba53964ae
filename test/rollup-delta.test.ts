import { describe, expect, it } from 'vitest';
import { basketKey, basketName, idLess, RollupDelta, splitBasketKey } from '../src/write/rollup-delta.js';

describe('RollupDelta', () => {
  it('when sums pass the exact range of doubles, then they stay exact to the cent', () => {
    const delta = new RollupDelta();
    const big = 99_999_999_999_999; // just under 10^12 SGD, the largest amount a row may hold
    for (let i = 0; i < 1000; i++) delta.addRow('2024-01-01', `O-${i}`, 'P', big);
    delta.addRow('2024-01-01', 'O-x', 'P', -1);
    delta.endRuns();
    const [day] = [...delta.dayChanges()];
    expect(day).toEqual({ date: '2024-01-01', cents: 99_999_999_999_999_000n - 1n, sales: 1001, orders: 1001 });
    const [productDay] = [...delta.productDayChanges()];
    expect(productDay!.cents).toBe(99_999_999_999_999_000n - 1n);
  });

  it('when an order\'s lines come in one run, then it counts once a day, with its basket, and its lines if it spans days', () => {
    const delta = new RollupDelta();
    delta.addRow('2024-01-02', 'O-1', 'B', 100);
    delta.addRow('2024-01-02', 'O-1', 'A', 100);
    delta.addRow('2024-01-03', 'O-1', 'C', 100);
    delta.addRow('2024-01-03', 'O-2', 'C', 100);
    delta.endRuns();
    expect([...delta.dayChanges()].map((d) => [d.date, d.orders, d.sales])).toEqual([
      ['2024-01-02', 1, 2],
      ['2024-01-03', 2, 2],
    ]);
    const baskets = [...delta.basketDayChanges()];
    expect(baskets).toEqual([{ basket: 0, date: '2024-01-02', orders: 1 }]);
    expect(delta.basketName(0)).toBe(basketName('1:A1:B'));
    expect(delta.basketProducts(0)).toEqual(['A', 'B']);
    expect(delta.multidayDays).toEqual([
      { orderId: 'O-1', date: '2024-01-02', prevDate: null },
      { orderId: 'O-1', date: '2024-01-03', prevDate: '2024-01-02' },
    ]);
    expect(delta.multidayLines).toHaveLength(3);
    expect(delta.runsMayRepeat()).toBe(false);
    expect([delta.orderMin, delta.orderMax]).toEqual(['O-1', 'O-2']);
  });

  it('when order ids fall back and one comes again, then the runs may repeat; when they fall back without repeating, not', () => {
    const again = new RollupDelta();
    for (const order of ['O-9', 'O-10', 'O-9']) again.addRow('2024-01-01', order, 'P', 1);
    again.endRuns();
    expect(again.rising).toBe(false);
    expect(again.runsMayRepeat()).toBe(true);
    const distinct = new RollupDelta();
    for (const order of ['O-9', 'O-10', 'O-11']) distinct.addRow('2024-01-01', order, 'P', 1);
    distinct.endRuns();
    expect(distinct.rising).toBe(false);
    expect(distinct.runsMayRepeat()).toBe(false);
  });

  it('compares ids in code point order, as utf8mb4_bin and SQLite do, and basket keys round-trip', () => {
    expect(idLess('\uFFFD', '\u{1F600}')).toBe(true);
    expect('\u{1F600}' < '\uFFFD').toBe(true); // what plain UTF-16 order would say
    expect(idLess('a', 'ab')).toBe(true);
    expect(idLess('ab', 'a')).toBe(false);
    const key = basketKey(['x\u{1F600}', 'x\uFFFD', 'ab:3']);
    expect(key).toBe('4:ab:32:x\uFFFD2:x\u{1F600}');
    expect(splitBasketKey(key)).toEqual(['ab:3', 'x\uFFFD', 'x\u{1F600}']);
  });
});

describe('ids under MySQL\'s PAD SPACE comparison', () => {
  it('when one id is another plus characters below a space, then the longer sorts first, as utf8mb4_bin does', () => {
    expect(idLess('A', 'A\u0001')).toBe(true); // binary: a prefix first (SQLite)
    expect(idLess('A', 'A\u0001', true)).toBe(false);
    expect(idLess('A\u0001', 'A', true)).toBe(true);
    expect(idLess('A', 'A!', true)).toBe(true);
    expect(basketKey(['P', 'P\u0001'], true)).toBe('2:P\u00011:P');
    expect(basketKey(['P', 'P\u0001'])).toBe('1:P2:P\u0001');
    const delta = new RollupDelta(true);
    for (const order of ['A', 'A\u0001']) delta.addRow('2024-01-01', order, 'P', 1);
    delta.endRuns();
    expect([delta.orderMin, delta.orderMax]).toEqual(['A\u0001', 'A']);
  });
});

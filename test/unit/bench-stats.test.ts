// Percentile math and summaries of the benchmark (bench/stats.ts).
import test from 'tape';
import { percentile, ratio, round, roundSummary, summarize } from '../../bench/stats.ts';

test('percentile: linear interpolation between closest ranks (R-7, numpy default)', (t) => {
  t.equal(percentile([5], 50), 5, 'one sample is every percentile');
  t.equal(percentile([1, 2], 50), 1.5, 'midpoint of two');
  t.equal(percentile([3, 1, 2], 50), 2, 'order of input does not matter');
  t.equal(percentile([1, 2, 3, 4], 50), 2.5);
  t.equal(percentile([1, 2, 3, 4], 0), 1, 'p0 is the minimum');
  t.equal(percentile([1, 2, 3, 4], 100), 4, 'p100 is the maximum');
  t.equal(round(percentile([1, 2, 3, 4], 95), 6), 3.85, 'p95 of 1..4 (numpy: 3.85)');
  const fifty = Array.from({ length: 50 }, (_, i) => i + 1);
  t.equal(round(percentile(fifty, 95), 6), 47.55, 'p95 of 1..50 lies between the 47th and 48th (numpy: 47.55)');
  t.equal(percentile(fifty, 50), 25.5, 'p50 of 1..50');
  const withOutlier = [...fifty.slice(0, 49), 10_000];
  t.equal(round(percentile(withOutlier, 95), 6), 47.55, 'one huge outlier does not move p95 of 50');
  t.end();
});

test('percentile: refuses what it cannot summarize', (t) => {
  t.throws(() => percentile([], 50), /no samples/);
  t.throws(() => percentile([1], 101), /0\.\.100/);
  t.throws(() => percentile([1], -1), /0\.\.100/);
  t.throws(() => percentile([1, NaN], 50), /not a finite number/);
  t.throws(() => summarize([]), /no samples/);
  t.throws(() => summarize([1, Infinity]), /not a finite number/);
  t.end();
});

test('summarize: n, min, max, mean, p50, p95', (t) => {
  const s = summarize([4, 1, 3, 2]);
  t.deepEqual(s, { n: 4, min: 1, max: 4, mean: 2.5, p50: 2.5, p95: percentile([1, 2, 3, 4], 95) });
  t.deepEqual(roundSummary({ n: 2, min: 1.23456, max: 2.98765, mean: 2.111111, p50: 2.111111, p95: 2.9 }, 2), {
    n: 2,
    min: 1.23,
    max: 2.99,
    mean: 2.11,
    p50: 2.11,
    p95: 2.9,
  });
  t.end();
});

test('ratio: null when the floor is not a positive number', (t) => {
  t.equal(ratio(3, 1.5), 2);
  t.equal(ratio(3, 0), null);
  t.equal(ratio(3, -1), null);
  t.equal(ratio(NaN, 1), null);
  t.end();
});

import test from 'tape';

test('the test runner counts assertions', (t) => {
  t.pass('tape runs under tsx');
  t.end();
});

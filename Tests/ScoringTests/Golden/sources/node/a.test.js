const test = require('node:test');
const assert = require('node:assert');

test('adds numbers', () => { assert.strictEqual(1 + 1, 2); });
test('fails on purpose', () => { assert.strictEqual(1 + 1, 3); });
test('skipped test', { skip: 'not today' }, () => {});
test('todo test', { todo: 'later' }, () => { assert.fail('not done'); });
test('todo that passes', { todo: true }, () => {});
test('name with # hash and - dash', () => {});
test('parent suite', async (t) => {
  await t.test('child passes', () => {});
  await t.test('child fails', () => { assert.ok(false); });
  await t.test('child with grandchildren', async (t2) => {
    await t2.test('grandchild', () => {});
  });
});

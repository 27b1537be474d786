const { describe, it } = require('node:test');
const assert = require('node:assert');

describe('math', () => {
  it('multiplies', () => { assert.strictEqual(2 * 3, 6); });
  it.skip('skipped in describe', () => {});
});
it('top level it', () => {});

'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const ptr = require('../lib');

const DOC = {
  foo: ['bar', 'baz'],
  '': 0,
  'a/b': 1,
  'c%d': 2,
  'm~n': 8,
  nested: { list: [{ id: 1 }, { id: 2 }] },
};

test('parse splits tokens', () => {
  assert.deepEqual(ptr.parse('/foo/0'), ['foo', '0']);
  assert.deepEqual(ptr.parse(''), []);
  assert.deepEqual(ptr.parse('/'), ['']);
});

test('parse decodes escapes', () => {
  assert.deepEqual(ptr.parse('/a~1b'), ['a/b']);
  assert.deepEqual(ptr.parse('/m~0n'), ['m~n']);
});

test('parse rejects relative pointers and bad escapes', () => {
  assert.throws(() => ptr.parse('foo'), ptr.PointerError);
  assert.throws(() => ptr.parse('/a~2'), ptr.PointerError);
});

test('get resolves RFC 6901 examples', () => {
  assert.deepEqual(ptr.get(DOC, ''), DOC);
  assert.deepEqual(ptr.get(DOC, '/foo'), ['bar', 'baz']);
  assert.equal(ptr.get(DOC, '/foo/0'), 'bar');
  assert.equal(ptr.get(DOC, '/'), 0);
  assert.equal(ptr.get(DOC, '/a~1b'), 1);
  assert.equal(ptr.get(DOC, '/m~0n'), 8);
  assert.equal(ptr.get(DOC, '/nested/list/1/id'), 2);
});

test('get with URI fragment', () => {
  assert.equal(ptr.get(DOC, '#/c%25d'), 2);
});

test('get throws on missing path', () => {
  assert.throws(() => ptr.get(DOC, '/nope'), ptr.PointerError);
  assert.throws(() => ptr.get(DOC, '/foo/5'), ptr.PointerError);
});

test('has', () => {
  assert.equal(ptr.has(DOC, '/foo/1'), true);
  assert.equal(ptr.has(DOC, '/foo/2'), false);
});

test('compile round-trips', () => {
  const tokens = ['a/b', 'm~n', '0'];
  assert.equal(ptr.compile(tokens), '/a~1b/m~0n/0');
  assert.deepEqual(ptr.parse(ptr.compile(tokens)), tokens);
});

test('set creates intermediate objects', () => {
  const doc = {};
  ptr.set(doc, '/a/b/c', 1, { create: true });
  assert.deepEqual(doc, { a: { b: { c: 1 } } });
  assert.throws(() => ptr.set({}, '/x/y', 1));
});

test('set appends with dash', () => {
  const doc = { list: [1] };
  ptr.set(doc, '/list/-', 2);
  assert.deepEqual(doc.list, [1, 2]);
});

test('list enumerates pointers', () => {
  assert.deepEqual(ptr.list({ a: [1], b: 2 }), ['', '/a', '/a/0', '/b']);
});

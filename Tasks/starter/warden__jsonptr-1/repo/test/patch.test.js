'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { applyPatch, diff, deepEqual, PatchError } = require('../lib');

test('add to object and array', () => {
  const doc = { a: [1, 3] };
  const out = applyPatch(doc, [
    { op: 'add', path: '/b', value: 'x' },
    { op: 'add', path: '/a/1', value: 2 },
    { op: 'add', path: '/a/-', value: 4 },
  ]);
  assert.deepEqual(out, { a: [1, 2, 3, 4], b: 'x' });
  assert.deepEqual(doc, { a: [1, 3] }, 'input is not mutated');
});

test('add past the end fails', () => {
  assert.throws(() => applyPatch({ a: [1] }, [{ op: 'add', path: '/a/3', value: 0 }]), PatchError);
});

test('remove', () => {
  const out = applyPatch({ a: 1, b: [1, 2, 3] }, [
    { op: 'remove', path: '/a' },
    { op: 'remove', path: '/b/0' },
  ]);
  assert.deepEqual(out, { b: [2, 3] });
});

test('remove missing fails', () => {
  assert.throws(() => applyPatch({}, [{ op: 'remove', path: '/a' }]), PatchError);
});

test('replace', () => {
  assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'replace', path: '/a', value: 2 }]), { a: 2 });
  assert.throws(() => applyPatch({}, [{ op: 'replace', path: '/a', value: 2 }]), PatchError);
});

test('move and copy', () => {
  const out = applyPatch({ a: { x: 1 }, b: [] }, [
    { op: 'copy', from: '/a/x', path: '/b/-' },
    { op: 'move', from: '/a', path: '/c' },
  ]);
  assert.deepEqual(out, { b: [1], c: { x: 1 } });
});

test('move into own child fails', () => {
  assert.throws(() => applyPatch({ a: { b: {} } }, [{ op: 'move', from: '/a', path: '/a/b/c' }]), PatchError);
});

test('test op', () => {
  const doc = { a: { b: [1, { c: null }] } };
  assert.deepEqual(applyPatch(doc, [{ op: 'test', path: '/a', value: { b: [1, { c: null }] } }]), doc);
  assert.throws(() => applyPatch(doc, [{ op: 'test', path: '/a/b/0', value: '1' }]), PatchError);
});

test('patch is atomic', () => {
  const doc = { a: 1 };
  assert.throws(() => applyPatch(doc, [
    { op: 'replace', path: '/a', value: 2 },
    { op: 'remove', path: '/zzz' },
  ]), /operation 1/);
  assert.deepEqual(doc, { a: 1 });
});

test('validation errors', () => {
  assert.throws(() => applyPatch({}, [{ op: 'frobnicate', path: '/a' }]), /unknown op/);
  assert.throws(() => applyPatch({}, [{ op: 'add', path: '/a' }]), /missing "value"/);
});

test('deepEqual', () => {
  assert.equal(deepEqual({ a: [1, 2] }, { a: [1, 2] }), true);
  assert.equal(deepEqual({ a: 1 }, { a: 1, b: 2 }), false);
  assert.equal(deepEqual([1], { 0: 1 }), false);
});

test('diff produces a patch that applies', () => {
  const a = { x: 1, y: { z: 2 }, gone: true };
  const b = { x: 1, y: { z: 3 }, added: [1] };
  const ops = diff(a, b);
  assert.deepEqual(applyPatch(a, ops), b);
});

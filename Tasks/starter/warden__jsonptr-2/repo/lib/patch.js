'use strict';

// JSON Patch (RFC 6902).

const { PatchError, PointerError } = require('./errors');
const { parse, compile, get, locateParent } = require('./pointer');

const INDEX = /^[0-9]+$/;

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

function arrayIndex(arr, key, { allowEnd }) {
  if (key === '-' && allowEnd) return arr.length;
  if (!INDEX.test(key)) throw new PatchError(`invalid array index ${JSON.stringify(key)}`);
  const i = Number(key);
  const max = allowEnd ? arr.length : arr.length - 1;
  if (i > max) throw new PatchError(`array index ${i} out of range`);
  return i;
}

function add(doc, path, value) {
  const tokens = parse(path);
  if (tokens.length === 0) return value;
  const { parent, key } = locateParent(doc, tokens);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(parent, key, { allowEnd: true }), 0, value);
  } else {
    parent[key] = value;
  }
  return doc;
}

function remove(doc, path) {
  const tokens = parse(path);
  if (tokens.length === 0) throw new PatchError('cannot remove the root');
  const { parent, key } = locateParent(doc, tokens);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(parent, key, { allowEnd: false }), 1);
  } else {
    if (!Object.prototype.hasOwnProperty.call(parent, key)) {
      throw new PatchError(`path not found: ${path}`);
    }
    delete parent[key];
  }
  return doc;
}

function replace(doc, path, value) {
  const tokens = parse(path);
  if (tokens.length === 0) return value;
  get(doc, tokens); // must exist
  const { parent, key } = locateParent(doc, tokens);
  if (Array.isArray(parent)) {
    parent[arrayIndex(parent, key, { allowEnd: false })] = value;
  } else {
    parent[key] = value;
  }
  return doc;
}

function isPrefix(from, path) {
  const a = parse(from);
  const b = parse(path);
  return a.length < b.length && a.every((t, i) => t === b[i]);
}

const OPERATIONS = {
  add: (doc, op) => add(doc, op.path, clone(op.value)),
  remove: (doc, op) => remove(doc, op.path),
  replace: (doc, op) => replace(doc, op.path, clone(op.value)),
  move(doc, op) {
    if (op.from === op.path) return doc;
    if (isPrefix(op.from, op.path)) {
      throw new PatchError('cannot move a value into one of its children');
    }
    const value = get(doc, op.from);
    doc = remove(doc, op.from);
    return add(doc, op.path, value);
  },
  copy: (doc, op) => add(doc, op.path, clone(get(doc, op.from))),
  test(doc, op) {
    const actual = get(doc, op.path);
    if (!deepEqual(actual, op.value)) {
      throw new PatchError(`test failed at ${op.path}`);
    }
    return doc;
  },
};

function validate(op, index) {
  if (op === null || typeof op !== 'object') throw new PatchError('operation must be an object', index, op);
  if (!Object.prototype.hasOwnProperty.call(OPERATIONS, op.op)) {
    throw new PatchError(`unknown op ${JSON.stringify(op.op)}`, index, op);
  }
  if (typeof op.path !== 'string') throw new PatchError('missing "path"', index, op);
  if ((op.op === 'move' || op.op === 'copy') && typeof op.from !== 'string') {
    throw new PatchError('missing "from"', index, op);
  }
  if (['add', 'replace', 'test'].includes(op.op) && !('value' in op)) {
    throw new PatchError('missing "value"', index, op);
  }
}

// Apply a patch. The input document is never mutated; the patch is atomic.
function applyPatch(doc, operations) {
  if (!Array.isArray(operations)) throw new PatchError('patch must be an array');
  let result = clone(doc);
  operations.forEach((op, index) => {
    validate(op, index);
    try {
      result = OPERATIONS[op.op](result, op);
    } catch (err) {
      if (err instanceof PatchError && err.index === undefined) {
        throw new PatchError(err.message, index, op);
      }
      if (err instanceof PointerError) throw new PatchError(err.message, index, op);
      throw err;
    }
  });
  return result;
}

// Produce a patch turning `a` into `b` (objects compared key by key, arrays replaced).
function diff(a, b, prefix = []) {
  if (deepEqual(a, b)) return [];
  const bothObjects = a && b && typeof a === 'object' && typeof b === 'object'
    && !Array.isArray(a) && !Array.isArray(b);
  if (!bothObjects) return [{ op: 'replace', path: compile(prefix), value: clone(b) }];
  const ops = [];
  for (const k of Object.keys(a)) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) ops.push({ op: 'remove', path: compile(prefix.concat(k)) });
  }
  for (const k of Object.keys(b)) {
    if (!Object.prototype.hasOwnProperty.call(a, k)) {
      ops.push({ op: 'add', path: compile(prefix.concat(k)), value: clone(b[k]) });
    } else {
      ops.push(...diff(a[k], b[k], prefix.concat(k)));
    }
  }
  return ops;
}

module.exports = { applyPatch, diff, deepEqual, PatchError };

'use strict';

// JSON Pointer (RFC 6901).

const { PointerError } = require('./errors');

const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

function escapeToken(token) {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapeToken(token) {
  if (/~[^01]|~$/.test(token)) {
    throw new PointerError(`invalid escape in token ${JSON.stringify(token)}`);
  }
  return token.replace(/~0/g, '~').replace(/~1/g, '/');
}

// "/a/b~1c" -> ["a", "b/c"]; "" -> []
function parse(pointer) {
  if (typeof pointer !== 'string') {
    throw new PointerError('pointer must be a string', pointer);
  }
  if (pointer === '') return [];
  if (pointer[0] === '#') {
    return parse(decodeURIComponent(pointer.slice(1)));
  }
  if (pointer[0] !== '/') {
    throw new PointerError(`pointer must start with "/": ${JSON.stringify(pointer)}`, pointer);
  }
  return pointer.slice(1).split('/').map(unescapeToken);
}

function compile(tokens) {
  return tokens.map((t) => '/' + escapeToken(t)).join('');
}

function isIndex(token) {
  return ARRAY_INDEX.test(token);
}

function hasOwn(obj, key) {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

// Resolve one step; returns undefined when the child does not exist.
function step(value, token) {
  if (Array.isArray(value)) {
    if (!isIndex(token)) return undefined;
    const i = Number(token);
    return i < value.length ? value[i] : undefined;
  }
  if (value !== null && typeof value === 'object') {
    return hasOwn(value, token) ? value[token] : undefined;
  }
  return undefined;
}

function get(doc, pointer) {
  const tokens = Array.isArray(pointer) ? pointer : parse(pointer);
  let value = doc;
  for (const token of tokens) {
    value = step(value, token);
    if (value === undefined) {
      throw new PointerError(`path not found: ${compile(tokens)}`, compile(tokens));
    }
  }
  return value;
}

function has(doc, pointer) {
  try {
    get(doc, pointer);
    return true;
  } catch (err) {
    if (err instanceof PointerError) return false;
    throw err;
  }
}

// Walk to the parent of the pointer's target: returns { parent, key }.
function locateParent(doc, pointer) {
  const tokens = Array.isArray(pointer) ? pointer : parse(pointer);
  if (tokens.length === 0) {
    throw new PointerError('the root has no parent', '');
  }
  const parent = get(doc, tokens.slice(0, -1));
  if (parent === null || typeof parent !== 'object') {
    throw new PointerError(`parent of ${compile(tokens)} is not a container`, compile(tokens));
  }
  return { parent, key: tokens[tokens.length - 1], tokens };
}

// Set a value, creating intermediate objects when `create` is true.
function set(doc, pointer, value, { create = false } = {}) {
  const tokens = Array.isArray(pointer) ? pointer : parse(pointer);
  if (tokens.length === 0) return value;
  let node = doc;
  for (let i = 0; i < tokens.length - 1; i++) {
    const token = tokens[i];
    let next = step(node, token);
    if (next === undefined) {
      if (!create || Array.isArray(node)) {
        throw new PointerError(`path not found: ${compile(tokens.slice(0, i + 1))}`);
      }
      next = {};
      node[token] = next;
    }
    node = next;
  }
  const last = tokens[tokens.length - 1];
  if (Array.isArray(node)) {
    if (last === '-') {
      node.push(value);
    } else if (isIndex(last) && Number(last) <= node.length) {
      node[Number(last)] = value;
    } else {
      throw new PointerError(`bad array index ${JSON.stringify(last)}`);
    }
  } else if (node !== null && typeof node === 'object') {
    node[last] = value;
  } else {
    throw new PointerError('cannot set a property on a scalar');
  }
  return doc;
}

// Every pointer in a document, depth first.
function list(doc, prefix = []) {
  const out = [compile(prefix)];
  if (Array.isArray(doc)) {
    doc.forEach((v, i) => out.push(...list(v, prefix.concat(String(i)))));
  } else if (doc !== null && typeof doc === 'object') {
    for (const k of Object.keys(doc)) out.push(...list(doc[k], prefix.concat(k)));
  }
  return out;
}

module.exports = {
  parse, compile, get, has, set, list, locateParent, escapeToken, unescapeToken, isIndex,
  PointerError,
};

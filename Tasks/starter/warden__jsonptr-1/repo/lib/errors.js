'use strict';

class PointerError extends Error {
  constructor(message, pointer) {
    super(message);
    this.name = 'PointerError';
    this.pointer = pointer;
  }
}

class PatchError extends Error {
  constructor(message, index, operation) {
    super(index === undefined ? message : `operation ${index}: ${message}`);
    this.name = 'PatchError';
    this.index = index;
    this.operation = operation;
  }
}

module.exports = { PointerError, PatchError };

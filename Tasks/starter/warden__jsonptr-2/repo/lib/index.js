'use strict';

const pointer = require('./pointer');
const patch = require('./patch');

module.exports = { ...pointer, ...patch };

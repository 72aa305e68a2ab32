// An Express backend behind the middleware, for the end-to-end tests: Express's own
// json() and urlencoded() (npm's express, as test/backends/package.json pins it) read each
// request, and it answers what they read as JSON, for the test to hold against the
// X-Zego-* headers the middleware wrote.
//
// Run with: node express-reader.js <port>; it prints "listening" once it serves.
'use strict';
const express = require('express');

function object(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 ? v : null;
}

// Each reading on a route of its own request: a body parser reads the stream once.
function reading(parser) {
  return (req) =>
    new Promise((resolve) => {
      parser(req, {}, (err) => resolve(err ? null : object(req.body)));
    });
}

const parsers = {
  express_json: reading(express.json({ limit: '2mb' })),
  express_urlencoded: reading(express.urlencoded({ extended: true, limit: '2mb' })),
  express_urlencoded_simple: reading(express.urlencoded({ extended: false, limit: '2mb' })),
};

const app = express();
app.use(express.raw({ type: () => true, limit: '2mb' }));
app.all('/{*any}', async (req, res) => {
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-zego')) headers[name] = value;
  }
  const readings = { express_query: object(req.query) };
  for (const [name, parse] of Object.entries(parsers)) {
    // A fresh request over the same bytes, as each parser would have met it.
    const { Readable } = require('node:stream');
    const copy = Object.assign(Readable.from([body]), { headers: req.headers, method: req.method, url: req.url });
    readings[name] = await parse(copy);
  }
  res.json({ backend: 'express', headers, readings });
});

app.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'));

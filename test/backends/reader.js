// A Node backend behind the middleware, for the end-to-end tests, with Node's standard
// library only: it reads each request the ways Node backends do (JSON.parse, Express's
// json() middleware, node:querystring, URLSearchParams) and answers what it read as
// JSON, for the test to hold against the X-Zego-* headers the middleware wrote.
//
// Run with: node reader.js <port>; it prints "listening" once it serves.
'use strict';
const http = require('node:http');
const querystring = require('node:querystring');
const zlib = require('node:zlib');

// What Express's json() (body-parser) would make of the request: the body inflated
// when Content-Encoding says deflate or gzip, decoded as UTF-8 with a leading BOM
// dropped, parsed when the Content-Type is JSON and the text starts with { or [.
function expressJSON(req, body) {
  const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) return null;
  try {
    const encoding = (req.headers['content-encoding'] || 'identity').toLowerCase();
    if (encoding === 'deflate') body = zlib.inflateSync(body);
    else if (encoding === 'gzip') body = zlib.gunzipSync(body);
    let text = body.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (!/^[\x20\x09\x0a\x0d]*[{[]/.test(text)) return null;
    return JSON.parse(text);
  } catch (e) {
    return null;
  }
}

function tryParse(text) {
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === 'object' ? v : null;
  } catch (e) {
    return null;
  }
}

function safeUnescape(text) {
  try {
    return querystring.unescape(text.replace(/\+/g, ' '));
  } catch (e) {
    return '';
  }
}

// What Express's urlencoded({extended: true}) (the qs parser, Express 4's default) makes
// of a form's names at the top level: a name's part before its first '[' bracket, or,
// when it starts with one, what the first pair of brackets holds. The values as
// querystring gives them.
function qsTopLevel(text) {
  const out = {};
  for (const [name, value] of Object.entries(querystring.parse(text))) {
    let top = name;
    const open = name.indexOf('[');
    if (open === 0) {
      const close = name.indexOf(']');
      if (close > 0) top = name.slice(1, close);
    } else if (open > 0 && name.indexOf(']', open) > open) {
      top = name.slice(0, open);
    }
    if (top in out) {
      out[top] = [].concat(out[top], value);
    } else {
      out[top] = top === name ? value : [].concat(value);
    }
  }
  return out;
}

function nonEmpty(obj) {
  return obj && Object.keys(obj).length > 0 ? obj : null;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const text = body.toString('utf8');
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (name.startsWith('x-zego')) headers[name] = value;
    }
    // A form's readings where the Content-Type says form, as Express's urlencoded()
    // and a backend that dispatches on the type read them.
    const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
    const isForm = type === 'application/x-www-form-urlencoded';
    const readings = {
      json: tryParse(text),
      express: expressJSON(req, body),
      // ZEGO's form mode with a JSON document: URL-decoded, then parsed.
      urljson: tryParse(safeUnescape(text)),
      querystring: isForm ? nonEmpty(Object.assign({}, querystring.parse(text))) : null,
      urlsearchparams: isForm ? nonEmpty(Object.fromEntries(new URLSearchParams(text))) : null,
      qs: isForm ? nonEmpty(qsTopLevel(text)) : null,
    };
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ backend: 'node', headers, readings }));
  });
});

server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'));

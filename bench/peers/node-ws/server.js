// Echo server on Node's `ws` (the library ws-rs is modelled on), for
// bench/run.sh. Usage: node server.js [--addr HOST:PORT] [--deflate]
//
// `--deflate` turns on `perMessageDeflate` with ws's defaults (threshold
// 1024 bytes, zlib level default, context takeover both ways), the same
// defaults as ws-rs's `DeflateConfig::default()`. Text stays text and
// binary stays binary. `ws` is installed by bench/run.sh into
// node_modules/ here (git-ignored); bufferutil and utf-8-validate, the
// optional native helpers ws recommends for speed, are installed with it
// when they build.
'use strict';

const { WebSocketServer } = require('ws');

let addr = '127.0.0.1:9001';
let deflate = false;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--addr') addr = args[++i];
  else if (args[i].startsWith('--addr=')) addr = args[i].slice(7);
  else if (args[i] === '--deflate') deflate = true;
  else {
    console.error(`usage: node server.js [--addr HOST:PORT] [--deflate]`);
    process.exit(2);
  }
}
const colon = addr.lastIndexOf(':');
const host = addr.slice(0, colon);
const port = Number(addr.slice(colon + 1));

const wss = new WebSocketServer({
  host,
  port,
  perMessageDeflate: deflate,
  maxPayload: 64 * 1024 * 1024,
});
wss.on('connection', (ws) => {
  ws._socket.setNoDelay(true);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => console.error(`node ws echo server on ${addr}, deflate ${deflate}`));
process.on('SIGTERM', () => process.exit(0));

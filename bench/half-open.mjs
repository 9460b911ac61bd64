#!/usr/bin/env node
// bench/half-open.mjs HOST:PORT N HOLD_SECONDS — the slow-client attack: N connections that each
// send a request line and one header and never finish, held HOLD_SECONDS (bounded: N and the
// hold are the whole run). Prints how many were opened, refused with a 503, and closed by the
// server, with the median and the last close time in seconds. Node built-ins only.
import net from 'node:net';

const [addr, nArg, holdArg] = process.argv.slice(2);
if (!addr || !nArg || !holdArg) { console.error('usage: half-open.mjs HOST:PORT N HOLD_SECONDS'); process.exit(2); }
const [host, port] = addr.split(':');
const n = Number(nArg), hold = Number(holdArg);
const start = Date.now();
let opened = 0, refused = 0, failed = 0;
const closedAt = [];
const sockets = [];
function open() {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    sockets.push(socket);
    socket.on('connect', () => { opened++; socket.write('GET /-/ping HTTP/1.1\r\nhost: attacker\r\n'); resolve(); });
    socket.on('data', (d) => { if (d.toString('latin1').startsWith('HTTP/1.1 503')) refused++; });
    socket.on('close', () => closedAt.push((Date.now() - start) / 1000));
    socket.on('error', () => { failed++; resolve(); });
  });
}
for (let i = 0; i < n; i += 500) {
  await Promise.all(Array.from({ length: Math.min(500, n - i) }, open));
}
const openedIn = (Date.now() - start) / 1000;
await new Promise((r) => setTimeout(r, hold * 1000));
closedAt.sort((a, b) => a - b);
const median = closedAt.length ? closedAt[Math.floor(closedAt.length / 2)] : NaN;
const last = closedAt.length ? closedAt[closedAt.length - 1] : NaN;
console.log(`opened ${opened} of ${n} in ${openedIn.toFixed(1)} s; refused with 503: ${refused}; ` +
  `errors: ${failed}; closed by the server: ${closedAt.length} (median ${median.toFixed(1)} s, last ${last.toFixed(1)} s)`);
for (const s of sockets) s.destroy();
process.exit(0);

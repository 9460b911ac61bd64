// delay-proxy.mjs PORT TARGET_URL [DELAY_MS] — a reverse proxy on 127.0.0.1:PORT that forwards
// every request to TARGET_URL after DELAY_MS (default 30), the way a public registry across the
// internet answers. Streams both ways, keeps connections to the target alive, counts requests.
// `GET /-/delay-proxy/stats` answers {"requests": N}. Node built-ins only. Stop it with kill.
import http from 'node:http';

const [port, target, delayArg] = process.argv.slice(2);
if (!port || !target) {
  console.error('usage: node delay-proxy.mjs PORT TARGET_URL [DELAY_MS]');
  process.exit(2);
}
const delay = Number(delayArg ?? 30);
const upstream = new URL(target);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
let requests = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/-/delay-proxy/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ requests }));
    return;
  }
  requests += 1;
  setTimeout(() => {
    const headers = { ...req.headers, host: upstream.host };
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":"delay-proxy: target unreachable"}');
    });
    req.pipe(forward);
  }, delay);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`delay-proxy on 127.0.0.1:${port} -> ${target} (+${delay} ms)`);
});

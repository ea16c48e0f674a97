// The HTTP load client reads each answer by its own Content-Length: OIP answers name the header's length
// first (Inference-Header-Content-Length), and large ones come in many chunks.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { load } from '../../bench/load-client';

test('answers with Inference-Header-Content-Length before Content-Length, small and 8 MB, are each counted once with their status', async () => {
  const big = Buffer.alloc(8 << 20, 7);
  let served = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      served++;
      const body = req.url === '/big' ? big : Buffer.from('{"model_name":"m"}12345678');
      res.writeHead(served % 5 === 0 ? 503 : 200, { 'Inference-Header-Content-Length': '18', 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const path of ['/small', '/big']) {
      served = 0;
      const r = await load({ url: `${url}${path}`, bodies: [Buffer.from('x').toString('base64')], connections: 1, durationS: 0.5 });
      expect(r.errors + r.timeouts).toBe(0);
      // Every fifth answer is a 503: the client saw each answer's own status line.
      expect(r.requests + r.non2xx).toBe(served);
      expect(r.non2xx).toBe(Math.floor(served / 5));
      expect(r.requests).toBeGreaterThan(0);
    }
  } finally {
    server.close();
  }
}, 30_000);

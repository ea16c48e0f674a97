// Caps the connections a port holds open. At the cap, the connection idle longest (no request in flight,
// or none sent yet) is closed to admit the new one, so idle or silent sockets cannot lock clients out;
// only when every connection has a request in flight is the new one refused, with a 503.
import type * as http from 'node:http';
import type { Socket } from 'node:net';
import { QuiverError, TooManyConnectionsError, errorBody, httpStatusOf, retryAfterOf } from '../errors';
import { log } from '../log';

const WARN_EVERY_MS = 10_000;

/**
 * A whole HTTP/1.1 answer, written on a socket the HTTP server never got to use. No request was read, so
 * its API is unknown: the body has both the MMS fields and OIP's "error", which Triton's clients read.
 */
function rawAnswer(error: QuiverError): string {
  const body = JSON.stringify({ ...errorBody(error, 'mms'), error: error.message });
  const retryAfter = retryAfterOf(error);
  return [
    `HTTP/1.1 ${httpStatusOf(error, 'mms')} Service Unavailable`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(retryAfter !== undefined ? [`Retry-After: ${retryAfter}`] : []),
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

export function limitConnections(server: http.Server, max: number, secure: boolean, label: string): void {
  // Insertion order is the order they became idle: the first is the one idle longest.
  const idle = new Set<Socket>();
  const open = new Set<Socket>();
  let lastWarning = 0;
  const admit = (socket: Socket) => {
    if (open.size >= max) {
      const oldest = idle.values().next().value;
      if (oldest === undefined) {
        if (Date.now() - lastWarning > WARN_EVERY_MS) {
          lastWarning = Date.now();
          log.warn('connection refused: every connection has a request in flight', { api: label, maxConnections: max });
        }
        const error = new TooManyConnectionsError(`the server holds ${max} connections, all busy (max_connections); try again`);
        socket.end(rawAnswer(error));
        socket.destroySoon();
        return;
      }
      idle.delete(oldest);
      open.delete(oldest);
      oldest.destroy();
    }
    open.add(socket);
    idle.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      idle.delete(socket);
    });
  };
  // A TLS connection counts once its handshake is done (the handshake has its own timeout).
  if (secure) server.prependListener('secureConnection' as 'connection', admit);
  else server.prependListener('connection', admit);
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    idle.delete(socket);
    res.once('close', () => {
      if (open.has(socket)) idle.add(socket);
    });
  });
}

// grpc-js's server leaves HTTP/2's receive windows at the RFC's 64 KB and has no option to raise them
// (grpc/grpc-node#3058, open): a client must then wait for the server's WINDOW_UPDATE for every 64 KB of
// a tensor. These raise both windows through the server's internals, and say so when those have moved.
import type * as grpc from '@grpc/grpc-js';
import type * as http2 from 'node:http2';
import { log } from '../log';

/** How far a client may send ahead of the server's reads, per call and per connection. */
export const STREAM_WINDOW_BYTES = 4 << 20;
export const CONNECTION_WINDOW_BYTES = 8 << 20;

interface ServerInternals {
  commonServerOptions?: http2.ServerOptions;
  http2Servers?: Map<http2.Http2Server, unknown>;
}

/** Call before bindAsync: the per-stream window goes out in the server's first SETTINGS frame. */
export function widenStreamWindow(server: grpc.Server): boolean {
  const internals = server as unknown as ServerInternals;
  if (typeof internals.commonServerOptions !== 'object' || internals.commonServerOptions === null) {
    log.warn('gRPC: could not raise the HTTP/2 stream window (this grpc-js keeps its options elsewhere); large tensors wait on 64 KB windows');
    return false;
  }
  const options = internals.commonServerOptions;
  options.settings = { ...options.settings, initialWindowSize: STREAM_WINDOW_BYTES };
  return true;
}

/** Call after bindAsync: each new connection's window grows as it opens. */
export function widenConnectionWindows(server: grpc.Server): boolean {
  const servers = (server as unknown as ServerInternals).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn('gRPC: could not raise the HTTP/2 connection window (this grpc-js keeps its listeners elsewhere)');
    return false;
  }
  for (const listener of servers.keys()) {
    listener.on('session', (session: http2.ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
      } catch {
        // A session already closing has no window to set.
      }
    });
  }
  return true;
}

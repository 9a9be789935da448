/**
 * An HTTP/1.1 server on 127.0.0.1 that closes a keep-alive connection the way a real Infrahub does
 * just as the client reuses it. Infrahub's API runs under gunicorn with uvicorn workers, which close
 * an idle keep-alive connection after gunicorn's `keepalive` (2 s by default, uvicorn's
 * `timeout_keep_alive`) without announcing it in a `Keep-Alive` header, while Node's fetch (undici)
 * keeps an idle connection for 4 s: a request sent 2-4 s after the last one goes out on a connection
 * the server is closing, and fails with "other side closed" (the CI failure of the real-Infrahub
 * seeding). Here that race is made certain: the first request on a connection is answered
 * (keep-alive), any later request on the same connection is not read — the socket is closed.
 *
 * Every request that was answered is recorded, so a test can prove a mutation ran exactly once.
 */

import { createServer, type Server, type Socket } from 'node:net';

/** One request the server answered. */
export interface AnsweredRequest {
  method: string;
  path: string;
  body: string;
}

/** A running {@link startKeepAliveClosingServer}. */
export interface KeepAliveClosingServer {
  /** `http://127.0.0.1:<port>`. */
  address: string;
  /** The requests answered, in order. */
  answered: AnsweredRequest[];
  /** How many connections were closed on a reused request (the race, made certain). */
  closedOnReuse: () => number;
  stop: () => Promise<void>;
}

/**
 * Starts the server on a free port of 127.0.0.1.
 *
 * @param answer the JSON body for a request (status 200), from its method, path and body.
 */
export async function startKeepAliveClosingServer(
  answer: (request: AnsweredRequest) => unknown,
): Promise<KeepAliveClosingServer> {
  const answered: AnsweredRequest[] = [];
  let closed = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let requests = 0;
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const headerEnd = buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const head = buffer.subarray(0, headerEnd).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffer.length < headerEnd + 4 + length) return;
      const body = buffer.subarray(headerEnd + 4, headerEnd + 4 + length).toString('utf8');
      buffer = buffer.subarray(headerEnd + 4 + length);
      requests += 1;
      if (requests > 1) {
        // The server closed this idle connection as the client reused it: nothing is run or answered.
        closed += 1;
        socket.destroy();
        return;
      }
      const [method = '', path = ''] = head.split('\r\n')[0]?.split(' ') ?? [];
      const request = { method, path, body };
      answered.push(request);
      const payload = Buffer.from(JSON.stringify(answer(request)));
      // HTTP/1.1 without `Connection: close` or a `Keep-Alive` hint: the connection stays open, as uvicorn's do.
      socket.write(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n`,
      );
      socket.write(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: `http://127.0.0.1:${port}`,
    answered,
    closedOnReuse: () => closed,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

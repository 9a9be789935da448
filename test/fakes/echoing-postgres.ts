/**
 * FAKE PostgreSQL endpoint for the redaction tests: it speaks only the start of PostgreSQL's wire
 * protocol (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP): it
 * declines SSL and GSS encryption, asks for a cleartext password (AuthenticationCleartextPassword),
 * and rejects the password it receives with a FATAL 28P01 ErrorResponse that QUOTES it, the way a
 * misconfigured proxy or authentication hook in front of a database might.
 *
 * Real PostgreSQL never echoes a password (its message names only the user), and no real tool we run
 * does either, so this is the one way to make a database answer carry a credential into the runner's
 * error here. Everything on our side of the socket is real: the runner process, the `pg` driver,
 * the error record written to the S3 server.
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface EchoingPostgres {
  port: number;
  /** Passwords received so far (to show the client really sent the canary). */
  readonly passwords: string[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'ascii');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function errorResponse(text: string): Buffer {
  const fields = [
    ['S', 'FATAL'],
    ['V', 'FATAL'],
    ['C', '28P01'],
    ['M', text],
  ];
  const parts = fields.map(([code, value]) => Buffer.from(`${code}${value}\0`, 'utf8'));
  return message('E', Buffer.concat([...parts, Buffer.from([0])]));
}

export async function startEchoingPostgres(): Promise<EchoingPostgres> {
  const passwords: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          buffer = buffer.subarray(length);
          if (code === SSL_REQUEST || code === GSS_REQUEST) {
            socket.write('N');
            continue;
          }
          started = true;
          socket.write(message('R', Buffer.from([0, 0, 0, 3])));
          continue;
        }
        if (buffer.length < 5) return;
        const length = buffer.readInt32BE(1);
        if (buffer.length < length + 1) return;
        const type = String.fromCharCode(buffer[0] ?? 0);
        const body = buffer.subarray(5, length + 1);
        buffer = buffer.subarray(length + 1);
        if (type === 'p') {
          const password = body.toString('utf8').replace(/\0$/, '');
          passwords.push(password);
          socket.end(errorResponse(`password authentication failed: password "${password}" is not valid`));
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    passwords,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

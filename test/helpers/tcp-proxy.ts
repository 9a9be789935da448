/**
 * A loopback TCP proxy to a local server (127.0.0.1:`port`) that can go silent: after `silence()`
 * it forwards nothing either way but keeps every socket open, as a network path that stopped
 * carrying packets looks to the application (no FIN, no RST). On loopback the kernel still
 * acknowledges what reaches the proxy, so TCP keepalives and tcp_user_timeout cannot see this
 * silence here; what it tests is the runner's own bound on a connection that delivers nothing
 * (PG_STALL_TIMEOUT_SECONDS, PG_QUERY_TIMEOUT_SECONDS). On a real network both layers apply.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface SilentTcpProxy {
  port: number;
  /** Stops forwarding in both directions; the sockets stay open. */
  silence(): void;
  stop(): Promise<void>;
}

export async function startSilentTcpProxy(targetPort: number): Promise<SilentTcpProxy> {
  let silent = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (!silent) to.write(chunk);
      });
      from.on('end', () => {
        if (!silent) to.end();
      });
      from.on('error', () => to.destroy());
      from.on('close', () => sockets.delete(from));
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('tcp proxy: no port');
  return {
    port: address.port,
    silence() {
      silent = true;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

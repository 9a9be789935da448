/**
 * A loopback HTTP proxy in front of the local S3 server (moto) that injects faults on purpose:
 * error answers (an outage), answers that never come (a hung request), delays, dropped connections
 * and single flipped bits in a response body. Fault tests point the code under test at
 * `proxy.endpoint` instead of the S3 server's, and add rules for the requests they want to break.
 *
 * Only 127.0.0.1 is ever contacted: the proxy listens there and forwards to the given loopback
 * upstream. Requests that match no active rule pass through unchanged (bodies streamed both ways).
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Which requests a rule applies to. Every given field must match. */
export interface FaultMatch {
  /** HTTP method, for example `GET` or `PUT`. */
  method?: string;
  /** Tested against the request path without the query string (path-style: `/bucket/key`). */
  path?: RegExp;
  /** A query parameter that must be present, for example `partNumber` (UploadPart) or `uploads`. */
  queryHas?: string;
  /** Any predicate over method, path and query, for what the fields above cannot say. */
  test?: (request: { method: string; path: string; query: URLSearchParams }) => boolean;
}

export type Fault =
  /** Answer with this status and an S3-style XML error body, without contacting the upstream. */
  | { kind: 'status'; status: number; code?: string }
  /** Accept the request and never answer (the socket stays open until the client gives up or the proxy stops). */
  | { kind: 'hang' }
  /** Wait `ms` milliseconds, then forward as usual. */
  | { kind: 'delay'; ms: number }
  /** Hold the request until `until` settles (the test says when), then forward as usual. */
  | { kind: 'hold'; until: Promise<unknown> }
  /** Destroy the client's connection without an answer. */
  | { kind: 'reset' }
  /**
   * Forward, then flip one bit of the response body (same length, so neither Content-Length nor the
   * framing changes): bit `bit` (0-7, default 0) of the byte at `offset`, default the body's middle
   * (from Content-Length).
   */
  | { kind: 'flip-bit'; offset?: number; bit?: number }
  /**
   * Forward the request (the upstream acts on it: an object is stored), then destroy the client's
   * connection instead of passing the answer on: an answer lost on the way back.
   */
  | { kind: 'drop-response' }
  /** Forward, then send the response body on at `bytesPerSecond` (a slow, trickling server). */
  | { kind: 'trickle'; bytesPerSecond: number };

export interface FaultRule {
  match: FaultMatch;
  fault: Fault;
  /** Apply to at most this many matching requests, then pass them through (default: every one). */
  times?: number;
  /** Stop applying this many milliseconds after the rule was added (an outage of a known length). */
  forMs?: number;
}

export interface ActiveRule {
  readonly rule: FaultRule;
  /** How many requests this rule has broken so far. */
  readonly hits: number;
  remove(): void;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: use it as the S3 endpoint (path-style addressing). */
  readonly endpoint: string;
  readonly port: number;
  /** Adds a rule; rules are tried in the order added, the first active match wins. */
  add(rule: FaultRule): ActiveRule;
  /** Removes every rule: from now on everything passes through. */
  clear(): void;
  /** Every request seen, in order (method, path, query string, and the fault applied if any). */
  readonly requests: readonly { method: string; path: string; query: string; fault?: Fault['kind'] }[];
  stop(): Promise<void>;
}

interface RuleState {
  rule: FaultRule;
  hits: number;
  addedAt: number;
  removed: boolean;
}

/**
 * Starts the proxy on 127.0.0.1 and a free port, forwarding to `upstream` (an `http://127.0.0.1:PORT`
 * endpoint such as the harness S3 server's). Throws when `upstream` is not a loopback http URL.
 */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  if (target.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) {
    throw new Error(`fault proxy: upstream must be a loopback http URL, got ${upstream}`);
  }
  const rules: RuleState[] = [];
  const requests: { method: string; path: string; query: string; fault?: Fault['kind'] }[] = [];
  const sockets = new Set<Socket>();
  const hung = new Set<ServerResponse>();

  const pick = (method: string, path: string, query: URLSearchParams): RuleState | undefined => {
    const now = Date.now();
    for (const state of rules) {
      const { rule } = state;
      if (state.removed) continue;
      if (rule.times !== undefined && state.hits >= rule.times) continue;
      if (rule.forMs !== undefined && now - state.addedAt > rule.forMs) continue;
      const m = rule.match;
      if (m.method && m.method.toUpperCase() !== method) continue;
      if (m.path && !m.path.test(path)) continue;
      if (m.queryHas && !query.has(m.queryHas)) continue;
      if (m.test && !m.test({ method, path, query })) continue;
      return state;
    }
    return undefined;
  };

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    flip?: { offset?: number; bit?: number },
    answer: 'pass' | 'drop' | { bytesPerSecond: number } = 'pass',
  ) => {
    const upstreamReq = httpRequest(
      {
        host: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (upstreamRes) => {
        if (answer === 'drop') {
          // The upstream has acted on the request; the client never hears of it.
          upstreamRes.resume();
          req.socket.destroy();
          return;
        }
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        if (typeof answer === 'object') {
          pipeline(upstreamRes, trickle(answer.bytesPerSecond), res).catch(() => res.destroy());
          return;
        }
        const length = Number(upstreamRes.headers['content-length'] ?? Number.NaN);
        const offset = flip ? (flip.offset ?? (Number.isFinite(length) ? Math.floor(length / 2) : 0)) : -1;
        const done = flip
          ? pipeline(upstreamRes, flipBitAt(offset, flip.bit ?? 0), res)
          : pipeline(upstreamRes, res);
        done.catch(() => res.destroy());
      },
    );
    upstreamReq.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    pipeline(req, upstreamReq).catch(() => upstreamReq.destroy());
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const method = (req.method ?? 'GET').toUpperCase();
    const state = pick(method, url.pathname, url.searchParams);
    const fault = state?.rule.fault;
    requests.push({ method, path: url.pathname, query: url.search, fault: fault?.kind });
    if (!state || !fault) return forward(req, res);
    state.hits += 1;
    switch (fault.kind) {
      case 'status': {
        req.resume();
        const code = fault.code ?? (fault.status === 503 ? 'SlowDown' : 'InternalError');
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by the fault proxy</Message></Error>`;
        res.writeHead(fault.status, {
          'content-type': 'application/xml',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      case 'hang':
        req.resume();
        hung.add(res);
        res.once('close', () => hung.delete(res));
        return;
      case 'delay':
        setTimeout(() => forward(req, res), fault.ms).unref();
        return;
      case 'hold':
        fault.until.then(
          () => forward(req, res),
          () => forward(req, res),
        );
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'flip-bit':
        return forward(req, res, fault);
      case 'drop-response':
        return forward(req, res, undefined, 'drop');
      case 'trickle':
        return forward(req, res, undefined, { bytesPerSecond: fault.bytesPerSecond });
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('fault proxy: no address');
  const port = address.port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    add(rule) {
      const state: RuleState = { rule, hits: 0, addedAt: Date.now(), removed: false };
      rules.push(state);
      return {
        rule,
        get hits() {
          return state.hits;
        },
        remove() {
          state.removed = true;
        },
      };
    },
    clear() {
      for (const state of rules) state.removed = true;
      rules.length = 0;
    },
    async stop() {
      for (const res of hung) res.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A pass-through stream that flips bit `bit` of the byte at absolute `offset`. */
function flipBitAt(offset: number, bit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      const start = seen;
      seen += chunk.length;
      if (offset >= start && offset < seen) {
        const copy = Buffer.from(chunk);
        const i = offset - start;
        copy[i] = (copy[i] ?? 0) ^ (1 << bit);
        callback(null, copy);
        return;
      }
      callback(null, chunk);
    },
  });
}

/** A pass-through stream that lets `bytesPerSecond` bytes through each second (at least one byte at a time). */
function trickle(bytesPerSecond: number): Transform {
  const step = Math.max(1, Math.floor(bytesPerSecond));
  return new Transform({
    highWaterMark: step,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      let at = 0;
      const next = () => {
        if (at >= chunk.length) return callback();
        this.push(chunk.subarray(at, at + step));
        at += step;
        setTimeout(next, 1_000).unref();
      };
      next();
    },
  });
}

/**
 * A loopback stand-in for the two ECS calls that scale a Community DBMS's service (UpdateService,
 * DescribeServices; core/ecs/dbms.ts), so the local mode starts and stops the local Neo4j through the
 * same step as on AWS: the state machine's Dbms states (in-process, `scale`) and the runner, which
 * starts the DBMS again itself after copying its store (neo4j.dumpFrom "copy", its SDK pointed here by
 * AWS_ENDPOINT_URL_ECS), share one record per service, so neither races the other.
 *
 * The protocol is the one the SDK speaks to ECS (AWS JSON 1.1: POST /, `X-Amz-Target:
 * AmazonEC2ContainerServiceV20141113.<Operation>`, a JSON body; errors as HTTP 400 with `__type`,
 * Amazon ECS API Reference, UpdateService and DescribeServices: ServiceNotFoundException, and a
 * `failures` entry with reason MISSING for a service DescribeServices does not know). A service's
 * tasks follow its desired count as the local DBMS's stop and start complete: `pendingCount` 1 while
 * it starts, `runningCount` 1 once it serves. Listens on 127.0.0.1 only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How one service's tasks are stopped and started locally (the harness's Neo4j, or commands). */
export interface LocalServiceControl {
  stop(): Promise<void>;
  start(): Promise<void>;
}

interface ServiceRecord {
  desired: number;
  running: number;
  pending: number;
  /** The last scaling, chained: every change waits for the one before. */
  settled: Promise<void>;
}

const TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113.';

export class LocalEcsServices {
  private readonly records = new Map<string, ServiceRecord>();
  private server: Server | undefined;
  /** http://127.0.0.1:<port> once `listen` ran (AWS_ENDPOINT_URL_ECS of the runners). */
  url: string | undefined;

  /**
   * @param control the stop and start of a service, by cluster and service name; undefined for a
   *   service this stand-in does not know (ServiceNotFoundException). Every known service starts
   *   with one running task.
   */
  constructor(
    private readonly control: (cluster: string, service: string) => LocalServiceControl | undefined,
  ) {}

  private record(cluster: string, service: string): ServiceRecord | undefined {
    if (!this.control(cluster, service)) return undefined;
    const key = `${cluster}/${service}`;
    let found = this.records.get(key);
    if (!found) {
      found = { desired: 1, running: 1, pending: 0, settled: Promise.resolve() };
      this.records.set(key, found);
    }
    return found;
  }

  /** The service's counts; undefined when unknown. */
  describe(
    cluster: string,
    service: string,
  ): { desired: number; running: number; pending: number } | undefined {
    const r = this.record(cluster, service);
    return r ? { desired: r.desired, running: r.running, pending: r.pending } : undefined;
  }

  /**
   * Sets the desired count (UpdateService) and returns the promise of its tasks following it (the
   * local stop or start); a failed start leaves nothing running and rejects. The tasks follow only
   * when the record says they differ, unless `always` (the local Dbms states, as the stand-in before
   * this record: their stop or start is run every time, so a control that fails fails the state).
   * @throws Error "ServiceNotFoundException" for a service this stand-in does not know
   */
  update(cluster: string, service: string, desired: number, always = false): Promise<void> {
    const r = this.record(cluster, service);
    const control = this.control(cluster, service);
    if (!r || !control) throw new Error(`ServiceNotFoundException: service ${service} in cluster ${cluster}`);
    r.desired = desired;
    const follow = async () => {
      if (r.desired === 0 && (always || r.running > 0 || r.pending > 0)) {
        await control.stop();
        r.running = 0;
        r.pending = 0;
      } else if (r.desired > 0 && (always || r.running === 0)) {
        r.pending = 1;
        try {
          await control.start();
          r.running = r.desired;
        } finally {
          r.pending = 0;
        }
      }
    };
    r.settled = r.settled.catch(() => undefined).then(follow);
    return r.settled;
  }

  /** Starts the HTTP endpoint on a free loopback port (unref'd: it keeps no process alive). */
  async listen(): Promise<string> {
    const server = createServer((req, res) => {
      // A client gone mid-request (its body aborted) ends that request only, never the local process.
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    server.unref();
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(body));
    };
    const operation = String(req.headers['x-amz-target'] ?? '').replace(TARGET_PREFIX, '');
    let body: { cluster?: unknown; service?: unknown; services?: unknown; desiredCount?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      reply(400, { __type: 'InvalidParameterException', message: 'the body is not JSON' });
      return;
    }
    const cluster = String(body.cluster ?? 'default');
    if (operation === 'UpdateService') {
      const service = String(body.service ?? '');
      const desired = Number(body.desiredCount);
      if (!Number.isInteger(desired) || desired < 0) {
        reply(400, { __type: 'InvalidParameterException', message: 'desiredCount must be a whole number' });
        return;
      }
      if (!this.describe(cluster, service)) {
        reply(400, { __type: 'ServiceNotFoundException', message: 'Service not found.' });
        return;
      }
      // Like ECS, the call returns at once; the tasks follow (a failed start shows as none running).
      this.update(cluster, service, desired).catch(() => undefined);
      reply(200, { service: this.serviceJson(cluster, service) });
      return;
    }
    if (operation === 'DescribeServices') {
      const names = Array.isArray(body.services) ? body.services.map(String) : [];
      const services = names
        .filter((s) => this.describe(cluster, s))
        .map((s) => this.serviceJson(cluster, s));
      const failures = names
        .filter((s) => !this.describe(cluster, s))
        .map((s) => ({ arn: `arn:aws:ecs:local:000000000000:service/${cluster}/${s}`, reason: 'MISSING' }));
      reply(200, { services, failures });
      return;
    }
    reply(400, { __type: 'UnknownOperationException', message: `${operation} is not served locally` });
  }

  private serviceJson(cluster: string, service: string) {
    const d = this.describe(cluster, service) as { desired: number; running: number; pending: number };
    return {
      serviceName: service,
      clusterArn: `arn:aws:ecs:local:000000000000:cluster/${cluster}`,
      serviceArn: `arn:aws:ecs:local:000000000000:service/${cluster}/${service}`,
      status: 'ACTIVE',
      desiredCount: d.desired,
      runningCount: d.running,
      pendingCount: d.pending,
    };
  }
}

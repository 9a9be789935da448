import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { infrahubGraphql } from '../../harness/infrahub-data.js';

// Infrahub 1.11's admission control answers a request it sheds with HTTP 429, `Retry-After` and
// `X-Infrahub-Admission: shed` (the request never ran): seen on a loaded machine while the demo
// seeded its data. The harness's GraphQL client sends such a request again; any other 429 is an error.
describe('harness GraphQL client: Infrahub shedding load', () => {
  let close: (() => void) | undefined;
  afterEach(() => close?.());

  const serve = async (answers: Array<{ status: number; headers?: Record<string, string> }>) => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push(body);
        const answer = answers.shift() ?? { status: 200 };
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        res.end(
          JSON.stringify(
            answer.status === 200
              ? { data: { ok: true } }
              : { data: null, errors: [{ message: 'Server is shedding load; retry later.' }] },
          ),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    close = () => server.close();
    return { address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
  };
  const shed = { status: 429, headers: { 'retry-after': '1', 'x-infrahub-admission': 'shed' } };

  it('sends a shed mutation again after Retry-After, and gets its answer', async () => {
    const infrahub = await serve([shed, shed]);
    const data = await infrahubGraphql({ address: infrahub.address, adminToken: 't' }, 'mutation { x }');
    expect(data).toEqual({ ok: true });
    expect(infrahub.seen).toHaveLength(3);
  });

  it('does not send again a 429 without the shed marker (the request may have run)', async () => {
    const infrahub = await serve([{ status: 429 }]);
    await expect(
      infrahubGraphql({ address: infrahub.address, adminToken: 't' }, 'mutation { x }'),
    ).rejects.toThrow(/HTTP 429/);
    expect(infrahub.seen).toHaveLength(1);
  });
});

/**
 * aws-local-stepfunctions uses Promise.withResolvers (Node 22+); the CLI and tests also run on Node 20.
 * Installs the standard behaviour only where it is missing.
 */
type WithResolvers = <T>() => {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason?: unknown) => void;
};

const PromiseCtor = Promise as unknown as { withResolvers?: WithResolvers };
if (typeof PromiseCtor.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

/**
 * A byte count for people, in binary units: "512 B", "3.4 KiB", "6.1 MiB", "2.25 GiB" (KiB and MiB
 * to one decimal, GiB to two). The one formatter of the CLI, the demo and the notices.
 * @param n bytes (a non-negative number)
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

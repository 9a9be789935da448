/** A clock whose sleeps pass at once (and are recorded), so a 10-minute bound is tested in milliseconds. */
export function fakeClock(start = Date.parse('2026-11-21T02:00:00Z')) {
  let now = start;
  const slept: number[] = [];
  return {
    now: () => now,
    sleep: async (ms: number) => {
      slept.push(ms);
      now += ms;
    },
    slept,
  };
}

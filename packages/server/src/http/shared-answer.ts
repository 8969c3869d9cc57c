// An expensive question asked by requests without credentials (/ready, the /metrics backlog gauges): answered at most
// once per interval, the calls meanwhile sharing the last answer or the one still under way.

export function sharedFor<T>(intervalMs: number, ask: () => Promise<T>): () => Promise<T> {
  let last: { at: number; answer: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= intervalMs) last = { at: now, answer: ask() };
    return last.answer;
  };
}

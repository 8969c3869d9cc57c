// The part of autocannon's programmatic API the load generator uses (the package ships no types).
declare module 'autocannon' {
  namespace autocannon {
    interface Result {
      errors: number;
      timeouts: number;
      statusCodeStats: Record<string, { count: number }>;
    }
    interface Instance {
      on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): Instance;
      stop(): void;
    }
  }
  function autocannon(options: Record<string, unknown>, callback: (error: Error | null, result: autocannon.Result) => void): autocannon.Instance;
  export default autocannon;
}

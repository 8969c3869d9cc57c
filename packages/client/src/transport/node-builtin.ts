// Node built-in modules looked up at run time, never imported: `process.getBuiltinModule` (Node ≥ 20.16) keeps
// the modules that use it free of Node imports, so the browser entry and its bundlers never see one.

/** The built-in module `id` (e.g. 'node:crypto'), or undefined in browsers and older Node 20 releases. */
export function nodeBuiltin<T>(id: string): T | undefined {
  const runtime = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return runtime?.getBuiltinModule?.(id) as T | undefined;
  } catch {
    return undefined;
  }
}

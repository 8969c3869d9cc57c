// Both stores refuse a database migrated by a newer cognisync: this version would read and write tables whose
// shape it does not know.

/** Throws when `applied` holds a migration version this build does not have. */
export function refuseNewerSchema(applied: Iterable<number>, known: ReadonlyArray<{ version: number }>): void {
  const newest = Math.max(0, ...known.map((m) => m.version));
  const newer = Math.max(0, ...applied);
  if (newer > newest) {
    throw new Error(`the database has schema version ${newer}, newer than this cognisync's ${newest}: run the cognisync that migrated it (or a later one), or restore a backup taken before the upgrade`);
  }
}

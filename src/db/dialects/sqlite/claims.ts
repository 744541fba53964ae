import { hostname } from 'node:os';
import type { FileClaims } from '../../database.js';

/**
 * SQLite: the database is a local file, so an importer is a local process (`host:pid:nonce`) and
 * needs no lock to be seen alive: a record is abandoned when its pid is gone, or is ours from an
 * earlier life (a new nonce). Imports exclude each other through the database's own write lock.
 */
export const claims: FileClaims = {
  acquire: async () => true,
  release: async () => {},
  holdOwner: async () => async () => {},
  async isAbandoned(_db, record, here) {
    if (record.owner === null) return true;
    if (record.owner === here.owner) return !here.active;
    const [host, pidText] = record.owner.split(':');
    if (host !== hostname()) return false; // another machine's process: cannot tell, so leave it
    const pid = Number(pidText);
    if (pid === process.pid) return true; // our pid, but an earlier life of it (the nonce differs)
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ESRCH';
    }
  },
};

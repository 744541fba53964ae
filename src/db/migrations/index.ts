import type { Migration } from 'kysely';
import * as initial from './2026-11-25T0000-initial.js';
import * as salesHistory from './2026-11-25T0100-sales-history.js';
import * as revenueRollups from './2026-11-25T0200-revenue-rollups.js';
import * as basketRollups from './2026-12-01T0000-basket-rollups.js';
import * as periodRollups from './2026-12-01T0100-period-rollups.js';
import * as streamRollups from './2026-12-06T0000-stream-rollups.js';
import * as importProgress from './2026-12-07T0000-import-progress.js';

/** Every migration, in order. Add new ones at the end; never edit a released one. */
export const migrations: Record<string, Migration> = {
  '2026-11-25T0000-initial': initial,
  '2026-11-25T0100-sales-history': salesHistory,
  '2026-11-25T0200-revenue-rollups': revenueRollups,
  '2026-12-01T0000-basket-rollups': basketRollups,
  '2026-12-01T0100-period-rollups': periodRollups,
  '2026-12-06T0000-stream-rollups': streamRollups,
  '2026-12-07T0000-import-progress': importProgress,
};

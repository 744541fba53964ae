// Checks a Compose file's services as each profile selection enables them, which a schema check
// cannot: `docker compose up` (no profile), `--profile P` for each profile, and `up SERVICE` for
// each service in a profile (naming a service turns its profiles on). In every selection, each
// enabled service's depends_on must name a defined service that the same selection enables
// (else Compose refuses the project, or starts a service without what it needs), and a
// `condition: service_healthy` must wait on a service with a healthcheck (else it waits forever).
// Also, whatever the profile: every bind mount's host path (`./ops/alerts.yml:/etc/...`) exists,
// relative to the Compose file's folder (else Docker creates an empty directory in its place and
// the service starts without its configuration).
//
//   npx yaml@2.9.1 --json --merge --single < docker-compose.yml | node scripts/compose-profiles.mjs [DIR]
//
// Reads the file as JSON on stdin (no ${...} interpolation needed); DIR is the Compose file's
// folder (default: the current one); prints one summary line and exits 0, or prints each problem
// and exits 1. Used by scripts/validate-static.sh.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const compose = JSON.parse(readFileSync(0, 'utf8'));
const services = compose?.services ?? {};
const names = Object.keys(services);
const profilesOf = (name) => services[name]?.profiles ?? [];

/** depends_on as [target, condition, required], from its list or its map form. */
function dependencies(name) {
  const deps = services[name]?.depends_on ?? [];
  if (Array.isArray(deps)) return deps.map((target) => [target, 'service_started', true]);
  return Object.entries(deps).map(([target, d]) => [target, d?.condition ?? 'service_started', d?.required !== false]);
}

function hasHealthcheck(name) {
  const check = services[name]?.healthcheck;
  return Boolean(check) && check.disable !== true && !(Array.isArray(check.test) && check.test[0] === 'NONE');
}

// Each selection: what it is called, the profiles it turns on, and the services it names.
const allProfiles = [...new Set(names.flatMap(profilesOf))].sort();
const selections = [
  { label: 'no profile', profiles: [], targets: [] },
  ...allProfiles.map((p) => ({ label: `--profile ${p}`, profiles: [p], targets: [] })),
  ...names
    .filter((n) => profilesOf(n).length > 0)
    .map((n) => ({ label: `up ${n}`, profiles: profilesOf(n), targets: [n] })),
];

const problems = [];
for (const { label, profiles, targets } of selections) {
  const enabled = new Set(names.filter((n) => profilesOf(n).length === 0 || profilesOf(n).some((p) => profiles.includes(p))));
  // Named services and what they depend on, transitively, are the ones started; else every enabled one.
  const started = new Set();
  const visit = (name) => {
    if (started.has(name) || !services[name]) return;
    started.add(name);
    for (const [target] of dependencies(name)) visit(target);
  };
  (targets.length > 0 ? targets : [...enabled]).forEach(visit);
  for (const name of started) {
    for (const [target, condition, required] of dependencies(name)) {
      if (!services[target]) problems.push(`${label}: ${name} depends on ${target}, which is not defined`);
      else if (!enabled.has(target) && required) {
        problems.push(`${label}: ${name} depends on ${target}, which this selection leaves off (profiles: ${profilesOf(target).join(', ')})`);
      } else if (condition === 'service_healthy' && !hasHealthcheck(target)) {
        problems.push(`${label}: ${name} waits for ${target} to be healthy, and ${target} has no healthcheck`);
      }
    }
  }
}

// Bind mounts: the short form's host side when it is a path (named volumes are plain names), or
// the long form's source when its type is bind.
const composeDir = process.argv[2] ?? '.';
let mounts = 0;
for (const name of names) {
  for (const volume of services[name]?.volumes ?? []) {
    const source =
      typeof volume === 'string'
        ? /^[.~/]/.test(volume) ? volume.split(':')[0] : undefined
        : volume?.type === 'bind' ? volume.source : undefined;
    if (source === undefined) continue;
    mounts += 1;
    if (source.startsWith('~') || source.includes('${')) continue;
    if (!existsSync(path.resolve(composeDir, source))) problems.push(`${name} mounts ${source}, which does not exist`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.log(p);
  process.exit(1);
}
console.log(
  `dependencies enabled and health-checked in ${selections.length} selections: ${selections.map((s) => s.label).join('; ')}; ` +
    `${mounts} bind mounts present`,
);

import { useEffect, useState } from 'preact/hooks';
import { fetchHealth } from './api';

const EVERY_MS = 15_000;

/** How GET /health names the database, as people say it. */
const ENGINES: Record<string, string> = { sqlite: 'SQLite', mysql: 'MySQL/MariaDB', postgres: 'PostgreSQL' };

/** A dot and a word for GET /health: the service and its database answer, or why not. */
export function HealthIndicator() {
  const [health, setHealth] = useState<{ ok: boolean; database: string; engine?: string } | null>(null);

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = async () => {
      const result = await fetchHealth();
      if (!live) return;
      setHealth(result);
      timer = setTimeout(check, EVERY_MS);
    };
    void check();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, []);

  const state = health === null ? 'checking' : health.ok ? 'ok' : 'down';
  const text = state === 'checking' ? 'Checking…' : state === 'ok' ? 'Healthy' : 'Unavailable';
  const engine = ENGINES[health?.engine ?? ''] ?? 'database';
  const detail =
    state === 'ok' ? `Service and ${engine} answer (GET /health)` : state === 'down' ? `${engine}: ${health?.database}` : '';
  return (
    <div class={`health health-${state}`} role="status" data-state={state} title={detail}>
      <span class="dot" aria-hidden="true" />
      <span>{text}</span>
      <span class="visually-hidden">{detail}</span>
    </div>
  );
}

import { useEffect, useState } from 'preact/hooks';
import { onAuthRequired, storedToken, storeToken, tokenRequired } from './api';
import { HealthIndicator } from './health';
import { Imports } from './imports';
import { Revenue } from './revenue';
import { currentRoute, revenueLink, type Route } from './routes';
import { TokenPrompt } from './token';

type Access = 'open' | 'ask' | 'rejected';

export function App() {
  const [route, setRoute] = useState<Route>(currentRoute);
  const [access, setAccess] = useState<Access>(() => (tokenRequired() && !storedToken() ? 'ask' : 'open'));
  // Bumped when a token is accepted: the views mount afresh and load with it.
  const [session, setSession] = useState(0);

  useEffect(() => {
    const follow = () => setRoute(currentRoute());
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);

  useEffect(
    () =>
      onAuthRequired(() => {
        storeToken(null);
        setAccess('rejected');
      }),
    [],
  );

  useEffect(() => {
    document.title = `Zinc · ${route === 'imports' ? 'Imports' : 'Revenue'}`;
  }, [route]);

  const forget = () => {
    storeToken(null);
    setAccess('ask');
  };

  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/revenue" aria-label="Zinc, revenue">
          <span class="logo" aria-hidden="true">Zn</span>
          <span class="brand-name">Zinc</span>
        </a>
        <nav class="tabs" aria-label="Sections">
          <a href={revenueLink()} aria-current={route === 'revenue' ? 'page' : undefined}>
            Revenue
          </a>
          <a href="#/imports" aria-current={route === 'imports' ? 'page' : undefined}>
            Imports
          </a>
        </nav>
        <div class="topbar-end">
          <HealthIndicator />
          {tokenRequired() && access === 'open' ? (
            <button type="button" class="link" onClick={forget}>
              Forget token
            </button>
          ) : null}
        </div>
      </header>
      <main id="main" class="content">
        {access !== 'open' ? (
          <TokenPrompt
            rejected={access === 'rejected'}
            onAccepted={() => {
              setAccess('open');
              setSession((n) => n + 1);
            }}
          />
        ) : route === 'imports' ? (
          <Imports key={`imports-${session}`} />
        ) : (
          <Revenue key={`revenue-${session}`} />
        )}
      </main>
      <footer class="footer">
        Amounts in Singapore dollars, exact to the cent. API reference: <a href="/docs">/docs</a>
      </footer>
    </div>
  );
}

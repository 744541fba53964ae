import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, AuthRequired, call, client, storeToken } from './api';

/** Asks once for the API token; it is kept in sessionStorage until the browser tab is closed. */
export function TokenPrompt({ rejected, onAccepted }: { rejected: boolean; onAccepted: () => void }) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => input.current?.focus(), []);

  const submit = async (event: Event) => {
    event.preventDefault();
    const token = value.trim();
    if (!token) {
      setError('Enter the token first.');
      return;
    }
    setBusy(true);
    setError(null);
    storeToken(token);
    try {
      await call(client.GET('/api/imports', { params: { query: { limit: 1 } } }));
      onAccepted();
    } catch (failure) {
      storeToken(null);
      setError(
        failure instanceof AuthRequired
          ? 'That token was not accepted. Use the value of API_TOKEN (or API_READ_TOKEN to only look).'
          : failure instanceof ApiError
            ? failure.message
            : String(failure),
      );
      setBusy(false);
      input.current?.focus();
    }
  };

  return (
    <section class="card token-card" aria-labelledby="token-title">
      <h1 id="token-title">API token needed</h1>
      <p class="muted">
        {rejected
          ? 'The server no longer accepts the token this tab had. Enter the current one.'
          : 'This Zinc server asks for a token. It is kept for this browser tab only and sent with every request.'}
      </p>
      <form onSubmit={submit} class="token-form">
        <label for="api-token">API token</label>
        <input
          id="api-token"
          ref={input}
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'token-error' : undefined}
        />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Continue'}
        </button>
      </form>
      {error ? (
        <p id="token-error" class="error" role="alert">
          {error}
        </p>
      ) : null}
    </section>
  );
}

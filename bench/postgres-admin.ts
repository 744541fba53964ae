import pg from 'pg';

/**
 * Runs `work` on a connection to the server's maintenance database (`postgres`), where databases
 * are created and dropped; `serverUrl` is postgres://user@host:port, without a database.
 */
export async function postgresAdmin<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${serverUrl.replace(/\/+$/, '')}/postgres` });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

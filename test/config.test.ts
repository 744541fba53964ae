import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDatabaseUrl, redactUrl, serverUrl } from '../src/config.js';

let tmp: string;
let salesDir: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'zinc-config-'));
  salesDir = path.join(tmp, 'sales');
  mkdirSync(salesDir);
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Calls loadConfig and returns the ConfigError it throws (fails the test if it does not throw). */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected loadConfig to throw for ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  it('when only SALES_DIR is set, then everything else takes its default', () => {
    const config = loadConfig({ SALES_DIR: salesDir });
    // toMatchObject: other settings may be added to Config without breaking this test.
    expect(config).toMatchObject({
      salesDir,
      host: '0.0.0.0',
      port: 8000,
      logLevel: 'info',
    });
    expect(config.database).toEqual({ kind: 'sqlite', path: path.resolve(process.cwd(), 'data/zinc.sqlite') });
    expect(config).toHaveProperty('apiToken');
    expect(config.apiToken).toBeUndefined();
  });

  it('resolves the default sqlite path to an absolute path', () => {
    const { database } = loadConfig({ SALES_DIR: salesDir });
    expect(database.kind).toBe('sqlite');
    if (database.kind !== 'sqlite') return;
    expect(path.isAbsolute(database.path)).toBe(true);
    expect(database.path.endsWith(path.join('data', 'zinc.sqlite'))).toBe(true);
  });

  it('when the environment is empty, then SALES_DIR defaults to ./static/sales resolved from the working directory', () => {
    const config = loadConfig({});
    expect(config.salesDir).toBe(path.resolve(process.cwd(), 'static/sales'));
    expect(path.isAbsolute(config.salesDir)).toBe(true);
  });

  it('when SALES_DIR is relative, then it is resolved to an absolute path', () => {
    const relative = path.relative(process.cwd(), salesDir);
    expect(path.isAbsolute(relative)).toBe(false);
    expect(loadConfig({ SALES_DIR: relative }).salesDir).toBe(salesDir);
  });

  it('returns a frozen object, including the database part', () => {
    const config = loadConfig({ SALES_DIR: salesDir });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.database)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(8000);
  });

  it('does not read process.env when given an explicit env', () => {
    const previous = process.env.PORT;
    process.env.PORT = 'abc';
    try {
      expect(loadConfig({ SALES_DIR: salesDir }).port).toBe(8000);
    } finally {
      if (previous === undefined) delete process.env.PORT;
      else process.env.PORT = previous;
    }
  });
});

describe('loadConfig with values set', () => {
  it('reads every variable', () => {
    const config = loadConfig({
      SALES_DIR: salesDir,
      DATABASE_URL: `sqlite:${path.join(tmp, 'x.sqlite')}`,
      PORT: '9001',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      API_TOKEN: 't0ken',
    });
    expect(config).toMatchObject({
      database: { kind: 'sqlite', path: path.join(tmp, 'x.sqlite') },
      salesDir,
      host: '127.0.0.1',
      port: 9001,
      logLevel: 'debug',
      apiToken: 't0ken',
    });
  });

  it.each([
    ['0', 0],
    ['65535', 65535],
  ])('when PORT is %j, then the port is %d', (value, port) => {
    expect(loadConfig({ SALES_DIR: salesDir, PORT: value }).port).toBe(port);
  });

  it('when API_TOKEN is empty, then there is no token', () => {
    expect(loadConfig({ SALES_DIR: salesDir, API_TOKEN: '' }).apiToken).toBeUndefined();
  });

  it('when the shutdown settings are unset, set or wrong, then the drain is 2 s and the timeout 10 s by default, 0 is allowed, and a bad value names the variable', () => {
    expect(loadConfig({ SALES_DIR: salesDir })).toMatchObject({ shutdownDrainMs: 2_000, shutdownTimeoutMs: 10_000 });
    expect(loadConfig({ SALES_DIR: salesDir, SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_TIMEOUT_MS: '0' })).toMatchObject({
      shutdownDrainMs: 0,
      shutdownTimeoutMs: 0,
    });
    expect(loadConfig({ SALES_DIR: salesDir, SHUTDOWN_DRAIN_MS: '15000' }).shutdownDrainMs).toBe(15_000);
    expect(configError({ SALES_DIR: salesDir, SHUTDOWN_DRAIN_MS: '2s' }).message).toBe(
      'SHUTDOWN_DRAIN_MS must be a whole number of milliseconds (0: stop listening at once) (got "2s")',
    );
  });

  it('when DATABASE_URL is a mysql URL, then host, port and database are taken from it', () => {
    const url = 'mysql://user:secret@db:3307/sales';
    expect(loadConfig({ SALES_DIR: salesDir, DATABASE_URL: url }).database).toEqual({
      kind: 'mysql',
      url,
      host: 'db',
      port: 3307,
      hosts: [{ host: 'db', port: 3307 }],
      database: 'sales',
    });
  });

  it('when a mysql URL has no port, then the port is 3306', () => {
    const { database } = loadConfig({ SALES_DIR: salesDir, DATABASE_URL: 'mysql://root@localhost/zinc' });
    expect(database).toMatchObject({ kind: 'mysql', host: 'localhost', port: 3306, database: 'zinc' });
  });

  it('when the scheme is mariadb, then it is treated as mysql', () => {
    const { database } = loadConfig({ SALES_DIR: salesDir, DATABASE_URL: 'mariadb://u:p@maria:3310/shop' });
    expect(database).toMatchObject({ kind: 'mysql', host: 'maria', port: 3310, database: 'shop' });
  });

  it('when DATABASE_URL is sqlite::memory:, then the path stays :memory:', () => {
    expect(loadConfig({ SALES_DIR: salesDir, DATABASE_URL: 'sqlite::memory:' }).database).toEqual({
      kind: 'sqlite',
      path: ':memory:',
    });
  });

  it('when DATABASE_URL is sqlite:///absolute/path, then the path is that absolute path', () => {
    const file = path.join(tmp, 'abs.sqlite');
    expect(loadConfig({ SALES_DIR: salesDir, DATABASE_URL: `sqlite://${file}` }).database).toEqual({
      kind: 'sqlite',
      path: file,
    });
  });
});

describe('loadConfig with a PostgreSQL URL', () => {
  it.each([
    ['postgres://zinc:secret@pg.internal/sales', 5432],
    ['postgresql://zinc:secret@pg.internal:6543/sales', 6543],
  ])('when DATABASE_URL is %s, then host, port (default 5432) and database are taken from it', (url, port) => {
    const { database } = loadConfig({ SALES_DIR: salesDir, DATABASE_URL: url });
    expect(database).toEqual({ kind: 'postgres', url, host: 'pg.internal', port, database: 'sales' });
  });

  it('when DATABASE_POOL_SIZE is set, then the database config carries it', () => {
    const { database } = loadConfig({ SALES_DIR: salesDir, DATABASE_URL: 'postgres://pg/sales', DATABASE_POOL_SIZE: '25' });
    expect(database).toMatchObject({ kind: 'postgres', poolSize: 25 });
  });

  it('when DATABASE_REPLICA_URLS lists replicas, then each is parsed with the pool size, and REPLICA_MAX_LAG_MS is read', () => {
    const config = loadConfig({
      SALES_DIR: salesDir,
      DATABASE_URL: 'mysql://app:pw@primary:3306/sales',
      DATABASE_REPLICA_URLS: ' mysql://app:pw@replica-1/sales , mariadb://app:pw@replica-2:3307/sales,',
      DATABASE_POOL_SIZE: '8',
      REPLICA_MAX_LAG_MS: '2500',
    });
    expect(config.replicas).toEqual([
      { kind: 'mysql', url: 'mysql://app:pw@replica-1/sales', host: 'replica-1', port: 3306, hosts: [{ host: 'replica-1', port: 3306 }], database: 'sales', poolSize: 8 },
      {
        kind: 'mysql',
        url: 'mariadb://app:pw@replica-2:3307/sales',
        host: 'replica-2',
        port: 3307,
        hosts: [{ host: 'replica-2', port: 3307 }],
        database: 'sales',
        poolSize: 8,
      },
    ]);
    expect(config.replicaMaxLagMs).toBe(2500);
    expect(Object.isFrozen(config.replicas)).toBe(true);
  });

  it('when no replica is named, then there are none and the lag bound is 5 s', () => {
    const config = loadConfig({ SALES_DIR: salesDir, DATABASE_URL: 'postgres://pg/sales' });
    expect(config.replicas).toEqual([]);
    expect(config.replicaMaxLagMs).toBe(5000);
  });
});

describe('loadConfig errors', () => {
  const cases: Array<[string, string]> = [
    ['DATABASE_URL', 'mssql://x/y'],
    ['DATABASE_URL', 'postgres://host-only'],
    ['DATABASE_POOL_SIZE', '2'],
    ['DATABASE_POOL_SIZE', 'ten'],
    ['DATABASE_URL', 'not a url'],
    ['DATABASE_URL', 'mysql://host-only'],
    ['DATABASE_URL', 'sqlite:'],
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['LOG_LEVEL', 'loud'],
    ['HOST', ''],
  ];

  it.each(cases)('when %s is %j, then it throws a one-line ConfigError starting with the variable name', (name, value) => {
    const error = configError({ SALES_DIR: salesDir, [name]: value });
    expect(error.name).toBe('ConfigError');
    expect(error.message.startsWith(`${name} `)).toBe(true);
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.message).toContain(JSON.stringify(value));
  });

  it('when SALES_DIR does not exist, then it throws a one-line ConfigError naming SALES_DIR and the folder', () => {
    const missing = path.join(tmp, 'does-not-exist');
    const error = configError({ SALES_DIR: missing });
    expect(error.message.startsWith('SALES_DIR ')).toBe(true);
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.message).toContain(missing);
  });

  it('when SALES_DIR is a file rather than a folder, then it throws a ConfigError', () => {
    const file = path.join(tmp, 'not-a-dir.csv');
    writeFileSync(file, 'a,b\n');
    expect(configError({ SALES_DIR: file }).message.startsWith('SALES_DIR ')).toBe(true);
  });

  it('when PORT is out of range, then the message gives the allowed range', () => {
    expect(configError({ SALES_DIR: salesDir, PORT: '70000' }).message).toContain('between 0 and 65535');
  });

  it('when LOG_LEVEL is unknown, then the message lists the allowed levels', () => {
    const { message } = configError({ SALES_DIR: salesDir, LOG_LEVEL: 'loud' });
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      expect(message).toContain(level);
    }
  });

  it('when the mysql URL has no database, then the message says so', () => {
    expect(configError({ SALES_DIR: salesDir, DATABASE_URL: 'mysql://host-only' }).message).toContain(
      'has no database name',
    );
  });

  it('when an invalid mysql URL carries a password, then the message never contains the password', () => {
    const error = configError({ SALES_DIR: salesDir, DATABASE_URL: 'mysql://user:secret@db:3307/' });
    expect(error.message.startsWith('DATABASE_URL ')).toBe(true);
    expect(error.message).toContain('has no database name');
    expect(error.message).not.toContain('secret');
    expect(error.message).toContain('mysql://user:***@db:3307/');
  });

  it('when a replica is not a replica of the same kind of database, then the message says which', () => {
    expect(configError({ SALES_DIR: salesDir, DATABASE_URL: 'mysql://p/sales', DATABASE_REPLICA_URLS: 'postgres://r/sales' }).message).toBe(
      "DATABASE_REPLICA_URLS must name replicas of DATABASE_URL's database: postgres replicas of a mysql database",
    );
    expect(configError({ SALES_DIR: salesDir, DATABASE_REPLICA_URLS: 'sqlite:./copy.sqlite' }).message).toMatch(
      /^DATABASE_REPLICA_URLS must list server URLs .*SQLite file has no replicas/,
    );
  });

  it.each(['0', '-5', 'soon'])('when REPLICA_MAX_LAG_MS is %j, then it is refused', (value) => {
    expect(configError({ SALES_DIR: salesDir, REPLICA_MAX_LAG_MS: value }).message).toMatch(/^REPLICA_MAX_LAG_MS must be a whole number of milliseconds above 0/);
  });

  it('when the second replica URL is invalid, then the message names it and hides every password', () => {
    const error = configError({
      SALES_DIR: salesDir,
      DATABASE_URL: 'mysql://u:primarypw@p/sales',
      DATABASE_REPLICA_URLS: 'mysql://u:firstpw@r1/sales,mysql://u:secondpw@r2',
    });
    expect(error.message).toMatch(/^DATABASE_REPLICA_URLS URL 2 has no database name/);
    expect(error.message).toContain('mysql://u:***@r1/sales,mysql://u:***@r2');
    expect(error.message).not.toMatch(/firstpw|secondpw/);
  });

  it('when a URL with an unsupported scheme carries a password, then the message never contains the password', () => {
    const error = configError({ SALES_DIR: salesDir, DATABASE_URL: 'mssql://admin:hunter2@db:1433/sales' });
    expect(error.message).toContain('unsupported scheme');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('passwords never reach an error message', () => {
  it.each(['mysql2://user:secret@db:3307/', 'mysql+ssl://user:secret@db/x', 'mysql://user:top@secret@db:3307/'])(
    'when DATABASE_URL is %s, then the message hides the password',
    (url) => {
      let message = '';
      try {
        loadConfig({ SALES_DIR: process.cwd(), DATABASE_URL: url });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/^DATABASE_URL /);
      expect(message).not.toContain('secret');
    },
  );
});

describe('DATABASE_URL with several hosts (the nodes of a Galera cluster)', () => {
  it('when a mysql URL lists three hosts, then hosts keeps their order and ports (3306 by default), and host/port are the first', () => {
    const url = 'mysql://zinc:secret@node-1:3321,node-2:3322,node-3/sales';
    expect(loadConfig({ SALES_DIR: salesDir, DATABASE_URL: url }).database).toEqual({
      kind: 'mysql',
      url,
      host: 'node-1',
      port: 3321,
      hosts: [
        { host: 'node-1', port: 3321 },
        { host: 'node-2', port: 3322 },
        { host: 'node-3', port: 3306 },
      ],
      database: 'sales',
    });
  });

  it('when the scheme is mariadb and the hosts are IPv6 addresses, then they are kept in brackets', () => {
    expect(parseDatabaseUrl('mariadb://u@[::1]:3321,[fd00::2]:3322/shop')).toMatchObject({
      kind: 'mysql',
      host: '[::1]',
      port: 3321,
      hosts: [
        { host: '[::1]', port: 3321 },
        { host: '[fd00::2]', port: 3322 },
      ],
      database: 'shop',
    });
  });

  it('when a host list URL carries a password with "@" and "," and options, then each host gets the same user, password, database and options', () => {
    const url = 'mysql://zinc:p%40ss,w@rd@10.0.0.1:3321,10.0.0.2/sales?ssl=true';
    const config = parseDatabaseUrl(url);
    expect(config).toMatchObject({ host: '10.0.0.1', port: 3321, database: 'sales' });
    const hosts = config.kind === 'mysql' ? config.hosts! : [];
    expect(hosts.map((h) => serverUrl(url, h))).toEqual([
      'mysql://zinc:p%40ss,w@rd@10.0.0.1:3321/sales?ssl=true',
      'mysql://zinc:p%40ss,w@rd@10.0.0.2:3306/sales?ssl=true',
    ]);
  });

  it.each([
    ['postgres://zinc:secret@pg-1,pg-2/sales', /^DATABASE_URL lists several hosts, which only mysql:\/\/ and mariadb:\/\/ URLs may/],
    ['postgresql://zinc:secret@pg-1:5432,pg-2:5433/sales', /^DATABASE_URL lists several hosts/],
    ['sqlite://host-1,host-2/zinc.sqlite', /^DATABASE_URL names a host .*SQLite database is one local file/],
  ])('when %s lists hosts, then it is refused with a ConfigError that says why', (url, message) => {
    const error = configError({ SALES_DIR: salesDir, DATABASE_URL: url });
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('secret');
  });

  it.each([
    ['mysql://zinc:secret@node-1:3321,,node-3/sales', 'has a bad host "" in its host list'],
    ['mysql://zinc:secret@node-1:3321,node-2:99999/sales', 'has a bad host "node-2:99999" in its host list'],
    ['mysql://zinc:secret@node-1:3321,node 2/sales', 'has a bad host "node 2" in its host list'],
    ['mysql://zinc:secret@node-1:3321,NODE-1:3321/sales', 'names the same host twice in its host list'],
    ['mysql://zinc:secret@node-1,node-2/', 'has no database name'],
  ])('when the host list of %s is wrong, then the message says what, and hides the password', (url, message) => {
    const error = configError({ SALES_DIR: salesDir, DATABASE_URL: url });
    expect(error.message).toContain(`DATABASE_URL ${message}`);
    expect(error.message).toContain('mysql://zinc:***@node-1');
    expect(error.message).not.toContain('secret');
  });

  it('when a password holds ",", "@" and ":", then no part of it reaches the message, whatever follows', () => {
    const error = configError({ SALES_DIR: salesDir, DATABASE_URL: 'mysql://zinc:top,se@cr:et@node-1,node-2:0/sales' });
    expect(error.message).toMatch(/^DATABASE_URL has a bad host "node-2:0"/);
    expect(error.message).toContain('(got "mysql://zinc:***@node-1,node-2:0/sales")');
    expect(error.message).not.toMatch(/top|se@|cr:|et@/);
  });

  it('redactUrl hides the password of each URL of a list, and of a URL with a host list', () => {
    expect(redactUrl('mysql://a:pw1@h1,mysql://b:pw2@h2:3307/db,mysql://h3/db')).toBe('mysql://a:***@h1,mysql://b:***@h2:3307/db,mysql://h3/db');
    expect(redactUrl('mysql://a:p,w@h1:3321,h2:3322/db')).toBe('mysql://a:***@h1:3321,h2:3322/db');
    expect(redactUrl('mysql://a@h1:3321,h2:3322/db')).toBe('mysql://a@h1:3321,h2:3322/db');
    // A password with "/" (AWS secret keys often have one) or "@" is hidden whole.
    expect(redactUrl('s3://AKIA:wJalrXUtnFEMI/K7MDENG@bucket/x')).toBe('s3://AKIA:***@bucket/x');
    expect(redactUrl('http://u:a/b@c@minio:9000,mysql://r:x/y@h/db')).toBe('http://u:***@minio:9000,mysql://r:***@h/db');
  });
});

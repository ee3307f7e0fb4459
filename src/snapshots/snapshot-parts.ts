// What a snapshot holds, table by table, and how each part comes back at restore.
//
// A day snapshot: the reference state its history points at (accounts, namespaces, keys, models, nodes,
// ledger accounts...), then the day's job rollups, ledger transactions, entries, rollups and chain link,
// the network config versions and admin changes of the day, the contribution records of the epochs that
// closed during the day, and the day's raw job rows (metadata and charges; prompts and outputs never
// reach PostgreSQL) so that its partition may be dropped. A state snapshot (on demand): the reference
// state and every network config version.
//
// Restore modes: `append` rows belong to one day and are inserted as they are (COPY); `merge` rows are
// repeated by later snapshots (the state as of each), so a row already there is kept; `archive` rows
// (raw jobs) are kept in the archive for audits and are not restored: their partitions are gone.

export type RestoreMode = 'append' | 'merge' | 'archive';

export interface PartSpec {
  name: string;
  table: string;
  /** SQL condition on the table's rows; `:day` is the day (text), `:epochs` the sealed epochs (bigint[]). */
  where: string;
  orderBy: string;
  /**
   * `orderBy` is the table's primary key: the rows are read in its order by an index scan, and the planner
   * is told to avoid a sort (enable_sort off for this part's COPY). Sorting a day's raw job rows by another
   * key was about half of PostgreSQL's time on an export.
   */
  keyOrder?: true;
  restore: RestoreMode;
  /**
   * Columns left out of every snapshot, with why. Snapshots are meant to be handed to anyone: no secret
   * and no personal data goes in. A left-out NOT NULL column is filled at restore by `fill`.
   */
  omit?: Readonly<Record<string, string>>;
  /** SQL expressions for omitted NOT NULL columns, at restore. */
  fill?: Readonly<Record<string, string>>;
}

const DAY = (column: string) => `${column} >= :day::date::timestamp AT TIME ZONE 'UTC' AND ${column} < (:day::date + 1)::timestamp AT TIME ZONE 'UTC'`;

/** The reference state, in foreign-key order (restore inserts them in this order). */
export const STATE_PARTS: readonly PartSpec[] = [
  {
    name: 'accounts',
    table: 'accounts',
    where: 'true',
    orderBy: 'id',
    restore: 'merge',
    omit: { email: 'personal data', password_hash: 'a secret', wallet_address: 'personal data' },
  },
  { name: 'subclouds', table: 'subclouds', where: 'true', orderBy: 'name', restore: 'merge' },
  { name: 'namespaces', table: 'namespaces', where: 'true', orderBy: 'id', restore: 'merge' },
  {
    name: 'api_keys',
    table: 'api_keys',
    where: 'true',
    orderBy: 'id',
    restore: 'merge',
    omit: { key_hash: 'derived from the secret', last_used_at: 'activity, not history' },
    // A restored key cannot authenticate: nobody knows a secret that hashes to random bytes. Consumers
    // get new keys from the restored network.
    fill: { key_hash: `decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')` },
  },
  { name: 'models', table: 'models', where: 'true', orderBy: 'name', restore: 'merge' },
  { name: 'nodes', table: 'nodes', where: 'true', orderBy: 'id', restore: 'merge' },
  {
    name: 'ledger_accounts',
    table: 'ledger_accounts',
    where: 'true',
    orderBy: 'id',
    restore: 'merge',
    // A cache of the sum of the account's entries: recomputed from the restored entries.
    omit: { balance: 'a cache of the entries, recomputed at restore' },
  },
  { name: 'system_principals', table: 'system_principals', where: 'true', orderBy: 'purpose', restore: 'merge' },
];

const NETWORK_CONFIGS_OF_DAY: PartSpec = { name: 'network_configs', table: 'network_configs', where: DAY('published_at'), orderBy: 'version', restore: 'merge' };

/** The parts of a day, after the state, in restore order. */
export const DAY_PARTS: readonly PartSpec[] = [
  ...STATE_PARTS,
  {
    name: 'job_rollup_days',
    table: 'job_rollup_days',
    where: 'day = :day::date',
    orderBy: 'day',
    restore: 'append',
    // Bookkeeping of this database's maintenance, which changes when the raw partition is dropped (the
    // day is re-rolled then): history is the totals, not when this instance got to them.
    omit: { rolled_up_at: 'maintenance bookkeeping', raw_dropped_at: 'maintenance bookkeeping' },
  },
  { name: 'job_rollups', table: 'job_rollups', where: 'day = :day::date', orderBy: 'namespace_id, api_key_id, model, node_id, status', restore: 'append' },
  { name: 'ledger_transactions', table: 'ledger_transactions', where: DAY('created_at'), orderBy: 'id', restore: 'append' },
  {
    name: 'ledger_entries',
    table: 'ledger_entries',
    // The day's entries found from the day's transactions through the index on txn_id. Written as
    // `txn_id IN (SELECT ...)`, the planner hash-joins the whole of ledger_entries whenever the day is a
    // fair share of what it holds: with 20 days of history, 0.83 s on three processes against 0.31 s on
    // one, and growing with every day kept. The rows and their order are the same.
    where: `txn_id = ANY (ARRAY(SELECT id FROM ledger_transactions WHERE ${DAY('created_at')}))`,
    orderBy: 'id',
    restore: 'append',
  },
  { name: 'ledger_rollups', table: 'ledger_rollups', where: 'day = :day::date', orderBy: 'account_id', restore: 'append' },
  { name: 'ledger_days', table: 'ledger_days', where: 'day = :day::date', orderBy: 'day', restore: 'append' },
  NETWORK_CONFIGS_OF_DAY,
  { name: 'admin_changes', table: 'admin_changes', where: DAY('at'), orderBy: 'id', restore: 'append' },
  { name: 'rcp_records', table: 'rcp_records', where: 'epoch = ANY(:epochs::bigint[])', orderBy: 'id', restore: 'append' },
  { name: 'jobs', table: 'jobs', where: DAY('created_at'), orderBy: 'id, created_at', keyOrder: true, restore: 'archive' },
  { name: 'job_attempts', table: 'job_attempts', where: DAY('job_created_at'), orderBy: 'job_id, job_created_at, attempt', keyOrder: true, restore: 'archive' },
];

/** The parts of an on-demand state snapshot. */
export interface PartParams {
  day: string | null;
  epochs: number[];
}

/**
 * The part's condition for a COPY, which takes no bind parameters: each placeholder reads a setting of the
 * transaction (`current_setting`), set from query parameters by the caller (PART_SETTINGS, settingValues),
 * so no value is ever written into the SQL text.
 */
export function settingWhere(spec: PartSpec): string {
  return spec.where.replace(/:(day|epochs)\b/g, (_m, name: 'day' | 'epochs') => `current_setting('${PART_SETTINGS[name]}')`);
}

export const PART_SETTINGS = { day: 'resultity.snapshot_day', epochs: 'resultity.snapshot_epochs' } as const;

/** The settings' values, as text: the day ('' for none) and the epochs as a bigint[] literal. */
export function settingValues(params: PartParams): { day: string; epochs: string } {
  return { day: params.day ?? '', epochs: `{${params.epochs.map((e) => String(Math.trunc(e))).join(',')}}` };
}

/**
 * The order of the raw job parts before format 3 (by time), for comparing an older snapshot's parts with
 * the live database (snapshot.service.ts compareWithDb): the same rows in another order hash otherwise.
 */
export const FORMAT_2_ORDER: Readonly<Record<string, string>> = { jobs: 'created_at, id', job_attempts: 'job_created_at, job_id, attempt' };

/**
 * The part as PostgreSQL copies it out, and the settings its COPY reads (postgres/snapshot-copy.ts): the
 * parameters, and the planner's sorts (off for a part read in primary-key order; set for every part, since
 * a setting lasts the transaction). `orderBy` overrides the spec's order (an older format's).
 */
export function copySource(spec: PartSpec, params: PartParams, orderBy?: string): { source: { table: string; where: string; orderBy: string }; settings: Record<string, string> } {
  const values = settingValues(params);
  const keyOrder = spec.keyOrder === true && (orderBy === undefined || orderBy === spec.orderBy);
  return {
    source: { table: spec.table, where: settingWhere(spec), orderBy: orderBy ?? spec.orderBy },
    settings: { [PART_SETTINGS.day]: values.day, [PART_SETTINGS.epochs]: values.epochs, enable_sort: keyOrder ? 'off' : 'on' },
  };
}

export const STATE_SNAPSHOT_PARTS: readonly PartSpec[] = [...STATE_PARTS, { ...NETWORK_CONFIGS_OF_DAY, where: 'true' }];

const ALL_PARTS = new Map([...DAY_PARTS, ...STATE_SNAPSHOT_PARTS].map((p) => [p.name, p]));

/** The spec of a part by name; a name this version does not know is a snapshot it cannot restore. */
export function partSpec(name: string): PartSpec | undefined {
  return ALL_PARTS.get(name);
}

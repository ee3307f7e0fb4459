// The services behind the admin interfaces (the admin API, the account API's shared parts, the
// `resultity admin` command line), built in one place for the server (app.ts), the CLI
// (cli/admin.command.ts) and the tests, so that the CLI never re-wires them by hand and the three cannot
// drift apart. Part of the composition root: it takes connected engines and wires services, nothing more.
import type { Logger } from 'pino';
import { accountQuotasOf, type Config } from './config.js';
import type { Db } from './postgres/db.js';
import type { RedisClient, RedisKeys } from './redis/client.js';
import type { JobQueue } from './rabbitmq/job-queue.js';
import type { Catalog } from './catalog/catalog.service.js';
import { NodeFlagsMirror } from './redis/node-flags.mirror.js';
import { EligibilityMirror } from './redis/eligibility.mirror.js';
import { NodeConfigDigests } from './redis/node-config-digests.repository.js';
import { cooldownRule, NodeFlagsService } from './network/node-flags.service.js';
import { nodeFlagsStore } from './postgres/node-flags.store.js';
import { eligibilityStore } from './postgres/eligibility.store.js';
import { networkConfigStore } from './postgres/network-config.store.js';
import { operatorsStore } from './postgres/operators.store.js';
import { EligibilityService } from './network/eligibility.service.js';
import { NetworkConfigService } from './network/network-config.service.js';
import { AccountsAdminService } from './gate/accounts-admin.service.js';
import { ApiKeysAdminService } from './gate/api-keys-admin.service.js';
import { CreditsAdminService } from './gate/credits-admin.service.js';
import { ModelsAdminService } from './gate/models-admin.service.js';
import { AdminRecordsService } from './gate/admin-records.service.js';
import { accountsAdminStore } from './postgres/accounts-admin.store.js';
import { apiKeysAdminStore } from './postgres/api-keys-admin.store.js';
import { creditsAdminStore } from './postgres/credits-admin.store.js';
import { modelsAdminStore } from './postgres/models-admin.store.js';
import { adminRecordsStore } from './postgres/admin-records.store.js';
import { OperatorsService } from './gate/operators.service.js';
import { UsageService } from './space/usage.service.js';
import { usageStore } from './postgres/usage.store.js';
import { LedgerChainService } from './maintenance/ledger-chain.service.js';
import { ledgerChainStore } from './postgres/ledger-chain.store.js';

export interface AdminEngines {
  config: Config;
  logger: Logger;
  db: Db;
  redis: RedisClient;
  keys: RedisKeys;
  /** Null where no broker is connected (then node flags are not announced on it). */
  queue: JobQueue | null;
  /** The server's in-process catalogue, dropped on the changes the admin makes (none in the CLI). */
  catalog?: Catalog;
}

export interface AdminServices {
  /** Accounts and namespaces. */
  accounts: AccountsAdminService;
  apiKeys: ApiKeysAdminService;
  /** Top-ups, balances, the ledger's totals. */
  credits: CreditsAdminService;
  /** Models, tokenizers, usage bounds, aliases. */
  models: ModelsAdminService;
  /** The admin change log, nodes' contribution points. */
  records: AdminRecordsService;
  eligibility: EligibilityService;
  flagsMirror: NodeFlagsMirror;
  nodeFlags: NodeFlagsService;
  /** Publishing signs with NETWORK_SIGNING_KEY; everything else runs without it. */
  networkConfig: NetworkConfigService;
  operators: OperatorsService;
  usage: UsageService;
  ledgerChain: LedgerChainService;
}

export function buildAdminServices(e: AdminEngines): AdminServices {
  const { config, db, redis, keys } = e;
  const networkKey = config.NETWORK_SIGNING_KEY ?? null;
  const eligibility = new EligibilityService({ store: eligibilityStore(db), mirror: new EligibilityMirror(redis, keys) });
  const flagsMirror = new NodeFlagsMirror(redis, keys);
  const nodeFlags = new NodeFlagsService({ store: nodeFlagsStore(db), mirror: flagsMirror, rule: cooldownRule(config) });
  const quotas = accountQuotasOf(config);
  const catalog = e.catalog ? { catalog: e.catalog } : {};
  return {
    accounts: new AccountsAdminService({ store: accountsAdminStore(db), ...catalog, quotas }),
    apiKeys: new ApiKeysAdminService({ store: apiKeysAdminStore(db), ...catalog, quotas }),
    credits: new CreditsAdminService({ store: creditsAdminStore(db) }),
    models: new ModelsAdminService({ store: modelsAdminStore(db), eligibility, queue: e.queue }),
    records: new AdminRecordsService({ store: adminRecordsStore(db) }),
    eligibility,
    flagsMirror,
    nodeFlags,
    networkConfig: new NetworkConfigService({ store: networkConfigStore(db), networkKey, config, nodeDigests: new NodeConfigDigests(redis, keys), logger: e.logger }),
    operators: new OperatorsService({ store: operatorsStore(db), networkKey }),
    usage: new UsageService(usageStore(db)),
    ledgerChain: new LedgerChainService(ledgerChainStore(db)),
  };
}

// The API's answers as the browser receives them, typed from the backbone's own types (type-only
// imports: nothing of the server is bundled). JSON turns every Date into its ISO string: Wire<T> says so.
import type { StatusSnapshot } from '../../src/status/status.service.js';
import type { NetworkConfig } from '../../src/domain/network-config.js';
import type { AccountProfile, NamespaceRow } from '../../src/postgres/accounts.repository.js';
import type { ApiKeyRow } from '../../src/postgres/api-keys.repository.js';
import type { SignIn } from '../../src/gate/account.service.js';
import type { UsageReportRow } from '../../src/space/usage.service.js';
import type { NamespaceBalanceView, NamespaceJobView } from '../../src/gate/namespace-console.service.js';
import type { OperatorNodeView, RcpEpochView, WithdrawalView } from '../../src/gate/operator-console.service.js';
import type { OperatorsService } from '../../src/gate/operators.service.js';

export type Wire<T> = T extends Date
  ? string
  : T extends ReadonlyArray<infer U>
    ? Array<Wire<U>>
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

export type Status = Wire<StatusSnapshot>;
export type NetworkStatus = Status['networks'][number];
/** GET /io/config: the network config version in force (src/io/gateway.ts). */
export interface IoConfig {
  version: number;
  digest: string;
  document: Wire<NetworkConfig>;
  signature: string;
  network: string;
}

export type Account = Wire<AccountProfile>;
export type Session = Wire<SignIn>;
export type Namespace = Wire<NamespaceRow>;
export type ApiKey = Wire<ApiKeyRow>;
export type IssuedKey = ApiKey & { key: string };
export type Balance = Wire<NamespaceBalanceView>;
export type Job = Wire<NamespaceJobView>;
export type UsageRow = Wire<UsageReportRow>;
export interface UsageReport {
  object: 'list';
  from: string;
  to: string;
  data: UsageRow[];
}
export type OperatorNode = Wire<OperatorNodeView>;
export type RcpEpoch = Wire<RcpEpochView>;
export type Withdrawal = Wire<WithdrawalView>;
export type Earnings = Wire<Awaited<ReturnType<OperatorsService['earnings']>>>;
export interface List<T> {
  data: T[];
}
/** The API's one error shape. */
export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

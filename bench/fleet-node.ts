// A SIMULATED fleet node for the fleet benchmark (bench/fleet.ts): its key, what it declares about
// itself, and the two frames it sends (register, heartbeat). It runs no model and takes no job; it only
// speaks the registration and heartbeat protocol (src/domain/protocol.ts) as the real agent does
// (src/node-agent/agent.ts), signed with its own secp256k1 key.
//
// Every frame is built here and typed against the protocol's message types, so a change of the protocol
// (a new required field, say) fails to compile here and is fixed in one place.
import { randomUUID } from 'node:crypto';
import type { HeartbeatMessage, RegisterMessage } from '../src/domain/protocol.js';
import type { Gpu, Network } from '../src/domain/eligibility.js';
import { addressOf, generatePrivateKey, signMessage, type Address } from '../src/domain/signatures.js';

/** The models the fleet serves, registered in the catalogue at version 1 by bench/fleet-gateway.ts. */
export const FLEET_MODELS = ['bench/fleet-a', 'bench/fleet-b'] as const;
export const FLEET_MODEL_VERSION = '1';
const REGIONS = ['eu-west', 'eu-central', 'us-east', 'ap-south'] as const;
const GPUS: readonly Gpu[] = [
  { name: 'rtx-4090', memoryMb: 24_576 },
  { name: 'a100', memoryMb: 81_920 },
  { name: 'rtx-3090', memoryMb: 24_576 },
  { name: 'none', memoryMb: 0 },
];
export const FLEET_NODE_CAPACITY = 4;
const AGENT_VERSION = 'resultity-fleet-sim/1';

type Traits = Pick<RegisterMessage, 'network' | 'region' | 'gpu' | 'models'>;

export interface FleetNode {
  readonly index: number;
  readonly privateKey: string;
  readonly nodeId: Address;
  readonly traits: Traits;
}

/**
 * What node `index` of the fleet declares, deterministic so that every run builds the same fleet: one in
 * ten on testnet, regions and GPU classes in rotation, every node serving the first model and every
 * other node the second too. The reservations measured ask for the first model on mainnet in any region.
 */
export function fleetTraits(index: number): Traits {
  const network: Network = index % 10 === 9 ? 'testnet' : 'mainnet';
  const models = FLEET_MODELS.slice(0, index % 2 === 0 ? 2 : 1).map((name) => ({ name, version: FLEET_MODEL_VERSION }));
  return { network, region: REGIONS[index % REGIONS.length]!, gpu: GPUS[index % GPUS.length]!, models };
}

/** A node with a fresh key (about half a millisecond of CPU: the fleet's keys are made before connecting). */
export function newFleetNode(index: number): FleetNode {
  const privateKey = generatePrivateKey();
  return { index, privateKey, nodeId: addressOf(privateKey), traits: fleetTraits(index) };
}

/** The signed `register` answering the gateway's challenge. */
export function registerFrame(node: FleetNode, operator: string, challenge: string): RegisterMessage {
  const body = {
    type: 'register',
    nodeId: node.nodeId,
    operator,
    challenge,
    ts: Date.now(),
    agentVersion: AGENT_VERSION,
    runtime: 'simulated',
    ...node.traits,
    capacity: FLEET_NODE_CAPACITY,
    running: 0,
  } satisfies Omit<RegisterMessage, 'signature'>;
  return signMessage(node.privateKey, body);
}

/** A signed heartbeat with a fresh nonce (the node runs nothing, so `running` is 0). */
export function heartbeatFrame(node: FleetNode): HeartbeatMessage {
  const body = {
    type: 'heartbeat',
    nodeId: node.nodeId,
    ts: Date.now(),
    nonce: randomUUID(),
    ...node.traits,
    capacity: FLEET_NODE_CAPACITY,
    running: 0,
  } satisfies Omit<HeartbeatMessage, 'signature'>;
  return signMessage(node.privateKey, body);
}

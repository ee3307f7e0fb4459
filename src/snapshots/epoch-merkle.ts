// Contribution epochs as Merkle trees for on-chain claims: one leaf per node, (address node, uint256
// points), in the layout of OpenZeppelin's StandardMerkleTree (leaf = keccak256(keccak256(abi.encode(
// node, points))), sorted pairs), which its MerkleProof.verify checks in a claim contract as is.
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';

export const LEAF_ENCODING = ['address', 'uint256'];

export interface NodePoints {
  node_id: string;
  points: number;
}

export interface EpochTree {
  root: string;
  nodes: number;
  points: number;
  tree: StandardMerkleTree<[string, string]>;
}

/** The epoch's tree over its nodes' points (the order of `rows` does not matter: leaves are sorted). */
export function epochTree(rows: readonly NodePoints[]): EpochTree {
  const tree = StandardMerkleTree.of<[string, string]>(
    rows.map((r) => [r.node_id, String(r.points)]),
    LEAF_ENCODING,
  );
  return { root: tree.root, nodes: rows.length, points: rows.reduce((s, r) => s + r.points, 0), tree };
}

export interface EpochProof {
  node_id: string;
  points: number;
  leaf: string;
  proof: string[];
  merkle_root: string;
}

/** The node's proof in the epoch's tree; null when the node has no leaf there. */
export function proofFor(t: EpochTree, nodeId: string): EpochProof | null {
  for (const [i, [node, points]] of t.tree.entries()) {
    if (node.toLowerCase() !== nodeId.toLowerCase()) continue;
    return { node_id: node, points: Number(points), leaf: t.tree.leafHash([node, points]), proof: t.tree.getProof(i), merkle_root: t.root };
  }
  return null;
}

/** Checks a proof as a claim contract would: against the root alone. */
export function verifyProof(p: Pick<EpochProof, 'node_id' | 'points' | 'proof' | 'merkle_root'>): boolean {
  return StandardMerkleTree.verify(p.merkle_root, LEAF_ENCODING, [p.node_id, String(p.points)], p.proof);
}

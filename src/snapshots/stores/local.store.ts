// Snapshots as files in a directory, `<root CID>.car`: the default store, embedded. A file is written
// under a temporary name and renamed, so a reader never sees half a snapshot.
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { SnapshotNotFoundError, StoreUnavailableError, type SnapshotStore } from '../snapshot-store.js';

export class LocalDirectoryStore implements SnapshotStore {
  readonly name: string;

  constructor(private readonly dir: string) {
    this.name = `local:${path.resolve(dir)}`;
  }

  private file(cid: string): string {
    if (!/^b[a-z2-7]+$/.test(cid)) throw new Error(`not a CIDv1 in base32: ${cid}`);
    return path.join(this.dir, `${cid}.car`);
  }

  async put(carPath: string, cid: string): Promise<void> {
    const target = this.file(cid);
    try {
      await mkdir(this.dir, { recursive: true });
      const temp = `${target}.${process.pid}.tmp`;
      await rm(temp, { force: true });
      // A hard link when the CAR is on the store's file system (no second write of every byte), else a copy.
      await link(carPath, temp).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EXDEV' && err.code !== 'EPERM' && err.code !== 'ENOTSUP') throw err;
        return copyFile(carPath, temp);
      });
      await rename(temp, target);
    } catch (err) {
      throw new StoreUnavailableError(this.name, { cause: err });
    }
  }

  async get(cid: string): Promise<AsyncIterable<Uint8Array>> {
    const file = this.file(cid);
    try {
      await stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // A missing directory is a store that is not there (unmounted), not a missing snapshot.
        const dirThere = await stat(this.dir).then((s) => s.isDirectory(), () => false);
        if (dirThere) throw new SnapshotNotFoundError(this.name, cid);
      }
      throw new StoreUnavailableError(this.name, { cause: err });
    }
    return createReadStream(file);
  }
}

// Packs a stream of rows' bytes into blocks of at most `maxBytes`, each cut at the last row's end that
// fits (greedy: a block holds every row that fits after the one before it). A row longer than a block
// alone is cut inside it at `maxBytes`, and goes on in the next block. The one rule for cutting COPY
// text into a snapshot part's chunks, whether the row ends come from the protocol's framing
// (postgres/copy-out.ts) or from newlines (snapshots/copy-text.ts chunkAtRows).
//
// Every byte is copied once, into the block being filled; a block is handed out as it is.

export class RowBlocks {
  private block: Buffer;
  private used = 0;
  /** The offset just past the last whole row in `block` (0: none yet). */
  private lastRowEnd = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly emit: (block: Buffer) => void,
  ) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError(`block size must be a positive integer, not ${maxBytes}`);
    this.block = Buffer.allocUnsafe(maxBytes);
  }

  /** Appends bytes of the current row; `endsRow` when they are its last. */
  push(bytes: Uint8Array, endsRow: boolean): void {
    let rest = bytes;
    for (;;) {
      const room = this.maxBytes - this.used;
      if (rest.length <= room) {
        this.block.set(rest, this.used);
        this.used += rest.length;
        if (endsRow) this.lastRowEnd = this.used;
        return;
      }
      if (this.lastRowEnd > 0) {
        // The block ends after its last whole row; the row begun after it moves to the next block.
        const next = Buffer.allocUnsafe(this.maxBytes);
        this.block.copy(next, 0, this.lastRowEnd, this.used);
        this.emit(this.block.subarray(0, this.lastRowEnd));
        this.block = next;
        this.used -= this.lastRowEnd;
        this.lastRowEnd = 0;
      } else {
        // One row fills the block: cut inside it.
        this.block.set(rest.subarray(0, room), this.used);
        this.emit(this.block);
        this.block = Buffer.allocUnsafe(this.maxBytes);
        this.used = 0;
        rest = rest.subarray(room);
      }
    }
  }

  /** Hands out what is left (nothing when nothing is). */
  end(): void {
    if (this.used > 0) this.emit(this.block.subarray(0, this.used));
    this.block = Buffer.alloc(0);
    this.used = 0;
    this.lastRowEnd = 0;
  }
}

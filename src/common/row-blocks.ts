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

  /**
   * Appends bytes: whole rows, or the end or start of one. `rowEnds` are the offsets in `bytes` just past
   * each row that ends there, in order (empty when the bytes are all inside one row). One copy per run of
   * rows that fits, whatever the number of rows in it.
   */
  push(bytes: Uint8Array, rowEnds: ArrayLike<number>): void {
    let start = 0;
    let next = 0; // the first of rowEnds past `start`
    while (start < bytes.length) {
      const room = this.maxBytes - this.used;
      if (bytes.length - start <= room) {
        this.block.set(start === 0 ? bytes : bytes.subarray(start), this.used);
        if (rowEnds.length > next) this.lastRowEnd = this.used + rowEnds[rowEnds.length - 1]! - start;
        this.used += bytes.length - start;
        return;
      }
      // Not all of it fits: the rows that do fill the block up, which then goes out.
      let fits = -1;
      while (next < rowEnds.length && rowEnds[next]! - start <= room) fits = rowEnds[next++]!;
      if (fits >= 0) {
        this.block.set(bytes.subarray(start, fits), this.used);
        this.used += fits - start;
        this.lastRowEnd = this.used;
        start = fits;
        this.emitUpTo(this.used);
      } else if (this.lastRowEnd > 0) {
        // The block ends after its last whole row; the row begun after it moves to the next block.
        this.emitUpTo(this.lastRowEnd);
      } else {
        // One row fills the block: cut inside it.
        this.block.set(bytes.subarray(start, start + room), this.used);
        this.used = this.maxBytes;
        start += room;
        this.emitUpTo(this.maxBytes);
      }
    }
  }

  /** Hands out the block's first `end` bytes; what follows them begins the next block. */
  private emitUpTo(end: number): void {
    const next = Buffer.allocUnsafe(this.maxBytes);
    if (end < this.used) this.block.copy(next, 0, end, this.used);
    this.emit(this.block.subarray(0, end));
    this.block = next;
    this.used -= end;
    this.lastRowEnd = 0;
  }

  /** Hands out what is left (nothing when nothing is). */
  end(): void {
    if (this.used > 0) this.emit(this.block.subarray(0, this.used));
    this.block = Buffer.alloc(0);
    this.used = 0;
    this.lastRowEnd = 0;
  }
}

/**
 * Test helpers for the readers (folder-private): a byte source that hands
 * out given chunks, and the ways to cut an input into chunks.
 *
 * @module
 */

import type { ByteSource } from "./line_reader.ts";

const enc = new TextEncoder();

/** A source that hands out the given chunks, one per read, then EOF. */
export class ChunkSource implements ByteSource {
  #chunks: Uint8Array[];
  /** How many reads were made. */
  reads = 0;

  /** @param chunks what each read returns, in order */
  constructor(chunks: Uint8Array[]) {
    this.#chunks = [...chunks];
  }

  /** Copies the next chunk (or as much of it as fits) into p. */
  read(p: Uint8Array): Promise<number | null> {
    this.reads++;
    let c = this.#chunks.shift();
    if (c === undefined) return Promise.resolve(null);
    if (c.length > p.length) {
      this.#chunks.unshift(c.subarray(p.length));
      c = c.subarray(0, p.length);
    }
    p.set(c);
    return Promise.resolve(c.length);
  }
}

/**
 * The ways to deliver an input: whole, byte by byte, and cut in two at every offset.
 * @param input the text
 * @returns labelled chunk lists
 */
export function chunkings(input: string): [string, Uint8Array[]][] {
  const all = enc.encode(input);
  const out: [string, Uint8Array[]][] = [
    ["whole", [all]],
    ["byte by byte", Array.from(all, (b) => new Uint8Array([b]))],
  ];
  for (let i = 1; i < all.length; i++) {
    out.push([`cut at ${i}`, [all.subarray(0, i), all.subarray(i)]]);
  }
  return out;
}

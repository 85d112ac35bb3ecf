/**
 * Seeded randomness for the simulator. Everything the simulator invents (event counts, ids, payloads,
 * fault decisions) comes from these generators, so one seed always yields the same provider.
 * Not cryptographic: sfc32 seeded through a 128-bit string hash (cyrb128), both small and fast.
 */

/** Four 32-bit words; the state of a generator or the hash of a string. */
export type Words = readonly [number, number, number, number];

/** cyrb128: a fast 128-bit string hash, good enough to seed independent generator streams. */
export function hash128(text: string): Words {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** murmur3's 32-bit finalizer: spreads every input bit over the output. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Derives the words of a sub-stream from a parent hash and an integer (e.g. a minute bucket). */
export function mixWords(base: Words, n: number, salt = 0): Words {
  const lo = n >>> 0;
  const hi = Math.floor(n / 4294967296) >>> 0;
  const k1 = fmix32(lo ^ Math.imul((salt + 0x9e3779b9) | 0, 0x85ebca6b));
  const k2 = fmix32(hi ^ Math.imul((salt ^ 0x27d4eb2f) | 0, 0xc2b2ae35));
  // Chained, so every output word depends on every input word, n and salt.
  const w0 = fmix32(base[0] ^ k1);
  const w1 = fmix32(base[1] ^ k2 ^ w0);
  const w2 = fmix32(base[2] ^ k1 ^ w1);
  const w3 = fmix32(base[3] ^ k2 ^ w2);
  return [w0, w1, w2, w3];
}

/** sfc32 generator with the helpers the simulator needs. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(words: Words) {
    this.#a = words[0] | 0;
    this.#b = words[1] | 0;
    this.#c = words[2] | 0;
    this.#d = words[3] | 0;
    // Some all-zero-ish seeds start poorly; a dozen rounds decorrelate them.
    for (let i = 0; i < 12; i++) this.u32();
  }

  static fromString(text: string): Rng {
    return new Rng(hash128(text));
  }

  /** Uniform unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [min, max]. */
  range(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined && items.length === 0) throw new Error('pick from an empty list');
    return item as T;
  }

  /** Standard normal (Box-Muller). */
  gaussian(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Poisson(lambda): Knuth's product method for small means, a rounded normal for large ones. */
  poisson(lambda: number): number {
    if (!(lambda > 0)) return 0;
    if (lambda < 40) {
      const limit = Math.exp(-lambda);
      let k = 0;
      let p = this.next();
      while (p > limit) {
        k++;
        p *= this.next();
      }
      return k;
    }
    return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * this.gaussian()));
  }

  /** A random RFC 4122 version-4-shaped UUID (lowercase). */
  uuid(): string {
    return uuidFromWords([this.u32(), this.u32(), this.u32(), this.u32()]);
  }

  words(): Words {
    return [this.u32(), this.u32(), this.u32(), this.u32()];
  }
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex32(word: number): string {
  return (
    (HEX[(word >>> 24) & 0xff] as string) +
    (HEX[(word >>> 16) & 0xff] as string) +
    (HEX[(word >>> 8) & 0xff] as string) +
    (HEX[word & 0xff] as string)
  );
}

/** Formats 128 bits as a version-4 UUID (the version and variant bits are forced). */
export function uuidFromWords(words: Words): string {
  const w1 = ((words[1] & 0xffff0fff) | 0x00004000) >>> 0;
  const w2 = ((words[2] & 0x3fffffff) | 0x80000000) >>> 0;
  const a = hex32(words[0]);
  const b = hex32(w1);
  const c = hex32(w2);
  const d = hex32(words[3]);
  return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`;
}

/** A deterministic UUID for a label, e.g. the parent organization of a simulated project. */
export function uuidFor(label: string): string {
  return uuidFromWords(hash128(label));
}

export const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * MongoDB's ObjectId: 4 bytes of seconds since the epoch, 5 random bytes per isolate, a 3-byte counter that
 * starts at random — the layout and generation of the `bson` package's ObjectId, with the part of its API this
 * code uses. Ours because bson cannot be tree-shaken: its ObjectId alone brought all of it (~56 KiB minified,
 * 17 KiB gzip) into the Worker. An instance holds its lowercase hex form.
 */

const HEX_24 = /^[0-9a-f]{24}$/i;

let processUnique: string | undefined;
let counter: number | undefined;

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

const toHex = (value: number, digits: number) => value.toString(16).padStart(digits, "0");

/** Seconds as the id's first 4 bytes (wrapping as bson's does, so times past 2106 still make an id). */
const timeHex = (seconds: number) => toHex(seconds >>> 0, 8);

export class ObjectId {
  // An own, enumerable field (not `#hex`), so matchers like toEqual tell two ids apart.
  private readonly hex: string;

  /** A new id (no argument), or the one a 24-digit hex string or another ObjectId names. */
  constructor(id?: string | ObjectId | null) {
    if (id === undefined || id === null) {
      // Lazily: workerd allows no random values at global scope.
      processUnique ??= randomHex(5);
      counter = ((counter ?? Number.parseInt(randomHex(3), 16)) + 1) % 0x1000000;
      this.hex = timeHex(Math.floor(Date.now() / 1000)) + processUnique + toHex(counter, 6);
    } else if (id instanceof ObjectId) {
      this.hex = id.hex;
    } else if (typeof id === "string" && HEX_24.test(id)) {
      this.hex = id.toLowerCase();
    } else {
      throw new TypeError("an ObjectId is a 24-digit hex string");
    }
  }

  /** The smallest id of that second (counter and random part zero), e.g. as a bound in a range filter. */
  static createFromTime(seconds: number): ObjectId {
    return new ObjectId(`${timeHex(seconds)}0000000000000000`);
  }

  static createFromHexString(hexString: string): ObjectId {
    return new ObjectId(hexString);
  }

  static isValid(value: unknown): boolean {
    return value instanceof ObjectId || (typeof value === "string" && HEX_24.test(value));
  }

  toHexString(): string {
    return this.hex;
  }

  toString(): string {
    return this.hex;
  }

  /** What JSON.stringify writes (as bson's ObjectId does): the hex string. */
  toJSON(): string {
    return this.hex;
  }

  /** When it was made, to the second. */
  getTimestamp(): Date {
    return new Date(Number.parseInt(this.hex.slice(0, 8), 16) * 1000);
  }

  /** Same id: another ObjectId (or anything with `toHexString`) or a 24-digit hex string, in any case. */
  equals(other: ObjectId | string | { toHexString(): string } | null | undefined): boolean {
    if (other === null || other === undefined) return false;
    if (other instanceof ObjectId) return other.hex === this.hex;
    const hexString = typeof other === "string" ? other : other.toHexString();
    return typeof hexString === "string" && hexString.toLowerCase() === this.hex;
  }

  /** How Node's console and test output show it. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `new ObjectId('${this.hex}')`;
  }
}

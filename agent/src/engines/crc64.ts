/**
 * CRC-64/Jones as Redis computes it for RDB files (reflected, polynomial
 * 0xad93d23594c935a9, initial value 0, no final xor), on two 32-bit halves.
 */
const LO = new Uint32Array(256);
const HI = new Uint32Array(256);
(() => {
  // Reflected polynomial 0x95ac9329ac4bc9b5.
  const pLo = 0xac4bc9b5;
  const pHi = 0x95ac9329;
  for (let i = 0; i < 256; i++) {
    let lo = i;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const bit = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (bit) {
        lo = (lo ^ pLo) >>> 0;
        hi = (hi ^ pHi) >>> 0;
      }
    }
    LO[i] = lo;
    HI[i] = hi;
  }
})();

export class Crc64 {
  lo = 0;
  hi = 0;

  update(b: Uint8Array): this {
    let lo = this.lo;
    let hi = this.hi;
    for (let i = 0; i < b.length; i++) {
      const idx = (lo ^ b[i]!) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ LO[idx]!) >>> 0;
      hi = ((hi >>> 8) ^ HI[idx]!) >>> 0;
    }
    this.lo = lo;
    this.hi = hi;
    return this;
  }

  /** The 8 bytes as Redis stores them (little-endian). */
  bytes(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32LE(this.lo, 0);
    out.writeUInt32LE(this.hi, 4);
    return out;
  }

  clone(): Crc64 {
    const c = new Crc64();
    c.lo = this.lo;
    c.hi = this.hi;
    return c;
  }
}

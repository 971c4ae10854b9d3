/**
 * A minimal, defensive ZIP reader for PyTorch checkpoints (which `torch.save` writes as a zip of stored,
 * 64-byte-aligned entries). Stored entries come back as zero-copy views; deflated entries are inflated with
 * fflate into a buffer whose declared size is checked against a bound first. Every offset and size in the
 * central directory, the zip64 records and the local headers is checked against the file before use.
 *
 * (fflate's own `unzipSync` is not used for reading because it copies every stored entry, does not check
 * local-header signatures, silently truncates entries that run past the end of the file, and walks as many
 * central-directory records as the file declares.)
 */
import { inflateSync } from 'fflate';
import { fileError } from './file-error.js';

/** One entry of the central directory. */
export interface ZipEntry {
  /** Path inside the archive. */
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  /** Bytes in the file. */
  compressedSize: number;
  /** Bytes after inflation. */
  size: number;
  /** Offset of the entry's data (after the local header). */
  dataOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** A parsed archive: the entries by name, and a reader that checks bounds. */
export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();

  /**
   * @param bytes - The whole zip file.
   * @param file - Name used in error messages.
   * @param maxInflatedBytes - Upper bound on the declared size of any deflated entry.
   */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
    private readonly maxInflatedBytes = 32 * bytes.length + (1 << 20),
  ) {
    const fail = (problem: string) => fileError(file, `not a valid PyTorch zip checkpoint: ${problem}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const u16 = (at: number) => view.getUint16(at, true);
    const u32 = (at: number) => view.getUint32(at, true);
    const u64 = (at: number, what: string): number => {
      const v = view.getBigUint64(at, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`zip64 ${what} ${v} is out of range`);
      return Number(v);
    };
    const len = bytes.length;
    if (len < 22) throw fail(`file is ${len} bytes, too short for a zip`);

    let eocd = -1;
    for (let at = len - 22; at >= Math.max(0, len - 22 - 0xffff); at--) {
      if (u32(at) === EOCD && at + 22 + u16(at + 20) <= len) {
        eocd = at;
        break;
      }
    }
    if (eocd < 0) throw fail('no end-of-central-directory record (truncated?)');

    let count = u16(eocd + 10);
    let cdSize = u32(eocd + 12);
    let cdOffset = u32(eocd + 16);
    let cdLimit = eocd;
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || u32(loc) !== ZIP64_LOCATOR) throw fail('zip64 sizes without a zip64 locator');
      const z = u64(loc + 8, 'end record offset');
      if (z + 56 > loc || u32(z) !== ZIP64_EOCD) throw fail('zip64 end record missing or out of range');
      count = u64(z + 32, 'entry count');
      cdSize = u64(z + 40, 'directory size');
      cdOffset = u64(z + 48, 'directory offset');
      cdLimit = z;
    }
    if (cdOffset + cdSize > cdLimit) throw fail(`central directory [${cdOffset}, ${cdOffset + cdSize}) runs past its end record`);
    if (count * 46 > cdSize) throw fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`);

    const names = new TextDecoder('utf-8');
    let at = cdOffset;
    const cdEnd = cdOffset + cdSize;
    for (let i = 0; i < count; i++) {
      if (at + 46 > cdEnd || u32(at) !== CENTRAL) throw fail(`central directory entry ${i} is corrupt`);
      const flags = u16(at + 8);
      const method = u16(at + 10);
      let compressedSize = u32(at + 20);
      let size = u32(at + 24);
      const nameLength = u16(at + 28);
      const extraLength = u16(at + 30);
      const commentLength = u16(at + 32);
      let localOffset = u32(at + 42);
      const next = at + 46 + nameLength + extraLength + commentLength;
      if (next > cdEnd) throw fail(`central directory entry ${i} runs past the directory`);
      const name = names.decode(bytes.subarray(at + 46, at + 46 + nameLength));
      // zip64 extra field (id 1): the 64-bit values present are those whose 32-bit field is 0xffffffff.
      if (size === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
        let e = at + 46 + nameLength;
        const eEnd = e + extraLength;
        let found = false;
        while (e + 4 <= eEnd) {
          const id = u16(e);
          const n = u16(e + 2);
          if (e + 4 + n > eEnd) break;
          if (id === 1) {
            let f = e + 4;
            const take = (what: string): number => {
              if (f + 8 > e + 4 + n) throw fail(`zip64 extra field of ${JSON.stringify(name)} is too short`);
              const v = u64(f, what);
              f += 8;
              return v;
            };
            if (size === 0xffffffff) size = take('size');
            if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
            if (localOffset === 0xffffffff) localOffset = take('offset');
            found = true;
            break;
          }
          e += 4 + n;
        }
        if (!found) throw fail(`entry ${JSON.stringify(name)} needs a zip64 extra field but has none`);
      }
      if (flags & 1) throw fail(`entry ${JSON.stringify(name)} is encrypted`);
      if (method !== 0 && method !== 8) throw fail(`entry ${JSON.stringify(name)} uses unsupported compression method ${method}`);
      if (method === 0 && size !== compressedSize) {
        throw fail(`stored entry ${JSON.stringify(name)} has size ${size} but ${compressedSize} stored bytes`);
      }
      if (localOffset + 30 > len || u32(localOffset) !== LOCAL) throw fail(`local header of ${JSON.stringify(name)} is missing or corrupt`);
      const dataOffset = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
      if (dataOffset + compressedSize > len) {
        throw fail(`entry ${JSON.stringify(name)} runs past the end of the file (truncated?)`);
      }
      if (this.entries.has(name)) throw fail(`duplicate entry ${JSON.stringify(name)}`);
      this.entries.set(name, { name, method, compressedSize, size, dataOffset });
      at = next;
    }
  }

  /**
   * The contents of one entry: a view into the file for stored entries, a fresh buffer for deflated ones.
   * @throws FileFormatError if the entry's declared size is over the bound or the deflate stream is corrupt.
   */
  read(entry: ZipEntry): Uint8Array {
    const raw = this.bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
    if (entry.method === 0) return raw;
    const fail = (problem: string) => fileError(this.file, `not a valid PyTorch zip checkpoint: entry ${JSON.stringify(entry.name)} ${problem}`);
    if (entry.size > this.maxInflatedBytes) throw fail(`declares ${entry.size} inflated bytes, over the ${this.maxInflatedBytes}-byte bound`);
    let out: Uint8Array;
    try {
      out = inflateSync(raw, { out: new Uint8Array(entry.size) });
    } catch (e) {
      throw fail(`has a corrupt deflate stream (${(e as Error).message})`);
    }
    if (out.length !== entry.size) throw fail(`inflates to ${out.length} bytes, not the declared ${entry.size}`);
    return out;
  }
}

// Arrays of numbers (flat or nested, rectangular) under "data" keys, and optionally under the top-level
// keys of the simple {"<input>": [...]} form, read straight from the UTF-8 bytes into doubles, so that
// JSON.parse sees only the small rest of a request (a 200 KB tensor: ~0.4 ms instead of ~1.9 ms).
// Anything that is not a rectangular array of JSON numbers is left in place for JSON.parse to read.
// The scan runs in the native addon when it is built (native/src/json_numbers.cc, the same reading
// value for value, ~4× faster), else here.
import { loadNative, numberArrayScanner } from '../preprocess/native';

const QUOTE = 0x22, BACKSLASH = 0x5c, COLON = 0x3a, COMMA = 0x2c, OPEN = 0x5b, CLOSE = 0x5d, OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d;
const MINUS = 0x2d, PLUS = 0x2b, DOT = 0x2e, ZERO = 0x30, NINE = 0x39, LOWER_E = 0x65, UPPER_E = 0x45;
const DATA = [0x64, 0x61, 0x74, 0x61]; // d a t a

/** Stands in for a lifted array in the text JSON.parse reads; the nonce keeps a client's string from meaning one. */
const TOKEN_PREFIX = `\u0000quiver-lifted-${Math.random().toString(36).slice(2)}:`;

// Powers of ten a double holds exactly (to 10^22): a mantissa under 2^53 times or over one is rounded
// once, correctly, as JSON.parse rounds (Clinger's fast path).
const POW10: number[] = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** Deeper arrays are left to JSON.parse (and refused there, as tensors of that rank are). */
const MAX_LIFTED_RANK = 8;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export interface LiftedArray {
  /** The numbers in row-major order. */
  values: Float64Array;
  /** The nesting's shape: [n] for a flat array. */
  dims: number[];
}

export interface LiftedJson {
  /** The JSON text with each lifted array replaced by a placeholder string. */
  text: string;
  arrays: LiftedArray[];
}

/** The lifted array a placeholder stands for, if `value` is one. */
export function liftedArray(value: unknown, lifted: LiftedJson | undefined): LiftedArray | undefined {
  if (!lifted || typeof value !== 'string' || !value.startsWith(TOKEN_PREFIX)) return undefined;
  return lifted.arrays[Number(value.slice(TOKEN_PREFIX.length))];
}

interface Scan extends LiftedArray {
  end: number;
}

/**
 * The float32 a number rounds to, from `approx`, a double within a few units in the last place of the
 * exact value (a long mantissa summed in doubles, then scaled once); NaN when that is not certain: the
 * exact value rounds to the same float32 when `approx` lies well inside half a float32 step of it.
 */
function float32Of(approx: number): number {
  const f = Math.fround(approx);
  const magnitude = Math.abs(f);
  if (!(magnitude >= 2 ** -126 && magnitude <= 3.4028234663852886e38)) return NaN; // zero, subnormal, overflow
  return Math.abs(approx - f) <= magnitude * 2 ** -26 ? f : NaN;
}

/**
 * The array from `from` to `to` as JSON.parse reads it, flattened: for arrays holding numbers outside
 * the fast path (17 significant digits, as Python prints a float32; large exponents), which JSON.parse
 * reads correctly and faster than a call per number would.
 */
function parsedValues(b: Uint8Array, from: number, to: number, count: number): Float64Array {
  const parsed = JSON.parse(Buffer.from(b.buffer, b.byteOffset + from, to - from).toString('latin1')) as unknown[];
  const values = new Float64Array(count);
  let n = 0;
  // The scan checked the shape: every leaf is a number at the same depth.
  const fill = (a: unknown[]): void => {
    if (typeof a[0] === 'number') {
      for (let i = 0; i < a.length; i++) values[n++] = a[i] as number;
    } else {
      for (let i = 0; i < a.length; i++) fill(a[i] as unknown[]);
    }
  };
  fill(parsed);
  return values;
}

/**
 * A rectangular array of numbers from the '[' at `at`, or undefined when it holds anything else (a
 * string, a ragged or empty inner array, or a number JSON does not allow). One loop, no calls per
 * number: this is the hot path of a JSON tensor.
 */
function scanArrayHere(b: Uint8Array, at: number, float32: boolean): Scan | undefined {
  const from = at;
  // Set at the first number off the fast path: the rest is only checked, and JSON.parse reads the values.
  let slow = false;
  let values = new Float64Array(4096);
  let count = 0;
  const dims: number[] = new Array<number>(MAX_LIFTED_RANK).fill(-1); // each level's length, from its first array closed
  const seen: number[] = []; // elements so far in the open array of each level
  let depth = 0; // open arrays
  let leafDepth = 0; // the depth numbers sit at, once one is read
  let c = b[at];
  for (;;) {
    if (c === OPEN) {
      if (depth === MAX_LIFTED_RANK || (leafDepth > 0 && depth >= leafDepth)) return undefined;
      seen[depth++] = 0;
      c = b[++at];
      while (isSpace(c)) c = b[++at];
      if (c === CLOSE) {
        // [] alone is an empty tensor; an empty inner array is left to JSON.parse.
        if (depth !== 1) return undefined;
        return { values: values.subarray(0, 0), dims: [0], end: at + 1 };
      }
      continue;
    }
    if (leafDepth === 0) leafDepth = depth;
    else if (depth !== leafDepth) return undefined;
    const start = at;
    let negative = false;
    if (c === MINUS) {
      negative = true;
      c = b[++at];
    }
    let mantissa = 0;
    let digits = 0;
    if (c === ZERO) {
      c = b[++at];
      digits = 1;
    } else {
      while (c >= ZERO && c <= NINE) {
        mantissa = mantissa * 10 + (c - ZERO);
        digits++;
        c = b[++at];
      }
      if (digits === 0) return undefined;
    }
    let decimals = 0;
    if (c === DOT) {
      c = b[++at];
      while (c >= ZERO && c <= NINE) {
        mantissa = mantissa * 10 + (c - ZERO);
        decimals++;
        c = b[++at];
      }
      if (decimals === 0) return undefined;
    }
    let exponent = 0;
    if (c === LOWER_E || c === UPPER_E) {
      c = b[++at];
      let negativeExponent = false;
      if (c === PLUS || c === MINUS) {
        negativeExponent = c === MINUS;
        c = b[++at];
      }
      const first = at;
      while (c >= ZERO && c <= NINE) {
        if (exponent < 1000) exponent = exponent * 10 + (c - ZERO);
        c = b[++at];
      }
      if (at === first) return undefined;
      if (negativeExponent) exponent = -exponent;
    }
    if (!slow) {
      const power = exponent - decimals;
      let value = NaN;
      if (power >= -22 && power <= 22) {
        if (digits + decimals <= 15) {
          value = power >= 0 ? mantissa * POW10[power] : mantissa / POW10[-power];
        } else if (float32 && digits + decimals <= 40) {
          value = float32Of(power >= 0 ? mantissa * POW10[power] : mantissa / POW10[-power]);
        }
      }
      if (value === value) {
        if (negative) value = -value;
        if (count === values.length) {
          const grown = new Float64Array(values.length * 2);
          grown.set(values);
          values = grown;
        }
        values[count++] = value;
      } else {
        slow = true;
      }
    }
    // After an element (a number, or an array just closed): a comma, or the end of its array.
    for (;;) {
      while (isSpace(c)) c = b[++at];
      seen[depth - 1]++;
      if (c === COMMA) {
        c = b[++at];
        while (isSpace(c)) c = b[++at];
        break;
      }
      if (c !== CLOSE) return undefined;
      const level = depth - 1;
      if (dims[level] === -1) dims[level] = seen[level];
      else if (dims[level] !== seen[level]) return undefined;
      depth--;
      c = b[++at];
      if (depth === 0) {
        const shape = dims.slice(0, leafDepth);
        return { values: slow ? parsedValues(b, from, at, shape.reduce((x, y) => x * y, 1)) : values.subarray(0, count), dims: shape, end: at };
      }
    }
  }
}

/** Where the arrays are scanned: the addon's scan, or this module's (the addon not built). */
export type NumberScanner = 'native' | 'typescript';

type ScanArray = (b: Uint8Array, at: number, float32: boolean) => Scan | undefined;

function nativeScanArray(): ScanArray | undefined {
  const scanNumberArray = numberArrayScanner();
  if (!scanNumberArray) return undefined;
  return (b, at, float32) => {
    const scan = scanNumberArray(b, at, float32, MAX_LIFTED_RANK);
    if (!scan) return undefined;
    const values = scan.values ?? parsedValues(b, at, scan.end, scan.dims.reduce((x, y) => x * y, 1));
    return { values, dims: scan.dims, end: scan.end };
  };
}

let nativeScan: ScanArray | undefined | null = null;

/** The scanner used when none is asked for: the addon's when it is built. */
export function defaultNumberScanner(): NumberScanner {
  if (nativeScan === null) nativeScan = nativeScanArray();
  return nativeScan ? 'native' : 'typescript';
}

function scanner(asked: NumberScanner | undefined): ScanArray {
  const chosen = asked ?? defaultNumberScanner();
  if (chosen === 'typescript') return scanArrayHere;
  if (defaultNumberScanner() !== 'native') throw new Error(`the native addon is not built: ${loadNative().error ?? 'it has no scanNumberArray'}`);
  return nativeScan!;
}

export interface LiftOptions {
  /** Also lift the values of the top-level object's keys (the simple {"<input>": [...]} form). */
  topLevelValues?: boolean;
  /**
   * Every lifted array becomes a float32 tensor (the model takes only float32): a number with more
   * digits than a double holds exactly is read as the float32 JSON.parse and a cast would give.
   */
  float32?: boolean;
  /** The addon's scan or this module's; the addon's when it is built, unless asked. */
  scanner?: NumberScanner;
}

/**
 * Lifts every number array that is the value of a "data" key (and, if asked, of a top-level key);
 * strings are skipped whole.
 */
export function liftNumberArrays(b: Uint8Array, options: LiftOptions = {}): LiftedJson {
  const scanArray = scanner(options.scanner);
  const arrays: LiftedArray[] = [];
  const pieces: string[] = [];
  let copied = 0;
  let at = 0;
  let depth = 0; // open objects and arrays around `at`
  let objectAtTop = false;
  const decode = (from: number, to: number) => Buffer.from(b.buffer, b.byteOffset + from, to - from).toString('utf8');
  while (at < b.length) {
    const c = b[at];
    if (c !== QUOTE) {
      if (c === OPEN_OBJECT || c === OPEN) {
        if (depth === 0) objectAtTop = c === OPEN_OBJECT;
        depth++;
      } else if (c === CLOSE_OBJECT || c === CLOSE) {
        depth--;
      }
      at++;
      continue;
    }
    const open = at++;
    while (at < b.length && b[at] !== QUOTE) at += b[at] === BACKSLASH ? 2 : 1;
    const close = at++;
    const isData = close - open === 5 && DATA.every((c, i) => b[open + 1 + i] === c);
    if (!isData && !(options.topLevelValues && objectAtTop && depth === 1)) continue;
    let next = at;
    while (isSpace(b[next])) next++;
    if (b[next] !== COLON) continue;
    next++;
    while (isSpace(b[next])) next++;
    if (b[next] !== OPEN) continue;
    const scan = scanArray(b, next, options.float32 === true);
    if (!scan) continue;
    pieces.push(decode(copied, next), JSON.stringify(TOKEN_PREFIX + arrays.length));
    arrays.push({ values: scan.values, dims: scan.dims });
    copied = scan.end;
    at = scan.end;
  }
  if (arrays.length === 0) return { text: decode(0, b.length), arrays };
  pieces.push(decode(copied, b.length));
  return { text: pieces.join(''), arrays };
}

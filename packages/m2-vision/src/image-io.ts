// Image files → model input: PNG (pngjs) and JPEG (jpeg-js) decoding, grayscale/RGB conversion and bilinear
// resizing, in plain JS so it runs in Node and browsers alike. Both decoders are pure JS, well kept, and have no
// native parts (sharp and canvas download binaries at install time).
import * as tf from '@tensorflow/tfjs-core';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { FileFormatError, InvalidArgumentError, ShapeError } from '@monarch-mixer/monarch-core';

/** A decoded image: RGBA bytes, row-major. */
export interface DecodedImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** RGBA bytes, length width·height·4. */
  rgba: Uint8Array;
}

/** Options of {@link imageToPixels}. */
export interface ImageToPixelsOptions {
  /** Side of the square output (the model's imageSize). */
  imageSize: number;
  /** 1: luminance (ITU-R BT.601), 3: RGB. */
  channels: number;
  /** Resize (bilinear) when the image is not imageSize × imageSize; otherwise that is an error. Default false. */
  resize?: boolean;
  /** Invert intensities (1 − v), e.g. black digits on white paper for an MNIST model. Default false. */
  invert?: boolean;
  /** File name for error messages. */
  file?: string;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/** True if the bytes start like a PNG or a JPEG file. */
export function isImageFile(bytes: Uint8Array): boolean {
  return startsWith(bytes, PNG_MAGIC) || startsWith(bytes, JPEG_MAGIC);
}

/**
 * Decodes a PNG or JPEG file (recognised by its magic bytes, not its name).
 *
 * @param bytes - The file's bytes.
 * @param options - `file` name for error messages.
 * @returns RGBA pixels.
 * @throws FileFormatError (one line) when the bytes are neither PNG nor JPEG, or are corrupt.
 * @example
 * decodeImage(readFileSync('digit.png')).width; // → 28
 */
export function decodeImage(bytes: Uint8Array, options: { file?: string } = {}): DecodedImage {
  const file = options.file ?? 'image';
  try {
    if (startsWith(bytes, PNG_MAGIC)) {
      const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    if (startsWith(bytes, JPEG_MAGIC)) {
      const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 100, maxMemoryUsageInMB: 512 });
      return { width: image.width, height: image.height, rgba: image.data };
    }
  } catch (error) {
    throw new FileFormatError(`${file}: cannot decode the image (${(error as Error).message.split('\n')[0]}).`, { parameter: file });
  }
  throw new FileFormatError(`${file}: not a PNG or JPEG image (expected PNG or JPEG magic bytes).`, { parameter: file });
}

/**
 * Converts a decoded image to float pixels in [0, 1] for a model: grayscale or RGB (alpha composited over
 * black), optionally resized (bilinear, pixel centres aligned) to imageSize × imageSize.
 *
 * Shapes: → Float32Array of imageSize·imageSize·channels, (row, column, channel) order.
 * @param image - From {@link decodeImage}.
 * @param options - Target size and channels; see {@link ImageToPixelsOptions}.
 * @throws ShapeError (one line) when the size differs and `resize` is off.
 */
export function imageToPixels(image: DecodedImage, options: ImageToPixelsOptions): Float32Array {
  const { imageSize: S, channels, resize = false, invert = false } = options;
  if (channels !== 1 && channels !== 3) {
    throw new InvalidArgumentError(`imageToPixels: channels must be 1 or 3, got ${String(channels)}.`, { parameter: 'channels' });
  }
  const { width: W, height: H, rgba } = image;
  if ((W !== S || H !== S) && !resize) {
    throw new ShapeError(`${options.file ?? 'image'}: wrong image size ${W}×${H}, the model needs ${S}×${S} (resize it, or pass --resize).`, {
      parameter: options.file,
      value: [W, H],
    });
  }
  // Source pixels as floats in [0, 1], `channels` per pixel.
  const source = new Float32Array(W * H * channels);
  for (let p = 0; p < W * H; p++) {
    const alpha = rgba[4 * p + 3] / 255;
    const r = (rgba[4 * p] / 255) * alpha;
    const g = (rgba[4 * p + 1] / 255) * alpha;
    const b = (rgba[4 * p + 2] / 255) * alpha;
    if (channels === 1) source[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    else source.set([r, g, b], 3 * p);
  }
  const out = W === S && H === S ? source : bilinearResize(source, W, H, channels, S);
  if (invert) for (let i = 0; i < out.length; i++) out[i] = 1 - out[i];
  return out;
}

function bilinearResize(source: Float32Array, W: number, H: number, C: number, S: number): Float32Array {
  const out = new Float32Array(S * S * C);
  for (let y = 0; y < S; y++) {
    const sy = Math.min(Math.max(((y + 0.5) * H) / S - 0.5, 0), H - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, H - 1);
    const fy = sy - y0;
    for (let x = 0; x < S; x++) {
      const sx = Math.min(Math.max(((x + 0.5) * W) / S - 0.5, 0), W - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, W - 1);
      const fx = sx - x0;
      for (let c = 0; c < C; c++) {
        const at = (yy: number, xx: number) => source[(yy * W + xx) * C + c];
        const top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
        const bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
        out[(y * S + x) * C + c] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return out;
}

/**
 * Decodes an image file into a model-ready tensor.
 * Shapes: → [imageSize, imageSize, channels], float32 in [0, 1].
 * @throws FileFormatError for a non-image file; ShapeError for a wrong size without `resize`.
 * @example
 * const image = imageFileToTensor(readFileSync('7.png'), { imageSize: 28, channels: 1, file: '7.png' });
 * await model.classify(image, { topK: 3 });
 */
export function imageFileToTensor(bytes: Uint8Array, options: ImageToPixelsOptions): tf.Tensor3D {
  const pixels = imageToPixels(decodeImage(bytes, { file: options.file }), options);
  return tf.tensor3d(pixels, [options.imageSize, options.imageSize, options.channels]);
}

// Test helpers for packages that use m2-vision: tiny PNG/JPEG encoders for image fixtures written at test time.
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';

/**
 * Encodes RGBA pixels as a PNG file.
 * @param width - Width in pixels. @param height - Height in pixels.
 * @param rgba - width·height·4 bytes.
 * @example
 * writeFileSync('white.png', encodePng(2, 2, new Uint8Array(16).fill(255)));
 */
export function encodePng(width: number, height: number, rgba: Uint8Array): Uint8Array {
  const image = new pngjs.PNG({ width, height });
  image.data.set(rgba);
  return new Uint8Array(pngjs.PNG.sync.write(image));
}

/**
 * Encodes RGBA pixels as a baseline JPEG file.
 * @param quality - 1…100 (default 95).
 */
export function encodeJpeg(width: number, height: number, rgba: Uint8Array, quality = 95): Uint8Array {
  return new Uint8Array(jpeg.encode({ width, height, data: rgba }, quality).data);
}

import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { decodeImage, imageFileToTensor, imageToPixels, isImageFile } from './image-io.js';
import { encodeJpeg, encodePng } from './testing.js';

function gradient(width: number, height: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) rgba.set([(p % width) * 50, 0, 255, 255], 4 * p);
  return rgba;
}

describe('image input', () => {
  it('decodes PNG and JPEG by their magic bytes', () => {
    const png = decodeImage(encodePng(4, 3, gradient(4, 3)));
    expect([png.width, png.height, png.rgba[4], png.rgba[6]]).toEqual([4, 3, 50, 255]);
    const jpg = decodeImage(encodeJpeg(8, 8, new Uint8Array(256).fill(255)));
    expect([jpg.width, jpg.height]).toEqual([8, 8]);
    expect(jpg.rgba[0]).toBeGreaterThan(250);
    expect(isImageFile(new TextEncoder().encode('hello'))).toBe(false);
  });

  it('converts to grayscale (BT.601) or RGB, resizes on request, inverts on request', () => {
    const image = decodeImage(encodePng(4, 3, gradient(4, 3)));
    const gray = imageToPixels({ ...image, height: 3 }, { imageSize: 4, channels: 1, resize: true });
    expect(gray.length).toBe(16);
    const rgb = imageToPixels(decodeImage(encodePng(2, 2, gradient(2, 2))), { imageSize: 2, channels: 3 });
    expect(Array.from(rgb.slice(0, 6))).toEqual([0, 0, 1, 50 / 255, 0, 1].map((v) => Math.fround(v)));
    const luminance = imageToPixels(decodeImage(encodePng(2, 2, gradient(2, 2))), { imageSize: 2, channels: 1, invert: true });
    expect(luminance[1]).toBeCloseTo(1 - (0.299 * 50 + 0.114 * 255) / 255, 6);
    // Bilinear 4×4 → 2×2 of a constant image stays constant.
    const constant = imageToPixels(decodeImage(encodePng(4, 4, new Uint8Array(64).fill(255))), { imageSize: 2, channels: 1, resize: true });
    for (const v of constant) expect(v).toBeCloseTo(1, 6);
    const tensor = imageFileToTensor(encodePng(2, 2, gradient(2, 2)), { imageSize: 2, channels: 1 });
    expect(tensor.shape).toEqual([2, 2, 1]);
    tensor.dispose();
    expect(tf.memory().numTensors).toBeGreaterThanOrEqual(0);
  });

  it('rejects a non-image file, a corrupt image and a wrong size in one line', () => {
    expect(() => decodeImage(new TextEncoder().encode('not an image'), { file: 'notes.txt' })).toThrow(/^notes\.txt: not a PNG or JPEG image \(expected PNG or JPEG magic bytes\)\.$/);
    const broken = encodePng(4, 4, new Uint8Array(64)).slice(0, 40);
    expect(() => decodeImage(broken, { file: 'broken.png' })).toThrow(/^broken\.png: cannot decode the image \(/);
    const image = decodeImage(encodePng(30, 30, new Uint8Array(3600)));
    expect(() => imageToPixels(image, { imageSize: 28, channels: 1, file: 'big.png' })).toThrow(/^big\.png: wrong image size 30×30, the model needs 28×28 \(resize it, or pass --resize\)\.$/);
  });
});

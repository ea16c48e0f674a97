import { planResize } from '../../src/preprocess/resize-plan';
import { imageInputSchema } from '../../src/models/model-config';
import { InvalidInputError } from '../../src/errors';

const cfg = (o: object) => imageInputSchema.parse(o);

describe('planResize', () => {
  test('stretch goes to the configured or fixed size', () => {
    expect(planResize(100, 50, cfg({ resize: 'stretch', width: 32, height: 16 }))).toMatchObject({ contentWidth: 32, contentHeight: 16, tensorWidth: 32, tensorHeight: 16, padLeft: 0, padTop: 0 });
    expect(planResize(100, 50, cfg({ resize: 'stretch' }), { width: 8, height: 4 })).toMatchObject({ tensorWidth: 8, tensorHeight: 4 });
  });

  test('letterbox keeps the aspect, centres, and reports scale and offsets', () => {
    const plan = planResize(200, 100, cfg({ resize: 'letterbox', width: 64, height: 64 }));
    expect(plan).toMatchObject({ contentWidth: 64, contentHeight: 32, tensorWidth: 64, tensorHeight: 64, padLeft: 0, padTop: 16 });
    expect(plan.scaleX).toBeCloseTo(0.32);
    expect(plan.scaleY).toBeCloseTo(0.32);
  });

  test('fit caps the longest side and rounds sides to the multiple', () => {
    expect(planResize(1280, 960, cfg({ resize: 'fit', maxSide: 960, multiple: 32 }))).toMatchObject({ contentWidth: 960, contentHeight: 736, tensorWidth: 960, tensorHeight: 736 });
    // Never upscales, never rounds to zero.
    expect(planResize(10, 5, cfg({ resize: 'fit', maxSide: 960, multiple: 32 }))).toMatchObject({ contentWidth: 32, contentHeight: 32 });
  });

  test('height scales to a fixed height and pads right to the floor width', () => {
    const recogniser = cfg({ resize: 'height', height: 48, width: 320, maxWidth: 3200, multiple: 8 });
    expect(planResize(100, 48, recogniser)).toMatchObject({ contentWidth: 100, contentHeight: 48, tensorWidth: 320 });
    expect(planResize(1000, 48, recogniser)).toMatchObject({ contentWidth: 1000, tensorWidth: 1000 });
    expect(planResize(1001, 48, recogniser)).toMatchObject({ contentWidth: 1001, tensorWidth: 1008 });
    expect(planResize(10000, 48, recogniser)).toMatchObject({ contentWidth: 3200, tensorWidth: 3200 });
    // A model with a fixed width caps and floors at it.
    expect(planResize(1000, 100, cfg({ resize: 'height' }), { height: 48, width: 192 })).toMatchObject({ contentWidth: 192, tensorWidth: 192, contentHeight: 48 });
  });

  test('a size that is neither configured nor fixed is an error', () => {
    expect(() => planResize(10, 10, cfg({ resize: 'stretch' }))).toThrow(InvalidInputError);
  });
});

import { ModelRegistry } from '../../src/models/registry';
import { BadRequestError, ModelAlreadyExistsError, ModelNotFoundError } from '../../src/errors';

describe('ModelRegistry', () => {
  test('a name is reserved once', () => {
    const registry = new ModelRegistry();
    registry.reserve('a', 'a.tar.gz');
    expect(() => registry.reserve('a', 'other')).toThrow(ModelAlreadyExistsError);
    registry.remove('a');
    expect(() => registry.get('a')).toThrow(ModelNotFoundError);
    expect(registry.reserve('a', 'again').url).toBe('again');
  });

  test('pages in name order with a next-page token', () => {
    const registry = new ModelRegistry();
    for (const name of ['d', 'b', 'e', 'a', 'c']) registry.reserve(name, `${name}.mar`);
    const first = registry.page(2);
    expect(first.models.map((m) => m.name)).toEqual(['a', 'b']);
    const second = registry.page(2, first.nextPageToken);
    expect(second.models.map((m) => m.name)).toEqual(['c', 'd']);
    const last = registry.page(2, second.nextPageToken);
    expect(last.models.map((m) => m.name)).toEqual(['e']);
    expect(last.nextPageToken).toBeUndefined();
  });

  test('refuses a bad page token or limit', () => {
    const registry = new ModelRegistry();
    expect(() => registry.page(10, 'abc')).toThrow(BadRequestError);
    expect(() => registry.page(0)).toThrow(BadRequestError);
  });
});

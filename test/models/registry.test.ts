import { ModelRegistry, wholeVersion } from '../../src/models/registry';
import { BadRequestError, InvalidModelVersionError, ModelAlreadyExistsError, ModelNotFoundError, ModelVersionNotFoundError } from '../../src/errors';

describe('ModelRegistry', () => {
  test('a whole-number version (Triton\'s clients) finds "1.0" when no version is named "1"; an exact name wins', () => {
    const registry = new ModelRegistry();
    const one = registry.reserve('a', 'a', false, '1.0');
    registry.reserve('a', 'b', false, '2.5');
    expect(registry.get('a', '1')).toBe(one);
    expect(registry.get('a', '001')).toBe(one);
    expect(() => registry.get('a', '2')).toThrow(ModelVersionNotFoundError);
    expect(() => registry.get('a', '1.5')).toThrow(ModelVersionNotFoundError);
    const exact = registry.reserve('a', 'c', false, '1');
    expect(registry.get('a', '1')).toBe(exact);
    expect(registry.get('a', '1.0')).toBe(one);
  });

  test('versions as Triton numbers them: whole ones as their number, the others above them, each once', () => {
    expect(['1.0', '2', '003.00', '', undefined, '1.5', 'v2'].map(wholeVersion)).toEqual(['1', '2', '3', undefined, undefined, undefined, undefined]);
    const registry = new ModelRegistry();
    const a = registry.reserve('m', 'a', false, '1.0');
    const b = registry.reserve('m', 'b', false, '1.5');
    const c = registry.reserve('m', 'c', false, '3');
    const d = registry.reserve('m', 'd', false, '1');
    const e = registry.reserve('m', 'e.tar.gz');
    // "1" is the exact one; "1.0" and "1.5" and the one not known yet go above 3, in registration order.
    expect([a, b, c, d, e].map((r) => registry.tritonVersions('m').get(r))).toEqual(['4', '5', '3', '1', '6']);
    // A version still unknown is not found as "1"; lookups take whole numbers, not those others.
    registry.reserve('u', 'u.tar.gz');
    expect(() => registry.get('u', '1')).toThrow(ModelVersionNotFoundError);
    expect(() => registry.get('m', '5')).toThrow(ModelVersionNotFoundError);
  });

  test('a version is reserved once, at once when named and when its package declares it otherwise', () => {
    const registry = new ModelRegistry();
    registry.reserve('a', 'a.tar.gz', false, '1.0');
    expect(() => registry.reserve('a', 'other', false, '1.0')).toThrow(ModelAlreadyExistsError);
    const unnamed = registry.reserve('a', 'same.tar.gz');
    expect(() => registry.settleVersion(unnamed, '1.0')).toThrow(ModelAlreadyExistsError);
    registry.remove(unnamed);
    registry.remove(registry.get('a'));
    expect(() => registry.get('a')).toThrow(ModelNotFoundError);
    expect(registry.reserve('a', 'again').url).toBe('again');
  });

  test('the first version is the default until set-default; the default cannot go while others remain', () => {
    const registry = new ModelRegistry();
    const one = registry.reserve('m', 'm1.mar', false, '1.0');
    const two = registry.reserve('m', 'm2.mar');
    registry.settleVersion(two, '2.0');
    expect(registry.get('m')).toBe(one);
    expect(registry.get('m', '2.0')).toBe(two);
    expect(() => registry.get('m', '3.0')).toThrow(ModelVersionNotFoundError);
    expect(() => registry.removable('m')).toThrow(InvalidModelVersionError);
    registry.setDefault('m', '2.0');
    expect(registry.get('m')).toBe(two);
    expect(registry.removable('m', '1.0')).toBe(one);
    registry.remove(one);
    expect(registry.versions('m')).toEqual([two]);
    expect(registry.page(10).models).toEqual([two]);
    registry.remove(two);
    expect(registry.has('m')).toBe(false);
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

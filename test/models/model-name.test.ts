import { resolveInside, validateModelName, validateRelativePath } from '../../src/models/model-name';
import { InvalidModelNameError, UnsafePathError } from '../../src/errors';

describe('model names and paths from requests', () => {
  test.each(['resnet', 'ocr-det', 'a.b_c-1', 'squeezenet_v1.1'])('accepts %p', (name) => {
    expect(validateModelName(name)).toBe(name);
  });

  test.each(['', '../etc', 'a/../b', '/abs', '.hidden', 'a//b', 'team/model', 'name with space', 'x'.repeat(300), 'a\0b', 42])('refuses %p', (name) => {
    expect(() => validateModelName(name)).toThrow(InvalidModelNameError);
  });

  test('relative paths stay relative and inside', () => {
    expect(validateRelativePath('a/b/model.tar.gz', 'target')).toBe('a/b/model.tar.gz');
    for (const bad of ['../x', '/etc/passwd', 'a/../../x', 'a/./b', '']) {
      expect(() => validateRelativePath(bad, 'target')).toThrow(UnsafePathError);
    }
  });

  test('resolveInside refuses anything that lands outside the root', () => {
    expect(resolveInside('/store', 'a/b', 'url')).toBe('/store/a/b');
    expect(resolveInside('/store', '/store/a', 'url')).toBe('/store/a');
    expect(() => resolveInside('/store', '../x', 'url')).toThrow(UnsafePathError);
    expect(() => resolveInside('/store', '/etc/passwd', 'url')).toThrow(UnsafePathError);
    expect(() => resolveInside('/store', '/storefront/x', 'url')).toThrow(UnsafePathError);
  });
});

import { BadRequestError, UrlNotAllowedError } from '../../src/errors';
import { AllowedUrls, isRemoteUrl } from '../../src/models/remote-source';

describe('allowed_urls', () => {
  test('each pattern matches the whole URL, case-insensitively', () => {
    const allowed = new AllowedUrls(['https://models\\.example\\.com/.*', 's3://team-bucket/.*']);
    expect(() => allowed.check('https://models.example.com/a/b.mar')).not.toThrow();
    expect(() => allowed.check('HTTPS://MODELS.EXAMPLE.COM/x.tar.gz')).not.toThrow();
    expect(() => allowed.check('s3://team-bucket/det.tar.gz')).not.toThrow();
    // A pattern is not a prefix or a substring test.
    for (const url of ['https://models.example.com.evil.net/x.mar', 'http://models.example.com/x.mar', 'https://evil.net/?https://models.example.com/x', 's3://team-bucket-2/x']) {
      expect(() => allowed.check(url)).toThrow(UrlNotAllowedError);
    }
  });

  test('the URL is matched as it will be fetched, so a parser trick cannot pass a pattern', () => {
    const allowed = new AllowedUrls(['https://[^/]*\\.example\\.com/.*']);
    expect(() => allowed.check('https://cdn.example.com/m.mar')).not.toThrow();
    // A WHATWG parser reads the host of this as evil.com.
    for (const url of ['https://evil.com\\.example.com/m.mar']) {
      expect(new URL(url).host).toBe('evil.com');
      expect(() => allowed.check(url)).toThrow(UrlNotAllowedError);
    }
    expect(() => allowed.check('https://exa mple.com:99999/x')).toThrow(BadRequestError);
  });

  test('a presigned URL\'s query never shows in the refusal', () => {
    expect(() => new AllowedUrls([]).check('https://b.s3.amazonaws.com/m.mar?X-Amz-Signature=secret')).toThrow(/Given URL https:\/\/b\.s3\.amazonaws\.com\/m\.mar\?… does not match/);
  });

  test('no patterns: nothing remote, with TorchServe\'s words and what to do', () => {
    expect(() => new AllowedUrls([]).check('https://a/b.mar')).toThrow(
      'Given URL https://a/b.mar does not match any allowed URL(s): allowed_urls lists no remote sources; add a pattern for it',
    );
  });

  test('which URLs are remote', () => {
    expect(['s3://b/k', 'http://h/m.mar', 'HTTPS://h/m.mar'].every(isRemoteUrl)).toBe(true);
    expect(['models/x.mar', 'file:///etc/passwd', 'ftp://h/x'].some(isRemoteUrl)).toBe(false);
  });
});

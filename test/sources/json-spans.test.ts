import { describe, expect, it } from 'vitest';
import { arrayElementSpans } from '../../src/sources/json-spans.ts';

function elements(json: string, key: string): string[] | undefined {
  JSON.parse(json); // the scanner's precondition
  return arrayElementSpans(json, key)?.map(([start, end]) => json.slice(start, end));
}

describe('arrayElementSpans', () => {
  it('returns each element exactly as written, escapes and number spellings included', () => {
    const a = '{"id":"a\\/b","n":1.50,"s":"caf\\u00e9"}';
    const b = '{"id":"x","nested":{"arr":[1,{"k":"]}"}],"q":"\\""}}';
    const json = `{"limit":100,"items":[ ${a} ,\n${b}],"cursor":"c1"}`;
    expect(elements(json, 'items')).toEqual([a, b]);
    expect(JSON.stringify(JSON.parse(a))).not.toBe(a);
  });

  it('handles scalars, empty arrays and a missing key', () => {
    expect(elements('{"items":[1, "two", true, null, -3e2]}', 'items')).toEqual([
      '1',
      '"two"',
      'true',
      'null',
      '-3e2',
    ]);
    expect(elements('{"items":[]}', 'items')).toEqual([]);
    expect(elements('{"other":[1]}', 'items')).toBeUndefined();
    expect(elements('[1,2]', 'items')).toBeUndefined();
  });

  it('skips the key when it appears nested, and takes the last top-level occurrence like JSON.parse', () => {
    const json = '{"wrap":{"items":[9]},"items":[1],"items":[2,3]}';
    expect(elements(json, 'items')).toEqual(['2', '3']);
    expect(JSON.parse(json).items).toEqual([2, 3]);
  });

  it('is not fooled by brackets and quotes inside strings or keys', () => {
    const json = '{"it\\"ems":[0],"items":["[{\\"}]", {"a]":"}"}]}';
    expect(elements(json, 'items')).toEqual(['"[{\\"}]"', '{"a]":"}"}']);
  });
});

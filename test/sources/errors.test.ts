import { describe, expect, it } from 'vitest';
import { reasonForStatus } from '../../src/sources/errors.ts';

describe('reasonForStatus', () => {
  // cloudscale answers an expired cursor with 410; read as "API retired" it parked a healthy scope for
  // the slow re-check (seen in the torture suite). Only the STACKIT audit-log client says "retired".
  it('does not call a 410 "API retired" for every provider', () => {
    expect(reasonForStatus(410)).toEqual({ reason: 'bad_request', retryable: false });
  });
});

/** What the provider's tests share. */
import { ValidationError } from '@armada/core';
import { expect } from 'vitest';

/** The ValidationError `promise` rejects with (failing the test when it does not). */
export async function failure(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(ValidationError.isInstance(error), `expected a ValidationError, got ${String(error)}`).toBe(true);
  return error as ValidationError;
}

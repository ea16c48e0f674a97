import {
  InsufficientMemoryError, InvalidInputError, ModelNotFoundError, QuiverError, errorBody, fromWireError, httpStatusOf, toWireError,
} from '../src/errors';

describe('error catalogue', () => {
  test('maps each kind to its status and a JSON body naming the type', () => {
    const err = new ModelNotFoundError('model "x" is not registered');
    expect(httpStatusOf(err, 'mms')).toBe(404);
    expect(errorBody(err, 'mms')).toEqual({ code: 404, type: 'ModelNotFoundException', message: 'model "x" is not registered' });
  });

  test('insufficient memory is 507 for SageMaker (so it unloads and retries) and 503 for MMS', () => {
    const err = new InsufficientMemoryError('no room');
    expect(httpStatusOf(err, 'sagemaker')).toBe(507);
    expect(httpStatusOf(err, 'mms')).toBe(503);
  });

  test('errors keep their kind across a thread boundary', () => {
    const back = fromWireError(toWireError(new InvalidInputError('bad shape')));
    expect(back).toBeInstanceOf(InvalidInputError);
    expect(back.message).toBe('bad shape');
  });

  test('unknown errors cross as the fallback kind', () => {
    const back = fromWireError(toWireError(new Error('boom'), 'InferenceFailed'));
    expect(back).toBeInstanceOf(QuiverError);
    expect(back.kind).toBe('InferenceFailed');
    expect(httpStatusOf(back, 'mms')).toBe(500);
  });
});

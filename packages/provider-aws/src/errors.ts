/**
 * AWS errors to Armada's typed errors. EC2 has no modelled exception classes: every error is an
 * EC2ServiceException whose `name` is the code (`DependencyViolation`, `InvalidVpcID.NotFound`).
 */
import {
  AlreadyExistsError,
  ArmadaError,
  ConflictError,
  ConnectionError,
  DependencyViolationError,
  isConnectionCode,
  NotFoundError,
  ThrottledError,
  ValidationError,
} from '@armada/core';

export const AWS_PROVIDER_ID = 'aws';

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

const THROTTLING = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'PriorRequestNotComplete', 'EC2ThrottledException', 'TooManyRequestsException']);
/** The SDK's own names for a request that got no reply (Node's codes are core's isConnectionCode). */
const SDK_TIMEOUTS = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const CREDENTIALS = new Set(['AuthFailure', 'UnauthorizedOperation', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'InvalidAccessKeyId', 'AccessDenied', 'AccessDeniedException']);
const CONFLICT = new Set(['InvalidSubnet.Conflict', 'Resource.AlreadyAssociated', 'IdempotentParameterMismatch', 'RouteAlreadyExists', 'Gateway.NotAttached', 'IncorrectState']);

/** Maps anything the SDK throws. `context` names what was being done, for the message. */
export function mapAwsError(error: unknown, context: string): ArmadaError {
  if (ArmadaError.isInstance(error)) return error;
  const aws = (error ?? {}) as AwsLikeError;
  const code = aws.name ?? aws.code ?? 'Unknown';
  const status = aws.$metadata?.httpStatusCode;
  const message = `${context}: ${code}: ${aws.message ?? String(error)}`;
  const options = { provider: AWS_PROVIDER_ID, cause: error, ...(aws.$metadata?.requestId ? { requestId: aws.$metadata.requestId } : {}) };

  if (code === 'CredentialsProviderError') {
    return new ValidationError('No AWS credentials were found.', {
      ...options,
      issues: [
        {
          path: 'credentials',
          message: aws.message ?? 'the SDK found no credentials',
          fix: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass `credentials` to the AWS provider',
        },
      ],
    });
  }
  if (CREDENTIALS.has(code) || status === 401 || status === 403) {
    return new ValidationError(`AWS refused the credentials (${code}).`, {
      ...options,
      issues: [
        {
          path: 'credentials',
          message: aws.message ?? code,
          fix: 'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the `credentials` option) and that the identity may call EC2',
        },
      ],
    });
  }
  // Before the server-fault test: the SDK marks a request that got no reply as a server fault too.
  const networkCode = SDK_TIMEOUTS.has(code) || isConnectionCode(code) ? code : (error as { code?: string })?.code;
  if (status === undefined && networkCode !== undefined && (SDK_TIMEOUTS.has(networkCode) || isConnectionCode(networkCode))) {
    // The request may or may not have taken effect: retryable, and creates must be idempotent.
    return new ConnectionError(`${context}: the connection failed (${networkCode}); the call may have taken effect`, options);
  }
  if (THROTTLING.has(code) || status === 429 || aws.$fault === 'server' || (status !== undefined && status >= 500)) {
    return new ThrottledError(message, options);
  }
  if (code.endsWith('.NotFound') || code === 'NoSuchHostedZone' || code === 'NoSuchChange') return new NotFoundError(message, options);
  if (code.endsWith('.Duplicate')) return new AlreadyExistsError(message, options);
  if (code === 'DependencyViolation' || code === 'InvalidGroup.InUse') return new DependencyViolationError(message, options);
  if (CONFLICT.has(code)) return new ConflictError(message, options);
  if (status === 400 || aws.$fault === 'client') {
    return new ValidationError(message, { ...options, issues: [{ path: context, message: aws.message ?? code }] });
  }
  return new ArmadaError('Unknown', message, options);
}

/** Runs one AWS call and maps its error. */
export async function aws<T>(context: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw mapAwsError(error, context);
  }
}

/**
 * The exit codes scripts can rely on. The README's table is the contract; keep the two in step.
 */
export const ExitCode = {
  /** Done: the plan was made, the apply or destroy succeeded, the status was read. */
  Success: 0,
  /** Something failed while running: a step of apply/destroy, the cloud's API, an unexpected error. */
  Failure: 1,
  /** Usage or validation error; nothing was changed: bad arguments, bad spec, policy violations, unknown provider, bad credentials. */
  Usage: 2,
  /** `plan --detailed-exitcode` only: the plan succeeded and has changes. */
  Changes: 3,
  /** apply/destroy was not approved at the prompt; nothing was changed. */
  NotApproved: 4,
  /** Interrupted (Ctrl-C): steps already running finished, the state file was written, no new step started. */
  Interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

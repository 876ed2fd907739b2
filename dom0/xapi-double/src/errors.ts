// The one error type of the endpoint: XAPI's answer "no", as a code and
// string parameters, exactly as it goes on the wire (XML-RPC ErrorDescription
// [code, ...params]; JSON-RPC error {message: code, data: params}).
// Anything else thrown inside a method becomes INTERNAL_ERROR, as in XAPI.
import { printedException, stringOfFloat } from './ocaml.ts';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: string,
    readonly params: string[] = [],
  ) {
    super(`${code}(${params.join(', ')})`);
  }
}

/** Any thrown value as the ApiError the client will see. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError('INTERNAL_ERROR', [message]);
}

// Constructors for the errors with a fixed parameter list (names and order as in
// XAPI's ocaml/idl/api_errors.ml and datamodel_errors.ml).
export const errors = {
  methodUnknown: (method: string) => new ApiError('MESSAGE_METHOD_UNKNOWN', [method]),
  paramCount: (method: string, expected: number, received: number) =>
    new ApiError('MESSAGE_PARAMETER_COUNT_MISMATCH', [method, String(expected), String(received)]),
  handleInvalid: (cls: string, ref: string) => new ApiError('HANDLE_INVALID', [cls, ref]),
  uuidInvalid: (cls: string, uuid: string) => new ApiError('UUID_INVALID', [cls, uuid]),
  sessionInvalid: (ref: string) => new ApiError('SESSION_INVALID', [ref]),
  authFailed: (user: string) => new ApiError('SESSION_AUTHENTICATION_FAILED', [user, 'Authentication failure']),
  fieldType: (field: string) => new ApiError('FIELD_TYPE_ERROR', [field]),
  invalidValue: (field: string, value: string, ...reason: string[]) => new ApiError('INVALID_VALUE', [field, value, ...reason]),
  /** An enum value the type does not have: the generated unmarshaller's failwith (ocaml-rpc
   *  ppx/ppx_deriving_rpc.ml), which ExnHelper.error_of_exn turns into an INTERNAL_ERROR. */
  unknownEnum: () => new ApiError('INTERNAL_ERROR', [printedException('Failure', 'Unknown tag/contents')]),
  mapDuplicateKey: (cls: string, field: string, ref: string, key: string) => new ApiError('MAP_DUPLICATE_KEY', [cls, field, ref, key]),
  badPowerState: (ref: string, expected: string, actual: string) => new ApiError('VM_BAD_POWER_STATE', [ref, expected, actual]),
  isTemplate: (ref: string, op: string) => new ApiError('VM_IS_TEMPLATE', [ref, op]),
  operationBlocked: (ref: string, reason: string) => new ApiError('OPERATION_BLOCKED', [ref, reason]),
  operationNotAllowed: (why: string) => new ApiError('OPERATION_NOT_ALLOWED', [why]),
  onlyProvisionTemplate: () => new ApiError('ONLY_PROVISION_TEMPLATE', []),
  /** xapi_vm_lifecycle.ml report_concurrent_operations_error: ["VM"; ref; op; task] at HEAD, ["VM.op"; ref] at v1.249.42. */
  otherOperation: (shape: 'class-ref-op-task' | 'class.op-ref', ref: string, op: string, task: string) =>
    new ApiError('OTHER_OPERATION_IN_PROGRESS', shape === 'class-ref-op-task' ? ['VM', ref, op, task] : [`VM.${op}`, ref]),
  eventsLost: () => new ApiError('EVENTS_LOST', []),
  eventFromTokenInvalid: (token: string) => new ApiError('EVENT_FROM_TOKEN_PARSE_FAILURE', [token]),
  shutdownAck: (ref: string) => new ApiError('VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', [ref]),
  suspendAck: (ref: string) => new ApiError('VM_FAILED_SUSPEND_ACKNOWLEDGMENT', [ref]),
  // The timeout as xenopsd passed it, printed by string_of_float (xapi_xenops.ml transform_xenops_exn).
  shutdownTimeout: (ref: string, seconds: number) => new ApiError('VM_SHUTDOWN_TIMEOUT', [ref, stringOfFloat(seconds)]),
  suspendTimeout: (ref: string, seconds: number) => new ApiError('VM_SUSPEND_TIMEOUT', [ref, stringOfFloat(seconds)]),
  taskCancelled: (task: string) => new ApiError('TASK_CANCELLED', [task]),
  /** api_errors.ml vm_non_suspendable; datamodel_errors.ml ["vm"; "reason"]. */
  nonSuspendable: (ref: string, reason: string) => new ApiError('VM_NON_SUSPENDABLE', [ref, reason]),
  noSuspendSr: (ref: string) => new ApiError('VM_NO_SUSPEND_SR', [ref]),
  hasNoSuspendVdi: (ref: string) => new ApiError('VM_HAS_NO_SUSPEND_VDI', ['VM', ref]),
  /** api_errors.ml value_not_supported [field; value; reason] (xapi_vm_helpers.ml value_not_supported). */
  valueNotSupported: (field: string, value: string, reason: string) => new ApiError('VALUE_NOT_SUPPORTED', [field, value, reason]),
  internal: (message: string) => new ApiError('INTERNAL_ERROR', [message]),
  unmarshal: (why: string) => new ApiError('XMLRPC_UNMARSHAL_FAILURE', [why]),
  permissionDenied: (why: string) => new ApiError('PERMISSION_DENIED', [why]),
};

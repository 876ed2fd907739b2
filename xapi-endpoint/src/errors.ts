// The one error type of the endpoint: XAPI's answer "no", as a code and
// string parameters, exactly as it goes on the wire (XML-RPC ErrorDescription
// [code, ...params]; JSON-RPC error {message: code, data: params}).
// Anything else thrown inside a method becomes INTERNAL_ERROR, as in XAPI.

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly code: string, readonly params: string[] = []) {
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
  invalidValue: (field: string, value: string) => new ApiError('INVALID_VALUE', [field, value]),
  mapDuplicateKey: (cls: string, field: string, ref: string, key: string) =>
    new ApiError('MAP_DUPLICATE_KEY', [cls, field, ref, key]),
  badPowerState: (ref: string, expected: string, actual: string) =>
    new ApiError('VM_BAD_POWER_STATE', [ref, expected, actual]),
  isTemplate: (ref: string) => new ApiError('VM_IS_TEMPLATE', [ref]),
  otherOperation: (cls: string, ref: string) => new ApiError('OTHER_OPERATION_IN_PROGRESS', [cls, ref]),
  eventsLost: () => new ApiError('EVENTS_LOST', []),
  eventFromTokenInvalid: (token: string) => new ApiError('EVENT_FROM_TOKEN_PARSE_FAILURE', [token]),
  shutdownAck: (ref: string) => new ApiError('VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', [ref]),
  suspendAck: (ref: string) => new ApiError('VM_FAILED_SUSPEND_ACKNOWLEDGMENT', [ref]),
  shutdownTimeout: (ref: string, seconds: number) => new ApiError('VM_SHUTDOWN_TIMEOUT', [ref, String(seconds)]),
  suspendTimeout: (ref: string, seconds: number) => new ApiError('VM_SUSPEND_TIMEOUT', [ref, String(seconds)]),
  taskCancelled: (ref: string) => new ApiError('TASK_CANCELLED', [ref]),
  internal: (message: string) => new ApiError('INTERNAL_ERROR', [message]),
  unmarshal: (why: string) => new ApiError('XMLRPC_UNMARSHAL_FAILURE', [why]),
  permissionDenied: (why: string) => new ApiError('PERMISSION_DENIED', [why]),
};

// The production frontend's error handling, written as its error-mapping
// module is: one vocabulary of codes (its `ApiErrorCodeSchema`), and for each
// code what the user is shown to do and whether it is retried. A code outside
// the vocabulary falls to a generic "contact support, not retryable"; the
// support reference is read from `correlationId` in the body, else from the
// `X-Correlation-Id` header. The upload manager puts a file in its "expired"
// state only for `EXPIRED_SESSION`; any other error marks it failed.
import { z } from "zod";

export const ApiErrorCodeSchema = z.enum([
  "UNAUTHORIZED",
  "EXPIRED_SESSION",
  "ACCESS_DENIED",
  "FORBIDDEN",
  "NOT_FOUND",
  "CONFLICT",
  "DUPLICATE_SLUG",
  "BAD_REQUEST",
  "VALIDATION_ERROR",
  "INVALID_TYPE",
  "SIZE_TOO_LARGE",
  "FILE_ERROR",
  "PARTS_VALIDATION_ERROR",
  "RATE_LIMITED",
  "TOO_MANY_REQUESTS",
  "INTERNAL_ERROR",
  "SERVICE_UNAVAILABLE",
  "DATABASE_ERROR",
  "SEARCH_ERROR",
  "EXTERNAL_SERVICE_ERROR",
  "THROTTLING_ERROR",
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCodeSchema>;

/** The error body as the frontend's error mapping parses it: any code string, for forward compatibility. */
export const ApiErrorResponseSchema = z.object({
  success: z.literal(false),
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  correlationId: z.string().optional(),
  timestamp: z.string().optional(),
});

type Action = "retry" | "login" | "contact-support" | "fix-input" | "wait" | "navigate-away";

/** What the frontend does with each code: its action, and whether it retries. */
const MAPPINGS: Record<ApiErrorCode, { action: Action; isRetryable: boolean }> = {
  UNAUTHORIZED: { action: "login", isRetryable: false },
  EXPIRED_SESSION: { action: "login", isRetryable: false },
  ACCESS_DENIED: { action: "navigate-away", isRetryable: false },
  FORBIDDEN: { action: "navigate-away", isRetryable: false },
  NOT_FOUND: { action: "navigate-away", isRetryable: false },
  CONFLICT: { action: "fix-input", isRetryable: false },
  DUPLICATE_SLUG: { action: "fix-input", isRetryable: false },
  BAD_REQUEST: { action: "fix-input", isRetryable: false },
  VALIDATION_ERROR: { action: "fix-input", isRetryable: false },
  INVALID_TYPE: { action: "fix-input", isRetryable: false },
  SIZE_TOO_LARGE: { action: "fix-input", isRetryable: false },
  FILE_ERROR: { action: "fix-input", isRetryable: false },
  PARTS_VALIDATION_ERROR: { action: "fix-input", isRetryable: false },
  RATE_LIMITED: { action: "wait", isRetryable: true },
  TOO_MANY_REQUESTS: { action: "wait", isRetryable: true },
  INTERNAL_ERROR: { action: "retry", isRetryable: true },
  SERVICE_UNAVAILABLE: { action: "retry", isRetryable: true },
  DATABASE_ERROR: { action: "retry", isRetryable: true },
  SEARCH_ERROR: { action: "retry", isRetryable: true },
  EXTERNAL_SERVICE_ERROR: { action: "retry", isRetryable: true },
  THROTTLING_ERROR: { action: "wait", isRetryable: true },
};
const UNKNOWN = { action: "contact-support" as Action, isRetryable: false };

/** An error as the frontend's error mapping hands it to the UI. */
export interface ParsedApiError {
  code: string;
  /** The code is one the frontend knows; false means the user sees a generic error. */
  known: boolean;
  action: Action;
  isRetryable: boolean;
  correlationId?: string;
  details?: Record<string, unknown>;
}

export function parseApiError(body: unknown, headers: Headers): ParsedApiError {
  const parsed = ApiErrorResponseSchema.safeParse(body);
  const correlationId = (parsed.success ? parsed.data.correlationId : undefined) ??
    headers.get("x-correlation-id") ?? undefined;
  if (!parsed.success) return { code: "INTERNAL_ERROR", known: false, ...UNKNOWN, correlationId };
  const { code, details } = parsed.data.error;
  const known = ApiErrorCodeSchema.safeParse(code);
  const mapping = known.success ? MAPPINGS[known.data] : UNKNOWN;
  return { code, known: known.success, ...mapping, correlationId, details };
}

/** The upload manager's state for a file whose call failed with `error`. */
export function fileStateAfter(error: ParsedApiError): "expired" | "failed" {
  return error.code === "EXPIRED_SESSION" ? "expired" : "failed";
}

// The API client, written the way the production frontend's finalize client
// is: `fetch` with `credentials: 'include'` (the auth cookie rides along, no
// Authorization header), a success body read as `body.data || body`, and an
// error body validated with zod as `{success: false, error: {type, message,
// details?}, timestamp?}`, then handed to the frontend's error mapping
// (errors.ts), which reads `error.code` and `correlationId`. Whatever this
// client cannot parse, and any code outside the frontend's vocabulary, the
// frontend shows as a generic failure: that is what the check guards against.
import { z } from "zod";
import { parseApiError, type ParsedApiError } from "./errors.js";

export const ApiErrorSchema = z.object({
  success: z.literal(false),
  error: z.object({
    type: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  timestamp: z.string().optional(),
});

export const FileFailureSchema = z.object({
  fileId: z.string(),
  filename: z.string(),
  reason: z.enum(["magic-bytes", "type", "size", "missing"]),
  message: z.string(),
});

export const MocSchema = z.object({
  id: z.string().uuid(),
  title: z.string(),
  slug: z.string().nullable(),
  description: z.string().nullable().optional(),
  status: z.string(),
  pdfKey: z.string().nullable(),
  imageKeys: z.array(z.string()),
  partsKeys: z.array(z.string()),
  tags: z.unknown(),
  theme: z.string().nullable().optional(),
  createdAt: z.string(),
  idempotent: z.boolean().optional(),
});
export type Moc = z.infer<typeof MocSchema>;

/** What a user of the frontend sees after a call. */
export type Outcome<T> =
  | { ok: true; status: number; data: T; headers: Headers }
  | {
      ok: false;
      status: number;
      type: string;
      message: string;
      details?: Record<string, unknown>;
      headers: Headers;
      /** The frontend's fallback when the error body does not parse. */
      generic: boolean;
      /** What the frontend's error mapping makes of the body. */
      mapped: ParsedApiError;
    };

/** Every error code this run was answered, for the final vocabulary check. */
export const seenCodes = new Set<string>();

/**
 * What a browser adds on its own to a `credentials: 'include'` request from
 * the frontend's page: its Origin, and the httpOnly cookie. Node's fetch has
 * no cookie jar, so the check plays the browser's part here.
 */
export interface Browser {
  origin: string;
  cookie?: string;
}

export class Api {
  constructor(
    private readonly base: string,
    private readonly browser: Browser,
  ) {}

  async call<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown): Promise<Outcome<T>> {
    const headers: Record<string, string> = { Origin: this.browser.origin };
    if (this.browser.cookie) headers.Cookie = this.browser.cookie;
    if (body !== undefined && !(body instanceof Uint8Array)) headers["Content-Type"] = "application/json";
    const response = await fetch(`${this.base}${path}`, {
      method,
      credentials: "include",
      headers,
      body: body === undefined ? undefined : body instanceof Uint8Array ? new Blob([body as Uint8Array<ArrayBuffer>]) : JSON.stringify(body),
    });
    // A browser hands a cross-origin answer to the page only when it is
    // allowed for this origin with credentials; otherwise fetch rejects.
    if (response.headers.get("access-control-allow-origin") !== this.browser.origin ||
        response.headers.get("access-control-allow-credentials") !== "true") {
      throw new Error(`${method} ${path}: the browser would block this answer (CORS headers missing)`);
    }
    const text = await response.text();
    const json: unknown = text ? JSON.parse(text) : null;
    if (response.ok) {
      const payload = (json as { data?: unknown } | null)?.data || json;
      return { ok: true, status: response.status, data: schema.parse(payload), headers: response.headers };
    }
    const mapped = parseApiError(json, response.headers);
    seenCodes.add(mapped.code);
    const parsed = ApiErrorSchema.safeParse(json);
    if (!parsed.success) {
      return {
        ok: false, status: response.status, type: "UNKNOWN", generic: true,
        message: "Something went wrong. Please try again.", headers: response.headers, mapped,
      };
    }
    const { type, message, details } = parsed.data.error;
    return { ok: false, status: response.status, type, message, details, headers: response.headers, generic: false, mapped };
  }

  createSession(files: unknown[]) {
    return this.call("POST", "/api/mocs/uploads/sessions", z.object({ sessionId: z.string() }), { files });
  }

  registerBatch(sessionId: string, files: unknown[]) {
    return this.call("POST", `/api/mocs/uploads/sessions/${sessionId}/files/batch`,
      z.object({ results: z.array(z.unknown()) }), { files });
  }

  register(sessionId: string, file: unknown) {
    return this.call("POST", `/api/mocs/uploads/sessions/${sessionId}/files`, z.object({ fileId: z.string() }), file);
  }

  uploadPart(sessionId: string, fileId: string, bytes: Uint8Array) {
    return this.call("PUT", `/api/mocs/uploads/sessions/${sessionId}/files/${fileId}/parts/1`,
      z.object({ etag: z.string() }), bytes);
  }

  complete(sessionId: string, fileId: string, etag: string) {
    return this.call("POST", `/api/mocs/uploads/sessions/${sessionId}/files/${fileId}/complete`,
      z.object({ fileUrl: z.string() }), { parts: [{ partNumber: 1, etag }] });
  }

  finalize(uploadSessionId: string, title: string) {
    return this.call("POST", "/api/mocs/uploads/finalize", MocSchema, { uploadSessionId, title });
  }
}

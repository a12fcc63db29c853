// The typed client: openapi-fetch over the paths and bodies that
// openapi-typescript generated from docs/openapi.json (src/schema.d.ts). A
// call to a path, with a body or a parameter, that the document does not
// have is a type error, and so is reading a field a response does not have.
import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type UploadsClient = ReturnType<typeof uploadsClient>;
/** The error envelope every error answer carries (docs/contract.md §0). */
export type ErrorBody = components["schemas"]["ErrorBody"];
/** `error.code` and `error.type`: the production frontend's vocabulary. */
export type ErrorCode = components["schemas"]["ErrorCode"];

/**
 * A client of the API at `baseUrl` (the origin: the document's paths start
 * with `/api/`), authenticated as a non-browser client is: a Cognito access
 * token in `Authorization: Bearer` (docs/contract.md §1).
 */
export function uploadsClient(baseUrl: string, accessToken: string) {
  return createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${accessToken}` },
  });
}

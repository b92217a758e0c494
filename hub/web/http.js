// JSON over the hub's REST routes (docs/API.md). Errors carry the API's
// `{error: {code, message}}` as `ApiError`.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * `request("POST", "/orders", body, token)`: the parsed JSON answer (null
 * for 204), or throws ApiError. The token is sent as a bearer token and
 * kept by the caller, in memory only.
 */
export async function request(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  let answer;
  try {
    answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (cause) {
    throw new ApiError(0, "network", "the hub cannot be reached");
  }
  if (answer.status === 204) return null;
  const text = await answer.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!answer.ok) {
    const error = json?.error;
    throw new ApiError(answer.status, error?.code ?? "http_" + answer.status, error?.message ?? (text.slice(0, 200) || answer.statusText));
  }
  return json;
}

export const getJson = (path, token) => request("GET", path, undefined, token);

// @ts-check
// The platform's HTTP API. Operator routes use the admin token when the
// operator signed in (production); in development, from this machine, they
// are open. Workspace-scoped routes (secrets, schedules, memories, ...) take
// the admin token, or in development a test token of that workspace.

const TOKEN_KEY = 'molecule.adminToken';

export const auth = {
  /** The admin token: kept for this tab's session only (sessionStorage). */
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  /** @param {string} token */
  set(token) {
    this.token = token;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    wsTokens.clear();
  },
};

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {any} body
   */
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** @type {(() => void) | null} */
let onUnauthorized = null;
/**
 * Called when an operator route answers 401 (sign in again).
 * @param {() => void} f
 */
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

/**
 * One request; resolves to the parsed JSON body (or text), rejects with
 * an ApiError carrying the API's own message.
 * @param {string} method @param {string} path @param {any} [body]
 * @param {{token?: string}} [opts]
 */
export async function api(method, path, body, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = opts.token ?? auth.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  let r;
  for (let attempt = 0; ; attempt++) {
    try {
      r = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      break;
    } catch (e) {
      // A read that never reached the platform (a network change, a
      // restart) is tried once more; a write is not, it may have landed.
      if (method === 'GET' && attempt === 0) continue;
      throw new ApiError(0, `the platform is unreachable (${/** @type {Error} */ (e).message})`, null);
    }
  }
  const text = await r.text();
  /** @type {any} */
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* plain text answer */
  }
  if (!r.ok) {
    const message =
      (data && typeof data === 'object' && (data.error || data.message)) ||
      (typeof data === 'string' && data.trim()) ||
      `${r.status} ${r.statusText}`;
    if (r.status === 401 && opts.token === undefined && onUnauthorized) onUnauthorized();
    throw new ApiError(r.status, String(message), data);
  }
  return data;
}

/**
 * Development test tokens per workspace (memory only).
 * @type {Map<string, string>}
 */
const wsTokens = new Map();

/**
 * A workspace-scoped request (WorkspaceAuth).
 * @param {string} id @param {string} method @param {string} path @param {any} [body]
 */
export async function wsApi(id, method, path, body) {
  if (auth.token) return api(method, path, body);
  for (let attempt = 0; ; attempt++) {
    let token = wsTokens.get(id);
    if (!token) {
      const t = await api('GET', `/admin/workspaces/${encodeURIComponent(id)}/test-token`);
      token = String(t.auth_token);
      wsTokens.set(id, token);
    }
    try {
      return await api(method, path, body, { token });
    } catch (e) {
      // A rotated token: fetch a new one once.
      if (e instanceof ApiError && e.status === 401 && attempt === 0) {
        wsTokens.delete(id);
        continue;
      }
      throw e;
    }
  }
}

/** The headers of a streaming request made by hand (chat). */
export function authHeaders() {
  /** @type {Record<string, string>} */
  const headers = {};
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  return headers;
}

/** @param {string} id */
export const wsPath = (id) => `/workspaces/${encodeURIComponent(id)}`;

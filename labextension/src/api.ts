/**
 * Calls to the panel's handlers in the user's server ({base_url}jhub-af/...), with
 * jupyter-server's auth and XSRF (ServerConnection does both). A failed call throws
 * PanelError with the sentence errors.ts finds in the answer.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { errorMessage, isCredentialProblem, Service } from './errors';

/** A failed call: `message` is the sentence to show, `status` the HTTP status (0: no answer). */
export class PanelError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }

  /** Whether the user must renew credentials (shown as a warning, not an error). */
  get credentials(): boolean {
    return isCredentialProblem(this.status);
  }
}

const settings = ServerConnection.makeSettings();

/** The URL of `path` under {base_url}jhub-af/. */
export function apiUrl(path: string): string {
  return URLExt.join(settings.baseUrl, 'jhub-af', path);
}

/**
 * The JSON answer of a call to `path` of the `service` tab (a JSON string body is
 * sent as application/json). Throws PanelError when there is no answer or it is not
 * 2xx. Called by the tabs (dask.ts, data.ts, usage.ts).
 */
export async function requestAPI<T>(
  service: Service,
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const url = apiUrl(path);
  if (init.body && typeof init.body === 'string') {
    init.headers = { 'Content-Type': 'application/json', ...(init.headers || {}) };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch {
    throw new PanelError(errorMessage(service, 0, null), 0);
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new PanelError(errorMessage(service, response.status, body), response.status);
  }
  return body as T;
}

/** POST `body` as JSON to `path`; as requestAPI. */
export function postJSON<T>(service: Service, path: string, body: unknown): Promise<T> {
  return requestAPI<T>(service, path, { method: 'POST', body: JSON.stringify(body) });
}

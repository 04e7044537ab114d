/**
 * Calls to the panel's handlers in the user's server ({base_url}jhub-af/...), with
 * jupyter-server's auth and XSRF (ServerConnection does both).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { errorMessage, isCredentialProblem, Service } from './errors';

export class PanelError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }

  get credentials(): boolean {
    return isCredentialProblem(this.status);
  }
}

const settings = ServerConnection.makeSettings();

export function apiUrl(path: string): string {
  return URLExt.join(settings.baseUrl, 'jhub-af', path);
}

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

export function postJSON<T>(service: Service, path: string, body: unknown): Promise<T> {
  return requestAPI<T>(service, path, { method: 'POST', body: JSON.stringify(body) });
}

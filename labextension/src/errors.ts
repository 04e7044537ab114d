/**
 * What the panel says when a request fails: the server's own sentence when it sent
 * one, otherwise a sentence for the status that says what to do.
 *
 * Every error of the panel's handlers, and jupyter-server's own, is
 * {"error": <code>, "message": <sentence>} (jhub_af/lab/api.py): the sentence is
 * `message`; `error` is a code such as "service_unavailable", never shown.
 * Pure functions (unit-tested in test/errors.test.ts).
 */

export type Service = 'dask' | 'rucio' | 'usage';

const NAMES: Record<Service, string> = {
  dask: 'The Dask Gateway',
  rucio: 'Rucio',
  usage: 'af-accounting (the usage service)'
};

export const SERVER_UNREACHABLE =
  'Your notebook server does not answer. If the hub stopped it, start it again from the ' +
  "hub's home page (File > Hub Control Panel), then reload this page.";

export const SESSION_EXPIRED =
  'Your session with this notebook server has expired. Reload the page (you may be asked ' +
  'to sign in again); nothing you saved is lost.';

/**
 * The sentence for a failed request to `service`: the body's own sentence, else one
 * for `status` (0: the request never got an answer). Called by api.ts requestAPI.
 */
export function errorMessage(service: Service, status: number, body: unknown): string {
  const own = serverSentence(body);
  if (own) {
    return own;
  }
  if (status === 0) {
    return SERVER_UNREACHABLE;
  }
  if (status === 401) {
    return SESSION_EXPIRED;
  }
  if (status === 403) {
    return 'This request was refused. Reload the page and try again; if it lasts, tell the facility’s admins.';
  }
  if (status === 404) {
    return 'The panel’s server part is not installed in this notebook server; tell the facility’s admins.';
  }
  if (status === 502 || status === 503 || status === 504) {
    return `${NAMES[service]} cannot be reached right now. Try again in a minute; if it lasts, tell the facility’s admins.`;
  }
  return `${NAMES[service]} request failed (HTTP ${status}). Try again; if it lasts, tell the facility’s admins.`;
}

/** The error body's `message`, trimmed and at most 1000 characters; '' if it has none. */
export function serverSentence(body: unknown): string {
  if (body && typeof body === 'object') {
    const message = (body as Record<string, unknown>).message;
    if (typeof message === 'string' && message.trim()) {
      return message.trim().slice(0, 1000);
    }
  }
  return '';
}

/** Whether the message is about credentials to renew (shown with a stronger style). */
export function isCredentialProblem(status: number): boolean {
  return status === 401;
}

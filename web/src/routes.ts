/**
 * The page's location: `#/revenue?range=last30&g=week&product=SKU-1` or `#/imports`. The
 * revenue view keeps its choices in the hash, so a reload or a shared link shows the same view.
 */

export type Route = 'revenue' | 'imports';

export function currentRoute(): Route {
  return location.hash.startsWith('#/imports') ? 'imports' : 'revenue';
}

export function hashParams(): URLSearchParams {
  const hash = location.hash;
  const at = hash.indexOf('?');
  return new URLSearchParams(at === -1 ? '' : hash.slice(at + 1));
}

let revenueHash = '#/revenue';

/** Where the Revenue link goes: the revenue view as it was last left. */
export function revenueLink(): string {
  return currentRoute() === 'revenue' ? location.hash || '#/revenue' : revenueHash;
}

/** Records the revenue view's choices in the address without adding a history entry. */
export function replaceRevenueParams(params: URLSearchParams): void {
  const text = params.toString();
  revenueHash = `#/revenue${text ? `?${text}` : ''}`;
  if (currentRoute() === 'revenue' && location.hash !== revenueHash) history.replaceState(null, '', revenueHash);
}

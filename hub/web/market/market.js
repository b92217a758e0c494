// The market part of the page (not built yet: a helper's branch fills it).
export function startMarket(ctx) {}

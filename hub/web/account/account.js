// The account part of the page (not built yet: a helper's branch fills it).
export function startAccount(ctx) {}

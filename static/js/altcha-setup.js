// The widget's CSP-friendly build bundles no proof-of-work worker: register the one our
// challenges use, served from this site (the page's CSP allows workers from 'self' only).
globalThis.$altcha.algorithms.set(
  "PBKDF2/SHA-256",
  () => new Worker(new URL("../vendor/altcha/workers/pbkdf2.js", import.meta.url)),
);

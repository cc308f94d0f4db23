// Clerk's own has(), from its published npm code, for paygate's differential test.
//
// Reads [{claims, queries}] as JSON on stdin and writes [{builds, error, answers}] to stdout. The auth
// object is built exactly as @clerk/backend builds it for a verified session token (getAuthObjectFromJwt:
// the claims parser of @clerk/shared, then createCheckAuthorization); a pending session is signed out.
'use strict';
const { getAuthObjectFromJwt } = require('@clerk/backend/internal');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', chunk => (input += chunk));
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const out = cases.map(({ claims, queries }) => {
    let auth;
    try {
      auth = getAuthObjectFromJwt({ raw: { text: 'header.payload.signature' }, payload: claims }, {});
    } catch (e) {
      return { builds: false, error: `${e.constructor.name}: ${e.message}`, answers: queries.map(() => false) };
    }
    return { builds: true, error: null, answers: queries.map(q => auth.has(q) === true) };
  });
  process.stdout.write(JSON.stringify(out));
});

#!/usr/bin/env bash
# Checks the package as a user gets it: `npm pack` lists the built files (JS and .d.ts),
# and a fresh project installs the tarball, imports it under Node and type-checks against
# it. Run from anywhere; needs node >= 20 and npm (socket.io-client, the peer dependency,
# comes from the npm cache when it holds it).
#
#   bash clients/typescript/scripts/check-package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
pkg="$PWD"

[[ -d node_modules ]] || npm ci --no-audit --no-fund --prefer-offline

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "package: npm pack --dry-run lists the build"
# prepack builds dist/ first, so this also proves a clean checkout packs its build.
listing="$(npm pack --dry-run --json 2>/dev/null)"
files="$(node -e 'for (const f of JSON.parse(process.argv[1])[0].files) console.log(f.path)' "$listing")"
for f in package.json README.md dist/index.js dist/index.d.ts dist/connect.js dist/connect.d.ts \
  dist/service.js dist/service.d.ts dist/api-error.js dist/jwt.js dist/export-types.d.ts \
  dist/generated/types.d.ts dist/generated/events.d.ts; do
  grep -qx "$f" <<<"$files" || { echo "package: $f missing from npm pack:" >&2; echo "$files" >&2; exit 1; }
done
if grep -q '^src/' <<<"$files"; then
  echo "package: sources in the tarball (files should be dist/ only):" >&2
  grep '^src/' <<<"$files" >&2
  exit 1
fi

echo "package: npm pack, then install the tarball into a fresh project"
tarball="$work/$(npm pack --silent --pack-destination "$work" | tail -n 1)"
mkdir "$work/app"
cd "$work/app"
cat >package.json <<'JSON'
{ "name": "fresh-app", "version": "1.0.0", "private": true, "type": "module" }
JSON
npm install --no-audit --no-fund --prefer-offline "$tarball" >/dev/null

cat >smoke.mjs <<'JS'
import assert from "node:assert/strict";
import { ApiError, ServiceClient, connect, tokenExpiry } from "@lms-realtime/client-types";

assert.equal(typeof connect, "function");
const payload = Buffer.from(JSON.stringify({ sub: "u", exp: 2000000000 })).toString("base64url");
assert.equal(tokenExpiry(`e30.${payload}.sig`), 2000000000);
// Nothing listens on port 1: the client's failure is a typed ApiError.
const api = new ServiceClient({ baseUrl: "http://127.0.0.1:1", token: "t", timeoutMs: 2000 });
await assert.rejects(api.stats(), (e) => e instanceof ApiError && e.status === 0 && e.code === "NETWORK_ERROR");
console.log("package: the installed tarball imports and runs");
JS
node smoke.mjs
# No separate CommonJS build: Node >= 20.19 loads the ESM build with require().
node -e 'const m = require("@lms-realtime/client-types"); if (typeof m.connect !== "function") process.exit(1)'
echo "package: require() loads it from CommonJS"

cat >app.ts <<'TS'
import { connect, ServiceClient, type LmsSocket, type Notification } from "@lms-realtime/client-types";

const socket: LmsSocket = connect("https://realtime.example.edu", { getToken: async () => "jwt" });
socket.on("notification:new", (n: Notification) => console.log(n.title));
const api = new ServiceClient({ baseUrl: "https://realtime.example.edu", token: "jwt" });
export const sent: Promise<string> = api
  .sendNotification({ tenantId: "t", target: { userId: "u" }, notification: { title: "a", message: "b" } })
  .then((r) => r.id);
TS
cat >tsconfig.json <<'JSON'
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
  "strict": true, "noEmit": true, "skipLibCheck": true, "lib": ["ES2022", "DOM"], "types": [] },
  "files": ["app.ts"] }
JSON
"$pkg/node_modules/.bin/tsc" -p tsconfig.json
echo "package: a TypeScript project type-checks against the installed declarations"

// Tokens for the suite, signed here with node:crypto (no JWT library): good HS256 tokens,
// and the bad ones the gateway must refuse (bad signature, alg none, another algorithm).

import { createHmac, generateKeyPairSync, randomBytes, sign as rsaSign } from "node:crypto";

import type { Role } from "@lms-realtime/client-types";

/** The HS256 secret every gateway of this run is started with. */
export const JWT_SECRET = "e2e-" + randomBytes(16).toString("hex");

const b64url = (data: string | Buffer): string => Buffer.from(data).toString("base64url");
const now = (): number => Math.floor(Date.now() / 1000);

export interface Claims {
  sub: string | number;
  tenantId?: string | number;
  tenant_id?: string | number;
  role: Role | string;
  exp?: number;
  iat?: number;
  nbf?: number;
  jti?: string;
}

function encode(header: object, claims: object): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
}

function withDefaults(claims: Claims, ttlSecs: number): Claims {
  return { iat: now(), exp: now() + ttlSecs, ...claims };
}

/** A valid HS256 token (one hour unless `ttlSecs` says otherwise). */
export function sign(claims: Claims, { secret = JWT_SECRET, ttlSecs = 3600 } = {}): string {
  const input = encode({ alg: "HS256", typ: "JWT" }, withDefaults(claims, ttlSecs));
  const sig = createHmac("sha256", secret).update(input).digest("base64url");
  return `${input}.${sig}`;
}

/** A token for user `sub` of `tenant` with `role`. */
export function token(sub: string, tenant: string | undefined, role: Role, ttlSecs = 3600): string {
  const claims: Claims = { sub, role };
  if (tenant !== undefined) claims.tenantId = tenant;
  return sign(claims, { ttlSecs });
}

/** A service token scoped to `tenant`. */
export const serviceToken = (tenant: string): string => token("lms-backend", tenant, "service");

/** A platform super admin (no tenant). */
export const superAdminToken = (): string => token("root", undefined, "super_admin");

/** Expired an hour ago: well beyond the gateway's clock-skew leeway. */
export const expiredToken = (sub: string, tenant: string): string =>
  sign({ sub, tenantId: tenant, role: "student", exp: now() - 3600, iat: now() - 7200 });

/** Signed with another secret. */
export const badSignatureToken = (sub: string, tenant: string): string =>
  sign({ sub, tenantId: tenant, role: "student" }, { secret: "not-the-gateway-secret" });

/** `alg: none`, no signature. */
export function algNoneToken(sub: string, tenant: string): string {
  return `${encode({ alg: "none", typ: "JWT" }, withDefaults({ sub, tenantId: tenant, role: "student" }, 3600))}.`;
}

/** HS384 with the right secret: a valid signature, but not the configured algorithm. */
export function hs384Token(sub: string, tenant: string): string {
  const input = encode({ alg: "HS384", typ: "JWT" }, withDefaults({ sub, tenantId: tenant, role: "student" }, 3600));
  return `${input}.${createHmac("sha384", JWT_SECRET).update(input).digest("base64url")}`;
}

/** RS256 with a fresh key pair: the classic algorithm-confusion attempt against HS256. */
export function rs256Token(sub: string, tenant: string): string {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const input = encode({ alg: "RS256", typ: "JWT" }, withDefaults({ sub, tenantId: tenant, role: "student" }, 3600));
  return `${input}.${rsaSign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
}
